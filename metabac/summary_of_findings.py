"""GRADE-ready summary of findings: relative effect, assumed control risk and the absolute effect per 1000.

Cochrane reviews print, per outcome, the relative effect with its CI, the number of participants and trials, an
assumed control risk (ACR) and the corresponding risk in the intervention group, both per 1000 people. This module
does that arithmetic once, as a pure function of the pooled numbers; renderers only format its result.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from metabac._checks import InputError
from metabac._result import Result
from metabac.formatting import natural_scale

BINARY = frozenset({"OR", "RR", "RD", "PETO"})


@dataclass(frozen=True)
class SummaryOfFindings(Result):
    """One row of a summary-of-findings table.

    Attributes
    ----------
    measure
        Effect measure of the relative effect (e.g. "RR").
    relative, relative_low, relative_high
        The pooled effect and its CI on the natural scale (ratios back-transformed from the log scale).
    participants, k
        Number of randomised participants and of trials in the pooled analysis.
    assumed_control_risk
        For binary measures: the median control-arm risk of the pooled trials (a proportion); NaN otherwise.
    corresponding_risk, corresponding_low, corresponding_high
        Risk in the intervention group per 1000 people implied by the ACR and the relative effect (and its CI),
        kept within [0, 1000].
    absolute, absolute_low, absolute_high
        Absolute effect per 1000 (corresponding risk − 1000·ACR) for binary measures; for continuous measures the
        pooled difference itself on the measure's scale.
    assumed_control_mean
        For continuous measures: the median control-arm mean of the pooled trials; NaN otherwise.
    capped
        True when a corresponding risk had to be held within [0, 1000] (a ratio bound that implies a risk > 1).
    """

    measure: str
    relative: float
    relative_low: float
    relative_high: float
    participants: int
    k: int
    assumed_control_risk: float
    corresponding_risk: float
    corresponding_low: float
    corresponding_high: float
    absolute: float
    absolute_low: float
    absolute_high: float
    assumed_control_mean: float
    capped: bool


def corresponding_risk(measure: str, effect: float, control_risk: float) -> float:
    """Intervention-group risk (a proportion) implied by a control risk and a relative effect on the natural scale.

    RR: ACR·RR; OR and Peto OR: OR·ACR / (1 − ACR + OR·ACR); RD: ACR + RD (Cochrane Handbook v6, §14.1.5).
    """
    if measure == "RR":
        return control_risk * effect
    if measure in ("OR", "PETO"):
        return effect * control_risk / (1 - control_risk + effect * control_risk)
    if measure == "RD":
        return control_risk + effect
    raise InputError(f"measure: no absolute risk for {measure!r}")


def summary_of_findings(
    measure: str,
    estimate: float,
    ci_low: float,
    ci_high: float,
    *,
    participants: int,
    k: int,
    control_events: ArrayLike | None = None,
    control_n: ArrayLike | None = None,
    control_means: ArrayLike | None = None,
) -> SummaryOfFindings:
    """Summary-of-findings numbers for one pooled outcome.

    Parameters
    ----------
    measure : {"OR", "RR", "RD", "PETO", "MD", "SMD", "ROM"}
    estimate, ci_low, ci_high : float
        Pooled effect and CI on the analysis scale (log scale for OR, RR, Peto OR and ROM).
    participants, k : int
        Participants and trials behind the estimate.
    control_events, control_n : array-like, optional
        Control-arm events and sizes of the pooled trials (binary measures); their median risk is the ACR.
        Without both (effect sizes given as such) only the relative effect is filled in.
    control_means : array-like, optional
        Control-arm means (continuous measures), whose median is reported as the assumed control mean.

    Returns
    -------
    SummaryOfFindings

    Notes
    -----
    ACR = median(ci/n2i). Absolute effect per 1000 = 1000·(risk(effect) − ACR), with risk(RR) = ACR·RR (so
    1000·ACR·(RR − 1)), risk(OR) = OR·ACR/(1 − ACR + OR·ACR) and risk(RD) = ACR + RD, applied to the estimate
    and to each CI bound (Cochrane Handbook v6, §14.1.5; GRADEpro's convention). Risks are held within [0, 1].

    Examples
    --------
    >>> sof = summary_of_findings("RR", np.log(1.5), np.log(1.2), np.log(1.875), participants=200, k=2,
    ...                           control_events=[20, 20], control_n=[100, 100])
    >>> round(sof.absolute), round(sof.absolute_low), round(sof.absolute_high)
    (100, 40, 175)
    """
    relative = (natural_scale(measure, estimate), natural_scale(measure, ci_low), natural_scale(measure, ci_high))
    nan = float("nan")
    if measure not in BINARY or (control_events is None and control_n is None):
        # continuous measures, or a binary one pooled from effect sizes alone: no control risk to apply it to
        mean = nan if control_means is None or len(np.atleast_1d(control_means)) == 0 \
            else float(np.median(np.asarray(control_means, dtype=float)))
        return SummaryOfFindings(measure, *relative, int(participants), int(k), nan, nan, nan, nan,
                                 *relative, assumed_control_mean=mean, capped=False)
    if control_events is None or control_n is None:
        raise InputError(f"{measure}: the assumed control risk needs control_events and control_n")
    events = np.asarray(control_events, dtype=float)
    n = np.asarray(control_n, dtype=float)
    if events.shape != n.shape or events.size == 0:
        raise InputError("control_events/control_n: need one event count and one size per trial")
    if np.any(n <= 0) or np.any(events < 0) or np.any(events > n):
        raise InputError("control_events/control_n: counts must lie between 0 and the group size")
    acr = float(np.median(events / n))
    raw = [corresponding_risk(measure, value, acr) for value in relative]
    risks = [min(1.0, max(0.0, r)) for r in raw]
    capped = any(r != c for r, c in zip(raw, risks))
    risk, low, high = (1000 * r for r in risks)
    return SummaryOfFindings(measure, *relative, int(participants), int(k), acr, risk, low, high,
                             risk - 1000 * acr, low - 1000 * acr, high - 1000 * acr,
                             assumed_control_mean=nan, capped=capped)
