"""Arm-level data to effect sizes ``yi`` and sampling variances ``vi``, as R metafor's ``escalc``.

Each measure is one function over arrays plus one entry in :data:`MEASURES`. Binary measures take 2x2 cells
``ai, bi, ci, di`` (events and non-events in the treatment and control group); ``ai, n1i, ci, n2i`` (events and
group sizes) are converted to cells first. Continuous measures take ``m1i, sd1i, n1i, m2i, sd2i, n2i``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NamedTuple, get_args

import numpy as np
from numpy.typing import ArrayLike, NDArray

from metabac._checks import (
    InputError,
    as_float_array,
    label_list,
    require_choice,
    require_nonnegative_counts,
    require_positive,
    same_length,
    study_name,
)

if TYPE_CHECKING:
    import pandas as pd

Measure = Literal["OR", "RR", "RD", "PETO", "MD", "SMD", "ROM"]
AddTo = Literal["only0", "all", "if0all", "none"]
SmdCorrection = Literal["exact", "approximate"]
SmdVtype = Literal["LS", "UB", "RM5"]
Array = NDArray[np.float64]


@dataclass(frozen=True)
class Cells:
    """A batch of 2x2 tables: events ``a``/``c`` and non-events ``b``/``d`` in groups 1 and 2."""

    a: Array
    b: Array
    c: Array
    d: Array

    @property
    def n1(self) -> Array:
        return self.a + self.b

    @property
    def n2(self) -> Array:
        return self.c + self.d

    def has_zero(self) -> NDArray[np.bool_]:
        """Studies with a zero in any cell."""
        return (self.a == 0) | (self.b == 0) | (self.c == 0) | (self.d == 0)

    def double_zero(self) -> NDArray[np.bool_]:
        """Studies with no events (or only events) in both groups."""
        return ((self.a == 0) & (self.c == 0)) | ((self.b == 0) & (self.d == 0))

    def with_continuity(self, add: float, to: AddTo) -> Cells:
        """Add ``add`` to every cell of the studies chosen by ``to`` (escalc's ``add``/``to`` rule).

        ``only0``: studies with a zero cell; ``all``: every study; ``if0all``: every study if any has a zero cell;
        ``none``: no study.
        """
        if not add >= 0:  # also rejects NaN
            raise InputError(f"add: the continuity correction must be a number >= 0, got {add}")
        if to == "all":
            chosen = np.ones_like(self.a, dtype=bool)
        elif to == "only0":
            chosen = self.has_zero()
        elif to == "if0all":
            chosen = np.full_like(self.a, self.has_zero().any(), dtype=bool)
        else:
            chosen = np.zeros_like(self.a, dtype=bool)
        shift = np.where(chosen, add, 0.0)
        return Cells(self.a + shift, self.b + shift, self.c + shift, self.d + shift)


def log_odds_ratio(t: Cells) -> tuple[Array, Array]:
    """Log odds ratio: yi = log(a·d / (b·c)), vi = 1/a + 1/b + 1/c + 1/d (Woolf 1955)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        yi = np.log(t.a) + np.log(t.d) - np.log(t.b) - np.log(t.c)
        vi = 1 / t.a + 1 / t.b + 1 / t.c + 1 / t.d
    return yi, vi


def log_risk_ratio(t: Cells) -> tuple[Array, Array]:
    """Log risk ratio: yi = log(a/n1) − log(c/n2), vi = 1/a − 1/n1 + 1/c − 1/n2 (Katz et al. 1978)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        yi = np.log(t.a / t.n1) - np.log(t.c / t.n2)
        vi = 1 / t.a - 1 / t.n1 + 1 / t.c - 1 / t.n2
    return yi, vi


def risk_difference(t: Cells) -> tuple[Array, Array]:
    """Risk difference: yi = p1 − p2, vi = p1(1 − p1)/n1 + p2(1 − p2)/n2 (escalc's default ``vtype="LS"``)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        p1, p2 = t.a / t.n1, t.c / t.n2
    return p1 - p2, p1 * (1 - p1) / t.n1 + p2 * (1 - p2) / t.n2


def log_peto_odds_ratio(t: Cells) -> tuple[Array, Array]:
    """Peto's one-step log odds ratio: yi = (a − E)/V, vi = 1/V (Yusuf et al. 1985).

    E = n1·(a + c)/N and V = (a + c)(b + d)·n1·n2 / (N²(N − 1)), the hypergeometric mean and variance of ``a``.
    """
    n1, n2 = t.n1, t.n2
    total = n1 + n2
    events, non_events = t.a + t.c, t.b + t.d
    expected = events * n1 / total
    variance = events * non_events * (n1 / total) * (n2 / total) / (total - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return (t.a - expected) / variance, 1 / variance


def mean_difference(m1: Array, sd1: Array, n1: Array, m2: Array, sd2: Array, n2: Array) -> tuple[Array, Array]:
    """Raw mean difference: yi = m1 − m2, vi = sd1²/n1 + sd2²/n2 (unequal variances, escalc ``vtype="LS"``)."""
    return m1 - m2, sd1**2 / n1 + sd2**2 / n2


def hedges_correction(df: Array) -> Array:
    """Exact small-sample correction J(m) = Γ(m/2) / (√(m/2) Γ((m − 1)/2)) (Hedges 1981, eq. 6e)."""
    from scipy.special import gammaln

    return np.exp(gammaln(df / 2) - 0.5 * np.log(df / 2) - gammaln((df - 1) / 2))


def standardised_mean_difference(
    m1: Array, sd1: Array, n1: Array, m2: Array, sd2: Array, n2: Array,
    correction: SmdCorrection = "exact", vtype: SmdVtype = "LS",
) -> tuple[Array, Array]:
    """Hedges' g: yi = J(n1 + n2 − 2)·(m1 − m2)/s_pooled, vi = 1/n1 + 1/n2 + yi²/(2(n1 + n2)).

    s_pooled² = ((n1 − 1)sd1² + (n2 − 1)sd2²)/(n1 + n2 − 2); J is the exact correction of
    :func:`hedges_correction`; the variance is escalc's default large-sample one (``vtype="LS"``, Hedges 1982).
    ``correction="approximate"``: J = 1 − 3/(4N − 9) (Hedges 1981; RevMan 5). ``vtype="UB"``: the unbiased
    variance 1/n1 + 1/n2 + (1 − (N − 4)/((N − 2)J²))·yi² (escalc ``vtype="UB"``, R meta ``exact.smd=TRUE``);
    ``vtype="RM5"``: N/(n1·n2) + yi²/(2(N − 3.94)) (RevMan 5, Deeks & Higgins 2010).
    """
    df = n1 + n2 - 2
    pooled_sd = np.sqrt(((n1 - 1) * sd1**2 + (n2 - 1) * sd2**2) / df)
    j = hedges_correction(df) if correction == "exact" else 1 - 3 / (4 * (n1 + n2) - 9)
    yi = j * (m1 - m2) / pooled_sd
    if vtype == "UB":
        return yi, 1 / n1 + 1 / n2 + (1 - (df - 2) / (df * j**2)) * yi**2
    if vtype == "RM5":
        return yi, (n1 + n2) / (n1 * n2) + yi**2 / (2 * (n1 + n2 - 3.94))
    return yi, 1 / n1 + 1 / n2 + yi**2 / (2 * (n1 + n2))


def log_ratio_of_means(m1: Array, sd1: Array, n1: Array, m2: Array, sd2: Array, n2: Array) -> tuple[Array, Array]:
    """Log ratio of means: yi = log(m1/m2), vi = sd1²/(n1·m1²) + sd2²/(n2·m2²) (Hedges et al. 1999)."""
    return np.log(m1 / m2), sd1**2 / (n1 * m1**2) + sd2**2 / (n2 * m2**2)


BINARY_MEASURES: dict[str, Callable[[Cells], tuple[Array, Array]]] = {
    "OR": log_odds_ratio,
    "RR": log_risk_ratio,
    "RD": risk_difference,
    "PETO": log_peto_odds_ratio,
}
CONTINUOUS_MEASURES: dict[str, Callable[..., tuple[Array, Array]]] = {
    "MD": mean_difference,
    "SMD": standardised_mean_difference,
    "ROM": log_ratio_of_means,
}
MEASURES: tuple[str, ...] = (*BINARY_MEASURES, *CONTINUOUS_MEASURES)
RATIO_MEASURES: frozenset[str] = frozenset({"OR", "RR", "PETO", "ROM"})
# The measures' names, once: reports name them so, and summaries of a fit name the scale it is on (SCALE_NAMES: the
# log of a ratio measure, which is what yi and the pooled estimate are).
MEASURE_NAMES: dict[str, str] = {
    "OR": "odds ratio", "RR": "risk ratio", "RD": "risk difference", "PETO": "Peto odds ratio",
    "MD": "mean difference", "SMD": "standardised mean difference (Hedges' g)", "ROM": "ratio of means",
}
SCALE_NAMES: dict[str, str] = {m: f"log {name}" if m in RATIO_MEASURES else name for m, name in MEASURE_NAMES.items()}


def canonical_measure(measure: str | None) -> str | None:
    """A known measure in its canonical spelling, whatever its case ("rr" -> "RR", so that it is back-transformed
    like "RR"); any other name (a measure computed elsewhere) is kept as given, as a label."""
    if measure is None:
        return None
    return {m.upper(): m for m in MEASURES}.get(str(measure).upper(), str(measure))
BINARY_FIELDS = ("ai", "bi", "ci", "di", "n1i", "n2i")
CONTINUOUS_FIELDS = ("m1i", "sd1i", "n1i", "m2i", "sd2i", "n2i")


def cells_from_arms(arms: Mapping[str, ArrayLike], labels: Sequence[str] | None = None) -> Cells:
    """Validate binary arm data (``ai, bi, ci, di`` or ``ai, n1i, ci, n2i``) and return the 2x2 cells.

    Counts must be whole, non-negative and no larger than their group size.
    """
    if "ai" not in arms or "ci" not in arms:
        raise InputError("binary data: need ai and ci, with bi and di or with n1i and n2i")
    values = {name: as_float_array(arms[name], name, labels) for name in BINARY_FIELDS if name in arms}
    same_length(values, "binary data")
    for name, array in values.items():
        require_nonnegative_counts(array, name, labels)
    cells = {}
    for event, non_event, total in (("ai", "bi", "n1i"), ("ci", "di", "n2i")):
        if non_event in values:
            cells[non_event] = values[non_event]
            if total in values:
                off = values[event] + values[non_event] != values[total]
                if off.any():
                    i = int(np.flatnonzero(off)[0])
                    raise InputError(
                        f"{study_name(i, labels)}: {total}: {values[total][i]:g} differs from {event} + {non_event} = "
                        f"{values[event][i] + values[non_event][i]:g}"
                    )
        elif total in values:
            over = values[event] > values[total]
            if over.any():
                i = int(np.flatnonzero(over)[0])
                raise InputError(
                    f"{study_name(i, labels)}: {event}: {values[event][i]:g} events exceed the group size "
                    f"{total}={values[total][i]:g}"
                )
            cells[non_event] = values[total] - values[event]
        else:
            raise InputError(f"binary data: need {non_event} or {total} beside {event}")
    return Cells(values["ai"], cells["bi"], values["ci"], cells["di"])


def continuous_arms(arms: Mapping[str, ArrayLike], labels: Sequence[str] | None = None) -> dict[str, Array]:
    """Validate continuous arm data: means finite, SDs and group sizes positive."""
    missing = [name for name in CONTINUOUS_FIELDS if name not in arms]
    if missing:
        raise InputError(f"continuous data: missing {', '.join(missing)}")
    values = {name: as_float_array(arms[name], name, labels) for name in CONTINUOUS_FIELDS}
    same_length(values, "continuous data")
    for name in ("sd1i", "sd2i", "n1i", "n2i"):
        require_positive(values[name], name, labels)
    return values


class EffectArrays(NamedTuple):
    """The numbers of :func:`effect_sizes` without its DataFrame: ``yi`` and ``vi`` of every study in input order,
    ``keep`` (False for the double-zero studies ``drop00`` drops) and the measure in its canonical spelling."""

    yi: Array
    vi: Array
    keep: NDArray[np.bool_]
    measure: str


def effect_arrays(measure: str, arms: Mapping[str, ArrayLike], labels: ArrayLike | None = None, add: float = 0.5,
                  to: AddTo = "only0", drop00: bool = False, smd_correction: SmdCorrection = "exact",
                  smd_vtype: SmdVtype = "LS") -> EffectArrays:
    """:func:`effect_sizes` as arrays (the same arguments, with the arm data as one mapping; the same checks and
    errors), for callers that build no DataFrame and so need not import pandas (``metabac pool``)."""
    measure = require_choice(measure, MEASURES, "measure")
    to = require_choice(to, get_args(AddTo), "to")
    names = label_list(labels)
    if measure in BINARY_MEASURES:
        cells = cells_from_arms(arms, names)
        keep = ~cells.double_zero() if drop00 else np.ones_like(cells.a, dtype=bool)
        yi, vi = BINARY_MEASURES[measure](cells.with_continuity(float(add), to))
    else:
        values = continuous_arms(arms, names)
        if measure == "ROM":
            require_positive(values["m1i"], "m1i", names)
            require_positive(values["m2i"], "m2i", names)
        columns = [values[name] for name in CONTINUOUS_FIELDS]
        if measure == "SMD":
            correction = require_choice(smd_correction, get_args(SmdCorrection), "smd_correction")
            vtype = require_choice(smd_vtype, get_args(SmdVtype), "smd_vtype")
            m1i, sd1i, n1i, m2i, sd2i, n2i = columns
            with np.errstate(divide="ignore", invalid="ignore"):  # n1i + n2i <= 2: reported below
                yi, vi = standardised_mean_difference(m1i, sd1i, n1i, m2i, sd2i, n2i, correction=correction,
                                                      vtype=vtype)
        else:
            yi, vi = CONTINUOUS_MEASURES[measure](*columns)
        keep = np.ones_like(yi, dtype=bool)
    bad = keep & ~(np.isfinite(yi) & np.isfinite(vi))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        reason = ("zero cells with add=0 or no events in either group); use add > 0 or drop00=True"
                  if measure in BINARY_MEASURES else "SMD needs n1i + n2i > 2)")
        raise InputError(f"{study_name(i, names)}: {measure}: effect size is not estimable ({reason}")
    return EffectArrays(yi, vi, keep, measure)


def effect_sizes(
    measure: str,
    *,
    add: float = 0.5,
    to: AddTo = "only0",
    drop00: bool = False,
    labels: ArrayLike | None = None,
    smd_correction: SmdCorrection = "exact",
    smd_vtype: SmdVtype = "LS",
    **arms: ArrayLike,
) -> pd.DataFrame:
    """Compute effect sizes and sampling variances from arm-level data, as metafor's ``escalc``.

    Parameters
    ----------
    measure : {"OR", "RR", "RD", "PETO", "MD", "SMD", "ROM"}
        Log odds ratio, log risk ratio, risk difference, log Peto odds ratio, mean difference, Hedges' g,
        log ratio of means.
    add, to : float, {"only0", "all", "if0all", "none"}
        Continuity correction for binary measures: ``add`` is added to every cell of the studies chosen by
        ``to`` (default: 1/2 to studies with a zero cell, as escalc).
    drop00 : bool
        Drop studies with no events (or only events) in both groups; their rows are removed and the DataFrame
        index keeps the original study positions.
    labels : array-like, optional
        Study labels, used in error messages and passed through as column ``study``.
    smd_correction, smd_vtype : str
        SMD only: Hedges' correction ("exact" or RevMan's "approximate") and variance ("LS", "UB" or "RM5"); see
        :func:`standardised_mean_difference`. The defaults are escalc's.
    **arms : array-like
        ``ai, bi, ci, di`` or ``ai, n1i, ci, n2i`` for binary measures; ``m1i, sd1i, n1i, m2i, sd2i, n2i`` for
        continuous measures. Any other keyword is a label column passed through unchanged.

    Returns
    -------
    pandas.DataFrame
        Columns ``yi`` and ``vi`` (one row per study, in input order) plus the label columns, with the measure in
        ``frame.attrs["measure"]``. Every function that takes ``yi, vi`` also takes this frame alone (``pool(es)``),
        with its ``study`` column as labels.

    Examples
    --------
    >>> effect_sizes("RR", ai=[30], n1i=[42], ci=[12], n2i=[42]).round(4)
           yi     vi
    0  0.9163  0.069
    """
    import pandas as pd

    yi, vi, keep, measure = effect_arrays(measure, arms, labels, add, to, drop00, smd_correction, smd_vtype)
    names = label_list(labels)
    data_fields = BINARY_FIELDS if measure in BINARY_MEASURES else CONTINUOUS_FIELDS
    frame = pd.DataFrame({"yi": yi, "vi": vi})
    if names is not None:
        if len(names) != len(frame):
            raise InputError(f"labels: {len(names)} labels for {len(frame)} studies")
        frame.insert(0, "study", names)
    for name, column in arms.items():
        if name not in data_fields:
            extra = list(np.atleast_1d(np.asarray(column, dtype=object)))
            if len(extra) != len(frame):
                raise InputError(f"{name}: {len(extra)} values for {len(frame)} studies")
            frame[name] = extra
    frame = frame.loc[keep]
    frame.attrs["measure"] = measure  # read by pool(es) and the other functions that accept this frame
    return frame
