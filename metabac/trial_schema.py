"""The schema of a trial record (``trials/<id>.toml``), declared once, and the validator that enforces it.

The schema is data: :data:`TRIAL` is a tree of :class:`Table`, :class:`MapOf` and :class:`Field`. The validator
walks a parsed record against it and raises :class:`metabac.InputError` with ``<file>: <field.path>: <problem>``.
``trials/README.md`` documents the same tree (``metabac trials schema`` prints it).

Provenance rule: every table that holds a measured number is *sourced*: it must name a ``source`` (a key of the
record's ``[sources]``) and carry the verbatim ``quote`` the number was read in; a ``derived`` text states any
arithmetic (a count back-calculated from a percentage, an SD from an SE). Whether a number is second-hand follows
from its source's ``kind``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from fractions import Fraction
from functools import cached_property
from typing import Any

from metabac._checks import InputError
from metabac.formatting import printed_decimals

Number = (int, float)


@dataclass(frozen=True)
class Field:
    """One value: its type (``str``, ``int``, ``float`` for any number, ``bool``), choices and bounds."""

    kind: type
    doc: str
    required: bool = False
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None


@dataclass(frozen=True)
class Table:
    """A TOML table with named fields. ``sourced`` tables also get ``source``, ``quote`` and ``derived``."""

    fields: dict[str, Node]
    doc: str
    required: bool = False
    sourced: bool = False


@dataclass(frozen=True)
class MapOf:
    """A TOML table whose keys are names chosen by the author (arm ids, outcome names), each a ``value``."""

    value: Table
    doc: str
    required: bool = False
    key_choices: tuple[str, ...] | None = None
    key_pattern: str = r"^[a-z][a-z0-9_]*$"


@dataclass(frozen=True)
class ListOf:
    """A TOML array of tables (``[[name]]``)."""

    value: Table
    doc: str
    required: bool = False


Node = Field | Table | MapOf | ListOf

PROVENANCE: dict[str, Field] = {
    "source": Field(str, "key of the [sources] entry the number was read in", required=True),
    "quote": Field(str, "the verbatim sentence or table row the number comes from", required=True),
    "derived": Field(str, "how the number was computed from published ones (empty: read as published)"),
    "note": Field(str, "anything a reader should know about this number"),
}

SOURCE_KINDS = ("primary", "abstract", "registry", "secondary")
POPULATIONS = ("general", "liver disease", "cirrhosis", "hepatitis C", "smokers")
CONTROLS = ("placebo", "active", "no intervention")
OUTCOME_KINDS = ("binary", "continuous")
ANALYSIS_SETS = ("ITT", "modified ITT", "completers", "not stated")
TIMEPOINT_CLASSES = ("end of treatment", "follow-up")
REVIEW_FILE = "review.toml"  # the review's question beside the records (metabac.review), never a trial record
BINARY_OUTCOMES = ("abstinence", "relapse", "heavy_relapse", "abstinence_or_low_risk", "dropout",
                   "adverse_events", "dropout_adverse_events", "serious_adverse_events")
CONTINUOUS_OUTCOMES = ("percent_days_abstinent", "heavy_drinking_days", "drinks_per_drinking_day",
                       "cumulative_abstinence_days", "craving")
OUTCOMES = BINARY_OUTCOMES + CONTINUOUS_OUTCOMES
BASELINE_MEASURES = ("g_per_day", "drinks_per_day", "drinks_per_week", "drinks_per_drinking_day",
                     "heavy_drinking_days_percent")

ARM_RESULT = Table({
    "events": Field(int, "participants with the event", minimum=0),
    "n": Field(int, "participants in the denominator (the analysis set)", minimum=1),
    "percent": Field(float, "the published percentage, kept as printed", minimum=0, maximum=100),
    "mean": Field(float, "arm mean"),
    "sd": Field(float, "standard deviation", minimum=0),
    "se": Field(float, "standard error of the mean (SD = SE * sqrt(n) when no SD is published)", minimum=0),
}, "one arm's result for the outcome", sourced=True)

# Within-trial effect modification. Each modifier has two levels; an interaction is always the first level's
# effect minus the second's (log scale for ratio measures), so that trials line up when pooled.
MODIFIERS: dict[str, tuple[str, str]] = {
    "sex": ("women", "men"),
    "dependence_severity": ("higher", "lower"),
    "drinking_risk_level": ("high", "not high"),
    "hepatitis_c": ("HCV", "no HCV"),
}
RATIO_EFFECTS = ("RR", "OR", "HR")
EFFECT_MEASURES = RATIO_EFFECTS + ("RD", "SMD", "MD")
P_RELATIONS = ("=", "<")
COUNT_FIELDS = ("events_baclofen", "n_baclofen", "events_control", "n_control")

SUBGROUP = Table({
    "level": Field(str, "the modifier's level this subgroup is (see MODIFIERS)", required=True),
    "label": Field(str, "the subgroup as the source names it", required=True),
    "arm": Field(str, "the baclofen arm compared with its control, or 'all' for baclofen of any dose",
                 required=True),
    "effect": Field(float, "the subgroup's effect of baclofen vs control, in the entry's measure"),
    "ci_lower": Field(float, "lower bound of its 95% confidence interval"),
    "ci_upper": Field(float, "upper bound of its 95% confidence interval"),
    "p": Field(float, "p-value of the subgroup's effect", minimum=0, maximum=1),
    "p_relation": Field(str, "'=' or '<' (p printed as a bound)", choices=P_RELATIONS),
    "statistic": Field(str, "the test statistic as printed, e.g. 't(110) = 3.19'"),
    "events_baclofen": Field(int, "baclofen participants with the event", minimum=0),
    "n_baclofen": Field(int, "baclofen participants in the subgroup", minimum=1),
    "events_control": Field(int, "control participants with the event", minimum=0),
    "n_control": Field(int, "control participants in the subgroup", minimum=1),
}, "one subgroup's result", sourced=True)

EFFECT_MODIFICATION = Table({
    "modifier": Field(str, "the candidate effect modifier", required=True, choices=tuple(MODIFIERS)),
    "outcome": Field(str, "the outcome the subgroups were compared on, as the source names it", required=True),
    "measure": Field(str, "effect measure of the subgroup effects (needed when a subgroup has numbers)",
                     choices=EFFECT_MEASURES),
    "direction": Field(str, "which subgroup responded more, as the source says", required=True),
    "interaction_p": Field(float, "p-value of the published test of interaction", minimum=0, maximum=1),
    "interaction_p_relation": Field(str, "'=' or '<' (p printed as a bound)", choices=P_RELATIONS),
    "interaction_test": Field(str, "the interaction test and statistic as printed"),
    "subgroups": ListOf(SUBGROUP, "the subgroups' results, where published"),
}, "a within-trial effect-modification result", sourced=True)

# Risk of bias, RoB 2 (Sterne JAC et al. RoB 2: a revised tool for assessing risk of bias in randomised trials.
# BMJ 2019;366:l4898). D1 is judged once per trial; D2-D5 and the overall per result (one or more outcomes).
ROB_JUDGEMENTS = ("low", "some concerns", "high", "no information")
ROB_DOMAINS = {
    "randomisation": "D1 randomisation process",
    "deviations": "D2 deviations from intended interventions",
    "missing_data": "D3 missing outcome data",
    "measurement": "D4 measurement of the outcome",
    "reported_result": "D5 selection of the reported result",
}
SEVERAL_CONCERNS = 3  # this many domains at 'some concerns' make the overall 'high' (see overall_judgement)

ROB_DOMAIN = Table({
    "judgement": Field(str, "low, some concerns, high, or no information (nothing read bears on the domain)",
                       required=True, choices=ROB_JUDGEMENTS),
    "rationale": Field(str, "the reasoning along RoB 2's signalling questions; the numbers come from facts or quote",
                       required=True),
    "facts": Field(list, "paths in this record that support the judgement (baseline, outcomes.dropout, "
                         "sources.healio, ...): their numbers, sources and quotes are shown, not restated"),
    "source": Field(str, "key of the [sources] entry the supporting sentence was read in (a secondary source, "
                         "e.g. a published review's judgement, makes the judgement second-hand)"),
    "quote": Field(str, "the verbatim supporting sentence"),
}, "one RoB 2 domain: judgement, rationale and support")

ROB_RESULT = Table({
    "outcomes": Field(list, "the outcomes whose results this assessment covers", required=True, choices=OUTCOMES),
    **{key: replace(ROB_DOMAIN, doc=label, required=True) for key, label in ROB_DOMAINS.items()
       if key != "randomisation"},
    "overall": Field(str, "overall risk of bias of the result, by overall_judgement", required=True,
                     choices=ROB_JUDGEMENTS),
    "overall_reason": Field(str, "the assessor's reason where the overall departs from the rule"),
    "indirectness": Field(str, "why this result answers the review question only indirectly (GRADE), if it does"),
}, "RoB 2 for one or more results of the trial")

RISK_OF_BIAS = Table({
    "randomisation": replace(ROB_DOMAIN, doc="D1 randomisation process, judged once for the trial", required=True),
    "results": ListOf(ROB_RESULT, "one assessment per result (outcomes sharing their data share it)",
                      required=True),
}, "risk of bias by RoB 2 (Sterne et al., BMJ 2019;366:l4898)")


def overall_judgement(judgements: Iterable[str], several: int = SEVERAL_CONCERNS) -> str:
    """The overall RoB 2 judgement of a result from its five domain judgements.

    RoB 2 (Sterne et al. 2019, Table 2): low if every domain is low; high if any domain is high, or if some
    concerns in multiple domains substantially lower confidence in the result; otherwise some concerns. This rule
    makes "multiple" ``several`` (default 3) domains judged 'some concerns' on the facts. A domain with 'no
    information' counts as 'some concerns' for the worst-domain part (RoB 2's algorithms map missing information to
    some concerns) but not towards ``several``: missing reports alone do not make a result 'high'. Every domain
    'no information' gives 'no information'.

    >>> overall_judgement(["low", "some concerns", "low", "low", "no information"])
    'some concerns'
    >>> overall_judgement(["some concerns", "low", "some concerns", "low", "some concerns"])
    'high'
    """
    levels = list(judgements)
    if all(level == "no information" for level in levels):
        return "no information"
    if "high" in levels or levels.count("some concerns") >= several:
        return "high"
    return "low" if all(level == "low" for level in levels) else "some concerns"


def resolve_path(record: dict, path: str) -> Any:
    """The value at a dotted path of a record (``outcomes.abstinence``, ``baseline[1]``, ``sources.healio``);
    KeyError when the path leads nowhere."""
    value: Any = record
    for part in path.split("."):
        match = re.fullmatch(r"([a-z_][a-z0-9_]*)(?:\[(\d+)\])?", part)
        if match is None or not isinstance(value, dict) or match.group(1) not in value:
            raise KeyError(path)
        value = value[match.group(1)]
        if match.group(2) is not None:
            if not isinstance(value, list) or int(match.group(2)) >= len(value):
                raise KeyError(path)
            value = value[int(match.group(2))]
    return value

TRIAL = Table({
    "id": Field(str, "identifier: first author and year in lower case, equal to the file name",
                required=True, pattern=r"^[a-z][a-z0-9_]*$"),
    "title": Field(str, "title of the trial report", required=True),
    "acronym": Field(str, "the trial's name, e.g. ALPADIR"),
    "citation": Table({
        "authors": Field(str, "first author et al.", required=True),
        "year": Field(int, "year of the full report", required=True, minimum=1900, maximum=2100),
        "journal": Field(str, "journal, volume and pages", required=True),
        "doi": Field(str, "DOI, only where a source gives it"),
        "pmid": Field(str, "PubMed id, only where a source gives it"),
        "registry": Field(str, "trial registry id(s)"),
    }, "bibliographic record of the main report", required=True),
    "country": Field(str, "country or countries"),
    "population": Field(str, "the population class used as a predictor", required=True, choices=POPULATIONS),
    "population_detail": Field(str, "the population as the report describes it"),
    "design": Table({
        "randomised": Field(bool, "allocation was randomised", required=True),
        "blinding": Field(str, "blinding", required=True,
                          choices=("double-blind", "single-blind", "open-label", "not stated")),
        "control": Field(str, "kind of control arm: placebo, an active comparator, or no intervention (the control "
                         "group was left untreated)", required=True, choices=CONTROLS),
        "centres": Field(str, "single- or multicentre, as described"),
    }, "how the trial was run", required=True),
    "duration": Table({"weeks": Field(float, "treatment duration in weeks", required=True, minimum=0)},
                      "treatment duration", sourced=True),
    "detoxification": Table({
        "required": Field(bool, "abstinence or detoxification was required before randomisation", required=True),
    }, "whether participants were detoxified before treatment", sourced=True),
    "sample": Table({
        "men": Field(int, "men randomised", minimum=0),
        "women": Field(int, "women randomised", minimum=0),
        "male_percent": Field(float, "percent men, where only a percentage is published", minimum=0, maximum=100),
    }, "sex mix of the randomised sample", sourced=True),
    "drink_size": Table({
        "grams": Field(float, "grams of ethanol in one standard drink", required=True, minimum=1),
        "assumption": Field(str, "why this size is assumed when the trial does not state it (then no source)"),
        "source": Field(str, "key of the [sources] entry stating the size"),
        "quote": Field(str, "the sentence stating the size"),
        "note": Field(str, "remarks"),
    }, "the standard drink used to convert drinks to grams"),
    "inclusion": Table({
        "criterion": Field(str, "the entry criterion on drinking level, as written", required=True),
        "min_g_per_day": Field(float, "lowest daily intake a man could enter with, in grams", minimum=0),
        "min_g_per_day_women": Field(float, "the same for women", minimum=0),
    }, "entry criterion on drinking level", sourced=True),
    "sources": MapOf(Table({
        "kind": Field(str, "primary (trial report), abstract, registry or secondary (review, news, press)",
                      required=True, choices=SOURCE_KINDS),
        "citation": Field(str, "what the source is", required=True),
        "url": Field(str, "where it can be read (http or https)", required=True, pattern=r"^https?://\S+$"),
    }, "one source"), "the sources numbers are read from, by key", required=True),
    "arms": MapOf(Table({
        "role": Field(str, "experimental (baclofen) or control", required=True, choices=("experimental", "control")),
        "drug": Field(str, "baclofen, placebo or the active comparator", required=True),
        "compared_with": Field(str, "for an experimental arm: the key of its control arm"),
        "dose_mg_day": Field(float, "daily dose in mg (target or maximum for titrated doses)", minimum=0),
        "dose_note": Field(str, "titration, target or achieved dose"),
        "randomised": Field(int, "participants randomised to the arm", minimum=1),
    }, "one arm", sourced=True), "the trial's arms by key", required=True),
    "baseline": ListOf(Table({
        "arm": Field(str, "arm key, or 'all' for the whole sample", required=True),
        "measure": Field(str, "what was measured", required=True, choices=BASELINE_MEASURES),
        "mean": Field(float, "mean at baseline", required=True, minimum=0),
        "sd": Field(float, "standard deviation", minimum=0),
    }, "baseline drinking", sourced=True), "baseline drinking, per arm or for the whole sample"),
    "outcomes": MapOf(Table({
        "definition": Field(str, "the outcome as the report defines it", required=True),
        "timepoint": Field(str, "when it was measured", required=True),
        "timepoint_weeks": Field(float, "weeks since randomisation at which it was measured (absent where the "
                                 "source does not say)", minimum=0),
        "timepoint_class": Field(str, "end of treatment, or a follow-up after treatment ended; an analysis pools "
                                 "one class", required=True, choices=TIMEPOINT_CLASSES),
        "complement_of": Field(str, "the outcome of the same trial this one was derived from as its complement "
                               "(arm n minus that outcome's events): never pooled as a separate finding",
                               choices=OUTCOMES),
        "analysis_set": Field(str, "who is in the denominator", required=True, choices=ANALYSIS_SETS),
        "arms": MapOf(ARM_RESULT, "results by arm key", required=True),
    }, "one outcome"), "outcomes by name", key_choices=OUTCOMES),
    "notes": Field(str, "what a reader of the record should know: gaps, conflicts between sources"),
    "effect_modification": ListOf(EFFECT_MODIFICATION, "within-trial subgroup and interaction results"),
    "risk_of_bias": RISK_OF_BIAS,
}, "a trial record")


def _extended(node: Node, extra: Mapping[tuple[str, ...], tuple[str, ...]]) -> Node:
    """``node`` with every list of choices (of a field, or of a map's names) that is a key of ``extra`` extended
    by its value; the rest of the tree unchanged."""
    if isinstance(node, Field):
        if node.choices is not None and node.choices in extra:
            return replace(node, choices=node.choices + extra[node.choices])
        return node
    if isinstance(node, Table):
        return _extended_table(node, extra)
    value = _extended_table(node.value, extra)
    if isinstance(node, MapOf) and node.key_choices is not None and node.key_choices in extra:
        return replace(node, value=value, key_choices=node.key_choices + extra[node.key_choices])
    return replace(node, value=value)


def _extended_table(table: Table, extra: Mapping[tuple[str, ...], tuple[str, ...]]) -> Table:
    """``table`` with each field extended as :func:`_extended` says."""
    return replace(table, fields={key: _extended(child, extra) for key, child in table.fields.items()})


@dataclass(frozen=True)
class Vocabulary:
    """The names a review folder's records may use beyond the built-in ones, as its ``review.toml`` declares them
    (:mod:`metabac.review`): outcomes with their kind (``binary`` or ``continuous``) and population classes."""

    outcomes: Mapping[str, str] = field(default_factory=dict)
    populations: tuple[str, ...] = ()

    @cached_property
    def kinds(self) -> dict[str, str]:
        """Every outcome name a record may use, built-in ones first, with its kind."""
        return {**{name: "binary" for name in BINARY_OUTCOMES},
                **{name: "continuous" for name in CONTINUOUS_OUTCOMES}, **self.outcomes}

    @cached_property
    def schema(self) -> Table:
        """:data:`TRIAL` with the declared outcome names and populations among its choices."""
        new_outcomes = tuple(name for name in self.outcomes if name not in OUTCOMES)
        new_populations = tuple(name for name in self.populations if name not in POPULATIONS)
        if not new_outcomes and not new_populations:
            return TRIAL
        return _extended(TRIAL, {OUTCOMES: new_outcomes, POPULATIONS: new_populations})  # type: ignore[return-value]


BUILT_IN = Vocabulary()


def _type_name(kind: type) -> str:
    return {str: "text", int: "an integer", float: "a number", bool: "true or false", list: "a list of texts"}[kind]


def _check_value(value: Any, spec: Field, where: str) -> None:
    if spec.kind is list:
        if not isinstance(value, list) or not value or not all(isinstance(item, str) for item in value):
            raise InputError(f"{where}: must be a list of one or more texts, got {value!r}")
        for i, item in enumerate(value):
            _check_value(item, Field(str, spec.doc, choices=spec.choices), f"{where}[{i}]")
        if len(set(value)) != len(value):
            raise InputError(f"{where}: lists an entry twice")
        return
    if spec.kind is float:
        ok = isinstance(value, Number) and not isinstance(value, bool)
    elif spec.kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, spec.kind)
    if not ok:
        raise InputError(f"{where}: must be {_type_name(spec.kind)}, got {value!r}")
    if spec.kind is float and not math.isfinite(value):
        raise InputError(f"{where}: must be finite, got {value!r}")
    if spec.kind is str and not value.strip():
        raise InputError(f"{where}: must not be empty")
    if spec.choices is not None and value not in spec.choices:
        raise InputError(f"{where}: {value!r} is not one of {', '.join(spec.choices)}")
    if spec.minimum is not None and value < spec.minimum:
        raise InputError(f"{where}: {value!r} is below the minimum {spec.minimum:g}")
    if spec.maximum is not None and value > spec.maximum:
        raise InputError(f"{where}: {value!r} is above the maximum {spec.maximum:g}")
    if spec.pattern is not None and not re.fullmatch(spec.pattern, value):  # "$" alone lets "x\n" by
        raise InputError(f"{where}: {value!r} must match {spec.pattern}")


def table_fields(table: Table) -> dict[str, Node]:
    """The fields of a table, with the provenance fields of a sourced table."""
    return {**table.fields, **PROVENANCE} if table.sourced else table.fields


def _path(where: str, key: str) -> str:
    """``where.key``, or ``<file>: key`` at the top of a record (``where`` is then the file name and a colon)."""
    return f"{where} {key}" if where.endswith(":") else f"{where}.{key}" if where else key


def _check_table(value: Any, spec: Table, where: str) -> None:
    if not isinstance(value, dict):
        raise InputError(f"{where}: must be a table, got {value!r}")
    fields = table_fields(spec)
    for key in value:
        if key not in fields:
            raise InputError(f"{_path(where, key)}: unknown field (known: {', '.join(fields)})")
    for key, node in fields.items():
        if key in value:
            check_node(value[key], node, _path(where, key))
        elif node.required:
            raise InputError(f"{_path(where, key)}: missing")


def check_node(value: Any, node: Node, where: str) -> None:
    """Check ``value`` against ``node``; raise InputError naming ``where`` (file: dotted.path) on the first problem."""
    if isinstance(node, Field):
        _check_value(value, node, where)
    elif isinstance(node, Table):
        _check_table(value, node, where)
    elif isinstance(node, MapOf):
        if not isinstance(value, dict) or not value:
            raise InputError(f"{where}: must be a table of one or more named entries")
        for key, item in value.items():
            if node.key_choices is not None and key not in node.key_choices:
                raise InputError(f"{_path(where, key)}: unknown name (known: {', '.join(node.key_choices)})")
            if not re.fullmatch(node.key_pattern, key):
                raise InputError(f"{_path(where, key)}: names are lower case letters, digits and _")
            _check_table(item, node.value, _path(where, key))
    else:
        if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
            raise InputError(f"{where}: must be an array of tables ([[...]])")
        for i, item in enumerate(value):
            _check_table(item, node.value, f"{where}[{i}]")


@dataclass
class _Walk:
    """Collects the sourced tables of a record with their paths (for the cross-field rules)."""

    found: list[tuple[str, dict]] = field(default_factory=list)

    def visit(self, value: Any, node: Node, where: str) -> None:
        if isinstance(node, Table) and isinstance(value, dict):
            if node.sourced:
                self.found.append((where, value))
            for key, child in node.fields.items():
                if key in value:
                    self.visit(value[key], child, f"{where}.{key}" if where else key)
        elif isinstance(node, MapOf) and isinstance(value, dict):
            for key, item in value.items():
                self.visit(item, node.value, f"{where}.{key}")
        elif isinstance(node, ListOf) and isinstance(value, list):
            for i, item in enumerate(value):
                self.visit(item, node.value, f"{where}[{i}]")


def percent_matches(percent: float, events: int, n: int) -> bool:
    """Whether a published ``percent`` is events/n rounded to its printed decimals, half up or half to even.

    Journals round both ways (1/8 = 12.5% prints as "13" half up, "12" half to even), so both are accepted;
    truncation (6/7 = 85.71% printed "85") is not, since it reads as a wrong count. The comparison is exact: events/n
    as a fraction, the percentage as the decimal written in the file.
    """
    scale = 10 ** printed_decimals(percent)
    scaled = Fraction(100 * events, n) * scale
    below = math.floor(scaled)
    half_up = below + (scaled - below >= Fraction(1, 2))
    half_even = round(scaled)  # Fraction rounds halves to even, exactly
    return Fraction(repr(float(percent))) * scale in (half_up, half_even)


def _check_arm_result(result: dict, outcome: str, kind: str, where: str) -> None:
    events, n, percent = result.get("events"), result.get("n"), result.get("percent")
    if kind == "binary":
        extra = [key for key in ("mean", "sd", "se") if key in result]
        if extra:
            raise InputError(f"{where}.{extra[0]}: {outcome} is a binary outcome (events/n or percent)")
        if events is None and percent is None:
            raise InputError(f"{where}: a binary result needs events (with n) or a published percent")
        if events is None:
            return
        if n is None:
            raise InputError(f"{where}.n: missing (events need a denominator)")
        if events > n:
            raise InputError(f"{where}.events: {events} is above n = {n}")
        if percent is not None:
            decimals = printed_decimals(percent)
            if not percent_matches(percent, events, n):
                raise InputError(f"{where}.percent: {percent} does not match events/n = {events}/{n} "
                                 f"= {100 * events / n:.{decimals + 1}f}%")
    else:
        extra = [key for key in ("events", "percent") if key in result]
        if extra:
            raise InputError(f"{where}.{extra[0]}: {outcome} is a continuous outcome (mean, sd or se, n)")
        if "mean" not in result:
            raise InputError(f"{where}.mean: missing")
        if "sd" in result and "se" in result:
            raise InputError(f"{where}.se: give sd or se, not both")
        if "se" in result and n is None:
            raise InputError(f"{where}.n: missing (an SE converts to an SD only with n)")


def _check_subgroup(group: dict, entry: dict, arms: dict, where: str) -> None:
    levels = MODIFIERS[entry["modifier"]]
    if group["level"] not in levels:
        raise InputError(f"{where}.level: {group['level']!r} is not a level of {entry['modifier']} "
                         f"({', '.join(levels)})")
    if group["arm"] != "all" and arms.get(group["arm"], {}).get("role") != "experimental":
        raise InputError(f"{where}.arm: {group['arm']!r} is not a baclofen arm of this trial (or 'all')")
    if "p_relation" in group and "p" not in group:
        raise InputError(f"{where}.p_relation: given without p")
    counts = [key for key in COUNT_FIELDS if key in group]
    has_ci = [key for key in ("ci_lower", "ci_upper") if key in group]
    if ("effect" in group or counts) and "measure" not in entry:
        raise InputError(f"{where}: a subgroup with numbers needs the entry's measure")
    if has_ci and len(has_ci) < 2:
        raise InputError(f"{where}: give both ci_lower and ci_upper")
    if has_ci and "effect" not in group:
        raise InputError(f"{where}.effect: missing (an interval needs its estimate)")
    if "effect" in group and has_ci and not group["ci_lower"] <= group["effect"] <= group["ci_upper"]:
        raise InputError(f"{where}: effect {group['effect']} lies outside its interval "
                         f"[{group['ci_lower']}, {group['ci_upper']}]")
    if "effect" in group and entry.get("measure") in RATIO_EFFECTS and min(
            group[key] for key in ("effect", *has_ci)) <= 0:
        raise InputError(f"{where}: a {entry['measure']} and its interval must be positive")
    if counts:
        if "effect" in group:
            raise InputError(f"{where}: give an effect with its interval, or counts, not both")
        if len(counts) < len(COUNT_FIELDS):
            missing = [key for key in COUNT_FIELDS if key not in group]
            raise InputError(f"{where}.{missing[0]}: missing (counts need events and n in both arms)")
        if entry["measure"] not in ("RR", "OR", "RD"):
            raise InputError(f"{where}: counts give a RR, OR or RD, not {entry['measure']}")
        for arm in ("baclofen", "control"):
            if group[f"events_{arm}"] > group[f"n_{arm}"]:
                raise InputError(f"{where}.events_{arm}: {group[f'events_{arm}']} is above n = {group[f'n_{arm}']}")


def _check_effect_modification(record: dict, name: str) -> None:
    """The rules across fields of ``[[effect_modification]]``: levels of the modifier, arms, intervals, counts."""
    for i, entry in enumerate(record.get("effect_modification", [])):
        where = f"{name}: effect_modification[{i}]"
        if "interaction_p_relation" in entry and "interaction_p" not in entry:
            raise InputError(f"{where}.interaction_p_relation: given without interaction_p")
        for j, group in enumerate(entry.get("subgroups", [])):
            _check_subgroup(group, entry, record["arms"], f"{where}.subgroups[{j}]")


def check_record(record: dict, name: str, stem: str, vocabulary: Vocabulary = BUILT_IN) -> None:
    """Validate a parsed record: the schema, then the rules across fields. ``name`` prefixes every message.
    ``vocabulary`` holds the outcomes and populations the review folder declares besides the built-in ones."""
    schema = vocabulary.schema
    check_node(record, schema, f"{name}:")
    if record["id"] != stem:
        raise InputError(f"{name}: id: {record['id']!r} differs from the file name {stem!r}")
    sources, arms = record["sources"], record["arms"]
    walk = _Walk()
    walk.visit(record, schema, "")
    for where, table in walk.found:
        if table["source"] not in sources:
            raise InputError(f"{name}: {where}.source: {table['source']!r} is not a key of [sources]")
    size = record.get("drink_size")
    if size is not None:
        if "assumption" not in size and not ("source" in size and "quote" in size):
            raise InputError(f"{name}: drink_size: needs source and quote, or an assumption")
        if "source" in size and size["source"] not in sources:
            raise InputError(f"{name}: drink_size.source: {size['source']!r} is not a key of [sources]")
    controls = [key for key, arm in arms.items() if arm["role"] == "control"]
    for key, arm in arms.items():
        where = f"{name}: arms.{key}"
        if arm["role"] == "experimental":
            target = arm.get("compared_with")
            if target is None:
                raise InputError(f"{where}.compared_with: missing (name the control arm)")
            if target not in controls:
                raise InputError(f"{where}.compared_with: {target!r} is not a control arm of this trial")
        elif "compared_with" in arm:
            raise InputError(f"{where}.compared_with: only experimental arms are compared with a control")
    if not any(arm["role"] == "experimental" for arm in arms.values()):
        raise InputError(f"{name}: arms: no experimental arm")
    for entry_index, entry in enumerate(record.get("baseline", [])):
        if entry["arm"] != "all" and entry["arm"] not in arms:
            raise InputError(f"{name}: baseline[{entry_index}].arm: {entry['arm']!r} is not an arm of this trial")
    for outcome, spec in record.get("outcomes", {}).items():
        for arm_key, result in spec["arms"].items():
            where = f"{name}: outcomes.{outcome}.arms.{arm_key}"
            if arm_key not in arms:
                raise InputError(f"{where}: {arm_key!r} is not an arm of this trial")
            _check_arm_result(result, outcome, vocabulary.kinds[outcome], where)
            randomised = arms[arm_key].get("randomised")
            if randomised is not None and result.get("n", 0) > randomised and spec["analysis_set"] != "not stated":
                raise InputError(f"{where}.n: {result['n']} is above the {randomised} randomised")
    _check_effect_modification(record, name)
    check_risk_of_bias(record, name)


def _check_rob_domain(domain: dict, where: str, record: dict) -> None:
    """A judgement needs support (facts of the record or a sourced quote); every fact and source must exist."""
    for path in domain.get("facts", []):
        try:
            resolve_path(record, path)
        except KeyError:
            raise InputError(f"{where}.facts: {path!r} is not a path of this record") from None
    if ("source" in domain) != ("quote" in domain):
        raise InputError(f"{where}: a supporting quote needs its source and a source its quote")
    if "source" in domain and domain["source"] not in record["sources"]:
        raise InputError(f"{where}.source: {domain['source']!r} is not a key of [sources]")
    if domain["judgement"] != "no information" and not domain.get("facts") and "quote" not in domain:
        raise InputError(f"{where}: {domain['judgement']!r} without support (facts or source and quote); "
                         "a judgement without support is 'no information'")


def check_risk_of_bias(record: dict, name: str) -> None:
    """The rules across fields of ``[risk_of_bias]``: support for every judgement, assessed outcomes that the
    record reports (each once), and an overall that follows :func:`overall_judgement` or says why not."""
    rob = record.get("risk_of_bias")
    if rob is None:
        return
    _check_rob_domain(rob["randomisation"], f"{name}: risk_of_bias.randomisation", record)
    seen: set[str] = set()
    for i, result in enumerate(rob["results"]):
        where = f"{name}: risk_of_bias.results[{i}]"
        for outcome in result["outcomes"]:
            if outcome not in record.get("outcomes", {}):
                raise InputError(f"{where}.outcomes: {outcome!r} is not an outcome of this record")
            if outcome in seen:
                raise InputError(f"{where}.outcomes: {outcome!r} is assessed twice")
            seen.add(outcome)
        for key in ROB_DOMAINS:
            if key != "randomisation":
                _check_rob_domain(result[key], f"{where}.{key}", record)
        judgements = [rob["randomisation"]["judgement"]] + [result[k]["judgement"] for k in ROB_DOMAINS
                                                               if k != "randomisation"]
        rule = overall_judgement(judgements)
        if result["overall"] != rule and "overall_reason" not in result:
            raise InputError(f"{where}.overall: {result['overall']!r}, but the rule gives {rule!r} "
                             "(give overall_reason to depart from it)")


def describe(node: Node, name: str = "", depth: int = 0) -> str:
    """The schema as an indented text tree: ``name: type (required) - meaning``."""
    pad = "  " * depth
    if isinstance(node, Field):
        extra = f" one of: {', '.join(node.choices)}" if node.choices else ""
        return f"{pad}{name}: {_type_name(node.kind)}{' (required)' if node.required else ''} - {node.doc}{extra}"
    if isinstance(node, Table):
        head = [f"{pad}[{name}]{' (required)' if node.required else ''} - {node.doc}"] if name else []
        inner = "  " * (depth + (1 if name else 0))
        lines = head + [describe(child, key, depth + (1 if name else 0)) for key, child in node.fields.items()]
        if node.sourced:
            lines.append(f"{inner}+ source, quote (required), derived, note: the provenance of the numbers above")
        return "\n".join(lines)
    label = f"{name}.<name>" if isinstance(node, MapOf) else f"[{name}]"
    keys = f" (names: {', '.join(node.key_choices)})" if isinstance(node, MapOf) and node.key_choices else ""
    title = f"{pad}{label}{' (required)' if node.required else ''} - {node.doc}{keys}"
    return title + "\n" + describe(node.value, "", depth + 1)
