"""Input validation shared by every public function.

Every error is an :class:`InputError` (a ``ValueError``) whose message names where the problem is (study or
file), the field and the problem, on one line, e.g. ``study 3 ("Smith 2001"): vi: must be positive, got -0.2``.
"""

from __future__ import annotations

import math
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

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
    except (TypeError, ValueError, OverflowError):
        raw = np.atleast_1d(np.asarray(values, dtype=object))
        for i, value in enumerate(raw):
            try:
                float(value)
            except (TypeError, ValueError):
                raise InputError(f"{study_name(i, labels)}: {field}: not a number: {value!r}") from None
            except OverflowError:
                raise InputError(f"{study_name(i, labels)}: {field}: must be finite, got a number of "
                                 f"{len(str(abs(value)))} digits (beyond 1e308)") from None
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
    """Confidence level in percent, strictly between 0 and 100; a level below 1 is a proportion (0.95 is 95%).

    As metafor's ``level`` argument: every function taking ``level`` reads it through this one check.
    """
    try:
        value = float(level)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"level: must be a number in (0, 100), got {level!r}") from None
    if not 0 < value < 100:
        raise InputError(f"level: must be in (0, 100) percent, got {level!r}")
    return 100 * value if value < 1 else value


def require_fraction(value: float, field: str) -> float:
    """A number strictly between 0 and 1 (e.g. a significance level ``alpha``)."""
    number = _real(value, field, "a number in (0, 1)")
    if not 0 < number < 1:
        raise InputError(f"{field}: must be in (0, 1), got {value!r}")
    return number


def require_positive_number(value: float, field: str, allow_inf: bool = False) -> float:
    """A number above 0 (e.g. a threshold in g/day), finite unless ``allow_inf``."""
    what = "a number > 0" if allow_inf else "a finite number > 0"
    number = _real(value, field, what)
    if not (number > 0 and (allow_inf or math.isfinite(number))):
        raise InputError(f"{field}: must be {what}, got {value!r}")
    return number


def require_nonnegative_number(value: float, field: str) -> float:
    """A finite number >= 0 given as a number, not as text or a boolean (e.g. a between-study variance tau²)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) or not (
            math.isfinite(value) and value >= 0):
        raise InputError(f"{field}: must be a finite number >= 0, got {value!r}")
    return float(value)


def require_whole_number(value: int, field: str, minimum: int = 1) -> int:
    """A whole number >= ``minimum`` (an int, or a float or numpy integer without a fractional part)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer, float, np.floating)) or (
            isinstance(value, (float, np.floating)) and not float(value).is_integer()) or value < minimum:
        raise InputError(f"{field}: must be a whole number >= {minimum}, got {value!r}")
    return int(value)


def _real(value: object, field: str, what: str) -> float:
    if isinstance(value, (bool, np.bool_)):
        raise InputError(f"{field}: must be {what}, got {value!r}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{field}: must be {what}, got {value!r}") from None
    if math.isnan(number):
        raise InputError(f"{field}: must be {what}, got {value!r}")
    return number


def random_generator(seed: int | np.random.Generator | None) -> np.random.Generator:
    """numpy's generator for ``seed`` (a whole number >= 0, a Generator, or None for fresh entropy)."""
    try:
        return np.random.default_rng(seed)
    except (TypeError, ValueError):
        raise InputError(f"seed: must be a whole number >= 0 or a numpy Generator, got {seed!r}") from None


# R's lm drops a column whose norm after projecting out the earlier columns is below 1e-7 of its own (LINPACK
# dqrdc2, tol = 1e-7); a design is refused here by the same relative rule.
RANK_TOLERANCE = 1e-7


def require_full_rank(X: NDArray[np.float64], weights: NDArray[np.float64], what: str) -> None:
    """The weighted design W^½X (k x p) must have full column rank, to R's relative tolerance.

    Each column of W^½X is scaled to unit length and decomposed by QR; a |R_jj| below :data:`RANK_TOLERANCE` means
    column j is (nearly) a combination of the earlier ones, so its coefficient is not identified (metafor and R's
    ``lm`` drop such a column, or stop: "model matrix not of full rank").
    """
    design = np.sqrt(weights)[:, None] * X
    norms = np.linalg.norm(design, axis=0)
    if X.shape[0] >= X.shape[1] and np.all(norms > 0) and np.all(np.isfinite(norms)):
        diagonal = np.abs(np.diag(np.linalg.qr(design / norms, mode="r")))
        if np.all(diagonal >= RANK_TOLERANCE):
            return
    raise InputError(f"{what}: rank-deficient design: a predictor is constant, zero or collinear with the others "
                     f"(to a relative {RANK_TOLERANCE:g}), so its coefficient is not identified")


def read_regular_file(path: Path) -> bytes:
    """The bytes of ``path``, refusing anything but a regular file (a named pipe would block forever, a device such
    as /dev/zero never ends). The file is opened without blocking and checked on the open descriptor, so nothing
    can be swapped in between the check and the read."""
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, not a file") from None
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        kind = ("folder" if stat.S_ISDIR(mode) else "named pipe" if stat.S_ISFIFO(mode) else
                "device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "socket" if stat.S_ISSOCK(mode)
                else "special file")
        raise InputError(f"{path}: not a regular file (a {kind}); give the path of a file")
    with os.fdopen(descriptor, "rb") as handle:
        return handle.read()


Choice = TypeVar("Choice", bound=str)


def require_choice(value: str, choices: Sequence[Choice], field: str) -> Choice:
    """``value`` must be one of ``choices`` (case-insensitive); returns the canonical spelling, typed as the choices
    are (pass ``typing.get_args`` of a Literal alias to get that alias back)."""
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
    require_label_count(names, k)
    return y, v, names or [f"study {i + 1}" for i in range(k)]


def require_label_count(names: Sequence[str] | None, k: int) -> None:
    """Study labels, where given, are one per study."""
    if names is not None and len(names) != k:
        raise InputError(f"labels: {len(names)} labels for {k} studies")


class StudyData(NamedTuple):
    """What a function taking ``yi, vi`` reads: effect sizes, variances, study labels and the measure."""

    yi: Any
    vi: Any
    labels: Any
    measure: str | None


def unpack_effect_sizes(yi: Any, vi: Any, labels: Any = None, measure: str | None = None, *,
                        required: bool = True) -> StudyData:
    """``yi, vi`` as given, or the columns of the DataFrame that :func:`metabac.effect_sizes` returns, passed as
    ``yi`` with ``vi`` left out: its ``yi`` and ``vi``, its ``study`` column as labels (unless ``labels`` is
    given) and its measure (``frame.attrs["measure"]``, unless ``measure`` is given). ``required``: whether a
    missing ``vi`` is an error (``failsafe_n`` has a form without variances)."""
    columns = getattr(yi, "columns", None)
    if isinstance(vi, str) and columns is not None:
        raise InputError(f"vi: got {vi!r} after an effect-size frame; name the argument, e.g. pool(es, method={vi!r})")
    if vi is None and columns is not None and "yi" in columns and "vi" in columns:
        if labels is None and "study" in columns:
            labels = yi["study"].to_numpy()
        return StudyData(yi["yi"].to_numpy(), yi["vi"].to_numpy(), labels, measure or yi.attrs.get("measure"))
    if vi is None and (required or columns is not None):
        raise InputError("vi: missing; pass yi and vi, or the DataFrame of mb.effect_sizes (columns yi and vi) alone")
    return StudyData(yi, vi, labels, measure)
