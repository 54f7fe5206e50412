"""metabac: reproducible meta-analysis of clinical trials, validated against R's metafor.

The public API is listed in ``__all__``; everything else is internal.
"""

from __future__ import annotations

__version__ = "0.1.0"
__citation__ = "metabac {version}: meta-analysis of clinical trials, validated against R's metafor.".format(
    version=__version__
)

from metabac._checks import ConvergenceError, InputError

__all__ = [
    "__version__",
    "InputError",
    "ConvergenceError",
]
