"""Prior distributions for the between-trial standard deviation tau of :func:`metabac.bayes`.

Three families cover every prior offered (all proper, all with closed-form density and distribution function):

- half-Student-t on tau with scale s and df degrees of freedom: p(tau) = 2/s · t_df(tau/s), tau >= 0. df = inf is
  the half-normal, df = 1 the half-Cauchy.
- Student-t on log tau² with location m, scale s and df degrees of freedom ("log-t"): with z = (log tau² − m)/s,
  p(tau) = t_df(z) · 2/(s·tau). df = inf is the log-normal on tau² (log tau ~ N(m/2, (s/2)²)).
- uniform on [0, s].

The empirical priors of Turner et al. (2015) and Rhodes et al. (2015) are members of the log-t family, with the
parameters of the papers' tables (the same tables as R's bayesmeta ``TurnerEtAlPrior()`` and ``RhodesEtAlPrior()``).

References
----------
Turner RM, Jackson D, Wei Y, Thompson SG, Higgins JPT (2015). Predictive distributions for between-study
heterogeneity and simple methods for their application in Bayesian meta-analysis. Statistics in Medicine
34(6):984-998. Table IV (log-normal priors for tau² of log odds ratios, by outcome type and type of comparison),
and p. 993 for the marginal prior over all settings, log tau² ~ N(−2.56, 1.74²).

Rhodes KM, Turner RM, Higgins JPT (2015). Predictive distributions were developed for the extent of heterogeneity
in meta-analyses of continuous outcome data. Journal of Clinical Epidemiology 68(1):52-60. Table 3 (log-t(5)
priors for tau² of standardised mean differences by outcome type and type of comparison), Tables A.3.1 and
A.3.2 (respiratory and cancer), and Section 3.3 for the general prior, log tau² ~ −3.44 + 2.59·t(5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from metabac._checks import InputError, require_choice

Array = NDArray[np.float64]
Family = Literal["half-t", "log-t", "uniform"]
SCALE_PRIORS = ("halfnormal", "halfcauchy", "halfstudentt", "uniform")
PRIOR_NAMES = (*SCALE_PRIORS, "lognormal_tau2", "turner", "rhodes")

# Turner et al. (2015), Table IV: log tau² ~ N(mean, sd²) for log odds ratios, one row per outcome type, one
# (mean, sd) pair per type of comparison, in the order of TURNER_COMPARISONS.
TURNER_COMPARISONS = (
    "pharmacological vs. placebo / control",
    "pharmacological vs. pharmacological",
    "non-pharmacological vs. placebo / control",
    "non-pharmacological vs. pharmacological",
    "non-pharmacological vs. non-pharmacological",
)
TURNER_TABLE: dict[str, tuple[tuple[float, float], ...]] = {
    "all-cause mortality": ((-3.95, 1.34), (-4.18, 1.41), (-4.17, 1.55), (-2.92, 1.02), (-3.50, 1.26)),
    "obstetric outcomes": ((-3.52, 1.74), (-3.75, 1.79), (-3.74, 1.91), (-2.49, 1.50), (-3.08, 1.68)),
    "cause-specific mortality / major morbidity event / composite (mortality or morbidity)":
        ((-3.71, 1.74), (-3.95, 1.79), (-3.93, 1.91), (-2.68, 1.51), (-3.27, 1.68)),
    "resource use / hospital stay / process": ((-2.34, 1.74), (-2.58, 1.79), (-2.56, 1.91), (-1.31, 1.50),
                                               (-1.90, 1.68)),
    "surgical / device related success / failure": ((-2.14, 1.74), (-2.37, 1.79), (-2.36, 1.91), (-1.11, 1.50),
                                                    (-1.69, 1.68)),
    "withdrawals / drop-outs": ((-2.99, 1.74), (-3.23, 1.79), (-3.21, 1.91), (-1.96, 1.51), (-2.55, 1.68)),
    "internal / structure-related outcomes": ((-2.71, 1.74), (-2.94, 1.79), (-2.93, 1.92), (-1.67, 1.51),
                                              (-2.26, 1.68)),
    "general physical health indicators": ((-2.29, 1.53), (-2.53, 1.58), (-2.51, 1.72), (-1.26, 1.25),
                                           (-1.85, 1.46)),
    "adverse events": ((-1.87, 1.52), (-2.10, 1.58), (-2.10, 1.71), (-0.84, 1.24), (-1.43, 1.45)),
    "infection / onset of new disease": ((-2.49, 1.52), (-2.73, 1.58), (-2.71, 1.71), (-1.46, 1.24),
                                         (-2.05, 1.45)),
    "signs / symptoms reflecting continuation / end of condition": ((-2.06, 1.51), (-2.29, 1.58), (-2.28, 1.71),
                                                                    (-1.03, 1.24), (-1.61, 1.45)),
    "pain": ((-1.83, 1.52), (-2.06, 1.58), (-2.05, 1.71), (-0.80, 1.25), (-1.38, 1.45)),
    "quality of life / functioning (dichotomized)": ((-2.54, 1.54), (-2.78, 1.60), (-2.77, 1.73), (-1.51, 1.27),
                                                     (-2.10, 1.47)),
    "mental health indicators": ((-2.12, 1.53), (-2.35, 1.60), (-2.34, 1.72), (-1.09, 1.27), (-1.67, 1.47)),
    "biological markers (dichotomized)": ((-1.77, 1.52), (-2.00, 1.58), (-1.99, 1.71), (-0.74, 1.24),
                                          (-1.33, 1.45)),
    "subjective outcomes (various)": ((-2.70, 1.52), (-2.93, 1.58), (-2.92, 1.71), (-1.67, 1.25), (-2.26, 1.45)),
}
TURNER_GENERAL = (-2.56, 1.74)

# Rhodes et al. (2015), Table 3 (area "other"), A.3.1 ("respiratory"), A.3.2 ("cancer"): log tau² ~ location +
# scale·t(5) for standardised mean differences; per outcome type one (location, scale) pair per comparison type in
# the order of RHODES_COMPARISONS. Transcribed as bayesmeta 3.4 holds them; two entries break the tables' pattern
# (non-pharmacological = pharmacological vs. placebo + 0.14, pharmacological vs. pharmacological = − 0.28) and may
# be typos there: 'other', mental health, non-pharmacological −3.85 (pattern: −2.85) and 'cancer', internal and
# external structure-related, pharmacological vs. pharmacological −0.14 (pattern: −0.41). Not checked against the
# paper itself.
RHODES_COMPARISONS = (
    "pharmacological vs. placebo / control",
    "pharmacological vs. pharmacological",
    "non-pharmacological (any)",
)
RHODES_OUTCOMES = (
    "obstetric outcome",
    "resource use and hospital stay / process",
    "internal and external structure-related outcome",
    "general physical health and adverse event and pain and quality of life / functioning",
    "signs / symptoms reflecting continuation / end of condition and infection / onset of new acute / chronic disease",
    "mental health outcome",
    "biological marker",
    "various subjectively measured outcomes",
)
# area -> (locations, scales), each one row per outcome (RHODES_OUTCOMES order) and one column per comparison.
RHODES_TABLE: dict[str, tuple[tuple[tuple[float, ...], ...], tuple[tuple[float, ...], ...]]] = {
    "other": (
        ((-4.13, -4.40, -3.99), (-2.55, -2.83, -2.41), (-2.43, -2.70, -2.29), (-3.16, -3.44, -3.02),
         (-3.00, -3.27, -2.86), (-2.99, -3.27, -3.85), (-3.41, -3.68, -3.27), (-2.76, -3.03, -2.62)),
        ((2.34, 2.31, 2.11), (2.73, 2.70, 2.57), (2.50, 2.46, 2.32), (2.50, 2.44, 2.27), (2.50, 2.47, 2.33),
         (2.16, 2.14, 1.93), (2.83, 2.78, 2.66), (2.58, 2.59, 2.41)),
    ),
    "respiratory": (
        ((-6.03, -6.31, -5.89), (-4.46, -4.73, -4.32), (-4.33, -4.61, -4.19), (-5.07, -5.34, -4.93),
         (-4.90, -5.18, -4.76), (-4.90, -5.17, -4.76), (-5.31, -5.59, -5.17), (-4.66, -4.94, -4.52)),
        ((2.36, 2.31, 2.21), (2.74, 2.70, 2.57), (2.51, 2.46, 2.33), (2.51, 2.45, 2.28), (2.50, 2.47, 2.33),
         (2.17, 2.14, 1.94), (2.83, 2.78, 2.66), (2.59, 2.59, 2.41)),
    ),
    "cancer": (
        ((-1.57, -1.85, -1.43), (0.01, -0.27, 0.15), (-0.13, -0.14, 0.27), (-0.60, -0.88, -0.46),
         (-0.44, -0.71, -0.30), (-0.43, -0.71, -0.29), (-0.85, -1.13, -0.71), (-0.20, -0.48, -0.06)),
        ((2.45, 2.41, 2.24), (2.83, 2.79, 2.68), (2.61, 2.56, 2.45), (2.61, 2.55, 2.40), (2.60, 2.57, 2.46),
         (2.28, 2.25, 2.08), (2.93, 2.87, 2.78), (2.68, 2.68, 2.53)),
    ),
}
RHODES_GENERAL = (-3.44, 2.59)
RHODES_DF = 5.0


def _t_logpdf(z: Array, df: float) -> Array:
    """log density of Student's t with df degrees of freedom (df = inf: standard normal)."""
    if math.isinf(df):
        return -0.5 * z**2 - 0.5 * math.log(2 * math.pi)
    const = special.gammaln((df + 1) / 2) - special.gammaln(df / 2) - 0.5 * math.log(df * math.pi)
    return const - (df + 1) / 2 * np.log1p(z**2 / df)


def _t_cdf(z: Array, df: float) -> Array:
    return special.ndtr(z) if math.isinf(df) else special.stdtr(df, z)


def _t_ppf(p: Array, df: float) -> Array:
    return special.ndtri(p) if math.isinf(df) else special.stdtrit(df, p)


@dataclass(frozen=True)
class TauPrior:
    """A proper prior for tau (see the module docstring for the three families).

    ``family`` is "half-t" (``scale`` s, ``df``), "log-t" (``location`` m and ``scale`` s of log tau², ``df``) or
    "uniform" (on [0, ``scale``]); ``label`` says which prior it is, with its source where it has one. Build one with
    :func:`tau_prior`.
    """

    family: Family
    scale: float
    df: float = math.inf
    location: float = 0.0
    label: str = ""

    @property
    def upper(self) -> float:
        """Upper end of the support (inf but for the uniform prior)."""
        return self.scale if self.family == "uniform" else math.inf

    def logpdf(self, tau: ArrayLike) -> Array:
        """log p(tau) (−inf outside the support; at tau = 0 the limit, −inf for the log-t family)."""
        t = np.asarray(tau, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            if self.family == "half-t":
                out = math.log(2 / self.scale) + _t_logpdf(t / self.scale, self.df)
            elif self.family == "log-t":
                z = (2 * np.log(t) - self.location) / self.scale
                out = _t_logpdf(z, self.df) + math.log(2 / self.scale) - np.log(t)
            else:
                out = np.full(t.shape, -math.log(self.scale))
        inside = (t > 0) if self.family == "log-t" else (t >= 0)
        return np.where(inside & (t <= self.upper), out, -np.inf)

    def cdf(self, tau: ArrayLike) -> Array:
        """P(tau' <= tau) under the prior."""
        t = np.maximum(np.asarray(tau, dtype=float), 0.0)
        if self.family == "half-t":
            return np.maximum(2 * _t_cdf(t / self.scale, self.df) - 1, 0.0)
        if self.family == "log-t":
            with np.errstate(divide="ignore"):
                return _t_cdf((2 * np.log(t) - self.location) / self.scale, self.df)
        return np.minimum(t / self.scale, 1.0)

    def sf(self, tau: ArrayLike) -> Array:
        """P(tau' > tau) under the prior, accurate far in the upper tail."""
        t = np.maximum(np.asarray(tau, dtype=float), 0.0)
        if self.family == "half-t":
            return 2 * _t_cdf(-t / self.scale, self.df)
        if self.family == "log-t":
            with np.errstate(divide="ignore"):
                return _t_cdf(-(2 * np.log(t) - self.location) / self.scale, self.df)
        return np.maximum(1 - t / self.scale, 0.0)

    def ppf(self, p: ArrayLike) -> Array:
        """Prior quantiles."""
        q = np.asarray(p, dtype=float)
        if self.family == "half-t":
            return self.scale * _t_ppf((1 + q) / 2, self.df)
        if self.family == "log-t":
            return np.exp((self.location + self.scale * _t_ppf(q, self.df)) / 2)
        return self.scale * q

    def moment_is_finite(self, r: float, decay: float) -> bool:
        """Whether E[tau^r] is finite under a posterior p(tau)·L(tau) whose likelihood falls as tau^−decay.

        Half-t: p(tau) ~ tau^−(df+1), finite iff r < decay + df. Log-t with finite df: p(tau) ~
        1/(tau (log tau)^(df+1)), finite iff r <= decay. Every other prior has all moments.
        """
        if self.family == "half-t" and math.isfinite(self.df):
            return r < decay + self.df
        if self.family == "log-t" and math.isfinite(self.df):
            return r <= decay
        return True


def _number(value: object, field: str, *, positive: bool = False) -> float:
    """``value`` as a finite float (and above 0 with ``positive``), else an InputError naming ``field``."""
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"{field}: must be {'a positive number' if positive else 'a number'}, got {value!r}") \
            from None
    if not math.isfinite(number) or (positive and number <= 0):
        raise InputError(f"{field}: must be {'a positive finite number' if positive else 'finite'}, got {value!r}")
    return number



def tau_prior(
    name: str = "halfnormal",
    scale: float = 0.5,
    *,
    df: float | None = None,
    mean: float | None = None,
    sd: float | None = None,
    outcome: str | None = None,
    comparison: str | None = None,
    area: str = "other",
) -> TauPrior:
    """A prior for tau by name.

    ``halfnormal``, ``halfcauchy``, ``halfstudentt`` (needs ``df``) with ``scale``; ``uniform`` on [0, ``scale``];
    ``lognormal_tau2``: log tau² ~ N(``mean``, ``sd``²); ``turner``: Turner et al. (2015) Table IV for log odds
    ratios (``outcome`` and ``comparison`` as named in :data:`TURNER_TABLE` and :data:`TURNER_COMPARISONS`; without
    them the general prior log tau² ~ N(−2.56, 1.74²) of p. 993); ``rhodes``: Rhodes et al. (2015) Table 3
    (``area="other"``), A.3.1 (``"respiratory"``) or A.3.2 (``"cancer"``) for standardised mean differences,
    log tau² ~ location + scale·t(5) (without ``outcome`` the general prior −3.44 + 2.59·t(5) of Section 3.3).
    ``scale`` is ignored by the last three.

    >>> tau_prior("turner", outcome="surgical / device related success / failure",
    ...           comparison="pharmacological vs. placebo / control").ppf([0.025, 0.5, 0.975]).round(4)
    array([0.0623, 0.343 , 1.8873])
    """
    name = require_choice(name, PRIOR_NAMES, "tau_prior")
    if name in SCALE_PRIORS:
        s = _number(scale, "tau_scale", positive=True)
        if name == "uniform":
            return TauPrior("uniform", s, label=f"uniform(0, {s:g})")
        degrees = {"halfnormal": math.inf, "halfcauchy": 1.0}.get(name)
        if name == "halfstudentt":
            if df is None:
                raise InputError("df: the half-Student-t prior needs its degrees of freedom (df=...)")
            degrees = _number(df, "df", positive=True)
        assert degrees is not None
        label = {"halfnormal": f"half-normal(scale={s:g})", "halfcauchy": f"half-Cauchy(scale={s:g})"}.get(
            name, f"half-Student-t(scale={s:g}, df={degrees:g})")
        return TauPrior("half-t", s, degrees, label=label)
    if name == "lognormal_tau2":
        if mean is None or sd is None:
            raise InputError("lognormal_tau2: needs mean= and sd= of log tau²")
        m, s = _number(mean, "mean"), _number(sd, "sd", positive=True)
        return TauPrior("log-t", s, math.inf, m, f"log-normal on tau^2 (log tau^2 ~ N({m:g}, {s:g}^2))")
    if name == "turner":
        if outcome is None:
            m, s = TURNER_GENERAL
            where = "general prior, p. 993"
        else:
            key = require_choice(outcome, tuple(TURNER_TABLE), "outcome")
            column = TURNER_COMPARISONS.index(require_choice(comparison or "", TURNER_COMPARISONS, "comparison"))
            m, s = TURNER_TABLE[key][column]
            where = f"Table IV: {key}; {TURNER_COMPARISONS[column]}"
        return TauPrior("log-t", s, math.inf, m, f"Turner et al. 2015 ({where}): log tau^2 ~ N({m:g}, {s:g}^2)")
    if outcome is None:
        m, s = RHODES_GENERAL
        where = "general prior, Section 3.3"
    else:
        key = require_choice(outcome, RHODES_OUTCOMES, "outcome")
        column = RHODES_COMPARISONS.index(require_choice(comparison or "", RHODES_COMPARISONS, "comparison"))
        region = require_choice(area, tuple(RHODES_TABLE), "area")
        locations, scales = RHODES_TABLE[region]
        row = RHODES_OUTCOMES.index(key)
        m, s = locations[row][column], scales[row][column]
        table = {"other": "Table 3", "respiratory": "Table A.3.1", "cancer": "Table A.3.2"}[region]
        where = f"{table}: {key}; {RHODES_COMPARISONS[column]}"
    return TauPrior("log-t", s, RHODES_DF, m, f"Rhodes et al. 2015 ({where}): log tau^2 ~ {m:g} + {s:g}*t(5)")


__all__ = ["TauPrior", "tau_prior", "PRIOR_NAMES", "TURNER_TABLE", "TURNER_COMPARISONS", "RHODES_OUTCOMES",
           "RHODES_COMPARISONS", "RHODES_TABLE"]
