"""Between-study variance (tau²) estimators, each in a batched form over many meta-analyses and, where it pays, a
scalar form for one analysis, with the root finders they share; and the registry that names them.

The batched form of an estimator takes a :class:`~metabac.wls.Problem` (a batch of problems, see
:mod:`metabac.wls`) and a :class:`Control`, and returns a :class:`Tau2Fit`. The scalar form takes one intercept-only
problem as 1-D ``y`` and ``v``, the :class:`Control` and the problem's equal-effects :class:`~metabac.wls.OneFit`,
and returns a :class:`ScalarTau2`: the same formulas in numpy-scalar arithmetic, which is several times faster on one
analysis than a batch of one (numpy's per-call overhead on (1, k) arrays dominates there). Adding an estimator is one
batched function and one entry in :data:`TAU2_ESTIMATORS` (:data:`METHODS` is its names); a scalar form is
optional, and without one a single analysis runs as a batch of one. Both paths agree to rounding
(``tests/test_batch.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal, NamedTuple, get_args

import numpy as np
from numpy.typing import NDArray
from scipy import special

from metabac._checks import (
    ConvergenceError,
    require_choice,
    require_positive_number,
    require_whole_number,
)
from metabac.wls import (
    OneFit,
    Problem,
    ScoringFit,
    Value,
    WeightedFit,
    problem_log_likelihood,
    q_statistic,
    study_dot,
    study_sum,
)

Method = Literal["EE", "FE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM"]
Array = NDArray[np.float64]
# Tests of the pooled effect: Wald (z), Hartung-Knapp-Sidik-Jonkman (knha) and its modified form (adhoc, metafor's
# name); the last two use the t distribution with the variance factor of :func:`knapp_hartung_factor`.
TestName = Literal["z", "knha", "adhoc"]
TEST_NAMES: tuple[TestName, ...] = get_args(TestName)
TESTS: tuple[str, ...] = TEST_NAMES
T_TESTS = frozenset({"knha", "adhoc"})
Degrees = int | NDArray[np.int64] | NDArray[np.float64]  # degrees of freedom: one, or one per problem
Stopping = Literal["relative", "absolute"]
RootFinder = Literal["newton", "brent"]
STOPPING_RULES: tuple[Stopping, ...] = get_args(Stopping)
ROOT_FINDERS: tuple[RootFinder, ...] = get_args(RootFinder)


def critical_value(level: float, df: Degrees | None = None) -> NDArray[np.float64]:
    """The two-sided critical value at ``level`` percent: z_{1/2 + level/200}, or t with ``df`` degrees of freedom
    (NaN where df <= 0). Scalars give 0-d arrays, arrays of df arrays."""
    upper = 0.5 + level / 200
    if df is None:
        return np.asarray(special.ndtri(upper))
    degrees = np.asarray(df)
    with np.errstate(invalid="ignore"):
        return np.where(degrees > 0, special.stdtrit(np.maximum(degrees, 1), upper), np.nan)


def two_sided_p(statistic: NDArray[np.float64] | float, df: Degrees | None = None
                ) -> NDArray[np.float64]:
    """The two-sided p-value of a z statistic, or of a t statistic with ``df`` degrees of freedom (NaN where
    df <= 0): 2·Φ(−|z|) or 2·F_t(−|t|; df)."""
    if df is None:
        return 2 * special.ndtr(-np.abs(statistic))
    degrees = np.asarray(df)
    with np.errstate(invalid="ignore"):
        return np.where(degrees > 0, 2 * special.stdtr(np.maximum(degrees, 1), -np.abs(statistic)), np.nan)


def q_based_i2(q: NDArray[np.float64] | float, df: Degrees) -> NDArray[np.float64]:
    """I² from Cochran's Q, 100·max(0, Q − df)/Q (Higgins & Thompson 2002), 0 where Q or df is 0: the fixed-effect
    model's I² and RevMan's (the random-effects I² is computed from tau² instead)."""
    q, degrees = np.asarray(q, dtype=float), np.asarray(df)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((q > 0) & (degrees > 0), np.maximum(0.0, 100 * (q - degrees) / q), 0.0)


def knapp_hartung_factor(rss: NDArray[np.float64] | float, df: Degrees, test: str
                         ) -> NDArray[np.float64]:
    """The variance factor s² = Σw(y − Xβ̂)²/(k − p) of the Knapp-Hartung (Sidik-Jonkman) test (Knapp & Hartung
    2003, eq. 10), 0 where the weighted residual sum of squares is within rounding of 0 (as metafor); under
    ``test="adhoc"`` max(1, s²), so the interval is never narrower than the Wald interval's on the t scale: the
    modified Hartung-Knapp of Röver, Knapp & Friede (BMC Med Res Methodol 2015;15:99)."""
    s2 = np.where(np.asarray(rss) <= np.finfo(float).eps, 0.0, np.asarray(rss) / np.maximum(df, 1))
    return np.maximum(1.0, s2) if test == "adhoc" else s2


@dataclass(frozen=True)
class Control:
    """Numerical settings of the iterative estimators.

    ``stopping`` is the stopping rule of Fisher scoring (ML, REML, EB) and of Newton's method on 1/Q: "relative"
    (the default) stops when |Δtau²| <= ``threshold`` · max(tau², smallest sampling variance), "absolute" when
    |Δtau²| <= ``threshold``. ``root_finder`` solves Q(tau²) = target for PM and the Q-profile bounds: "newton"
    (the default; Newton's method on 1/Q over the whole batch) or "brent" (Brent's method per problem to ``xtol``
    within tau2.max = max(100, 10 mad(y)²) or ``tau2_max``, as metafor's ``uniroot``). ``accelerate`` adds secant
    steps to Fisher scoring. The defaults converge to the exact root. :meth:`metafor` reproduces metafor 3.8's
    plain Fisher scoring and default stopping rule (absolute threshold 1e-5, 100 iterations) and its ``uniroot``
    (Brent to eps^0.25), for users comparing with metafor's printed output digit by digit.
    """

    threshold: float = 1e-13
    xtol: float = 1e-15
    maxiter: int = 1000
    stopping: Stopping = "relative"
    root_finder: RootFinder = "newton"
    tau2_max: float | None = None
    accelerate: bool = True

    def __post_init__(self) -> None:
        require_whole_number(self.maxiter, "Control: maxiter")
        require_positive_number(self.threshold, "Control: threshold")
        require_positive_number(self.xtol, "Control: xtol")
        if self.stopping not in STOPPING_RULES:  # canonical spellings need no call (pool makes a Control each time)
            object.__setattr__(self, "stopping", require_choice(self.stopping, STOPPING_RULES, "Control: stopping"))
        if self.root_finder not in ROOT_FINDERS:
            object.__setattr__(self, "root_finder",
                               require_choice(self.root_finder, ROOT_FINDERS, "Control: root_finder"))
        if self.tau2_max is not None:
            require_positive_number(self.tau2_max, "Control: tau2_max")

    def scaled(self, s2: float) -> Control:
        """The settings for data divided by s (tau² by s², see :func:`metabac.wls.variance_scale`): thresholds in
        units of tau² (an absolute ``threshold``, ``xtol``) and ``tau2_max`` are divided by s² too; relative
        thresholds need no change."""
        if s2 == 1:
            return self
        threshold = self.threshold / s2 if self.stopping == "absolute" else self.threshold
        return replace(self, threshold=threshold, xtol=self.xtol / s2,
                       tau2_max=None if self.tau2_max is None else self.tau2_max / s2)

    @classmethod
    def metafor(cls) -> Control:
        """metafor's default ``control`` for ``rma()``: plain scoring that stops early, as metafor itself does, and
        Brent's method for PM and the Q-profile bounds."""
        return cls(threshold=1e-5, xtol=float(np.finfo(float).eps) ** 0.25, maxiter=100, stopping="absolute",
                   root_finder="brent", accelerate=False)


class Tau2Fit(NamedTuple):
    """Estimated tau² per problem, with the iterations used and whether the estimator converged."""

    tau2: Array
    iterations: NDArray[np.int64]
    converged: NDArray[np.bool_]


class ScalarTau2(NamedTuple):
    """tau² of one problem from a scalar form, with the iterations used, whether it converged and, where the
    estimator computed it anyway, the weighted fit at that tau² (else None: the caller fits it)."""

    tau2: float
    iterations: int = 0
    converged: bool = True
    fit: OneFit | None = None


BatchForm = Callable[[Problem, Control], Tau2Fit]
# y, v (1-D), the settings and the equal-effects fit of the problem (w = 1/v).
ScalarForm = Callable[[Array, Array, Control, OneFit], ScalarTau2]


def _done(tau2: Array) -> Tau2Fit:
    n = tau2.shape[0]
    return Tau2Fit(np.maximum(tau2, 0.0), np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool))


def equal_effects(problem: Problem, control: Control) -> Tau2Fit:
    """Equal-effects (fixed-effect) model: tau² = 0."""
    return _done(np.zeros(problem.y.shape[0]))


def equal_effects_one(y: Array, v: Array, control: Control, fixed: OneFit) -> ScalarTau2:
    """:func:`equal_effects` for one problem."""
    return ScalarTau2(0.0, fit=fixed)


def dersimonian_laird(problem: Problem, control: Control) -> Tau2Fit:
    """DerSimonian-Laird: tau² = max(0, (Q − (k − p)) / tr(P)), w = 1/v (DerSimonian & Laird 1986, eq. 8).

    For p = 1, tr(P) = Σw − Σw²/Σw.
    """
    return _done(dl_estimate(problem.fixed_fit, problem.k.astype(float), problem.p))


def dersimonian_laird_one(y: Array, v: Array, control: Control, fixed: OneFit) -> ScalarTau2:
    """:func:`dersimonian_laird` for one problem."""
    return ScalarTau2(max(float(dl_estimate(fixed, np.float64(len(y)), 1)), 0.0))


def dl_estimate(fixed: ScoringFit[Value], k: Value, p: int) -> Value:
    """DerSimonian-Laird's (Q − (k − p))/tr(P) from the equal-effects fit, before truncation at 0."""
    return (fixed.rss() - (k - p)) / fixed.trace_p()


def hedges(problem: Problem, control: Control) -> Tau2Fit:
    """Hedges (variance components): tau² = max(0, (RSS_ols − tr(P₁V))/(k − p)), P₁ the OLS residual maker.

    For p = 1: (Σ(y − ȳ)² − (k − 1)/k · Σv)/(k − 1) (Hedges 1983; Hedges & Olkin 1985, p. 194).
    """
    ols = WeightedFit.fit(problem, np.ones_like(problem.v))
    v = problem.present(problem.v)
    tr_pv = study_sum(v) - ols.trace_term(v)
    return _done((ols.rss() - tr_pv) / (problem.k - problem.p))


def hedges_one(y: Array, v: Array, control: Control, fixed: OneFit) -> ScalarTau2:
    """:func:`hedges` for one problem: max(0, (Σ(y − ȳ)² − (k − 1)/k · Σv)/(k − 1))."""
    return ScalarTau2(_hedges_one(y, v))


def _hedges_one(y: Array, v: Array) -> float:
    k = len(y)
    r = _deviations(y)
    v_sum = study_sum(v)
    return max(float((study_dot(r, r) - (v_sum - v_sum / k)) / (k - 1)), 0.0)


def _deviations(y: Array) -> Array:
    """y − ȳ (unweighted mean) of one problem."""
    return y - study_sum(y) / len(y)


def hunter_schmidt(problem: Problem, control: Control) -> Tau2Fit:
    """Hunter-Schmidt: tau² = max(0, (Q − k)/Σw), w = 1/v (Hunter & Schmidt 2004; Viechtbauer 2005, eq. 10)."""
    return _done(hs_estimate(problem.fixed_fit, problem.k.astype(float)))


def hunter_schmidt_one(y: Array, v: Array, control: Control, fixed: OneFit) -> ScalarTau2:
    """:func:`hunter_schmidt` for one problem."""
    return ScalarTau2(max(float(hs_estimate(fixed, np.float64(len(y)))), 0.0))


def hs_estimate(fixed: ScoringFit[Value], k: Value) -> Value:
    """Hunter-Schmidt's (Q − k)/Σw from the equal-effects fit, before truncation at 0."""
    return (fixed.rss() - k) / fixed.sum_w


def sidik_jonkman(problem: Problem, control: Control) -> Tau2Fit:
    """Sidik-Jonkman: tau² = tau0² · Q(tau0²)/(k − p), tau0² = Σ(y − ȳ)²/k (Sidik & Jonkman 2005, eq. 3-4).

    The start value tau0² is the (unweighted, n-denominator) variance of y, as metafor.
    """
    k = problem.k
    mean = study_sum(problem.present(problem.y)) / k
    tau0 = study_sum(problem.present(problem.y - mean[:, None]) ** 2) / k
    return _done(tau0 * q_statistic(problem, tau0) / (k - problem.p))


def sidik_jonkman_one(y: Array, v: Array, control: Control, fixed: OneFit) -> ScalarTau2:
    """:func:`sidik_jonkman` for one problem."""
    k = len(y)
    r = _deviations(y)
    tau0 = study_dot(r, r) / k
    return ScalarTau2(max(float(tau0 * OneFit(y, v, tau0).rss() / (k - 1)), 0.0))


def _outside(new: Array, low: Array, high: Array) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Where ``new`` is below the bracket and where above it. ``high`` and a ``low`` above 0 are evaluated tau²
    values and excluded (landing on one again would repeat a step); a ``low`` of 0 may be reached (metafor's rule)."""
    return np.where(low > 0, new <= low, new < low), new >= high


def _halve_into(tau2: Array, adj: Array, low: Array, high: Array) -> Array:
    """Halve each step until tau² + step lies in the bracket (metafor's step halving, with [0, ∞) at first).

    Repeated halving is exact in binary, so the steps are first scaled by the largest power of two that certainly
    leaves them outside (computed from log2 of the overshoot) and then halved one at a time: the result is that of
    the plain loop without its up to ~1075 passes when tau² sits on the edge (then the step becomes ±0). A step
    that underflows to 0 stops the halving (a bracket of two adjacent numbers has no inside).
    """
    below, above = _outside(tau2 + adj, low, high)
    outside = below | above
    if not outside.any():
        return adj
    room = np.abs(np.where(below, low, high) - tau2)
    adj = np.where(np.isinf(adj), np.copysign(room, adj), adj)  # an infinite step (flat Q) goes to the edge
    with np.errstate(divide="ignore", invalid="ignore"):
        skip = np.floor(np.log2(np.abs(adj) / room)) - 1
    skip = np.where(outside & (room > 0), np.clip(skip, 0, 1100), 0).astype(np.int64)
    adj = np.where(outside & (room == 0), np.copysign(0.0, adj), np.ldexp(adj, -skip))
    while True:
        below, above = _outside(tau2 + adj, low, high)
        outside = (below | above) & (adj != 0)
        if not outside.any():
            return adj
        adj = np.where(outside, adj / 2, adj)


def _below(new: float, low: float) -> bool:
    """``new`` is under the bracket: an evaluated ``low`` above 0 is excluded, a ``low`` of 0 may be reached."""
    return new <= low if low > 0 else new < low


def halve_into(tau2: float, adj: float, low: float, high: float) -> float:
    """:func:`_halve_into` for one problem: the step halved until tau² + step lies in the bracket (first scaled by
    the power of two that certainly leaves it outside, as there)."""
    below = _below(tau2 + adj, low)
    if not below and tau2 + adj < high:
        return adj
    room = abs((low if below else high) - tau2)
    if math.isinf(adj):
        adj = math.copysign(room, adj)
    if room > 0:
        skip = np.floor(np.log2(abs(adj) / room)) - 1  # −inf for a zero step, inf for an overflowing ratio
        adj = math.ldexp(adj, -int(min(max(skip, 0), 1100)) if skip == skip else 0)
    else:
        adj = math.copysign(0.0, adj)
    while adj != 0 and (_below(tau2 + adj, low) or tau2 + adj >= high):
        adj = adj / 2
    return adj


def score(step: Callable[[float], float], start: float, scale: float, control: Control,
          accelerate: bool) -> tuple[float, int, bool]:
    """The root of a scoring step function by :func:`_fisher_scoring`'s loop, for one problem.

    Returns (tau², iterations, converged); ``scale`` is the smallest sampling variance (the relative threshold's
    floor). Call under ``np.errstate(all="ignore")``: a secant through two equal steps divides by zero.
    """
    current, low, high = np.float64(start), 0.0, math.inf
    previous_tau2 = previous_step = math.nan
    for iteration in range(1, control.maxiter + 1):
        fisher = step(current)
        if fisher != fisher:
            fisher = 0.0
        if fisher > 0:
            low = current
        elif fisher < 0:
            high = current
        adj = fisher
        if accelerate:
            target = current - fisher * (current - previous_tau2) / (fisher - np.float64(previous_step))
            adj = target - current if low < target < high else fisher
            if low == 0:
                adj = max(adj, -current)  # not below 0 while 0 is the lower end
            previous_tau2, previous_step = current, fisher
        adj = halve_into(current, adj, low, high)
        current = current + adj
        limit = control.threshold if control.stopping == "absolute" else control.threshold * max(current, scale)
        if abs(adj) <= limit or high - low <= limit:
            return float(current), iteration, True
    return float(current), control.maxiter, False


Step = Callable[[Problem, Array, NDArray[np.int64]], Array]


def _fisher_scoring(problem: Problem, control: Control, step: Step, start: Array | None = None,
                    accelerate: bool | None = None) -> Tau2Fit:
    """Iterate tau² ← tau² + Δ until |Δ| is below the threshold, Δ a safeguarded Fisher-scoring step.

    ``step(rows_problem, tau2, rows)`` gives the step for the problems still iterating (``rows``: their indices in
    the batch). Starts from ``start``, by default max(0, Hedges' estimate) as metafor; ``accelerate`` defaults to
    ``control.accelerate``. The Fisher step s(tau²) = score/expected information has the sign of the score, so
    every evaluated tau² narrows an interval [low, high] that holds the root (at first [0, ∞)). With
    acceleration, Δ is the secant step −s·(tau² − tau²_prev)/(s − s_prev) towards the root of s through the last
    two iterates whenever the secant point lies strictly inside [low, high] (superlinear convergence instead of
    scoring's linear rate: about 6 instead of about 20 iterations to 1e-13); otherwise Δ = s, and a step below 0
    (while 0 is the lower end) goes to 0 exactly, so a root on the boundary is reached at once. A step leaving
    [low, high] is halved until it lands inside: without acceleration this is metafor's halving of steps below 0;
    it also stops the growing oscillation of plain scoring where the observed information exceeds about twice the
    expected one (there metafor reports non-convergence). A problem has converged when |Δ| or the width of
    [low, high] is below the threshold (the latter where rounding noise in the score flips the sign of steps of
    about the threshold's size). Converged problems are frozen; each problem reports its own iterations and
    convergence.
    """
    tau2 = hedges(problem, control).tau2 if start is None else np.array(start, dtype=float)
    accelerate = control.accelerate if accelerate is None else accelerate
    n = tau2.shape[0]
    iterations = np.full(n, control.maxiter, dtype=np.int64)
    converged = np.zeros(n, dtype=bool)
    # State of the problems still iterating, row for row with `sub`; `index` maps them back into the batch.
    index, current, sub, scale = np.arange(n), tau2.copy(), problem, problem.scale()
    low, high = np.zeros(n), np.full(n, np.inf)
    previous_tau2, previous_step = np.full(n, np.nan), np.full(n, np.nan)
    for iteration in range(1, control.maxiter + 1):
        fisher = step(sub, current, index)
        fisher[np.isnan(fisher)] = 0.0
        low = np.where(fisher > 0, current, low)
        high = np.where(fisher < 0, current, high)
        adj = fisher
        if accelerate:
            with np.errstate(divide="ignore", invalid="ignore"):
                target = current - fisher * (current - previous_tau2) / (fisher - previous_step)
            # Strictly inside [low, high] also means s decreases: current is one end, and a secant through an
            # increasing s points away from the root, to the other side of it.
            adj = np.where((target > low) & (target < high), target - current, fisher)
            adj = np.maximum(adj, np.where(low == 0, -current, -np.inf))  # not below 0 while 0 is the lower end
            previous_tau2, previous_step = current, fisher
        adj = _halve_into(current, adj, low, high)
        current = current + adj
        limit = control.threshold if control.stopping == "absolute" else control.threshold * np.maximum(current, scale)
        finished = (np.abs(adj) <= limit) | (high - low <= limit)  # the root is within limit of tau²
        if finished.any():
            done = index[finished]
            tau2[done], iterations[done], converged[done] = current[finished], iteration, True
            going = ~finished
            if not going.any():
                break
            index, current, scale, low, high = index[going], current[going], scale[going], low[going], high[going]
            previous_tau2, previous_step = previous_tau2[going], previous_step[going]
            sub = sub.rows(going)
    else:
        tau2[index] = current
    return Tau2Fit(tau2, iterations, converged)


def ml_step(fit: ScoringFit[Value], k: Value, p: int) -> Value:
    """ML scoring step: (y'PPy − Σw)/Σw², w = 1/(v + tau²) (Viechtbauer 2005, eq. 13 and Appendix)."""
    return (fit.ypp_y() - fit.sum_w) / fit.sum_w2


def reml_step(fit: ScoringFit[Value], k: Value, p: int) -> Value:
    """REML scoring step: (y'PPy − tr P)/tr(PP) (Viechtbauer 2005, eq. 15 and Appendix)."""
    return (fit.ypp_y() - fit.trace_p()) / fit.trace_pp()


def eb_step(fit: ScoringFit[Value], k: Value, p: int) -> Value:
    """Empirical Bayes step: (y'Py · k/(k − p) − k)/Σw (Morris 1983; Berkey et al. 1995, eq. 6)."""
    return (fit.rss() * k / (k - p) - k) / fit.sum_w


def q_newton_step(fit: ScoringFit[Value], target: Value) -> Value:
    """Newton step on 1/Q(tau²) = 1/target: (Q − target)·Q/(target·y'PPy), as dQ/dtau² = −y'PPy (see
    :func:`_q_newton`). Call under ``np.errstate(divide="ignore", invalid="ignore")``: y'PPy = 0 (all y equal)
    makes Q flat and the step infinite."""
    q = fit.rss()
    return (q - target) * q / (target * fit.ypp_y())


StepFormula = Callable[[ScoringFit[Value], Value, int], Value]


def _batch_step(formula: StepFormula[Array]) -> Step:
    """A scoring step formula as the batched loop calls it."""

    def step(problem: Problem, tau2: Array, rows: NDArray[np.int64] | None = None) -> Array:
        return formula(WeightedFit.at(problem, tau2), problem.k.astype(float), problem.p)

    return step


_ml_step = _batch_step(ml_step)
_reml_step = _batch_step(reml_step)
_eb_step = _batch_step(eb_step)


def _scoring_one(formula: StepFormula[np.float64], y: Array, v: Array, control: Control) -> tuple[float, int, bool]:
    """:func:`_fisher_scoring` of one problem with a scoring step formula, from Hedges' estimate."""
    k = np.float64(len(y))
    return score(lambda t: formula(OneFit(y, v, t), k, 1), _hedges_one(y, v), v.min(), control, control.accelerate)


def zero_is_better(at_zero: Value, at_root: Value) -> np.bool_ | NDArray[np.bool_]:
    """metafor's boundary rule: the likelihood at tau² = 0 beats the one at the scoring root (beyond rounding)."""
    return at_zero - at_root > 1e-12 * np.abs(at_root)


def _with_boundary_check(problem: Problem, fit: Tau2Fit, restricted: bool) -> Tau2Fit:
    """Set tau² to 0 where the (restricted) likelihood is higher at 0 than at the scoring root, as metafor."""
    if not np.any(fit.tau2 > 0):
        return fit
    at_zero = problem_log_likelihood(problem, np.zeros_like(fit.tau2), problem.fixed_fit, restricted)
    at_root = problem_log_likelihood(problem, fit.tau2, WeightedFit.at(problem, fit.tau2), restricted)
    better = np.asarray(zero_is_better(at_zero, at_root)) & (fit.tau2 > 0)
    return fit._replace(tau2=np.where(better, 0.0, fit.tau2))


def _likelihood_one(formula: StepFormula[np.float64], y: Array, v: Array, control: Control, fixed: OneFit,
                    restricted: bool) -> ScalarTau2:
    """ML or REML of one problem: :func:`_scoring_one` and the boundary rule of :func:`_with_boundary_check`."""
    tau2, iterations, converged = _scoring_one(formula, y, v, control)
    if tau2 <= 0:
        return ScalarTau2(tau2, iterations, converged)
    root = OneFit(y, v, tau2)
    if zero_is_better(fixed.log_likelihood(v, 0.0, restricted), root.log_likelihood(v, tau2, restricted)):
        return ScalarTau2(0.0, iterations, converged, fixed)
    return ScalarTau2(tau2, iterations, converged, root)


def maximum_likelihood(problem: Problem, control: Control) -> Tau2Fit:
    """Maximum likelihood by Fisher scoring; root of Σw²((y − Xβ̂)² − v − tau²) = 0 (Hardy & Thompson 1996)."""
    return _with_boundary_check(problem, _fisher_scoring(problem, control, _ml_step), restricted=False)


def maximum_likelihood_one(y: Array, v: Array, control: Control, fixed: OneFit) -> ScalarTau2:
    """:func:`maximum_likelihood` for one problem."""
    return _likelihood_one(ml_step, y, v, control, fixed, restricted=False)


def restricted_maximum_likelihood(problem: Problem, control: Control) -> Tau2Fit:
    """Restricted maximum likelihood by Fisher scoring; root of y'PPy = tr(P) (Viechtbauer 2005, eq. 15)."""
    return _with_boundary_check(problem, _fisher_scoring(problem, control, _reml_step), restricted=True)


def restricted_maximum_likelihood_one(y: Array, v: Array, control: Control, fixed: OneFit) -> ScalarTau2:
    """:func:`restricted_maximum_likelihood` for one problem."""
    return _likelihood_one(reml_step, y, v, control, fixed, restricted=True)


def empirical_bayes(problem: Problem, control: Control) -> Tau2Fit:
    """Empirical Bayes (Morris 1983): root of Q(tau²) = k − p reached by the EB iteration; equals PM at the root."""
    return _fisher_scoring(problem, control, _eb_step)


def empirical_bayes_one(y: Array, v: Array, control: Control, fixed: OneFit) -> ScalarTau2:
    """:func:`empirical_bayes` for one problem."""
    return ScalarTau2(*_scoring_one(eb_step, y, v, control))


def metafor_tau2_max(y: Array) -> float:
    """metafor's default upper end for ``uniroot`` of one problem: tau2.max = max(100, 10·mad(y)²)."""
    return max(100.0, 10 * float(1.4826 * np.median(np.abs(y - np.median(y)))) ** 2)


def upper_bracket(problem: Problem, control: Control) -> Array:
    """The upper end for ``uniroot`` per problem: ``control.tau2_max``, or :func:`metafor_tau2_max`."""
    if control.tau2_max is not None:
        return np.full(problem.y.shape[0], control.tau2_max)
    return np.array([metafor_tau2_max(problem.y[i][problem.mask[i]]) for i in range(problem.y.shape[0])])


def _q_newton(problem: Problem, target: Array, control: Control) -> Tau2Fit:
    """The tau² >= 0 with Q(tau²) = target per problem (0 when Q(0) < target), by Newton's method from 0.

    Newton runs on 1/Q(tau²) = 1/target, which is close to linear in tau² (Q ≈ c/(v̄ + tau²) when the variances are
    alike), where Q itself is steeply convex: with dQ/dtau² = −y'PPy the step is Δ = (Q − target)·Q/(target·y'PPy)
    (at most 8 iterations on variances spread over six orders of magnitude, against 40 for Newton on Q). The steps
    run through the safeguarded loop of :func:`_fisher_scoring` (bracket, halving, per-problem convergence).
    """

    def step(rows_problem: Problem, tau2: Array, rows: NDArray[np.int64]) -> Array:
        with np.errstate(divide="ignore", invalid="ignore"):
            return q_newton_step(WeightedFit.at(rows_problem, tau2), target[rows])

    return _fisher_scoring(problem, control, step, start=np.zeros(problem.y.shape[0]), accelerate=False)


def brent_q_root(q: Callable[[float], float], target: float, upper: float, control: Control, method: str) -> float:
    """The tau² in [0, upper] with Q(tau²) = target by Brent's method to ``control.xtol``, as metafor's ``uniroot``
    (``q`` is Q of one problem, Q(0) >= target). A root beyond ``upper`` raises :class:`ConvergenceError`."""
    from scipy.optimize import brentq  # imported here: scipy.optimize takes 0.1-0.15 s to import, pool never needs it

    if q(upper) > target:
        raise ConvergenceError(f"{method}: Q(tau2) is still above {target:g} at tau2 = {upper:g}")
    try:
        return brentq(lambda t: q(t) - target, 0.0, upper, xtol=control.xtol, maxiter=control.maxiter)
    except RuntimeError:  # scipy's "Failed to converge after n iterations"
        raise ConvergenceError(f"{method}: tau2 did not converge after {control.maxiter} iterations") from None


def solve_q_equation(
    problem: Problem, target: Array, control: Control, method: str, upper: Array | None = None
) -> Array:
    """The tau² >= 0 with Q(tau²) = target for each problem (0 when Q(0) < target).

    By ``control.root_finder``: Newton's method on the whole batch (:func:`_q_newton`), or Brent's method per
    problem on [0, upper] (:func:`brent_q_root`), with ``upper`` from :func:`upper_bracket` unless given. A root
    beyond a given ``upper`` (or ``control.tau2_max``) raises :class:`ConvergenceError`.
    """
    if control.root_finder == "newton":
        fit = _q_newton(problem, target, control)
        if not fit.converged.all():
            raise ConvergenceError(f"{method}: tau2 did not converge after {control.maxiter} iterations")
        limit = upper if upper is not None else control.tau2_max
        if limit is not None:
            beyond = np.flatnonzero(fit.tau2 > limit)
            if beyond.size:
                i = beyond[0]
                raise ConvergenceError(f"{method}: Q(tau2) is still above {target[i]:g} at tau2 = "
                                       f"{np.broadcast_to(limit, target.shape)[i]:g}")
        return fit.tau2
    n = problem.y.shape[0]
    q0 = q_statistic(problem, np.zeros(n))
    upper = upper_bracket(problem, control) if upper is None else upper
    root = np.zeros(n)
    for i in np.flatnonzero(q0 >= target):
        one = problem.rows(np.array([i]))
        root[i] = brent_q_root(lambda t: float(q_statistic(one, np.array([t]))[0]), float(target[i]),  # noqa: B023
                               float(upper[i]), control, method)
    return root


def paule_mandel(problem: Problem, control: Control) -> Tau2Fit:
    """Paule-Mandel: the tau² with Q(tau²) = k − p, or 0 if Q(0) < k − p (Paule & Mandel 1982; DerSimonian &
    Kacker 2007, eq. 6), by ``control.root_finder`` (see :func:`solve_q_equation`)."""
    target = (problem.k - problem.p).astype(float)
    if control.root_finder == "newton":
        return _q_newton(problem, target, control)
    tau2 = solve_q_equation(problem, target, control, "PM")
    n = tau2.shape[0]
    return Tau2Fit(tau2, np.zeros(n, dtype=np.int64), np.ones(n, dtype=bool))


def paule_mandel_one(y: Array, v: Array, control: Control, fixed: OneFit) -> ScalarTau2:
    """:func:`paule_mandel` for one problem: Newton's method on 1/Q from 0 through :func:`score`, or Brent's."""
    target = np.float64(len(y) - 1)
    if control.root_finder == "newton":
        return ScalarTau2(*score(lambda t: q_newton_step(OneFit(y, v, t), target), 0.0, v.min(), control,
                                 accelerate=False))
    if fixed.rss() < target:
        return ScalarTau2(0.0, fit=fixed)
    upper = metafor_tau2_max(y) if control.tau2_max is None else control.tau2_max
    return ScalarTau2(brent_q_root(lambda t: float(OneFit(y, v, t).rss()), float(target), upper, control, "PM"))


@dataclass(frozen=True)
class Estimator:
    """A registered tau² estimator: its batched form and, optionally, its scalar form for one analysis (without
    one, a single analysis runs the batched form on a batch of one)."""

    batch: BatchForm
    scalar: ScalarForm | None = None


TAU2_ESTIMATORS: dict[str, Estimator] = {
    "EE": Estimator(equal_effects, equal_effects_one),
    "FE": Estimator(equal_effects, equal_effects_one),
    "DL": Estimator(dersimonian_laird, dersimonian_laird_one),
    "HE": Estimator(hedges, hedges_one),
    "HS": Estimator(hunter_schmidt, hunter_schmidt_one),
    "SJ": Estimator(sidik_jonkman, sidik_jonkman_one),
    "ML": Estimator(maximum_likelihood, maximum_likelihood_one),
    "REML": Estimator(restricted_maximum_likelihood, restricted_maximum_likelihood_one),
    "EB": Estimator(empirical_bayes, empirical_bayes_one),
    "PM": Estimator(paule_mandel, paule_mandel_one),
}
METHODS: tuple[str, ...] = tuple(TAU2_ESTIMATORS)  # the names pool, metareg and the CLI accept


def estimate_tau2(problem: Problem, method: str, control: Control | None = None, strict: bool = True) -> Tau2Fit:
    """Estimate tau² with ``method`` for every problem of the batch.

    Problems with a single study get tau² = 0, as metafor. With ``strict`` (the default), an iterative estimator
    that fails to converge raises :class:`ConvergenceError` naming the method and the iterations tried; otherwise
    the failure is reported per problem in ``converged``.
    """
    control = control or Control()
    estimator = TAU2_ESTIMATORS[method].batch
    single = problem.k <= problem.p
    if single.all():
        return equal_effects(problem, control)
    if single.any():
        rest = estimator(problem.rows(~single), control)
        tau2 = np.zeros(problem.y.shape[0])
        tau2[~single] = rest.tau2
        iterations = np.zeros_like(tau2, dtype=np.int64)
        iterations[~single] = rest.iterations
        converged = np.ones_like(tau2, dtype=bool)
        converged[~single] = rest.converged
        fit = Tau2Fit(tau2, iterations, converged)
    else:
        fit = estimator(problem, control)
    if strict and not fit.converged.all():
        tried = int(fit.iterations[~fit.converged].max())
        raise ConvergenceError(f"{method}: tau2 did not converge after {tried} iterations")
    return fit


def estimate_tau2_one(y: Array, v: Array, method: str, control: Control, fixed: OneFit) -> tuple[float, int, OneFit]:
    """tau² of one intercept-only problem (1-D ``y``, ``v``; ``fixed`` its equal-effects fit), the iterations used
    and the weighted fit at that tau², as :func:`estimate_tau2` (strict) gives them: by the estimator's scalar form,
    or by its batched form on a batch of one where it has none."""
    if len(y) == 1:
        return 0.0, 0, fixed
    scalar = TAU2_ESTIMATORS[method].scalar
    if scalar is None:
        batch = estimate_tau2(Problem.intercept_only(y, v), method, control)
        tau2, iterations, fit = float(batch.tau2[0]), int(batch.iterations[0]), None
    else:
        tau2, iterations, converged, fit = scalar(y, v, control, fixed)
        if not converged:
            raise ConvergenceError(f"{method}: tau2 did not converge after {iterations} iterations")
    if fit is None:
        fit = fixed if tau2 == 0 else OneFit(y, v, tau2)
    return tau2, iterations, fit


__all__ = ["Control", "Estimator", "Method", "METHODS", "ScalarTau2", "Tau2Fit", "TAU2_ESTIMATORS", "estimate_tau2",
           "estimate_tau2_one"]
