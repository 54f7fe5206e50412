"""Shared fixtures and the tolerance policy (see tests/reference/README.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

REFERENCE_DIR = Path(__file__).parent / "reference"

# Closed-form statistics (effect sizes, EE/DL/HE/HS/SJ, MH, Peto, Q, I², H²): the same arithmetic in another order.
RTOL_CLOSED = 1e-10
# Iterative ones (ML/REML/EB/PM, Q-profile bounds) against references solved to the root: both at the root.
RTOL_ITERATIVE = 1e-8
# Absolute floor for values that are 0 in the reference (boundary tau², p-values that underflow).
ATOL = 1e-12
# I² is in percent; a boundary tau² that metafor leaves at ~1e-11 instead of 0 shows there as ~1e-7.
ATOL_I2 = 1e-6


def load_reference(name: str = "metafor_reference.json") -> list[dict]:
    with open(REFERENCE_DIR / name) as handle:
        return json.load(handle)["cases"]


@pytest.fixture(scope="session")
def reference_cases() -> list[dict]:
    return load_reference()
