"""Shared fixtures and the tolerance policy (see tests/reference/README.md); the one conftest.py of the repository.

Helpers that the test files import live in ``tests/support/`` (no test file imports another).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
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


@pytest.fixture
def no_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip drawing: the tests of where files go do not need the plots (the slowest part of a write). Named by its
    path, so that loading this file imports no part of metabac (pytest-xdist's controller loads it too)."""
    monkeypatch.setattr("metabac.report_files.drawings", lambda report: {})


class _DocstringExamplesRunInTheRepository:
    """Docstring examples run from the repository root, so that they can name the bundled ``trials/`` folder as a user
    working in a clone of this repository would (``pytest`` collects them from ``metabac/``, see pyproject.toml).
    Registered as a plugin so that it reaches the examples outside ``tests/``."""

    @pytest.fixture(autouse=True)
    def _docstring_examples_run_in_the_repository(self, request: pytest.FixtureRequest,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
        if isinstance(request.node, pytest.DoctestItem):
            monkeypatch.chdir(ROOT)


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(_DocstringExamplesRunInTheRepository(), "metabac-docstring-examples")
