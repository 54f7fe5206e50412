"""Start-up: which modules ``import metabac``, ``metabac pool`` and a report import (issue 19, item 13).

Import times are measured by benchmarks/bench.py, not here; what is tested is which modules get imported, which
is deterministic. Each check runs in a new interpreter, so that nothing the test session imported counts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import metabac

HEAVY = ("numpy", "pandas", "scipy", "scipy.stats", "scipy.optimize", "matplotlib", "statsmodels.stats", "click")


def imported_after(code: str, cwd: Path | None = None) -> set[str]:
    """The modules of HEAVY (and metabac's report and CLI modules) loaded after running ``code`` in a new
    interpreter."""
    probe = (f"{code}\nimport json, sys\n"
             f"print(json.dumps([m for m in sys.modules if m in {HEAVY!r} or m.startswith('metabac.report') "
             "or m.startswith('metabac.cli.')]))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=cwd, check=True)
    return set(json.loads(result.stdout.strip().splitlines()[-1]))


def test_import_metabac_imports_no_library() -> None:
    assert imported_after("import metabac") == set()


def test_pool_command_imports_neither_pandas_nor_scipy_stats_nor_the_report(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("study,ai,n1i,ci,n2i\nA,30,42,12,42\nB,6,88,9,92\nC,20,60,15,61\n")
    loaded = imported_after("from metabac.cli import cli\n"
                            "cli(['pool', 'data.csv', '--measure', 'RR'], standalone_mode=False)", cwd=tmp_path)
    assert {"numpy", "scipy", "click", "metabac.cli.pool"} <= loaded
    assert not loaded & {"pandas", "scipy.stats", "scipy.optimize", "matplotlib", "statsmodels.stats"}
    assert not {m for m in loaded if m.startswith("metabac.report")}
    assert loaded & {f"metabac.cli.{name}" for name in ("report", "reproduce", "trials", "predictors", "init")} == set()


def test_building_the_report_imports_neither_scipy_stats_nor_statsmodels_stats() -> None:
    loaded = imported_after("from metabac.report import ReportOptions, build_report\nbuild_report(ReportOptions())")
    assert "pandas" in loaded
    assert not loaded & {"scipy.stats", "scipy.optimize", "statsmodels.stats"}


def test_every_public_name_is_the_object_of_its_module() -> None:
    import importlib

    names = metabac._public_names()
    assert set(names) == set(metabac.__all__) - {"__version__"}
    for name, (module, attribute) in names.items():
        assert getattr(metabac, name) is getattr(importlib.import_module(module), attribute)
    assert set(metabac.__all__) <= set(dir(metabac))
    assert metabac.classify_severity is importlib.import_module("metabac.severity").classify


def test_a_public_function_keeps_its_name_when_its_module_is_imported() -> None:
    code = ("import metabac, metabac.bayes, metabac.reproduce\nfrom metabac.predictors import predictors\n"
            "print(type(metabac.bayes).__name__, type(metabac.reproduce).__name__, "
            "type(metabac.predictors).__name__, type(metabac.io).__name__)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["function", "function", "function", "module"]


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'nonexistent'"):
        metabac.nonexistent  # noqa: B018


def test_holm_adjustment_equals_statsmodels() -> None:
    from statsmodels.stats.multitest import multipletests

    from metabac.predictors import adjusted_pvalues

    # Holm by hand: sorted 0.005·4, 0.01·3, 0.03·2, 0.04·1 = 0.02, 0.03, 0.06, 0.04, made monotone and unsorted
    np.testing.assert_allclose(adjusted_pvalues(np.array([0.01, 0.04, 0.03, 0.005]), "holm"),
                               [0.03, 0.06, 0.06, 0.02], rtol=1e-15)
    np.testing.assert_array_equal(adjusted_pvalues(np.array([0.2]), "holm"), [0.2])  # one test: nothing to adjust
    # one call: statsmodels' Holm runs a full garbage collection on each (about 0.25 s in this test session)
    p = np.random.default_rng(19).uniform(size=12) ** 3
    p[-1] = p[0]  # a tie, ordered as statsmodels orders it
    np.testing.assert_array_equal(adjusted_pvalues(p, "holm"), multipletests(p, method="holm")[1])


def test_welch_baseline_test_equals_scipy() -> None:
    from scipy import stats

    from metabac.rob import baseline_imbalance

    rng = np.random.default_rng(19)
    for _ in range(200):
        mean1, mean2 = rng.normal(50, 20, 2)
        sd1, sd2 = rng.uniform(1, 30, 2)
        n1, n2 = (int(n) for n in rng.integers(2, 300, 2))
        expected = stats.ttest_ind_from_stats(mean1, sd1, n1, mean2, sd2, n2, equal_var=False).pvalue
        assert baseline_imbalance(mean1, sd1, n1, mean2, sd2, n2)[1] == pytest.approx(expected, rel=1e-12)
