"""Who responds? Within-trial effect modification, and its pooling across trials (the "deft" approach).

Comparing trial means across trials (heavy-drinking trials against moderate ones) is ecological: a trial-level
association need not hold for the patients within the trials. The stronger evidence on an effect modifier comes
from within trials, where the subgroups share one protocol and one randomisation. The records hold it in their
``[[effect_modification]]`` tables (declared in :mod:`metabac.trial_schema`).

- :func:`subgroup_effects`: one row per published subgroup result, with its effect on the analysis scale.
- :func:`within_trial_interactions`: one row per trial x modifier x outcome (x comparison), with the subgroups, the
  published interaction test and, where the subgroups allow, the interaction estimate; otherwise the reason.
- :func:`pool_interactions`: the trial-level interactions of each modifier pooled with :func:`metabac.pool`.

Formulas (Fisher et al., "Meta-analytical methods to identify who benefits most from treatments: daft, deluded, or
deft approach?", BMJ 2017;356:j573):

- subgroup effect on the analysis scale: ``y = log(effect)`` for ratio measures (RR, OR, HR), else ``y = effect``;
  its standard error from the published 95% interval, ``se = (g(upper) - g(lower)) / (2 z_0.975)`` with g the same
  transformation; from counts, the log RR / log OR / RD and its variance as :func:`metabac.effect_sizes` (escalc);
- within-trial interaction: ``y_int = y_a - y_b`` (the modifier's first level minus its second, e.g. women minus
  men; :data:`metabac.trial_schema.MODIFIERS`), ``v_int = v_a + v_b`` (independent subgroups);
- pooled interaction: a random-effects meta-analysis of the ``y_int`` (REML by default), as metafor's
  ``rma(yi, vi)``; only where two or more trials give one.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import special

from metabac.effects import effect_sizes
from metabac.pooling import pool
from metabac.tau2 import Control
from metabac.trial_schema import MODIFIERS, RATIO_EFFECTS
from metabac.trials import TrialSet, load_trials

Z_975 = float(special.ndtri(0.975))

SUBGROUP_COLUMNS = ["trial", "study", "entry", "modifier", "outcome", "measure", "level", "label", "arm", "comparison",
                    "effect", "ci_lower", "ci_upper", "p", "p_text", "statistic", "events_baclofen", "n_baclofen",
                    "events_control", "n_control", "yi", "vi", "rule", "source", "source_kind", "citation", "url",
                    "quote", "derived", "note", "second_hand"]


def _trial_set(trials: TrialSet | str | Path) -> TrialSet:
    return trials if isinstance(trials, TrialSet) else load_trials(trials)


def _p_text(p: float | None, relation: str | None) -> str:
    """A published p-value as printed: ``= 0.045`` or ``< 0.001``; empty when none was published."""
    return "" if p is None else f"{relation or '='} {p:g}"


def _comparison(record: dict, arm: str) -> str:
    """``baclofen 30 mg/day vs placebo`` for an arm key, ``baclofen (any dose) vs placebo`` for 'all'."""
    arms = record["arms"]
    if arm == "all":
        control = next(a["drug"] for a in arms.values() if a["role"] == "control")
        return f"baclofen (any dose) vs {control}"
    spec = arms[arm]
    dose = f" {spec['dose_mg_day']:g} mg/day" if "dose_mg_day" in spec else ""
    return f"{spec['drug']}{dose} vs {arms[spec['compared_with']]['drug']}"


def analysis_scale(measure: str, group: dict) -> tuple[float, float, str]:
    """A subgroup's effect on the analysis scale, its variance, and the rule used (NaN, NaN, reason without one).

    Ratio measures are analysed as logs. From a 95% interval: se = (g(upper) - g(lower)) / (2 z_0.975); from
    counts: :func:`metabac.effect_sizes` (log RR, log OR or RD with escalc's variance).
    """
    log = measure in RATIO_EFFECTS
    if "ci_lower" in group:
        scale = math.log if log else float
        se = (scale(group["ci_upper"]) - scale(group["ci_lower"])) / (2 * Z_975)
        rule = (f"{'log ' if log else ''}{measure} with SE = ({'log(upper) - log(lower)' if log else 'upper - lower'})"
                f" / (2 x {Z_975:.4f}) from the published 95% CI")
        return scale(group["effect"]), se**2, rule
    if "events_baclofen" in group:
        es = effect_sizes(measure, ai=[group["events_baclofen"]], n1i=[group["n_baclofen"]],
                          ci=[group["events_control"]], n2i=[group["n_control"]])
        rule = f"{'log ' if log else ''}{measure} and its variance from the counts (escalc)"
        return float(es.yi.iloc[0]), float(es.vi.iloc[0]), rule
    missing = "no interval" if "effect" in group else "no effect size"
    return math.nan, math.nan, f"{missing} published, so no variance"


def _provenance(record: dict, table: dict) -> dict:
    source = record["sources"][table["source"]]
    return {"source": table["source"], "source_kind": source["kind"], "citation": source["citation"],
            "url": source["url"], "quote": table["quote"], "derived": table.get("derived", ""),
            "note": table.get("note", ""), "second_hand": source["kind"] == "secondary"}


def _study(trial_set: TrialSet, trial: str) -> str:
    return str(trial_set.trials.loc[trial, "study"])


def subgroup_effects(trials: TrialSet | str | Path) -> pd.DataFrame:
    """One row per published subgroup result of every ``[[effect_modification]]`` table.

    Columns: ``trial, study, entry`` (index of the table in its record), ``modifier, outcome, measure, level,
    label, arm, comparison``, the published numbers (``effect, ci_lower, ci_upper, p, p_text, statistic`` and
    counts), ``yi, vi`` on the analysis scale with the ``rule`` that gave them (NaN without an interval or
    counts), and the provenance (``source, source_kind, citation, url, quote, derived, note, second_hand``).
    """
    trial_set = _trial_set(trials)
    rows = []
    for trial, record in trial_set.records.items():
        for entry_index, entry in enumerate(record.get("effect_modification", [])):
            for group in entry.get("subgroups", []):
                yi, vi, rule = analysis_scale(entry.get("measure", ""), group)
                rows.append({
                    "trial": trial, "study": _study(trial_set, trial), "entry": entry_index,
                    "modifier": entry["modifier"], "outcome": entry["outcome"], "measure": entry.get("measure"),
                    "level": group["level"], "label": group["label"], "arm": group["arm"],
                    "comparison": _comparison(record, group["arm"]),
                    **{key: group.get(key) for key in ("effect", "ci_lower", "ci_upper", "p", "statistic",
                                                       "events_baclofen", "n_baclofen", "events_control",
                                                       "n_control")},
                    "p_text": _p_text(group.get("p"), group.get("p_relation")),
                    "yi": yi, "vi": vi, "rule": rule, **_provenance(record, group)})
    return pd.DataFrame(rows, columns=SUBGROUP_COLUMNS)


def _describe(group: pd.Series) -> str:
    """``women, 30 mg/day vs placebo: SMD 0.61 [0.16, 1.05], p = 0.002`` (what was published, nothing more)."""
    if pd.notna(group["effect"]):
        numbers = f"{group['measure']} {group['effect']:g}" + (
            f" [{group['ci_lower']:g}, {group['ci_upper']:g}]" if pd.notna(group["ci_lower"]) else "")
    elif pd.notna(group["events_baclofen"]):
        numbers = (f"{group['events_baclofen']:g}/{group['n_baclofen']:g} vs "
                   f"{group['events_control']:g}/{group['n_control']:g}")
    else:
        numbers = ""
    parts = [numbers, f"p {group['p_text']}" if group["p_text"] else ""]
    return f"{group['label']}: " + ", ".join(filter(None, parts)) if any(parts) else group["label"]


def _interaction(groups: pd.DataFrame, levels: tuple[str, str]) -> list[tuple[str, float, float, str]]:
    """The interactions an entry's subgroups allow: (arm, y_a - y_b, v_a + v_b, reason), or one reason why none.

    An interaction needs both levels of the modifier on the same comparison (arm), each with a variance.
    """
    usable = groups[np.isfinite(groups["vi"].to_numpy(dtype=float))]
    found = []
    for arm, rows in usable.groupby("arm", sort=False):
        by_level = {row["level"]: row for _, row in rows.iterrows()}
        if all(level in by_level for level in levels):
            first, second = (by_level[level] for level in levels)
            found.append((str(arm), first["yi"] - second["yi"], first["vi"] + second["vi"], ""))
    if found:
        return found
    if groups.empty:
        reason = "no subgroup results were published"
    elif usable.empty:
        reason = "no subgroup result has an interval or counts (" + "; ".join(sorted(set(groups["rule"]))) + ")"
    elif set(levels) <= set(usable["level"]):
        arms = "; ".join(f"{r['level']}: {r['comparison']}" for _, r in usable.iterrows())
        reason = f"the subgroups' effects are for different comparisons ({arms}), so their difference is no interaction"
    else:
        missing = [level for level in levels if level not in set(usable["level"])]
        reason = f"no usable result for the subgroup {', '.join(missing)}"
    return [("", math.nan, math.nan, reason)]


INTERACTION_COLUMNS = ["trial", "study", "modifier", "outcome", "measure", "contrast", "comparison", "subgroups",
                       "interaction_p", "interaction_p_text", "interaction_test", "direction", "estimable",
                       "interaction", "interaction_var", "interaction_se", "interaction_ci_lower",
                       "interaction_ci_upper", "ratio", "ratio_ci_lower", "ratio_ci_upper", "reason", "rule",
                       "source", "source_kind", "citation", "url", "quote", "derived", "note", "second_hand"]


def within_trial_interactions(trials: TrialSet | str | Path) -> pd.DataFrame:
    """Every within-trial effect-modification result, one row per trial x modifier x outcome (x comparison).

    Each row holds what the trial published: ``subgroups`` (each subgroup with its effect, interval and p as
    printed), the interaction test (``interaction_p``, ``interaction_p_text``, ``interaction_test``) and the
    ``direction`` in the source's words; the provenance of the entry (``source ... note``), with ``second_hand``
    true when the entry or any of its subgroups comes from a secondary source.

    Where both levels of the modifier have an effect with a variance on the same comparison, ``interaction`` is
    ``y_a - y_b`` (``contrast`` says which, e.g. ``women minus men``; log scale for ratio measures),
    ``interaction_var = v_a + v_b``, its 95% Wald interval, and for ratio measures ``ratio`` = exp(interaction),
    the ratio of the subgroups' effects. Otherwise ``estimable`` is false and ``reason`` says why.
    """
    trial_set = _trial_set(trials)
    groups = subgroup_effects(trial_set)
    rows = []
    for trial, record in trial_set.records.items():
        for entry_index, entry in enumerate(record.get("effect_modification", [])):
            levels = MODIFIERS[entry["modifier"]]
            mine = groups[(groups.trial == trial) & (groups.entry == entry_index)]
            measure = entry.get("measure")
            provenance = _provenance(record, entry)
            provenance["second_hand"] = provenance["second_hand"] or bool(mine["second_hand"].any())
            for arm, y, v, reason in _interaction(mine, levels):
                se = math.sqrt(v) if np.isfinite(v) else math.nan
                low, high = y - Z_975 * se, y + Z_975 * se
                ratio = measure in RATIO_EFFECTS and np.isfinite(y)
                rows.append({
                    "trial": trial, "study": _study(trial_set, trial), "modifier": entry["modifier"],
                    "outcome": entry["outcome"], "measure": measure, "contrast": f"{levels[0]} minus {levels[1]}",
                    "comparison": _comparison(record, arm) if arm else "",
                    "subgroups": " | ".join(_describe(g) for _, g in mine.iterrows()),
                    "interaction_p": entry.get("interaction_p"),
                    "interaction_p_text": _p_text(entry.get("interaction_p"), entry.get("interaction_p_relation")),
                    "interaction_test": entry.get("interaction_test", ""), "direction": entry["direction"],
                    "estimable": bool(np.isfinite(y)), "interaction": y, "interaction_var": v,
                    "interaction_se": se, "interaction_ci_lower": low, "interaction_ci_upper": high,
                    "ratio": math.exp(y) if ratio else math.nan,
                    "ratio_ci_lower": math.exp(low) if ratio else math.nan,
                    "ratio_ci_upper": math.exp(high) if ratio else math.nan,
                    "reason": reason,
                    "rule": "; ".join(dict.fromkeys(mine.loc[mine.arm == arm, "rule"])) if arm else "",
                    **provenance})
    return pd.DataFrame(rows, columns=INTERACTION_COLUMNS)


POOLED_COLUMNS = ["modifier", "measure", "contrast", "k", "trials", "estimable", "reason", "estimate", "se",
                  "ci_lower", "ci_upper", "pvalue", "tau2", "i2", "ratio", "ratio_ci_lower", "ratio_ci_upper",
                  "method", "test"]


def _not_estimable(modifier: str, measure: str | None, rows: pd.DataFrame, reason: str, method: str,
                   test: str) -> dict:
    return {"modifier": modifier, "measure": measure, "contrast": " minus ".join(MODIFIERS[modifier]),
            "k": int(rows["trial"].nunique()), "trials": ", ".join(dict.fromkeys(rows["trial"])),
            "estimable": False, "reason": reason, "method": method, "test": test}


def pool_interactions(interactions: pd.DataFrame, method: str = "REML", test: str = "z", level: float = 95, *,
                      outcome: str | None = None, control: Control | None = None) -> pd.DataFrame:
    """Pool the within-trial interactions of each modifier across trials (deft; Fisher et al., BMJ 2017;356:j573).

    Parameters
    ----------
    interactions : the output of :func:`within_trial_interactions` (rows not estimable are skipped).
    method, test, level, control : as :func:`metabac.pool` (default random effects, REML, Wald z).
    outcome : pool only the rows with this ``outcome`` text (a trial giving interactions on several outcomes
        enters a pooling once; without ``outcome`` such a group is reported as not estimable, never guessed).

    Returns
    -------
    DataFrame with one row per modifier (and measure): ``k`` trials with an interaction estimate, ``estimable``
    and, when not estimable, the ``reason`` (fewer than two trials, or a trial with several interactions), else the
    pooled ``estimate, se, ci_lower, ci_upper, pvalue, tau2, i2`` (and ``ratio`` with its interval for ratio
    measures: the ratio of the subgroups' effects). ``result.attrs["fits"]`` holds the
    :class:`metabac.PoolResult` of each estimable row by (modifier, measure).
    """
    data = interactions if outcome is None else interactions[interactions["outcome"] == outcome]
    rows, fits = [], {}
    for modifier in dict.fromkeys(data["modifier"]):
        mine = data[data["modifier"] == modifier]
        estimates = mine[mine["estimable"]]
        if estimates.empty:
            why = "; ".join(dict.fromkeys(f"{r.trial}: {r.reason}" for r in mine.itertuples()))
            rows.append(_not_estimable(modifier, None, mine.iloc[:0], f"no trial gives an interaction ({why})",
                                       method, test))
            continue
        for measure, group in estimates.groupby("measure", sort=False):
            counts = group["trial"].value_counts()
            several = counts[counts > 1]
            if not several.empty:
                outcomes = "; ".join(f"{t}: {', '.join(group.loc[group.trial == t, 'outcome'])}" for t in several.index)
                reason = (f"a trial gives several interactions ({outcomes}); choose one outcome with outcome=")
                rows.append(_not_estimable(modifier, measure, group, reason, method, test))
                continue
            if len(group) < 2:
                reason = (f"only {len(group)} trial ({group['trial'].iloc[0]}) gives an interaction; pooling needs two "
                          "or more")
                rows.append(_not_estimable(modifier, measure, group, reason, method, test))
                continue
            fit = pool(group["interaction"].to_numpy(float), group["interaction_var"].to_numpy(float),
                       method=method, test=test, level=level, measure=measure, labels=group["study"].to_numpy(),
                       control=control)
            fits[(modifier, measure)] = fit
            ratio = measure in RATIO_EFFECTS
            rows.append({**_not_estimable(modifier, measure, group, "", method, test), "estimable": True,
                         "estimate": fit.estimate, "se": fit.se, "ci_lower": fit.ci_low, "ci_upper": fit.ci_high,
                         "pvalue": fit.pvalue, "tau2": fit.tau2, "i2": fit.i2,
                         **({"ratio": math.exp(fit.estimate), "ratio_ci_lower": math.exp(fit.ci_low),
                             "ratio_ci_upper": math.exp(fit.ci_high)} if ratio else {})})
    result = pd.DataFrame(rows, columns=POOLED_COLUMNS)
    result.attrs["fits"] = fits
    return result
