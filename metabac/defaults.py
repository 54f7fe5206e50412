"""The analysis defaults the report and every command share, in one place (a command that disagreed with the
report would print another number for the same question)."""

from __future__ import annotations

# Cochrane's current random-effects methods (Cochrane Handbook chapter 10; RevMan since January 2025): REML tau²
# and the Hartung-Knapp-Sidik-Jonkman interval, with the prediction interval on the same t(k − 1) scale.
DEFAULT_METHOD = "REML"
DEFAULT_TEST = "knha"
# A placebo arm shared by several baclofen arms is compared with the arms combined (Cochrane Handbook 23.3.4).
DEFAULT_SHARED_CONTROL = "combine"
# An analysis pools one timepoint class: results at the end of treatment.
DEFAULT_TIMEPOINT_CLASS = "end of treatment"
