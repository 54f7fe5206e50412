"""metabac: reproducible meta-analysis of clinical trials, validated against R's metafor.

The public API is listed in ``__all__``; everything else is internal.

``import metabac`` imports none of the modules behind the API: each public name is imported from its module on
first use (PEP 562 module ``__getattr__``), so that a script or command pays only for the modules it uses
(numpy, scipy, pandas and matplotlib take about a second to import, ``import metabac`` a few milliseconds).
``from metabac import pool``, ``dir(metabac)`` and ``metabac.pool`` work as for eagerly imported names. Which
module holds each name is written once, as the imports under ``if TYPE_CHECKING:`` at the end of this file: type
checkers read them as ordinary imports, and :func:`_public_names` reads them for ``__getattr__``.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__citation__ = f"metabac {__version__}: meta-analysis of clinical trials, validated against R's metafor."

__all__ = [
    "__version__",
    "InputError",
    "bundled_trials",
    "ConvergenceError",
    "Control",
    "HeterogeneityCI",
    "Interval",
    "MEASURES",
    "METHODS",
    "MetaRegResult",
    "PermutationResult",
    "SubgroupResult",
    "metareg",
    "subgroups",
    "PoolBatch",
    "PoolResult",
    "bayes",
    "BayesResult",
    "tau_prior",
    "TauPrior",
    "effect_sizes",
    "read_table",
    "read_study_table",
    "StudyTable",
    "mantel_haenszel",
    "peto",
    "pool",
    "PROFILE_NAMES",
    "PROFILES",
    "Profile",
    "ProfiledResult",
    "analyse",
    "reproduce",
    "PredictorsResult",
    "predictors",
    "TrialSet",
    "load_trials",
    "comparisons",
    "coverage",
    "within_trial_interactions",
    "subgroup_effects",
    "pool_interactions",
    "classify_severity",
    "leave_one_out",
    "influence",
    "cumulative",
    "baujat",
    "gosh",
    "GoshResult",
    "simulate",
    "SimulationResult",
    "egger",
    "begg",
    "peters",
    "harbord",
    "trimfill",
    "failsafe_n",
    "RegressionTestResult",
    "BeggResult",
    "TrimFillResult",
    "FailSafeResult",
]


def _public_names() -> dict[str, tuple[str, str]]:
    """Each public name with the module that defines it and its name there: the ``from metabac.x import y [as z]``
    lines under ``if TYPE_CHECKING:`` in this file, read with :mod:`ast` (about a millisecond, once)."""
    import ast
    from pathlib import Path

    tree = ast.parse(Path(__file__).read_text(encoding="utf-8"))
    block = next(node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING")
    return {alias.asname or alias.name: (node.module, alias.name)
            for node in block.body if isinstance(node, ast.ImportFrom) and node.module
            for alias in node.names}


_API: dict[str, tuple[str, str]] = {}  # filled by _public_names on the first lookup of a name not yet imported


def _public(name: str) -> Any:
    """The public object ``name``, imported from its module."""
    if not _API:
        _API.update(_public_names())
    module, attribute = _API[name]
    return getattr(importlib.import_module(module), attribute)


def __getattr__(name: str) -> Any:
    """A public name, imported from its module on first use and then kept in this module's namespace; or a
    submodule (``metabac.pooling``), which ``import metabac`` used to import along with the API."""
    if name in __all__:
        value = _public(name)
        globals()[name] = value  # later lookups find it without calling __getattr__
        return value
    if not name.startswith("__") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Package(types.ModuleType):
    """This package's module type: a public function keeps its name when the submodule of that name is imported.

    Importing a submodule binds it as an attribute of its package (``metabac.bayes`` = the module) after it has
    run; for ``bayes``, ``predictors`` and ``reproduce``, whose public function has the module's name, the
    function is bound instead, as the eager ``from metabac.bayes import bayes`` of earlier versions left it."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in __all__ and isinstance(value, types.ModuleType) and value.__name__ == f"{__name__}.{name}":
            value = _public(name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # the names as type checkers and IDEs see them: the same imports, made eagerly
    from metabac._checks import ConvergenceError, InputError
    from metabac.bayes import BayesResult, bayes
    from metabac.bayes_priors import TauPrior, tau_prior
    from metabac.bias import (
        BeggResult,
        FailSafeResult,
        RegressionTestResult,
        TrimFillResult,
        begg,
        egger,
        failsafe_n,
        harbord,
        peters,
        trimfill,
    )
    from metabac.defaults import bundled_trials
    from metabac.effects import MEASURES, effect_sizes
    from metabac.interaction import pool_interactions, subgroup_effects, within_trial_interactions
    from metabac.io import StudyTable, read_study_table, read_table
    from metabac.mantel_haenszel import mantel_haenszel, peto
    from metabac.moderators import MetaRegResult, PermutationResult, SubgroupResult, metareg, subgroups
    from metabac.pooling import HeterogeneityCI, Interval, PoolBatch, PoolResult, pool
    from metabac.predictors import PredictorsResult, predictors
    from metabac.profiles import PROFILE_NAMES, PROFILES, Profile, ProfiledResult, analyse
    from metabac.reproduce import reproduce
    from metabac.sensitivity import GoshResult, baujat, cumulative, gosh, influence, leave_one_out
    from metabac.severity import classify as classify_severity
    from metabac.simulation import SimulationResult, simulate
    from metabac.tau2 import METHODS, Control
    from metabac.trials import TrialSet, comparisons, coverage, load_trials
