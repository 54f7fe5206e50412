"""What every result object shares: JSON-ready conversion and the summary's number formats.

Results never round; numbers are formatted only when printing, by :mod:`metabac.formatting`: ``fmt`` is its
:func:`~metabac.formatting.number` and ``fmt_p`` its :func:`~metabac.formatting.p_value` in metafor's style
(``<.0001``), as the summaries print them.
"""

from __future__ import annotations

import dataclasses
import math
from functools import partial
from typing import Any

import numpy as np

from metabac.formatting import number, p_value

fmt = number
fmt_p = partial(p_value, style="metafor")


def to_jsonable(value: Any) -> Any:
    """Convert numpy scalars and arrays, tuples and nested results to JSON types; NaN and inf become None."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if hasattr(value, "_asdict"):
        return {name: to_jsonable(item) for name, item in value._asdict().items()}
    if isinstance(value, dict):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(item) for item in value]
    if isinstance(value, np.ndarray):
        return to_jsonable(value.tolist())
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    return value


class Result:
    """Base of the result dataclasses: ``to_dict()`` (every field, JSON-ready), ``summary()`` (printed by ``str``)
    and a short ``repr``, ``<PoolResult: ...>``, with numbers as printed rather than ``np.float64(...)``.

    Subclasses are declared ``@dataclass(frozen=True, repr=False)`` so that this repr is theirs; they write
    ``summary()`` and, where the summary's first line says too little, ``brief()``.
    """

    def to_dict(self) -> dict:
        """JSON-ready dict of every field: numpy values become Python ones, arrays lists, NaN and inf None."""
        return to_jsonable(self)

    def summary(self) -> str:
        """The result as text."""
        raise NotImplementedError

    def brief(self) -> str:
        """The result on one line (the summary's first line unless a subclass says more)."""
        return self.summary().splitlines()[0]

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.brief()}>"


def table(header: list[str], rows: list[list[str]]) -> str:
    """Right-aligned plain-text columns."""
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows)]
    lines = [" ".join(cell.rjust(width) for cell, width in zip(line, widths)) for line in [header, *rows]]
    return "\n".join(lines)
