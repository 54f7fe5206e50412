"""Docstring examples run from the repository root, so that they can name the bundled ``trials/`` folder as a user
working in a clone of this repository would (``pytest`` collects them from ``metabac/``, see pyproject.toml)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent


@pytest.fixture(autouse=True)
def _docstring_examples_run_in_the_repository(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if isinstance(request.node, pytest.DoctestItem):
        monkeypatch.chdir(ROOT)
