"""Input validation shared by every public function.

Every error is an :class:`InputError` (a ``ValueError``) whose message names where the problem is (study or
file), the field and the problem, on one line, e.g. ``study 3 ("Smith 2001"): vi: must be positive, got -0.2``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray


# Control characters (newlines, escape sequences) in labels or file contents are shown escaped, so a message is
# always one line and cannot drive the terminal it is printed on.
_ONE_LINE = {code: f"\\x{code:02x}" for code in [*range(0x20), *range(0x7F, 0xA0)]} | {
    ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}


def printable(text: object) -> str:
    """``text`` on one line with control characters shown escaped (``\\n``, ``\\x1b``): safe to print."""
    return str(text).translate(_ONE_LINE)


# A spreadsheet reads a cell starting with one of these as a formula ("=HYPERLINK(...)", "@SUM(...)", "-2+3"), or
# (tab, carriage return) as the start of one; OWASP's CSV-injection rule prefixes such text with a single quote.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """``value`` safe to write as a CSV cell: text starting with ``= + - @``, a tab or a carriage return gets a
    leading ``'`` so no spreadsheet runs it as a formula (OWASP, CSV injection); numbers, including negative ones,
    and any other value are returned unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


class InputError(ValueError):
    """Bad input: the message names the study or file, the field and the problem, on one line."""

    def __init__(self, message: object = "", *args: object) -> None:
        super().__init__(printable(message), *args)


class ConvergenceError(InputError):
    """An iterative estimator did not reach its root; the message names the method and iterations tried."""


def study_name(index: int, labels: Sequence[str] | None = None) -> str:
    """Human name of study ``index`` (0-based) for error messages: ``study 3 ("Smith 2001")``."""
    if labels is not None and index < len(labels):
        return f'study {index + 1} ("{labels[index]}")'
    return f"study {index + 1}"


def as_float_array(values: ArrayLike, field: str, labels: Sequence[str] | None = None) -> NDArray[np.float64]:
    """Convert to a 1-D float array, rejecting text, NaN and infinities with a message naming the study."""
    try:
        array = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raw = np.atleast_1d(np.asarray(values, dtype=object))
        for i, value in enumerate(raw):
            try:
                float(value)
            except (TypeError, ValueError):
                raise InputError(f"{study_name(i, labels)}: {field}: not a number: {value!r}") from None
        raise InputError(f"{field}: not numeric") from None
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1:
        raise InputError(f"{field}: expected a one-dimensional sequence, got shape {array.shape}")
    bad = ~np.isfinite(array)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"{study_name(i, labels)}: {field}: must be finite, got {array[i]}")
    return array


def same_length(arrays: dict[str, NDArray], what: str = "inputs") -> int:
    """Check that all arrays have one length; return it."""
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        detail = ", ".join(f"{name}={n}" for name, n in lengths.items())
        raise InputError(f"{what}: lengths differ ({detail})")
    k = next(iter(lengths.values()), 0)
    if k == 0:
        raise InputError(f"{what}: no studies (empty input)")
    return k


def require_positive(array: NDArray, field: str, labels: Sequence[str] | None = None) -> None:
    """Every value must be > 0."""
    bad = array <= 0
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"{study_name(i, labels)}: {field}: must be positive, got {array[i]:g}")


def require_nonnegative_counts(array: NDArray, field: str, labels: Sequence[str] | None = None) -> None:
    """Counts must be non-negative whole numbers."""
    bad = array < 0
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputError(f"{study_name(i, labels)}: {field}: must not be negative, got {array[i]:g}")
    fractional = array != np.round(array)
    if fractional.any():
        i = int(np.flatnonzero(fractional)[0])
        raise InputError(f"{study_name(i, labels)}: {field}: must be a whole number, got {array[i]:g}")


def require_level(level: float) -> float:
    """Confidence level in percent, strictly between 0 and 100."""
    try:
        value = float(level)
    except (TypeError, ValueError):
        raise InputError(f"level: must be a number in (0, 100), got {level!r}") from None
    if not 0 < value < 100:
        raise InputError(f"level: must be in (0, 100) percent, got {level!r}")
    return value


def require_choice(value: str, choices: Sequence[str], field: str) -> str:
    """``value`` must be one of ``choices`` (case-insensitive); returns the canonical spelling."""
    canonical = {c.upper(): c for c in choices}
    key = str(value).upper()
    if key not in canonical:
        raise InputError(f"{field}: unknown value {value!r}; choose one of {', '.join(choices)}")
    return canonical[key]


def effects_and_variances(yi: ArrayLike, vi: ArrayLike, labels: Sequence[str] | None = None
                          ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Effect sizes and sampling variances as finite float arrays of one length, the variances positive."""
    y, v = as_float_array(yi, "yi", labels), as_float_array(vi, "vi", labels)
    same_length({"yi": y, "vi": v}, "yi/vi")
    require_positive(v, "vi", labels)
    return y, v


def label_list(labels: ArrayLike | None) -> list[str] | None:
    """Study labels as a list of strings (a scalar label is a list of one), or None."""
    return None if labels is None else [str(x) for x in np.atleast_1d(np.asarray(labels, dtype=object))]


def study_inputs(
    yi: ArrayLike, vi: ArrayLike, labels: ArrayLike | None
) -> tuple[NDArray[np.float64], NDArray[np.float64], list[str]]:
    """Validated effect sizes, positive variances and study labels ("study i" where none are given)."""
    names = label_list(labels)
    y, v = effects_and_variances(yi, vi, names)
    k = len(y)
    if names is not None and len(names) != k:
        raise InputError(f"labels: {len(names)} labels for {k} studies")
    return y, v, names or [f"study {i + 1}" for i in range(k)]
