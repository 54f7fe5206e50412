"""metabac: reproducible meta-analysis of clinical trials, validated against R's metafor.

The public API is listed in ``__all__``; everything else is internal.
"""

from __future__ import annotations

__version__ = "0.1.0"
__citation__ = f"metabac {__version__}: meta-analysis of clinical trials, validated against R's metafor."

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
