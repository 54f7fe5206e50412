"""Every diagnostic plot is drawn from library results, holds what it should and is byte-for-byte reproducible.

The PNGs these tests write into pytest's tmp folder are the ones looked at when the plots were made.
"""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.text import Text
from support.bcg import BCG_VI, BCG_YI, CNEG, CPOS, TNEG, TPOS, YEARS
from support.reports import crafted_report

import metabac as mb
from metabac.plots.diagnostics import baujat_plot, cumulative_forest, gosh_plot, labbe, radial
from metabac.plots.forest import LABEL_WIDTH
from metabac.plots.funnel import funnel
from metabac.report_figures import figure_bytes, figures


def scatter_points(fig: Figure) -> list[int]:
    """Number of points in each scatter layer of the figure's first axes."""
    return [len(c.get_offsets()) for c in fig.axes[0].collections if isinstance(c, PathCollection)]


def fitted() -> mb.PoolResult:
    return mb.pool(BCG_YI, BCG_VI, method="REML", measure="RR")


FACTORIES = {
    "funnel": lambda: funnel(fitted(), mb.trimfill(BCG_YI, BCG_VI, method="REML"), title="Funnel"),
    "baujat": lambda: baujat_plot(mb.baujat(BCG_YI, BCG_VI)),
    "gosh": lambda: gosh_plot(mb.gosh(BCG_YI[:8], BCG_VI[:8], method="DL"), measure="RR"),
    "radial": lambda: radial(fitted()),
    "labbe": lambda: labbe(TPOS, TPOS + TNEG, CPOS, CPOS + CNEG, fitted()),
    "cumulative": lambda: cumulative_forest(mb.cumulative(BCG_YI, BCG_VI, order=YEARS), measure="RR"),
}


def test_funnel_shows_studies_and_filled_studies() -> None:
    trimmed = mb.trimfill(BCG_YI, BCG_VI, method="REML")
    fig = funnel(fitted(), trimmed)
    assert scatter_points(fig) == [len(BCG_YI), trimmed.k0]
    assert fig.axes[0].get_ylim()[1] == 0  # standard error axis reversed, zero at the top
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()][:1] != [""]


def test_funnel_without_trimfill_has_one_layer() -> None:
    assert scatter_points(funnel(fitted())) == [len(BCG_YI)]


def test_diagnostic_plots_hold_one_point_per_study_or_subset() -> None:
    figures = {name: make() for name, make in FACTORIES.items()}
    assert scatter_points(figures["baujat"]) == [len(BCG_YI)]
    assert scatter_points(figures["radial"]) == [len(BCG_YI)]
    assert scatter_points(figures["labbe"]) == [len(BCG_YI)]
    assert scatter_points(figures["gosh"]) == [2**8 - 1 - 8]  # subsets of two or more studies
    assert scatter_points(figures["cumulative"]) == [len(BCG_YI)]


@pytest.mark.parametrize("name", list(FACTORIES))
def test_plots_are_reproducible_png_and_svg(name: str, tmp_path) -> None:
    first, second = FACTORIES[name](), FACTORIES[name]()
    for kind, magic in (("png", b"\x89PNG\r\n\x1a\n"), ("svg", b"<?xml")):
        data = figure_bytes(first, kind)
        assert data == figure_bytes(second, kind) and data.startswith(magic)
        (tmp_path / f"{name}.{kind}").write_bytes(data)


def test_labbe_pooled_curve_follows_the_measure() -> None:
    fit = mb.pool(np.log([0.5, 0.5]), [0.1, 0.1], method="EE", measure="RR")
    lines = labbe([5, 10], [100, 100], [10, 20], [100, 100], fit).axes[0].lines
    line = next(line for line in lines if line.get_label().startswith("pooled"))
    x, y = line.get_data()
    np.testing.assert_allclose(y, 0.5 * x, rtol=1e-12)


MATH_LABEL = r"Cost $x$ trial $\frac{y$ 2017"   # mathtext would typeset "$x$" and fail on "$\frac{y$"
LONG_LABEL = "Hauser et al., a multicentre randomised placebo-controlled trial of baclofen, Vienna 2017"


def _labelled_figures(tmp_path, label: str) -> dict[str, Figure]:
    """The report's figures that name studies (the funnel plot names none), the second study labelled ``label``."""
    drawn = figures(crafted_report(tmp_path, label=label))
    return {stem: fig for stem, fig in drawn.items() if not stem.startswith("funnel")}


def _texts(fig: Figure) -> list[Text]:
    return [t for t in fig.findobj(Text) if t.get_text()]


def test_labels_are_drawn_as_typed_in_every_report_figure(tmp_path) -> None:
    for stem, fig in _labelled_figures(tmp_path, MATH_LABEL).items():
        assert any(t.get_text().removeprefix("+ ").startswith(MATH_LABEL) for t in _texts(fig)), stem
        figure_bytes(fig, "png")   # mathtext raised on "$\frac{y$"
    with matplotlib.rc_context({"text.usetex": True}):   # not even a user's usetex setting typesets a label
        drawn = _labelled_figures(tmp_path, MATH_LABEL)
    for stem, fig in drawn.items():
        dollars = [t for t in _texts(fig) if "$" in t.get_text()]
        assert dollars and all(not t.get_parse_math() and not t.get_usetex() for t in dollars), stem


def test_a_long_label_is_cut_with_an_ellipsis_to_its_column_in_every_report_figure(tmp_path) -> None:
    drawn = _labelled_figures(tmp_path, LONG_LABEL)
    forest = drawn["forest-abstinence"]
    label = next(t for t in _texts(forest) if t.get_text().startswith("Hauser"))
    column_end = (0.01 + LABEL_WIDTH) * forest.bbox.width   # the "Study or subgroup" column, 0.01 from the edge
    assert label.get_window_extent().x1 < column_end   # was drawn over the arm columns
    for stem, fig in drawn.items():
        (tmp_path / f"{stem}.png").write_bytes(figure_bytes(fig, "png"))   # the cumulative plot raised here
        cut = [t.get_text().rstrip("†‡").removeprefix("+ ") for t in _texts(fig) if "…" in t.get_text()]
        assert cut and all(c.endswith("…") and LONG_LABEL.startswith(c[:-1]) for c in cut), stem


def test_a_wide_interval_widens_the_effect_column_instead_of_overlapping_the_weights() -> None:
    """A pooled interval such as 1.60 [0.00, 20333.09] (two discordant trials under Hartung-Knapp) used to be
    drawn over the weight column to its left; the fixed-effect weights come from the fixed fit (were "nan%")."""
    from metabac.plots.forest import forest

    yi, vi = np.log([3.33, 0.75, 2.50, 2.86]), [0.22, 0.25, 0.07, 0.17]
    labels = ["Trial A", "Trial B", "Trial C", "Trial D"]
    groups = mb.subgroups(yi, vi, ["heavy", "heavy", "moderate", "moderate"], method="REML", test="knha",
                          labels=labels)
    fixed = mb.pool(yi, vi, method="EE", measure="RR", labels=labels)
    fig = forest(groups, fixed=fixed, measure="RR")
    fig.canvas.draw()
    texts = _texts(fig)
    effects = [t for t in texts if "[" in t.get_text() and t.get_text()[0].isdigit()]
    weights = [t for t in texts if t.get_text().endswith("%")]
    wide = max(effects, key=lambda t: len(t.get_text()))
    assert "[" in wide.get_text() and float(wide.get_text().split(", ")[1].rstrip("]")) > 1000
    for weight in weights:
        same_row = abs(weight.get_position()[1] - wide.get_position()[1]) < 0.01
        if same_row:
            assert weight.get_window_extent().x1 < wide.get_window_extent().x0
    assert any(abs(w.get_position()[1] - wide.get_position()[1]) < 0.01 for w in weights)
    assert not [t.get_text() for t in texts if "nan" in t.get_text()]
    assert f"{fixed.weights[:2].sum():.1f}%" in [t.get_text() for t in texts]   # heavy's share of the fixed weight
