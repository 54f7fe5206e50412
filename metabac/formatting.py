"""How numbers are printed, once for every summary, report, table and plot.

Results never round; these functions format only when printing:

- :func:`number`: a number with a fixed count of decimals, or ``"NA"``;
- :func:`natural_scale` and :func:`effect_text`: an effect and its interval back-transformed from the analysis
  scale (the log of a ratio measure) to the measure's own;
- :func:`p_value` and :func:`p_text`: a p-value, in the report's style or in metafor's;
- :func:`printed_decimals`: how many decimals a published number was printed with;
- :func:`slug`: a lower-case, hyphenated id for anchors and file names.

Measure names live in :data:`metabac.effects.MEASURE_NAMES` and :data:`metabac.effects.SCALE_NAMES`.
"""

from __future__ import annotations

import math
import re
from typing import Literal, SupportsFloat

from metabac.effects import RATIO_MEASURES

PStyle = Literal["report", "metafor"]
NA = "NA"


def _finite(value: SupportsFloat | None) -> float | None:
    """``value`` as a float where it is a finite number, else None (None, NaN, ±inf, pandas' NA)."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):  # pandas' NA, a text
        return None
    return number if math.isfinite(number) else None


def number(value: SupportsFloat | None, digits: int = 4) -> str:
    """``value`` with ``digits`` decimals (default 4, metafor's printing), or "NA" where it is not a finite number.

    >>> number(0.31321), number(2.5, 2), number(float("nan"))
    ('0.3132', '2.50', 'NA')
    """
    finite = _finite(value)
    return NA if finite is None else f"{finite:.{digits}f}"


def natural_scale(measure: str | None, value: SupportsFloat) -> float:
    """An estimate on the measure's own scale: exp(value) for a ratio measure (analysed as its log: OR, RR, Peto
    OR, ROM), the value itself for a difference (RD, MD, SMD) or an unknown measure; inf beyond the float range."""
    if measure not in RATIO_MEASURES:
        return float(value)
    try:
        return math.exp(float(value))
    except OverflowError:
        return math.inf


def effect_text(measure: str | None, estimate: SupportsFloat, low: SupportsFloat, high: SupportsFloat, *,
                level: float | None = None, digits: int = 2) -> str:
    """An effect and its interval on the natural scale (:func:`natural_scale`), with ``digits`` decimals.

    In a table cell ``2.18 [0.82, 5.76]``; with the interval's ``level`` (in percent), as a sentence prints it,
    ``2.18 (95% CI 0.82 to 5.76)``.
    """
    estimate_text, low_text, high_text = (number(natural_scale(measure, x), digits) for x in (estimate, low, high))
    if level is None:
        return f"{estimate_text} [{low_text}, {high_text}]"
    return f"{estimate_text} ({level:g}% CI {low_text} to {high_text})"


def p_value(p: SupportsFloat | None, digits: int = 4, *, style: PStyle = "report") -> str:
    """A p-value as text; below 10^-``digits`` it is printed as a bound.

    ``style="report"`` (every report, table and plot): "< 0.0001" below 10^-digits, ``digits`` decimals below
    0.001, three decimals otherwise (0.012, 0.0004), as journals print p-values. ``style="metafor"`` (the
    ``summary()`` of a result, in metafor's print layout): "<.0001" below 10^-digits, otherwise ``digits``
    decimals. "NA" where ``p`` is not a finite number.

    >>> p_value(0.01234), p_value(0.00042), p_value(1e-7), p_value(1e-7, style="metafor"), p_value(0.5, style="metafor")
    ('0.012', '0.0004', '< 0.0001', '<.0001', '0.5000')
    """
    finite = _finite(p)
    if finite is None:
        return NA
    smallest = 10.0**-digits
    if finite < smallest:
        bound = f"{smallest:.{digits}f}"
        return "<" + bound[1:] if style == "metafor" else "< " + bound
    if style == "metafor" or finite < 0.001:
        return f"{finite:.{digits}f}"
    return f"{finite:.3f}"


def p_text(p: SupportsFloat | None, name: str = "p") -> str:
    """A p-value in a sentence, in the report's style: ``p = 0.012``, ``p < 0.0001``, ``p = NA``."""
    text = p_value(p)
    return f"{name} {text}" if text.startswith("<") else f"{name} = {text}"


def printed_decimals(value: str | float) -> int:
    """How many decimals a number was printed with: "1.42" -> 2, "76" -> 0; a number read from a file (TOML) as
    Python writes it shortest, 11.9 -> 1, 57 -> 0. A number in exponent notation counts as 0."""
    if isinstance(value, int):
        return 0
    text = value if isinstance(value, str) else repr(float(value))
    fraction = text.split(".")[1] if "." in text else ""
    return 0 if "e" in text.lower() else len(fraction)


def slug(text: object) -> str:
    """A lower-case, hyphenated id for anchors and file names: ``"Hauser 2017"`` -> ``"hauser-2017"`` ("x" where
    nothing is left)."""
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-") or "x"
