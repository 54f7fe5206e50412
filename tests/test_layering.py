"""The import rule of the design: numbers <- domain <- presentation, never the other way.

Numbers (statistics on arrays) import no plotting, command-line, trial-file or report module; the domain layer
(trial records, predictors, reproduction) imports nothing of the presentation layer; ``report`` computes through
the library only. Checked by walking each module's AST, so a stray import fails here, not in review.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "metabac"
NUMBERS = {"_checks", "_result", "formatting", "defaults", "effects", "wls", "tau2", "single", "pooling",
           "mantel_haenszel", "moderators", "sensitivity", "simulation", "bias", "bayes", "bayes_priors",
           "bayes_posterior", "bayes_mixture", "bayes_search", "profiles", "summary_of_findings", "severity"}
DOMAIN = {"trial_schema", "trials", "predictors", "reproduce", "io", "interaction", "rob", "certainty", "review"}
PRESENTATION_PACKAGES = ("matplotlib", "click", "metabac.plots", "metabac.cli", "metabac.report", "metabac.render")
DOMAIN_PACKAGES = tuple(f"metabac.{name}" for name in DOMAIN)


def imports(path: Path) -> set[str]:
    """Every module name a file imports (absolute names; ``from metabac import x`` gives ``metabac.x``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def offending(module: str, forbidden: tuple[str, ...]) -> list[str]:
    names = imports(PACKAGE / f"{module}.py")
    return sorted(n for n in names if any(n == f or n.startswith(f + ".") for f in forbidden))


@pytest.mark.parametrize("module", sorted(NUMBERS))
def test_numbers_layer_imports_no_domain_or_presentation_module(module: str) -> None:
    assert offending(module, PRESENTATION_PACKAGES + DOMAIN_PACKAGES) == []


@pytest.mark.parametrize("module", sorted(DOMAIN))
def test_domain_layer_imports_no_presentation_module(module: str) -> None:
    assert offending(module, PRESENTATION_PACKAGES) == []


def test_every_module_has_a_layer() -> None:
    presentation = {"report", "report_text", "report_review", "report_files", "report_folder", "report_figures",
                    "report_sources", "render", "__init__", "__main__"}
    modules = {path.stem for path in PACKAGE.glob("*.py")}
    assert modules == NUMBERS | DOMAIN | presentation


def test_the_rule_catches_a_forbidden_import(tmp_path: Path, monkeypatch) -> None:
    """The check itself can fail: a numbers module importing matplotlib is reported."""
    (tmp_path / "tau2.py").write_text("import numpy\nfrom matplotlib.figure import Figure\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path)
    assert offending("tau2", PRESENTATION_PACKAGES) == ["matplotlib.figure", "matplotlib.figure.Figure"]
