"""The analysis defaults the report and every command share, in one place (a command that disagreed with the
report would print another number for the same question)."""

from __future__ import annotations

from pathlib import Path

# Cochrane's current random-effects methods (Cochrane Handbook chapter 10; RevMan since January 2025): REML tau²
# and the Hartung-Knapp-Sidik-Jonkman interval, with the prediction interval on the same t(k − 1) scale.
DEFAULT_METHOD = "REML"
DEFAULT_TEST = "knha"
# A placebo arm shared by several baclofen arms is compared with the arms combined (Cochrane Handbook 23.3.4).
DEFAULT_SHARED_CONTROL = "combine"
# An analysis pools one timepoint class: results at the end of treatment.
DEFAULT_TIMEPOINT_CLASS = "end of treatment"


def bundled_trials() -> Path:
    """The folder of the trial records shipped with metabac (``*.toml``, ``review.toml``, ``published/``, README).

    An installed package holds them in ``metabac/bundled`` (pyproject.toml maps that package to the repository's
    ``trials/`` folder, the canonical copy); a source checkout or an editable install reads ``trials/`` itself.
    Every default ``trials_dir`` (and ``--trials``) is this folder, so the commands work from any directory.
    """
    installed = Path(__file__).resolve().parent / "bundled"
    return installed if installed.is_dir() else Path(__file__).resolve().parent.parent / "trials"
