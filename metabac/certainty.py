"""GRADE certainty of the evidence per outcome, from stated rules, each downgrade with its reason.

The evidence from randomised trials starts at ``high`` and is rated down 0, 1 or 2 levels in each of five domains
(Guyatt GH et al. GRADE guidelines 3: rating the quality of evidence. J Clin Epidemiol 2011;64:401-406), to
``moderate``, ``low`` or ``very low``. Every domain is decided by a rule of this module on the pooled numbers, the
trials' risk of bias and the records; an author may override any domain with a value and a reason, and the result
shows both. The rules (all thresholds are arguments or constants below):

- **Risk of bias** (GRADE guidelines 4, Guyatt et al. 2011;64:407-415; Cochrane Handbook v6.3 section 14.2.2):
  by the share of the analysis weight from trials at each overall RoB 2 level. Two levels when trials at high risk
  carry at least half the weight; one level when they carry at least a quarter, or when trials not at low risk
  (some concerns, high or no information) carry at least half; else none.
- **Inconsistency** (GRADE guidelines 7, Guyatt et al. 2011;64:1294-1302; Handbook section 10.10.2): not
  judged with one trial. Heterogeneity matters when the prediction interval includes no effect or two trials'
  confidence intervals do not overlap. Then one level when I² >= 30% (the Handbook's band 'may represent moderate
  heterogeneity' starts there), two when I² >= 75% ('considerable'); else none.
- **Indirectness** (GRADE guidelines 8, Guyatt et al. 2011;64:1303-1310): declared, never guessed. A trial's
  RoB entry may say why its result is indirect; one level when such trials carry at least half the weight. With
  none declared: no downgrade, and the reason says so.
- **Imprecision** (GRADE guidelines 6, Guyatt et al. 2011;64:1283-1293): the confidence interval against no
  effect and against appreciable benefit and harm (RR 0.75 and 1.25 for ratios, GRADE's default; ``mid`` for
  differences), and the total number of participants against the optimal information size (OIS,
  :func:`optimal_information_size`). Two levels when the CI includes both appreciable benefit and appreciable harm,
  or when it includes no effect and the OIS is not met; one level for either alone; else none.
- **Publication bias** (GRADE guidelines 5, Guyatt et al. 2011;64:1277-1282; Handbook section 13.3.5.4): one
  level when trials that reported the outcome without usable data hold at least a quarter of all participants
  randomised in trials reporting it (likely availability bias), or when the evidence is fewer than 10 trials each
  smaller than the OIS (a small number of small trials, too few for a funnel-plot test); else none.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy import special

from metabac._checks import InputError
from metabac._result import Result, table
from metabac.effects import RATIO_MEASURES
from metabac.formatting import natural_scale, number
from metabac.pooling import PoolResult
from metabac.rob import OVERALL, fit_comparisons, study_overall
from metabac.tau2 import critical_value

if TYPE_CHECKING:
    from metabac.trials import TrialSet

Weights = Sequence[float] | NDArray[np.float64]  # the pooled analysis' weights, one per trial
LEVELS = ("very low", "low", "moderate", "high")
DOMAINS = ("risk of bias", "inconsistency", "indirectness", "imprecision", "publication bias")
APPRECIABLE_RR = (0.75, 1.25)      # GRADE's default thresholds of appreciable benefit and harm for ratios
RELATIVE_CHANGE = 0.25             # the effect the OIS is computed for (GRADE guidelines 6)
CONTINUOUS_OIS = 400               # GRADE guidelines 6's rule of thumb for continuous outcomes
FUNNEL_MIN_TRIALS = 10             # Handbook 13.3.5.4: fewer trials give funnel-plot tests too little power
I2_MODERATE, I2_CONSIDERABLE = 30.0, 75.0


@dataclass(frozen=True)
class Override:
    """An author's judgement of one GRADE domain: levels to rate down (0, 1 or 2) and the reason."""

    levels: int
    reason: str

    def __post_init__(self) -> None:
        if self.levels not in (0, 1, 2) or isinstance(self.levels, bool):
            raise InputError(f"override: levels must be 0, 1 or 2, got {self.levels!r}")
        if not isinstance(self.reason, str) or not self.reason.strip():
            raise InputError("override: a reason is required")


@dataclass(frozen=True)
class DomainJudgement(Result):
    """One GRADE domain: the levels applied, whether by ``rule`` or ``override``, and why; ``rule_levels`` and
    ``rule_reason`` keep what the rule gave when an author overrode it."""

    domain: str
    levels: int
    basis: str
    reason: str
    rule_levels: int
    rule_reason: str


@dataclass(frozen=True)
class Certainty(Result):
    """GRADE certainty of one outcome: ``certainty`` (high, moderate, low, very low) and the five domains."""

    outcome: str
    certainty: str
    start: str
    domains: tuple[DomainJudgement, ...]

    @property
    def downgrade(self) -> int:
        return sum(d.levels for d in self.domains)

    def to_frame(self) -> pd.DataFrame:
        """One row per domain: levels, basis (rule or override), reason, and the rule's own verdict."""
        return pd.DataFrame([d.to_dict() for d in self.domains]).set_index("domain")

    def summary(self) -> str:
        rows = [[d.domain, f"-{d.levels}" if d.levels else "0", d.basis, d.reason] for d in self.domains]
        return (f"{self.outcome}: certainty {self.certainty} (start {self.start}, rated down {self.downgrade})\n"
                + table(["domain", "levels", "basis", "reason"], rows))


Verdict = tuple[int, str]


def _shares(weights: Weights, flags: Sequence[bool]) -> float:
    w = np.asarray(weights, dtype=float)
    return float(w[np.asarray(flags, dtype=bool)].sum() / w.sum())


def risk_of_bias_rule(weights: Weights, judgements: Sequence[str]) -> Verdict:
    """Rate down by the weight from trials at high risk / not at low risk (overall RoB 2 judgements)."""
    if len(weights) != len(judgements) or not len(weights):
        raise InputError("risk of bias: one judgement per study is needed")
    high = _shares(weights, [j == "high" for j in judgements])
    not_low = _shares(weights, [j != "low" for j in judgements])
    text = f"trials at high risk carry {100 * high:.0f}% of the weight, trials not at low risk {100 * not_low:.0f}%"
    if high >= 0.5:
        return 2, f"{text}: at least half from trials at high risk"
    if high >= 0.25 or not_low >= 0.5:
        return 1, f"{text}: at least a quarter at high risk or half not at low risk"
    return 0, f"{text}: most of the weight from trials at low risk"


def inconsistency_rule(fit: PoolResult) -> Verdict:
    """Rate down by I² when heterogeneity matters: the prediction interval includes no effect, or two trials'
    confidence intervals do not overlap."""
    if int(fit.k) < 2:
        return 0, "one trial: consistency cannot be judged"
    crit = float(critical_value(fit.level))
    low, high = fit.yi - crit * np.sqrt(fit.vi), fit.yi + crit * np.sqrt(fit.vi)
    apart = bool(low.max() > high.min())
    pi_null = bool(fit.pi_low <= 0 <= fit.pi_high)
    i2 = float(fit.i2)
    matters = [text for flag, text in ((pi_null, "the prediction interval includes no effect"),
                                       (apart, "some trials' confidence intervals do not overlap")) if flag]
    text = f"I² = {i2:.0f}%" + (f"; {' and '.join(matters)}" if matters else
                                "; the prediction interval excludes no effect and all confidence intervals overlap")
    if matters and i2 >= I2_CONSIDERABLE:
        return 2, f"{text} (I² >= {I2_CONSIDERABLE:g}%: considerable)"
    if matters and i2 >= I2_MODERATE:
        return 1, f"{text} (I² >= {I2_MODERATE:g}%: at least moderate)"
    return 0, text + ("" if not matters else f" (I² < {I2_MODERATE:g}%)")


def indirectness_rule(weights: Weights, reasons: Sequence[str], labels: Sequence[str]) -> Verdict:
    """Rate down one level when trials declared indirect (a non-empty reason) carry at least half the weight."""
    declared = [bool(r) for r in reasons]
    if not any(declared):
        return 0, "none declared in the trial records: population, intervention, comparator and outcome taken as " \
                  "those of the review question"
    share = _shares(weights, declared)
    named = "; ".join(f"{label}: {r}" for label, r in zip(labels, reasons) if r)
    return (1 if share >= 0.5 else 0), f"declared indirect ({named}), {100 * share:.0f}% of the weight"


def optimal_information_size(control_risk: float, relative_change: float = RELATIVE_CHANGE, alpha: float = 0.05,
                             power: float = 0.8) -> int:
    """Total participants a single trial needs to detect a relative change of ``relative_change`` in a risk of
    ``control_risk`` (two-sided ``alpha``, ``power``): GRADE guidelines 6's optimal information size.

    n per arm = (z_{1-alpha/2} + z_{power})² [p_c(1 - p_c) + p_e(1 - p_e)] / (p_c - p_e)², with p_e =
    p_c(1 + relative_change) (a negative change for a reduction); the total is twice n, rounded up per arm.

    >>> optimal_information_size(0.2)   # 20% -> 25%: 1091 per arm
    2182
    """
    if not 0 < control_risk < 1:
        raise InputError(f"control risk: must lie strictly between 0 and 1, got {control_risk!r}")
    p_e = control_risk * (1 + relative_change)
    if not 0 < p_e < 1:
        raise InputError(f"control risk {control_risk:g} changed by {relative_change:+g} leaves (0, 1)")
    z = special.ndtri(1 - alpha / 2) + special.ndtri(power)
    per_arm = z**2 * (control_risk * (1 - control_risk) + p_e * (1 - p_e)) / (control_risk - p_e) ** 2
    return 2 * math.ceil(per_arm - 1e-9)


def imprecision_rule(fit: PoolResult, participants: int, ois: int, *, mid: float | None = None) -> Verdict:
    """Rate down for a confidence interval that includes no effect or both appreciable benefit and harm, and for
    fewer participants than the optimal information size ``ois``."""
    ratio = fit.measure in RATIO_MEASURES
    low, high = float(fit.ci_low), float(fit.ci_high)
    shown = f"{fit.measure or 'estimate'} {number(natural_scale(fit.measure, low), 2)} to " \
            f"{number(natural_scale(fit.measure, high), 2)}"
    bounds = tuple(math.log(b) for b in APPRECIABLE_RR) if ratio else ((-mid, mid) if mid is not None else None)
    both = bounds is not None and low <= bounds[0] and high >= bounds[1]
    null = low <= 0 <= high
    short = participants < ois
    parts = [f"{fit.level:g}% CI {shown} " + ("includes no effect" if null else "excludes no effect"),
             f"{participants} participants {'below' if short else 'reach'} the optimal information size of {ois}"]
    if both:
        edge = f"RR {APPRECIABLE_RR[0]:g} and {APPRECIABLE_RR[1]:g}" if ratio else f"±{mid:g}"
        return 2, f"{parts[0]} and spans appreciable benefit and harm ({edge}); {parts[1]}"
    levels = min(2, int(null) + int(short))
    return levels, "; ".join(parts)


def publication_bias_rule(trial_sizes: Sequence[int], ois: int, unavailable: Mapping[str, int]) -> Verdict:
    """Rate down one level for likely availability bias (trials reporting the outcome without usable data hold
    >= 25% of the participants) or for a small number of small trials (< 10, each below the OIS)."""
    included = int(sum(trial_sizes))
    missing = int(sum(unavailable.values()))
    share = missing / (missing + included)
    small = len(trial_sizes) < FUNNEL_MIN_TRIALS and all(n < ois for n in trial_sizes)
    reasons = []
    if share >= 0.25:
        named = ", ".join(f"{name} ({n} randomised)" for name, n in unavailable.items())
        reasons.append(f"likely availability bias: {named} reported the outcome without usable data, "
                       f"{100 * share:.0f}% of all participants")
    if small:
        reasons.append(f"{len(trial_sizes)} trials, each smaller than the optimal information size of {ois}, "
                       f"too few (< {FUNNEL_MIN_TRIALS}) for a funnel-plot test")
    if reasons:
        return 1, "; ".join(reasons)
    return 0, ("no trial known to report the outcome without usable data" if not missing else
               f"trials without usable data hold {100 * share:.0f}% of participants (< 25%)") + \
        ("" if small else "; not all trials are small")


def grade(outcome: str, verdicts: Mapping[str, Verdict], overrides: Mapping[str, Override] | None = None,
          ) -> Certainty:
    """Combine the five domains' verdicts (``levels, reason`` by rule) with the author's overrides: start at high
    (randomised trials), subtract the levels, stop at very low."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(DOMAINS)) + sorted(set(DOMAINS) - set(verdicts))
    if unknown:
        raise InputError(f"GRADE domains: unknown or missing {', '.join(unknown)} (domains: {', '.join(DOMAINS)})")
    domains = []
    for name in DOMAINS:
        levels, reason = verdicts[name]
        chosen = overrides.get(name)
        if chosen is None:
            domains.append(DomainJudgement(name, levels, "rule", reason, levels, reason))
        else:
            domains.append(DomainJudgement(name, chosen.levels, "override", chosen.reason, levels, reason))
    total = sum(d.levels for d in domains)
    return Certainty(outcome, LEVELS[max(0, len(LEVELS) - 1 - total)], "high (randomised trials)", tuple(domains))


def _unavailable(trial_set: TrialSet, arms: pd.DataFrame) -> dict[str, int]:
    """Placebo-controlled trials that report the outcome without a usable result, with their randomised N."""
    found = {}
    for trial, reason in arms.attrs.get("excluded", []):
        n = trial_set.trials.loc[trial, "n_randomised"]
        if "no complete result" in reason and pd.notna(n):
            found[str(trial_set.trials.loc[trial, "study"])] = int(n)
    return found


def grade_outcome(trial_set: TrialSet, arms: pd.DataFrame, fit: PoolResult | None = None, *,
                  overrides: Mapping[str, Override] | None = None, relative_change: float = RELATIVE_CHANGE,
                  mid: float | None = None) -> Certainty:
    """GRADE certainty of the outcome of ``arms`` (from :func:`metabac.comparisons`), from the pooled ``fit`` (by
    default REML on RR or MD, as the report), the trials' RoB 2 judgements and declared indirectness, and the
    trials that reported the outcome without usable data. The assumed control risk of the OIS is the median
    control-arm risk, as in :func:`metabac.summary_of_findings.summary_of_findings`."""
    outcome = arms.attrs.get("outcome")
    if outcome is None or arms.empty:
        raise InputError("grade_outcome: needs the comparisons of one outcome (metabac.comparisons)")
    fit = fit if fit is not None else fit_comparisons(arms)
    sizes = [int(n) for n in arms["n1i"] + arms["n2i"]]
    binary = "ai" in arms and arms["ai"].notna().all()
    if binary:
        control_risk = float(np.median(arms["ci"] / arms["n2i"]))
        change = relative_change if float(fit.estimate) >= 0 else -relative_change
        ois = optimal_information_size(control_risk, change)
    else:
        ois = CONTINUOUS_OIS
    rows = trial_set.risk_of_bias
    indirect = rows[(rows.outcome == outcome) & (rows.domain == OVERALL)].set_index("trial")["indirectness"]
    labels = list(arms["study"].astype(str))
    verdicts = {
        "risk of bias": risk_of_bias_rule(fit.weights, study_overall(trial_set, arms, outcome)),
        "inconsistency": inconsistency_rule(fit),
        "indirectness": indirectness_rule(fit.weights, [str(indirect.get(t, "")) for t in arms["trial"]], labels),
        "imprecision": imprecision_rule(fit, sum(sizes), ois, mid=mid),
        "publication bias": publication_bias_rule(sizes, ois, _unavailable(trial_set, arms)),
    }
    return grade(outcome, verdicts, overrides)


__all__ = ["APPRECIABLE_RR", "Certainty", "DOMAINS", "DomainJudgement", "LEVELS", "Override", "grade",
           "grade_outcome", "imprecision_rule", "inconsistency_rule", "indirectness_rule",
           "optimal_information_size", "publication_bias_rule", "risk_of_bias_rule"]
