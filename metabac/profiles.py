"""Convention profiles: the choices other software makes, as small frozen sets of options for the existing functions.

metabac follows metafor by default. A published analysis made with RevMan 5 or R's meta differs in a handful of
conventions; each is one field of :class:`Profile`, passed to :func:`metabac.effect_sizes`,
:func:`metabac.mantel_haenszel` or :func:`metabac.pool` as a keyword, never a separate implementation.

=================  ==================  =========================================  ===============================
field              metafor             revman5                                    meta
=================  ==================  =========================================  ===============================
test               z                   z                                          z
method             REML                DL                                         REML
i2                 tau2-based          Q-based                                    Q-based
smd_correction     exact J             1 − 3/(4N − 9)                             exact J
smd_vtype          LS                  N/(n1·n2) + g²/(2(N − 3.94))               UB (unbiased)
mh_add_inside      no                  0.5 in every cell of zero-cell studies     yes (MH.exact = FALSE)
mh_rd_variance     Sato et al. 1989    Greenland & Robins 1985                    Sato et al. 1989
mh_random          IV on escalc yi     DL from the MH-based Q, IV re-weighting    IV on escalc yi
drop00             no                  double-zero studies not estimable          yes (allstudies = FALSE)
prediction         z                   none                                       t(k − 1) (method.predict "V")
=================  ==================  =========================================  ===============================

A fourth profile, ``cochrane``, is Cochrane's current random-effects method (Cochrane Handbook chapter 10, RevMan
since January 2025): metafor's conventions with REML, the Hartung-Knapp-Sidik-Jonkman interval (``test="knha"``,
t(k − 1) with the rescaled standard error), the prediction interval from t(k − 1) on the same scale, and I² from
τ²; the Q-profile interval for τ² is :meth:`PoolResult.confint`. It is ``metabac report``'s default.

References: Deeks JJ, Higgins JPT. Statistical algorithms in Review Manager 5 (2010); R meta 8.x ``settings.meta()``
defaults and ``metacont``/``metabin`` source (exact.smd, MH.exact, Q.Cochrane, method.predict); Cochrane Methods,
"Random-effects meta-analysis methods for intervention reviews" (REML, Q-profile, HKSJ, t prediction intervals).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
from numpy.typing import ArrayLike

from metabac._checks import InputError, require_choice
from metabac._result import Result, to_jsonable
from metabac.effects import BINARY_MEASURES, effect_sizes
from metabac.mantel_haenszel import mantel_haenszel, peto
from metabac.pooling import PoolResult, pool
from metabac.tau2 import critical_value, q_based_i2

Model = Literal["fixed", "random"]
Pooling = Literal["IV", "MH", "PETO"]


@dataclass(frozen=True)
class Profile:
    """A set of conventions; every field is a switch of an existing metabac function (table in the module doc)."""

    name: str
    description: str
    method: str = "REML"
    test: Literal["z", "knha"] = "z"
    i2: Literal["tau2", "q"] = "tau2"
    smd_correction: Literal["exact", "approximate"] = "exact"
    smd_vtype: Literal["LS", "UB", "RM5"] = "LS"
    mh_add_inside: bool = False
    mh_rd_variance: Literal["SGR", "GR"] = "SGR"
    mh_random: Literal["iv", "mh_q"] = "iv"
    drop00: bool = False
    prediction: Literal["z", "t", "none"] = "z"

    def label(self) -> str:
        """One line naming the profile, printed in every output that used it."""
        return f"convention profile: {self.name} ({self.description})"


PROFILES: dict[str, Profile] = {
    "metafor": Profile("metafor", "metafor defaults, as the rest of metabac"),
    "revman5": Profile(
        "revman5", "RevMan 5: DL from the MH-based Q, Q-based I², approximate Hedges' g, GR variance, no PI",
        method="DL", i2="q", smd_correction="approximate", smd_vtype="RM5", mh_add_inside=True,
        mh_rd_variance="GR", mh_random="mh_q", drop00=True, prediction="none",
    ),
    "meta": Profile(
        "meta", "R meta defaults: REML, Q-based I², unbiased SMD variance, PI on t(k-1)",
        method="REML", i2="q", smd_vtype="UB", mh_add_inside=True, drop00=True, prediction="t",
    ),
    "cochrane": Profile(
        "cochrane", "Cochrane's current methods: REML, Hartung-Knapp-Sidik-Jonkman CI, PI on t(k-1), I² from τ²",
        method="REML", test="knha",
    ),
}
PROFILE_NAMES: tuple[str, ...] = tuple(PROFILES)


def get_profile(profile: str | Profile) -> Profile:
    """The :class:`Profile` called ``profile`` (one of :data:`PROFILE_NAMES`), or ``profile`` itself."""
    if isinstance(profile, Profile):
        return profile
    return PROFILES[require_choice(profile, PROFILE_NAMES, "profile")]


@dataclass(frozen=True, repr=False)
class ProfiledResult(Result):
    """A :class:`PoolResult` with the profile that produced it; ``summary()`` names the profile first."""

    result: PoolResult
    profile: Profile

    def summary(self, digits: int = 4) -> str:
        return f"{self.profile.label()}\n\n{self.result.summary(digits)}"

    def to_dict(self) -> dict:
        return {"profile": self.profile.name, **to_jsonable(self.result)}

    def brief(self) -> str:
        return f"{self.profile.name}: {self.result.brief()}"


def analyse(
    measure: str,
    *,
    model: Model = "random",
    pooling: Pooling = "IV",
    method: str | None = None,
    profile: str | Profile = "metafor",
    level: float = 95,
    labels: ArrayLike | None = None,
    **arms: ArrayLike,
) -> ProfiledResult:
    """Meta-analyse arm-level data under a convention profile.

    Parameters
    ----------
    measure : {"OR", "RR", "RD", "PETO", "MD", "SMD", "ROM"}
    model : {"fixed", "random"}
    pooling : {"IV", "MH", "PETO"}
        Inverse variance, Mantel-Haenszel (OR, RR, RD) or Peto (fixed effect only).
    method : str, optional
        tau² estimator for ``model="random"``; by default the profile's (REML, or DL for revman5).
    profile : {"metafor", "revman5", "meta", "cochrane"} or Profile
    level : float
        Confidence level in percent.
    labels : array-like, optional
    **arms : array-like
        escalc-named arm data (``ai, n1i, ci, n2i`` ... or ``m1i, sd1i, n1i, m2i, sd2i, n2i``).

    Returns
    -------
    ProfiledResult
        ``.result`` is the :class:`PoolResult`; ``.profile`` the conventions used.

    Notes
    -----
    Random effects after Mantel-Haenszel under ``revman5``: Q = Σ w(yi − θ_MH)² with w = 1/vi of the escalc
    effect sizes, tau² = max(0, (Q − (k − 1))/(Σw − Σw²/Σw)), then inverse-variance weights 1/(vi + tau²)
    (Deeks & Higgins 2010). Q-based I² = max(0, (Q − (k − 1))/Q). A t(k − 1) prediction interval is
    estimate ± t·√(se² + tau²).

    Examples
    --------
    >>> fit = analyse("RR", ai=[30, 6], n1i=[42, 88], ci=[12, 9], n2i=[42, 92], method="DL")
    >>> round(float(np.exp(fit.result.estimate)), 2)
    1.42
    """
    prof = get_profile(profile)
    model = require_choice(model, get_args(Model), "model")
    pooling = require_choice(pooling, get_args(Pooling), "pooling")
    cells: dict[str, Any] = arms  # escalc-named arm data, passed on by name
    method = method or prof.method
    if model == "fixed":
        method = "EE"
    binary = measure.upper() in BINARY_MEASURES
    if pooling == "PETO":
        if model == "random":
            raise InputError("pooling: Peto's method is a fixed-effect method; use model='fixed'")
        result = peto(level=level, labels=labels, **cells)
    elif pooling == "MH":
        mh = mantel_haenszel(measure, level=level, labels=labels, add_inside=prof.mh_add_inside,
                             rd_variance=prof.mh_rd_variance, **cells)
        result = mh if model == "fixed" else _random_after_mh(mh, measure, method, level, labels, prof, cells)
    else:
        es = effect_sizes(measure, labels=labels, drop00=prof.drop00 and binary,
                          smd_correction=prof.smd_correction, smd_vtype=prof.smd_vtype, **cells)
        kept = None if labels is None else list(es["study"])
        result = pool(es.yi.to_numpy(), es.vi.to_numpy(), method=method, level=level, measure=measure.upper(),
                      labels=kept, test=prof.test if model == "random" else "z")
    return ProfiledResult(apply_conventions(result, prof), prof)


def _random_after_mh(mh: PoolResult, measure: str, method: str, level: float, labels: ArrayLike | None,
                     prof: Profile, arms: dict[str, Any]) -> PoolResult:
    """Random effects for an MH analysis: IV on escalc effect sizes; under ``mh_random="mh_q"`` (revman5) with the
    DerSimonian-Laird tau² = max(0, (Q_MH − (k − 1))/(Σw − Σw²/Σw)), w = 1/vi, from the MH-based Q, and that Q."""
    es = effect_sizes(measure, labels=labels, drop00=prof.drop00 or prof.mh_random == "mh_q",
                      **arms)
    yi, vi = es.yi.to_numpy(), es.vi.to_numpy()
    kept = None if labels is None else list(es["study"])
    if prof.mh_random == "iv":
        return pool(yi, vi, method=method, level=level, measure=measure.upper(), labels=kept, test=prof.test)
    w = 1 / vi
    tau2 = max(0.0, (mh.q - mh.q_df) / (w.sum() - (w**2).sum() / w.sum())) if mh.q_df > 0 else 0.0
    fit = pool(yi, vi, tau2=tau2, level=level, measure=measure.upper(), labels=kept, test=prof.test)
    return dataclasses.replace(fit, q=mh.q, q_pvalue=mh.q_pvalue, method="DL", tau2_fixed=False)


def apply_conventions(result: PoolResult, prof: Profile) -> PoolResult:
    """I² and the prediction interval as the profile prints them."""
    changes: dict = {}
    if prof.i2 == "q" and result.q_df > 0:
        changes["i2"] = float(q_based_i2(result.q, result.q_df))
        changes["h2"] = result.q / result.q_df
    if prof.prediction == "none":
        changes.update(pi_low=float("nan"), pi_high=float("nan"))
    elif prof.prediction == "t" and result.is_random:
        k = int(result.k)
        if k > 1:
            half = critical_value(result.level, k - 1) * np.sqrt(result.se**2 + result.tau2)
            changes.update(pi_low=result.estimate - half, pi_high=result.estimate + half)
        else:
            changes.update(pi_low=float("nan"), pi_high=float("nan"))
    return dataclasses.replace(result, **changes) if changes else result
