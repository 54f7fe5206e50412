"""Explaining heterogeneity: meta-regression (mixed-effects models), permutation tests and subgroup analyses.

All fits go through the batched engine of :mod:`metabac.tau2` with a design matrix X = [1, mods]; a permutation
test is one batch of problems whose moderator rows are shuffled.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import special

from metabac._checks import (
    InputError,
    as_float_array,
    effects_and_variances,
    random_generator,
    require_choice,
    require_full_rank,
    require_level,
    require_whole_number,
    same_length,
    unpack_effect_sizes,
)
from metabac._result import Result, fmt, fmt_p, table, to_jsonable
from metabac.pooling import PoolResult, pool
from metabac.tau2 import (
    METHODS,
    T_TESTS,
    TESTS,
    Control,
    critical_value,
    estimate_tau2,
    knapp_hartung_factor,
    two_sided_p,
)
from metabac.wls import Problem, WeightedFit, chunk_rows, require_representable, variance_scale

Array = NDArray[np.float64]
MISSING_LABEL = "(missing)"


@dataclass(frozen=True)
class Coefficients:
    """Coefficient tests of a batch of fitted mixed-effects models (arrays of shape (batch, p) or (batch,))."""

    coef: Array
    se: Array
    statistic: Array
    pvalue: Array
    qm: Array
    qm_pvalue: Array
    tau2: Array
    crit: Array


def fit_mixed_model(problem: Problem, method: str, test: str, level: float, control: Control,
                    strict: bool = True) -> Coefficients:
    """Fit y = Xβ + u + e, u ~ N(0, tau²), e ~ N(0, v) for every problem; test all slopes (columns 2..p) jointly.

    Notes
    -----
    β̂ = (X'WX)⁻¹X'Wy with W = diag(1/(v + tau²)), Var(β̂) = (X'WX)⁻¹. Knapp-Hartung (``test="knha"``) multiplies
    Var(β̂) by Σw(y − Xβ̂)²/(k − p) and uses t(k − p) for coefficients and F(m, k − p) for QM = β̂ₛ'Var(β̂ₛ)⁻¹β̂ₛ/m
    (Knapp & Hartung 2003); otherwise z and χ²(m) tests. m = p − 1 slopes.
    """
    tau2 = estimate_tau2(problem, method, control, strict=strict).tau2
    fit = WeightedFit.at(problem, tau2)
    vb = fit.xwx_inv
    k, p = problem.k, problem.p
    df = k - p
    if test in T_TESTS:
        vb = vb * knapp_hartung_factor(fit.rss(), df, test)[:, None, None]
    se = np.sqrt(np.einsum("bii->bi", vb))
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = fit.beta / se
        slopes = fit.beta[:, 1:]
        m = p - 1
        qm = np.einsum("bi,bij,bj->b", slopes, np.linalg.inv(vb[:, 1:, 1:]), slopes) if m else np.zeros(len(k))
        t_test = test in T_TESTS
        pvalue = two_sided_p(statistic, df[:, None] if t_test else None)
        crit = np.broadcast_to(critical_value(level, df if t_test else None), (len(k),))
        if t_test:
            qm = qm / max(m, 1)
            qm_pvalue = special.fdtrc(max(m, 1), df, np.maximum(qm, 0))  # scipy.stats' f.sf
        else:
            qm_pvalue = special.chdtrc(max(m, 1), np.maximum(qm, 0))  # chi2.sf
    return Coefficients(fit.beta, se, statistic, pvalue, qm, qm_pvalue, tau2, crit)


@dataclass(frozen=True, repr=False)
class PermutationResult(Result):
    """Permutation p-values for each coefficient and the omnibus test (Higgins & Thompson 2004)."""

    names: tuple[str, ...]
    pvalue: Array
    qm_pvalue: float
    n: int
    seed: int | None

    def summary(self) -> str:
        coefficients = ", ".join(f"{name} p = {fmt_p(p)}" for name, p in zip(self.names, self.pvalue))
        return f"Permutation test ({self.n} permutations): omnibus p = {fmt_p(self.qm_pvalue)}; {coefficients}"



@dataclass(frozen=True, repr=False)
class MetaRegResult(Result):
    """A fitted meta-regression: coefficients (intercept first), tests, residual heterogeneity and R²."""

    names: tuple[str, ...]
    coef: Array
    se: Array
    statistic: Array
    pvalue: Array
    ci_low: Array
    ci_high: Array
    tau2: float
    qm: float
    qm_df: tuple[int, ...]
    qm_pvalue: float
    qe: float
    qe_df: int
    qe_pvalue: float
    i2: float
    r2: float
    k: int
    method: str
    test: str
    level: float
    yi: Array = field(repr=False)
    vi: Array = field(repr=False)
    X: Array = field(repr=False)
    control: Control = field(default_factory=Control, repr=False)

    def to_dict(self) -> dict:
        return to_jsonable({key: value for key, value in self.__dict__.items() if key not in ("yi", "vi", "X")})

    def to_frame(self) -> pd.DataFrame:
        """One row per coefficient."""
        return pd.DataFrame(
            {"estimate": self.coef, "se": self.se, "statistic": self.statistic, "pvalue": self.pvalue,
             "ci_low": self.ci_low, "ci_high": self.ci_high},
            index=pd.Index(self.names, name="coefficient"),
        )

    def permutation_test(self, n: int = 1000, seed: int | np.random.Generator | None = None) -> PermutationResult:
        """Permutation test: refit with the moderator rows shuffled ``n − 1`` times plus the observed order.

        p = share of the n fits whose |statistic| (QM for the omnibus test) is at least the observed one, as
        metafor's ``permutest(exact=FALSE)`` (Higgins & Thompson 2004); the observed data count as the first
        permutation, so p >= 1/n. The permutations are fitted as batches of problems, in chunks whose working
        arrays stay within :data:`metabac.tau2.CHUNK_BYTES` (64 MiB) whatever ``n`` and k.
        """
        if require_whole_number(n, "n") < 2:
            raise InputError(f"n: need at least 2 permutations, got {n}")
        rng = random_generator(seed)
        chunk = chunk_rows(self.k, self.X.shape[1])
        s = float(variance_scale(self.vi))  # the scale of the fit (see metareg); the statistics are scale-free
        control = self.control.scaled(s**2)
        statistic, qm = [], []
        for start in range(0, n, chunk):
            rows = min(chunk, n - start)
            observed = [np.arange(self.k)] if start == 0 else []
            order = np.vstack(observed + [rng.permutation(self.k) for _ in range(rows - len(observed))])
            problem = Problem(np.broadcast_to(self.yi / s, (rows, self.k)),
                              np.broadcast_to(self.vi / s**2, (rows, self.k)), self.X[order],
                              np.ones((rows, self.k), dtype=bool), intercept=False, complete=True)
            fits = fit_mixed_model(problem, self.method, self.test, self.level, control, strict=False)
            statistic.append(fits.statistic)
            qm.append(fits.qm)
        tol = np.sqrt(np.finfo(float).eps)
        pvalue = np.mean(np.abs(np.concatenate(statistic)) >= np.abs(self.statistic) - tol, axis=0)
        qm_pvalue = float(np.mean(np.concatenate(qm) >= self.qm - tol))
        return PermutationResult(self.names, pvalue, qm_pvalue, n, seed if isinstance(seed, int) else None)

    def summary(self, digits: int = 4) -> str:
        d = digits
        test = "F" if self.test in T_TESTS else "QM"
        lines = [
            f"Mixed-Effects Model (k = {self.k}; tau^2 estimator: {self.method})",
            "",
            f"tau^2 (estimated amount of residual heterogeneity):     {fmt(self.tau2, d)}",
            f"I^2 (residual heterogeneity / unaccounted variability): {self.i2:.2f}%",
            f"R^2 (amount of heterogeneity accounted for):            {self.r2:.2f}%",
            "",
            f"Test for Residual Heterogeneity: QE(df = {self.qe_df}) = {fmt(self.qe, d)}, p-val = "
            f"{fmt_p(self.qe_pvalue, d)}",
            f"Test of Moderators: {test}(df = {', '.join(map(str, self.qm_df))}) = {fmt(self.qm, d)}, p-val = "
            f"{fmt_p(self.qm_pvalue, d)}",
            "",
        ]
        rows = [[name, fmt(c, d), fmt(s, d), fmt(z, d), fmt_p(p, d), fmt(lo, d), fmt(hi, d)]
                for name, c, s, z, p, lo, hi in zip(self.names, self.coef, self.se, self.statistic, self.pvalue,
                                                     self.ci_low, self.ci_high)]
        stat = "t" if self.test in T_TESTS else "z"
        lines.append(table(["", "estimate", "se", stat, "p", "ci_low", "ci_high"], rows))
        lines.append(f"({self.level:g}% confidence intervals)")
        return "\n".join(lines)

    def brief(self) -> str:
        """k, the coefficients and the test of moderators."""
        coefficients = ", ".join(f"{name} {fmt(c)}" for name, c in zip(self.names, self.coef))
        return (f"{self.method}, k = {self.k}: {coefficients}; QM p = {fmt_p(self.qm_pvalue)}, "
                f"tau^2 = {fmt(self.tau2)}")


def _design(mods: ArrayLike | pd.DataFrame | pd.Series, k: int) -> tuple[Array, tuple[str, ...]]:
    """The design matrix [1, mods] and its coefficient names."""
    try:
        if isinstance(mods, pd.DataFrame):
            names = tuple(str(c) for c in mods.columns)
            values = mods.to_numpy(dtype=float)
        elif isinstance(mods, pd.Series):
            names = (str(mods.name) if mods.name is not None else "mod1",)
            values = mods.to_numpy(dtype=float)[:, None]
        else:
            values = np.asarray(mods, dtype=float)
            values = values[:, None] if values.ndim == 1 else values
            names = tuple(f"mod{j + 1}" for j in range(values.shape[1])) if values.ndim == 2 else ()
    except (TypeError, ValueError, OverflowError) as error:
        raise InputError(f"mods: must be numbers, one row per study ({error})") from None
    if values.ndim != 2 or values.shape[0] != k:
        raise InputError(f"mods: expected {k} rows (one per study), got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        i = int(np.flatnonzero(~np.isfinite(values).all(axis=1))[0])
        raise InputError(f"study {i + 1}: mods: must be finite")
    return np.column_stack([np.ones(k), values]), ("intercept", *names)


def metareg(
    yi: ArrayLike | pd.DataFrame,
    vi: ArrayLike | None = None,
    mods: ArrayLike | pd.DataFrame | None = None,
    method: str = "REML",
    test: str = "z",
    level: float = 95,
    control: Control | None = None,
) -> MetaRegResult:
    """Meta-regression: a mixed-effects model of ``yi`` on ``mods`` (an intercept is added).

    Parameters
    ----------
    yi, vi : array-like, shape (k,)
        Or the DataFrame of :func:`metabac.effect_sizes` alone, as ``metareg(es, mods=...)``.
    mods : array-like (k,) or (k, p), or a DataFrame whose column names label the coefficients
    method : tau² estimator, as :func:`metabac.pool`
    test : {"z", "knha"}
        Knapp-Hartung adjustment with t and F tests when "knha".

    Returns
    -------
    MetaRegResult
        ``qe`` is the test for residual heterogeneity (Σ(y − Xβ̂_EE)²/v on k − p df); ``r2`` is the percent of
        tau² explained, max(0, 100(tau²₀ − tau²)/tau²₀) with tau²₀ from the intercept-only model (Raudenbush 1994;
        metafor), 0 when tau²₀ = 0; ``i2`` the residual I² = 100 tau²/(vt + tau²), vt = (k − p)/tr(P) with
        w = 1/v.

    Examples
    --------
    >>> fit = metareg([0.1, 0.3, 0.35, 0.65, 0.5], [0.01, 0.02, 0.015, 0.03, 0.02], mods=[1, 2, 3, 4, 5])
    >>> [round(float(c), 3) for c in fit.coef]
    [0.015, 0.115]
    """
    method = require_choice(method, METHODS, "method")
    test = require_choice(test, TESTS, "test")
    level = require_level(level)
    control = control or Control()
    yi, vi, _, _ = unpack_effect_sizes(yi, vi)
    y, v = effects_and_variances(yi, vi)
    k = len(y)
    X, names = _design(mods, k)
    if k <= X.shape[1]:
        raise InputError(f"mods: {X.shape[1]} coefficients need more than {k} studies")
    require_full_rank(X, 1 / v, "mods")
    # Fitted as y/s, v/s² (s a power of two, 1 unless the variances lie beyond 2^±100; see
    # metabac.tau2.variance_scale): coefficients scale back with s, tau² with s², the tests are unchanged.
    s = float(variance_scale(v))
    problem = Problem(y[None] / s, v[None] / s**2, X[None], np.ones((1, k), dtype=bool))
    control_s = control.scaled(s**2)
    fixed = problem.fixed_fit
    qe, qe_df = float(fixed.rss()[0]), k - X.shape[1]
    require_representable(qe, v.min() / s**2, v.max() / s**2)
    fit = fit_mixed_model(problem, method, test, level, control_s)
    tau2 = float(fit.tau2[0]) * s**2
    vt = qe_df / float(fixed.trace_p()[0]) * s**2
    if method in ("EE", "FE"):
        r2 = float("nan")
    else:
        tau2_0 = float(estimate_tau2(Problem.intercept_only(y / s, v / s**2), method, control_s).tau2[0]) * s**2
        r2 = 0.0 if tau2_0 == 0 else max(0.0, 100 * (tau2_0 - tau2) / tau2_0)
    m = X.shape[1] - 1
    crit = float(fit.crit[0])
    coef, se = fit.coef[0] * s, fit.se[0] * s
    if not (np.isfinite(tau2) and np.all(np.isfinite(coef))):
        raise InputError("yi/vi: the meta-regression overflows double precision; express the effects in other units")
    return MetaRegResult(
        names=names, coef=coef, se=se, statistic=fit.statistic[0], pvalue=fit.pvalue[0], ci_low=coef - crit * se,
        ci_high=coef + crit * se, tau2=tau2, qm=float(fit.qm[0]), qm_df=(m, qe_df) if test in T_TESTS else (m,),
        qm_pvalue=float(fit.qm_pvalue[0]), qe=qe, qe_df=qe_df,
        qe_pvalue=float(special.chdtrc(qe_df, qe) if qe_df > 0 else np.nan),  # chi2.sf: NaN without residual df
        i2=100 * tau2 / (vt + tau2), r2=r2, k=k, method=method, test=test, level=level, yi=y, vi=v, X=X,
        control=control,
    )


@dataclass(frozen=True, repr=False)
class SubgroupResult(Result):
    """Subgroup analysis: each group pooled on its own, the test for subgroup differences and the common-tau² test.

    ``table`` is indexed by group label (str, sorted) with columns k, estimate, se, ci_low, ci_high, pvalue, tau2,
    i2 and single_study. ``q_between`` pools the subgroup estimates with a fixed-effect model (Q on groups − 1
    df; Borenstein et al. 2009, ch. 19; RevMan's test for subgroup differences). ``qm`` is the omnibus test of the
    mixed-effects model with a common tau² (metafor's ``rma(yi, vi, mods = ~ factor(g))``), NaN with
    ``qm_reason`` when that model cannot be fitted. ``groups`` holds each study's group label (``(missing)``
    for a study without one), in input order.
    """

    table: pd.DataFrame
    q_between: float
    q_between_df: int
    q_between_pvalue: float
    qm: float
    qm_pvalue: float
    qm_reason: str | None
    overall: PoolResult
    fits: dict[str, PoolResult]
    missing: tuple[int, ...]
    method: str
    test: str
    groups: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        data = {key: value for key, value in self.__dict__.items() if key not in ("table", "fits", "groups")}
        data["table"] = self.table.reset_index().to_dict(orient="records")
        return to_jsonable(data)

    def summary(self, digits: int = 4) -> str:
        d = digits
        rows = [[str(label), str(int(row.k)), fmt(row.estimate, d), fmt(row.se, d), fmt(row.ci_low, d),
                 fmt(row.ci_high, d), fmt(row.tau2, d), f"{row.i2:.1f}%" + (" (1 study)" if row.single_study else "")]
                for label, row in self.table.iterrows()]
        lines = [
            f"Subgroup analysis ({self.method}, separate tau^2 per subgroup; {self.overall.level:g}% confidence "
            "intervals)",
            table(["group", "k", "estimate", "se", "ci_low", "ci_high", "tau2", "I2"], rows),
            "",
            f"Test for subgroup differences (fixed-effect Q between subgroups): Q(df = {self.q_between_df}) = "
            f"{fmt(self.q_between, d)}, p-val = {fmt_p(self.q_between_pvalue, d)}",
            "Test of moderators (mixed-effects model, common tau^2): "
            + (f"QM = {fmt(self.qm, d)}, p-val = {fmt_p(self.qm_pvalue, d)}" if self.qm_reason is None
               else f"not estimable ({self.qm_reason})"),
        ]
        if self.missing:
            lines.append(f"Studies without a group label, left out of the subgroups: {len(self.missing)}")
        return "\n".join(lines)

    def brief(self) -> str:
        """Each subgroup's estimate and the test for subgroup differences."""
        groups = ", ".join(f"{name} {fmt(row.estimate)} (k = {int(row.k)})" for name, row in self.table.iterrows())
        return f"{self.method}: {groups}; test for subgroup differences p = {fmt_p(self.q_between_pvalue)}"


def _labels(groups: ArrayLike | None, k: int) -> np.ndarray:
    if groups is None or np.ndim(np.asarray(groups, dtype=object)) != 1:
        raise InputError(f"groups: expected one label per study, got {groups!r:.60}")
    values = np.asarray(groups, dtype=object).tolist()
    if len(values) != k:
        raise InputError(f"groups: {len(values)} labels for {k} studies")
    missing = [pd.api.types.is_scalar(v) and (pd.isna(v) or str(v).strip() == "") for v in values]
    return np.array([MISSING_LABEL if miss else str(v) for v, miss in zip(values, missing)], dtype=object)


def subgroups(
    yi: ArrayLike | pd.DataFrame, vi: ArrayLike | None = None, groups: ArrayLike | None = None, method: str = "REML",
    test: str = "z", level: float = 95, control: Control | None = None, *, labels: ArrayLike | None = None,
) -> SubgroupResult:
    """Pool each subgroup separately (its own tau², as RevMan and R's meta) and test for subgroup differences.

    Studies with a missing label (None, NaN, ``pd.NA``, ``pd.NaT`` or empty) are reported in ``missing`` and left
    out of the subgroup fits and tests, never silently: the overall fit uses every study. A subgroup of one study
    shows that study's own Wald interval (``single_study`` in the table), as metafor does for k = 1 under
    ``test="knha"``. ``yi`` may be the DataFrame of :func:`metabac.effect_sizes` alone (``subgroups(es,
    groups=...)``); ``labels`` name the studies of the overall fit.
    """
    yi, vi, study_labels, measure = unpack_effect_sizes(yi, vi, labels)
    method = require_choice(method, METHODS, "method")
    level = require_level(level)
    y, v = as_float_array(yi, "yi"), as_float_array(vi, "vi")
    k = same_length({"yi": y, "vi": v}, "yi/vi")
    labels = _labels(groups, k)
    overall = pool(y, v, method=method, test=test, level=level, control=control, labels=study_labels,
                   measure=measure)
    present = labels != MISSING_LABEL
    names = sorted(set(labels[present]))
    if not names:
        raise InputError("groups: every label is missing")
    fits = {name: pool(y[labels == name], v[labels == name], method=method, level=level, control=control,
                       test=test if np.count_nonzero(labels == name) > 1 else "z") for name in names}
    frame = pd.DataFrame(
        [{"k": f.k, "estimate": f.estimate, "se": f.se, "ci_low": f.ci_low, "ci_high": f.ci_high,
          "pvalue": f.pvalue, "tau2": f.tau2, "i2": f.i2, "single_study": f.k == 1} for f in fits.values()],
        index=pd.Index(names, name="group"),
    )
    df = len(names) - 1
    if df > 0:
        between = pool(frame["estimate"].to_numpy(), frame["se"].to_numpy() ** 2, method="EE")
        q_between, q_between_p = float(between.q), float(between.q_pvalue)
    else:
        q_between, q_between_p = float("nan"), float("nan")
    qm, qm_p, reason = _common_tau2_test(y[present], v[present], labels[present], names, method, test, level, control)
    return SubgroupResult(
        table=frame, q_between=q_between, q_between_df=df, q_between_pvalue=q_between_p, qm=qm, qm_pvalue=qm_p,
        qm_reason=reason, overall=overall, fits=fits, missing=tuple(np.flatnonzero(~present).tolist()),
        method=method, test=test, groups=tuple(labels),
    )


def _common_tau2_test(y, v, labels, names, method, test, level, control) -> tuple[float, float, str | None]:
    """QM of rma(yi, vi, mods = ~ factor(g)): NaN and a reason when the model cannot be fitted."""
    if len(names) < 2:
        return float("nan"), float("nan"), "only one subgroup"
    dummies = np.column_stack([(labels == name).astype(float) for name in names[1:]])
    if len(y) <= dummies.shape[1] + 1:
        return float("nan"), float("nan"), "as many coefficients as studies (one study per subgroup)"
    fit = metareg(y, v, dummies, method=method, test=test, level=level, control=control)
    return fit.qm, fit.qm_pvalue, None
