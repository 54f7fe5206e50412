"""A library that prints like one: every result has summary() and a short repr; functions taking yi, vi take the
DataFrame of effect_sizes; plots take any pooled result or say in one line why they cannot."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from support.bcg import CNEG, CPOS, TNEG, TPOS

import metabac as mb
from metabac.plots.diagnostics import radial
from metabac.plots.forest import forest
from metabac.plots.funnel import funnel

LABELS = [f"trial {i + 1}" for i in range(len(TPOS))]
GROUPS = ["random"] * 4 + ["alternate"] * 2 + ["random"] * 3 + ["systematic"] * 4


def bcg() -> pd.DataFrame:
    return mb.effect_sizes("RR", ai=TPOS, bi=TNEG, ci=CPOS, di=CNEG, labels=LABELS)


RESULTS = {
    "pool": lambda es: mb.pool(es),
    "confint": lambda es: mb.pool(es).confint(),
    "mantel_haenszel": lambda es: mb.mantel_haenszel("RR", ai=TPOS, bi=TNEG, ci=CPOS, di=CNEG),
    "egger": lambda es: mb.egger(es),
    "begg": lambda es: mb.begg(es),
    "peters": lambda es: mb.peters(ai=TPOS, bi=TNEG, ci=CPOS, di=CNEG),
    "harbord": lambda es: mb.harbord(ai=TPOS, bi=TNEG, ci=CPOS, di=CNEG),
    "trimfill": lambda es: mb.trimfill(es),
    "failsafe_n": lambda es: mb.failsafe_n(es),
    "subgroups": lambda es: mb.subgroups(es, groups=GROUPS),
    "metareg": lambda es: mb.metareg(es, mods=np.arange(13.0)),
    "permutation": lambda es: mb.metareg(es, mods=np.arange(13.0)).permutation_test(n=20, seed=1),
    "gosh": lambda es: mb.gosh(es.iloc[:5]),
    "batch": lambda es: mb.pool(np.vstack([es.yi, es.yi]), np.vstack([es.vi, es.vi])),
}


@pytest.mark.parametrize("name", RESULTS)
def test_every_result_has_a_summary_and_a_short_repr(name: str) -> None:
    result = RESULTS[name](bcg())
    text = repr(result)
    assert text.startswith(f"<{type(result).__name__}: ") and text.endswith(">") and "\n" not in text
    assert "np." not in text and "array(" not in text and len(text) < 240, text
    assert str(result) == result.summary() and result.summary().strip()


def test_pool_repr_and_confint_summary_show_the_numbers() -> None:
    fit = mb.pool(bcg())
    assert repr(fit) == ("<PoolResult: REML, k = 13: estimate -0.7145 (log risk ratio) [95% CI -1.0669, -0.3622], "
                         "p = <.0001, tau^2 = 0.3132>")
    ci = fit.confint()
    lines = ci.summary().splitlines()
    assert lines[0].split() == ["estimate", "ci_low", "ci_high"] and lines[1].split()[:2] == ["tau^2", "0.3132"]
    assert type(ci.tau2.ci_low) is float  # plain numbers, printed without np.float64(...)


@pytest.mark.parametrize("name", ["leave_one_out", "influence", "cumulative", "baujat"])
def test_sensitivity_functions_take_the_effect_size_frame(name: str) -> None:
    es = bcg()
    function = getattr(mb, name)
    from_frame = function(es)
    from_arrays = function(es.yi, es.vi, labels=es.study)
    pd.testing.assert_frame_equal(from_frame, from_arrays)
    assert list(from_frame.index) == LABELS


def test_every_yi_vi_function_takes_the_effect_size_frame() -> None:
    es = bcg()
    y, v = es.yi.to_numpy(), es.vi.to_numpy()
    fit = mb.pool(es)
    assert fit.labels == tuple(LABELS) and fit.measure == "RR"
    assert fit.estimate == mb.pool(y, v).estimate
    assert mb.egger(es) == mb.egger(y, v) and mb.begg(es) == mb.begg(y, v)
    assert mb.failsafe_n(es) == mb.failsafe_n(y, v)
    assert mb.trimfill(es).estimate == mb.trimfill(y, v).estimate
    np.testing.assert_array_equal(mb.metareg(es, mods=np.arange(13.0)).coef, mb.metareg(y, v, np.arange(13.0)).coef)
    assert mb.subgroups(es, groups=GROUPS).overall.labels == tuple(LABELS)
    pd.testing.assert_frame_equal(mb.gosh(es.iloc[:5]).table, mb.gosh(y[:5], v[:5]).table)


def test_a_missing_vi_is_one_line() -> None:
    with pytest.raises(mb.InputError, match=r"^vi: missing; pass yi and vi, or the DataFrame of mb.effect_sizes"):
        mb.pool([0.1, 0.2])
    with pytest.raises(mb.InputError, match=r"^vi: missing"):
        mb.failsafe_n(pd.DataFrame({"yi": [0.1]}))
    with pytest.raises(mb.InputError, match=r"^vi: got 'DL' after an effect-size frame; name the argument, e\.g\. "
                                            r"pool\(es, method='DL'\)"):
        mb.pool(bcg(), "DL")


def test_forest_draws_a_plain_pool_result_and_a_subgroup_result() -> None:
    """forest(fit) gave a bare KeyError: 'weight'; a study table without weights takes the fit's."""
    es = bcg()
    texts = lambda figure: {t.get_text() for t in figure.texts}  # noqa: E731
    drawn = texts(forest(mb.pool(es)))
    assert set(LABELS) <= drawn and "RR [95% CI]" in drawn
    assert set(LABELS) <= texts(forest(es, mb.pool(es)))
    grouped = texts(forest(mb.subgroups(es, groups=GROUPS)))
    assert {"alternate", "random", "systematic"} <= grouped
    assert any(text.startswith("Test for subgroup differences") for text in grouped)


@pytest.mark.parametrize(("plot", "result", "message"), [
    (forest, lambda es: mb.mantel_haenszel("RR", ai=TPOS, bi=TNEG, ci=CPOS, di=CNEG),
     "forest: the Mantel-Haenszel result holds no per-study effect sizes"),
    (forest, lambda es: mb.metareg(es, mods=np.arange(13.0)), "forest: cannot draw a MetaRegResult"),
    (funnel, lambda es: mb.metareg(es, mods=np.arange(13.0)), "funnel: cannot draw a MetaRegResult"),
    (radial, lambda es: mb.pool(np.vstack([es.yi, es.yi]), np.vstack([es.vi, es.vi])),
     "radial: cannot draw a batch of 2 meta-analyses"),
])
def test_a_result_a_plot_cannot_draw_is_one_line(plot, result, message: str) -> None:
    with pytest.raises(mb.InputError, match=f"^{message}") as error:
        plot(result(bcg()))
    assert "\n" not in str(error.value)
