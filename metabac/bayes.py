"""Bayesian random-effects meta-analysis, computed exactly by one-dimensional quadrature (no sampling).

:func:`bayes` fits the normal-normal hierarchical model y_i ~ N(theta_i, v_i), theta_i ~ N(mu, tau²) with a proper
prior for tau (:func:`metabac.bayes_priors.tau_prior`) and a flat or normal prior for mu, and reports the marginal
posteriors of mu and tau, the predictive distribution of a new trial's effect, the shrinkage estimates of each
trial's theta_i, posterior probabilities, the marginal likelihood and Bayes factors. The numbers come from
:mod:`metabac.bayes_posterior`; they agree with a brute-force two-dimensional integration over (mu, tau) to 10^-7
(``tests/test_bayes.py``), as R's bayesmeta does for tau. bayesmeta approximates the posterior of mu and the
predictive distribution by a finite normal mixture (its ``delta``/``epsilon`` accuracy settings); its numbers for
them differ from the exact ones in the third or fourth decimal (see the tests).

With few trials the data say little about tau, and a frequentist interval for mu either ignores that (DL, Wald)
or pays for it with a t distribution on k − 1 degrees of freedom (HKSJ), which is very wide for k = 2 or 3. A
Bayesian analysis averages over tau under an explicit prior: a weakly informative half-normal(0.5) for log odds or
risk ratios (Friede et al. 2017), or an empirical prior (Turner et al. 2015; Rhodes et al. 2015).

References
----------
Röver C (2020). Bayesian random-effects meta-analysis using the bayesmeta R package. J Stat Softw 93(6):1-51.
Friede T, Röver C, Wandel S, Neuenschwander B (2017). Meta-analysis of few small studies in orphan diseases.
Research Synthesis Methods 8(1):79-91.
Kass RE, Raftery AE (1995). Bayes factors. J Am Stat Assoc 90(430):773-795.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, Literal, NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from metabac._checks import InputError, label_list, require_choice, require_level, study_inputs
from metabac._result import fmt, table, to_jsonable
from metabac.bayes_mixture import NormalMixture
from metabac.bayes_posterior import Model, TauPosterior
from metabac.bayes_priors import TauPrior, tau_prior
from metabac.effects import RATIO_MEASURES, SCALE_NAMES
from metabac.formatting import natural_scale, number
from metabac.pooling import _ndim, _prepare_batch

Array = NDArray[np.float64]
PARAMETERS = ("mu", "tau", "prediction", "theta")
_MIXTURE_INDEX = {"mu": 0, "prediction": 1}


class Summary(NamedTuple):
    """A marginal posterior: mean, standard deviation, median, mode, the equal-tailed interval (low, high: the
    (1 − level)/2 and (1 + level)/2 quantiles) and the shortest interval holding ``level``. The mean is NaN (inf
    for tau) and the SD inf where the posterior has no such moment (a heavy-tailed prior with very few trials)."""

    mean: float | Array
    sd: float | Array
    median: float | Array
    mode: float | Array
    low: float | Array
    high: float | Array
    shortest_low: float | Array
    shortest_high: float | Array


class StudySummary(NamedTuple):
    """Shrinkage estimates of each trial's effect theta_i: mean, SD, median, equal-tailed interval (arrays over
    the trials; NaN for studies a batch mask leaves out). ``BayesResult.interval("theta", study=...)`` gives the
    shortest interval."""

    mean: Array
    sd: Array
    median: Array
    low: Array
    high: Array


@dataclass(frozen=True)
class _Posterior:
    """The computed posterior of every problem, kept for ``cdf``/``quantile``/``interval`` after the fit."""

    tau: TauPosterior
    pair: NormalMixture  # parameters: mu, prediction
    studies: NormalMixture  # parameters: theta_1..K

    def mixture(self, j: int) -> NormalMixture:
        """Parameter j of mu, prediction, theta_1..K alone."""
        return self.pair.select([j]) if j < 2 else self.studies.select([j - 2])


@dataclass(frozen=True)
class BayesResult:
    """A Bayesian random-effects meta-analysis, or a batch of them (numbers then have shape (batch,), the study
    arrays (batch, k)).

    Attributes
    ----------
    mu, tau, prediction : Summary
        Marginal posteriors of the mean effect, the between-trial SD and a new trial's effect theta_new.
    theta : StudySummary
        Shrinkage estimates: the posterior of each trial's own effect theta_i.
    log_marginal_likelihood
        log p(y) = log ∫∫ p(y | mu, tau) p(mu) p(tau); with the flat mu prior p(mu) = 1, so it depends on the unit
        of the effects and only its differences between tau priors mean anything.
    bf_tau0, bf_mu0
        Bayes factors p(y | tau = 0)/p(y) and p(y | mu = 0)/p(y) (Kass & Raftery 1995; above 1 favours the point
        hypothesis). bf_tau0 is defined with the flat mu prior too (the improper constant cancels); bf_mu0 is not,
        and is NaN then: with p(mu) ∝ 1 the ratio depends on an arbitrary constant. With a normal mu prior it is
        the Savage-Dickey ratio p(mu = 0 | y)/p(mu = 0).
    """

    mu: Summary
    tau: Summary
    prediction: Summary
    theta: StudySummary
    log_marginal_likelihood: float | Array
    bf_tau0: float | Array
    bf_mu0: float | Array
    k: int | Array
    level: float
    tau_prior: TauPrior
    mu_prior: tuple[float, float] | None
    measure: str | None = None
    labels: tuple[str, ...] | None = None
    yi: Array = field(default_factory=lambda: np.empty(0), repr=False)
    vi: Array = field(default_factory=lambda: np.empty(0), repr=False)
    posterior: _Posterior | None = field(default=None, repr=False, compare=False)

    @property
    def batched(self) -> bool:
        return np.ndim(self.k) != 0

    # --- posterior probabilities, CDF, quantiles and intervals of any parameter ----------------------------------

    def _index(self, parameter: str, study: int | str | None) -> tuple[str, int]:
        name = require_choice(parameter, PARAMETERS, "parameter")
        if name != "theta":
            if study is not None:
                raise InputError(f"study: only for parameter 'theta', not {name!r}")
            return name, _MIXTURE_INDEX.get(name, -1)
        if study is None:
            raise InputError("study: parameter 'theta' needs study= (an index from 0 or a label)")
        if isinstance(study, str):
            if not self.labels or study not in self.labels:
                raise InputError(f"study: no study labelled {study!r}")
            return name, 2 + self.labels.index(study)
        width = np.shape(self.yi)[-1]
        if not (isinstance(study, (int, np.integer)) and 0 <= study < width):
            raise InputError(f"study: must be an index from 0 to {width - 1} or a label, got {study!r}")
        return name, 2 + int(study)

    def _evaluate(self, parameter: str, study: int | str | None, values: ArrayLike, what: str) -> float | Array:
        name, j = self._index(parameter, study)
        assert self.posterior is not None
        x = np.asarray(values, dtype=float)
        batch = self.posterior.tau.tau.shape[0]
        flat = np.broadcast_to(x.reshape(-1), (batch, x.size)).copy()
        if name == "tau":
            out = getattr(self.posterior.tau, what)(flat)
        else:
            out = getattr(self.posterior.mixture(j), what)(flat[:, None, :])[:, 0]
        out = out.reshape((batch, *x.shape))
        return out if self.batched else (float(out[0]) if x.ndim == 0 else out[0])

    def cdf(self, parameter: str, x: ArrayLike, study: int | str | None = None) -> float | Array:
        """Posterior P(parameter <= x); ``parameter`` is "mu", "tau", "prediction" or "theta" (with ``study``)."""
        return self._evaluate(parameter, study, x, "cdf")

    def prob(self, parameter: str, lower: float = -math.inf, upper: float = math.inf,
             study: int | str | None = None) -> float | Array:
        """Posterior probability that lower < parameter <= upper, e.g. ``prob("mu", lower=0)`` = P(mu > 0)."""
        if not lower < upper:
            raise InputError(f"lower/upper: need lower < upper, got {lower!r}, {upper!r}")
        below = 0.0 if lower == -math.inf else self.cdf(parameter, lower, study)
        return (1.0 if upper == math.inf else self.cdf(parameter, upper, study)) - below

    def quantile(self, parameter: str, p: ArrayLike, study: int | str | None = None) -> float | Array:
        """Posterior quantiles of a parameter (``p`` in (0, 1))."""
        q = np.asarray(p, dtype=float)
        if not np.all((q > 0) & (q < 1)):
            raise InputError(f"p: probabilities must lie in (0, 1), got {p!r}")
        return self._evaluate(parameter, study, q, "quantile")

    def interval(self, parameter: str, level: float | None = None, kind: Literal["shortest", "central"] = "shortest",
                 study: int | str | None = None) -> tuple[float | Array, float | Array]:
        """A credible interval at ``level`` percent (default: the fit's): the shortest one, or the central
        (equal-tailed) one."""
        fraction = require_level(self.level if level is None else level) / 100
        kind = require_choice(kind, ("shortest", "central"), "kind")
        name, j = self._index(parameter, study)
        assert self.posterior is not None
        dist = self.posterior.tau if name == "tau" else self.posterior.mixture(j)
        low, high = _intervals(dist, fraction, shortest=kind == "shortest")
        low, high = (low, high) if name == "tau" else (low[:, 0], high[:, 0])
        return (low, high) if self.batched else (float(low[0]), float(high[0]))

    # --- presentation ----------------------------------------------------------------------------------------------

    def to_dict(self) -> dict:
        """JSON-ready dict of the numbers and settings (not the quadrature nodes)."""
        return to_jsonable({f.name: getattr(self, f.name) for f in fields(self) if f.name != "posterior"})

    def to_frame(self) -> pd.DataFrame:
        """One row per parameter (tau, mu, prediction, then each trial's theta_i), columns as :class:`Summary`; for
        a batch, rows (problem, parameter) for tau, mu and prediction."""
        rows = {name: getattr(self, name)._asdict() for name in ("tau", "mu", "prediction")}
        if self.batched:
            frames = {name: pd.DataFrame(values) for name, values in rows.items()}
            frame = pd.concat(frames, names=["parameter", "problem"]).swaplevel()
            return frame.sort_index(level=0, sort_remaining=False)
        frame = pd.DataFrame.from_dict(rows, orient="index")
        labels = self.labels or tuple(f"study {i + 1}" for i in range(len(self.yi)))
        studies = pd.DataFrame(self.theta._asdict(), index=[f"theta: {label}" for label in labels])
        frame = pd.concat([frame, studies])
        frame.index.name = "parameter"
        return frame

    def summary(self, digits: int = 4) -> str:
        """Priors, the marginal posterior summary, shrinkage estimates, Bayes factors, P(mu > 0), and for ratio
        measures a back-transformed line."""
        return format_summary(self, digits)

    def __str__(self) -> str:
        return self.summary()


def _intervals(dist: TauPosterior | NormalMixture, level: float, shortest: bool) -> tuple[Array, Array]:
    """Equal-tailed or shortest intervals: (B,) for tau, (B, J) for a mixture."""
    tails = np.array([(1 - level) / 2, (1 + level) / 2, 0.995])
    if isinstance(dist, TauPosterior):
        q = dist.quantile(np.tile(tails, (dist.tau.shape[0], 1)))
        peak = dist.mode(q[:, 2]) if shortest else q[:, 0]
    else:
        q = dist.quantile(np.broadcast_to(tails[:2], (*dist.shape, 2)).copy())
        peak = dist.mode() if shortest else q[..., 0]
    if not shortest:
        return q[..., 0], q[..., 1]
    return dist.shortest_interval(level, (q[..., 0], q[..., 1]), peak)


def _mu_prior(mu_prior: tuple[float, float] | None) -> tuple[float, float] | None:
    if mu_prior is None:
        return None
    try:
        mean, sd = (float(x) for x in mu_prior)
    except (TypeError, ValueError):
        raise InputError(f"mu_prior: expected None (flat) or (mean, sd), got {mu_prior!r}") from None
    if not math.isfinite(mean):
        raise InputError(f"mu_prior: mean must be finite, got {mean!r}")
    if not (math.isfinite(sd) and sd > 0):
        raise InputError(f"mu_prior: sd must be a positive finite number, got {sd!r}")
    return mean, sd


def bayes(
    yi: ArrayLike,
    vi: ArrayLike,
    tau_prior: str | TauPrior = "halfnormal",
    tau_scale: float = 0.5,
    mu_prior: tuple[float, float] | None = None,
    level: float = 95,
    labels: ArrayLike | None = None,
    *,
    df: float | None = None,
    measure: str | None = None,
    mask: ArrayLike | None = None,
) -> BayesResult:
    """Bayesian random-effects meta-analysis, by exact one-dimensional quadrature over tau.

    Parameters
    ----------
    yi, vi : array-like
        Effect sizes and sampling variances: shape (k,), or (batch, k) for many analyses (with ``mask``, as
        :func:`metabac.pool`).
    tau_prior : str or TauPrior
        "halfnormal", "halfcauchy", "halfstudentt" (with ``df``) or "uniform" (on [0, ``tau_scale``]) with scale
        ``tau_scale``; "turner" or "rhodes" for the general empirical priors of Turner et al. (2015; log odds
        ratios) and Rhodes et al. (2015; standardised mean differences); or a :class:`TauPrior` from
        :func:`metabac.tau_prior` (log-normal on tau², and the outcome- and comparison-specific empirical priors).
    tau_scale : float
        Scale of the half-normal, half-Cauchy and half-t priors, upper end of the uniform one.
    mu_prior : (mean, sd), optional
        Normal prior for mu; by default flat (p(mu) ∝ 1).
    level : float
        Credible level in percent.
    labels : array-like, optional
        Study labels (for a single analysis).
    df : float, optional
        Degrees of freedom of the half-Student-t prior.
    measure : str, optional
        Effect measure of ``yi`` (e.g. "RR"), for printing and back-transformation.
    mask : array-like of bool, optional
        For batched input: which studies each problem includes.

    Returns
    -------
    BayesResult

    Notes
    -----
    With k = 1 and the flat mu prior the likelihood of tau is constant, so the posterior of tau is its prior and
    that of mu the mixture of N(y_1, v_1 + tau²) over the prior: proper, but the data say nothing about tau. With
    the normal mu prior, k = 1 carries a little information on tau through |y_1 − m0|.

    Examples
    --------
    The pediatric liver transplant example of Röver (2020, Section 3.3): the posterior median of tau is 0.3445
    (bayesmeta prints 0.3445023), the 95% shortest interval [0, 0.8607] (0.8607193).

    >>> fit = bayes([-2.3097026, -0.4595323, -2.3025851, -1.7578579, -1.2584610, -2.4178959],
    ...             [0.3593718, 0.3095760, 0.7750000, 0.2078161, 0.4121591, 2.3372623], "halfnormal", 0.5, (0, 4))
    >>> round(fit.tau.median, 4), round(fit.tau.shortest_high, 4), round(fit.mu.median, 3)
    (0.3445, 0.8607, -1.573)
    """
    prior = tau_prior if isinstance(tau_prior, TauPrior) else _named_prior(tau_prior, tau_scale, df)
    level = require_level(level)
    normal = _mu_prior(mu_prior)
    names = label_list(labels)
    if _ndim(yi) > 1 or _ndim(vi) > 1:
        if names is not None:
            raise InputError("labels: not available for batched input")
        problem = _prepare_batch(yi, vi, mask, None)
        y, v, keep = problem.y, problem.v, problem.mask
    else:
        if mask is not None:
            raise InputError("mask: only for batched (2-D) input")
        y1, v1, study_labels = study_inputs(yi, vi, names)
        names = study_labels if names is not None else None
        y, v, keep = y1[None], v1[None], np.ones((1, len(y1)), dtype=bool)
    fit = _fit(Model(y, v, keep, prior, *(normal or (None, None))), level / 100)
    single = y.shape[0] == 1 and not (_ndim(yi) > 1 or _ndim(vi) > 1)
    numbers: dict[str, Any] = {key: _squeeze(value, single) for key, value in fit.items() if key != "posterior"}
    return BayesResult(**numbers, level=level, tau_prior=prior, mu_prior=normal, measure=measure,
                       labels=tuple(names) if names else None, yi=y[0].copy() if single else y,
                       vi=v[0].copy() if single else v, posterior=fit["posterior"])


def _named_prior(name: str, scale: float, df: float | None) -> TauPrior:
    key = require_choice(name, ("halfnormal", "halfcauchy", "halfstudentt", "uniform", "turner", "rhodes",
                                "lognormal_tau2"), "tau_prior")
    if key == "lognormal_tau2":
        raise InputError("tau_prior: 'lognormal_tau2' needs its parameters: pass "
                         "tau_prior=mb.tau_prior('lognormal_tau2', mean=..., sd=...)")
    return tau_prior(key, scale, df=df)


def _squeeze(value: object, single: bool) -> object:
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        summary: Any = type(value)
        return summary(*(_squeeze(item, single) for item in value))
    if not single:
        return value
    array = np.asarray(value)
    if array.ndim == 1:
        return array.item() if array.dtype.kind == "f" else int(array[0])
    return array[0].copy()


def _fit(model: Model, level: float) -> dict:
    """Every number of :class:`BayesResult` for a batch, as arrays."""
    post = TauPosterior(model)
    # nodes of negligible weight in every problem (the far tails of the quadrature) leave the mixtures
    used = (post.weight > 1e-17).any(axis=0)
    tau, mu_hat, var_hat, weight = post.tau[:, used], post.mu_hat[:, used], post.var_hat[:, used], post.weight[:, used]
    theta_mean, theta_var = model.theta(tau, mu_hat, var_hat)
    weight = weight / weight.sum(axis=1, keepdims=True)
    pair = NormalMixture(weight, np.stack([mu_hat, mu_hat], axis=1),
                         np.sqrt(np.stack([var_hat, var_hat + tau**2], axis=1)))
    studies = NormalMixture(weight, np.ascontiguousarray(theta_mean.transpose(0, 2, 1)),
                            np.sqrt(theta_var.transpose(0, 2, 1)))
    batch, width = len(weight), studies.shape[1]
    tails = np.array([0.5, (1 - level) / 2, (1 + level) / 2, 0.995])
    q_tau = post.quantile(np.tile(tails, (batch, 1)))
    q_pair = pair.quantile(np.tile(tails[:3], (batch, 2, 1)))
    q_theta = studies.quantile(np.tile(tails[:3], (batch, width, 1)))
    mode_tau, mode_pair = post.mode(q_tau[:, 3]), pair.mode()
    short_tau = post.shortest_interval(level, (q_tau[:, 1], q_tau[:, 2]), mode_tau)
    short_pair = pair.shortest_interval(level, (q_pair[..., 1], q_pair[..., 2]), mode_pair)

    decay = model.decay
    finite = [np.array([model.prior.moment_is_finite(r, d) for d in decay]) for r in (1, 2)]
    tau_mean, tau_sq = post.moment(1), post.moment(2)
    mix_mean, mix_var = (np.concatenate(both, axis=1) for both in zip(pair.moments(), studies.moments()))
    heavy = np.zeros(mix_mean.shape, dtype=bool)
    heavy[:, :2] = True
    mix_mean = np.where(heavy & ~finite[0][:, None], np.nan, mix_mean)
    mix_sd = np.where(heavy & ~finite[1][:, None], np.inf, np.sqrt(mix_var))
    with np.errstate(invalid="ignore"):
        tau_sd = np.where(np.isfinite(tau_sq), np.sqrt(np.maximum(tau_sq - tau_mean**2, 0)), np.inf)

    def summary(j: int) -> Summary:
        return Summary(mix_mean[:, j], mix_sd[:, j], q_pair[:, j, 0], mode_pair[:, j], q_pair[:, j, 1],
                       q_pair[:, j, 2], short_pair[0][:, j], short_pair[1][:, j])

    absent = ~model.mask
    theta = StudySummary(*(np.where(absent, np.nan, a) for a in (
        mix_mean[:, 2:], mix_sd[:, 2:], q_theta[..., 0], q_theta[..., 1], q_theta[..., 2])))
    log_l0 = post.log_lik[:, 0]
    bf_mu0 = np.full(batch, np.nan)
    if model.mu_mean is not None and model.mu_sd is not None:
        density0 = pair.pdf(np.zeros((batch, 2, 1)))[:, 0, 0]
        prior0 = np.exp(-0.5 * (model.mu_mean / model.mu_sd) ** 2) / (model.mu_sd * math.sqrt(2 * math.pi))
        bf_mu0 = density0 / prior0
    return dict(
        mu=summary(0), prediction=summary(1),
        tau=Summary(tau_mean, tau_sd, q_tau[:, 0], mode_tau, q_tau[:, 1], q_tau[:, 2], *short_tau),
        theta=theta, log_marginal_likelihood=post.log_z, bf_tau0=np.exp(log_l0 - post.log_z), bf_mu0=bf_mu0,
        k=model.k, posterior=_Posterior(post, pair, studies),
    )


def format_summary(result: BayesResult, digits: int = 4) -> str:
    """Text summary of a single BayesResult."""
    if result.batched:
        return f"Batch of {np.size(result.k)} Bayesian meta-analyses; use to_frame()"
    d = digits
    mu_prior = "flat" if result.mu_prior is None else f"normal(mean={result.mu_prior[0]:g}, sd={result.mu_prior[1]:g})"
    pct = f"{result.level:g}%"
    lines = [f"Bayesian random-effects meta-analysis (k = {result.k}; exact quadrature over tau)",
             f"tau prior: {result.tau_prior.label}", f"mu prior:  {mu_prior}", ""]
    scale = SCALE_NAMES.get(result.measure or "", "")
    lines.append(f"Marginal posterior summary{f' ({scale})' if scale else ''}:")
    header = ["", "mean", "sd", "median", "mode", f"{pct} low", f"{pct} high", "shortest low", "shortest high"]
    rows = [[name, *(fmt(value, d) for value in getattr(result, name))] for name in ("tau", "mu", "prediction")]
    lines += [table(header, rows), f"(low/high: equal-tailed interval; shortest: the narrowest {pct} interval; "
              "prediction: a new trial's true effect)", "", "Shrinkage estimates (theta_i):"]
    labels = result.labels or tuple(f"study {i + 1}" for i in range(len(result.yi)))
    study_rows = [[label, fmt(y, d), fmt(math.sqrt(v), d), *(fmt(col[i], d) for col in result.theta)]
                  for i, (label, y, v) in enumerate(zip(labels, result.yi, result.vi))]
    lines += [table(["study", "y", "se", "mean", "sd", "median", f"{pct} low", f"{pct} high"], study_rows), ""]
    bf_mu0 = ("not defined with a flat mu prior" if result.mu_prior is None else fmt(result.bf_mu0, d))
    lines += [f"P(mu > 0) = {fmt(result.prob('mu', lower=0), d)}; P(mu < 0) = {fmt(result.cdf('mu', 0), d)}",
              f"log marginal likelihood: {fmt(result.log_marginal_likelihood, d)}"
              f"{' (flat mu prior: p(mu) = 1)' if result.mu_prior is None else ''}",
              f"Bayes factor tau = 0: {fmt(result.bf_tau0, d)}; Bayes factor mu = 0: {bf_mu0}"]
    if result.measure in RATIO_MEASURES:
        median, low, high, pred_low, pred_high = (number(natural_scale(result.measure, x), 2) for x in (
            result.mu.median, result.mu.low, result.mu.high, result.prediction.low, result.prediction.high))
        lines += ["", f"{result.measure} {median} (posterior median) [{pct} credible interval {low}, {high}]; "
                  f"{pct} prediction interval {pred_low}, {pred_high} (equal-tailed: they transform exactly)"]
    return "\n".join(lines)


__all__ = ["BayesResult", "Summary", "StudySummary", "bayes"]
