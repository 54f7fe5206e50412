"""Render a :class:`metabac.report.Report` as Markdown and as one self-contained HTML page.

Both renderings come from one list of blocks (headings, paragraphs, tables, images), so the Markdown is a faithful
twin of the HTML. Every data-derived string goes through ``html.escape`` in HTML (quote=True, so it is safe inside
attributes too); figures are embedded as SVG ``data:`` URIs, wide tables scroll in their own box (and wrap when
printed), and the page holds no script.
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from string import Template

import numpy as np
import pandas as pd

from metabac.effects import RATIO_MEASURES as RATIO
from metabac.formatting import effect_text, slug
from metabac.plots.forest import heterogeneity_line, overall_effect_line, subgroup_difference_line
from metabac.report import ASYMMETRY_MIN_TRIALS, OutcomeAnalysis, Report, Sensitivity
from metabac.report_review import (
    TESTS,
    answer_rows,
    appraisal_lines,
    certainty_text,
    grade_rows,
    moderator_rows,
    p_value,
    pooled_interaction_lines,
    published_rows,
    severity_answer,
    severity_rows,
    sof_rows,
    within_rows,
)
from metabac.report_text import (
    convention,
    leave_one_out_rows,
    methods_paragraph,
    predictor_rows,
    reproduction_rows,
    small_study_rows,
)
from metabac.rob import LABELS


@dataclass(frozen=True)
class Cell:
    """A table cell: its text, an optional footnote id (the number's source) and an optional link target."""

    text: str
    note: str | None = None
    link: str | None = None


@dataclass(frozen=True)
class Block:
    kind: str  # "h1", "h2", "h3", "p", "list", "table", "img", "notes"; a list's items are its rows' cells
    text: str = ""
    anchor: str = ""
    header: tuple[str, ...] = ()
    rows: tuple[tuple[Cell, ...], ...] = ()
    image: str = ""


def note_id(study: str, outcome: str) -> str:
    """The natural footnote id of a study's numbers for an outcome: ``hauser2017-abstinence``."""
    return f"{slug(study)}-{slug(outcome)}"


def _trial_key(row: pd.Series) -> str:
    """What a footnote is about: the trial id, or the study label where the comparisons carry no trial id."""
    trial = row.get("trial")
    return str(trial) if isinstance(trial, str) and trial else str(row["study"])


def note_ids(report: Report) -> list[list[str]]:
    """The footnote id of every study row of every analysis (aligned with ``report.analyses`` and their
    ``studies``), unique in the report.

    The id comes from the trial id (:func:`note_id`), not the label, so two trials labelled "Smith 2001" get two
    footnotes. Where ids still coincide (several comparisons of one trial, labels without trial ids that differ only
    in letters the slug drops, or slugs that run together), the second gets ``_2``, the third ``_3``: a slug never
    holds "_", so these cannot meet a natural id.
    """
    used: set[str] = set()
    ids = []
    for a in report.analyses:
        row_ids = []
        for _, row in a.studies.iterrows():
            natural_id = candidate = note_id(_trial_key(row), a.outcome)
            copy = 1
            while candidate in used:
                copy += 1
                candidate = f"{natural_id}_{copy}"
            used.add(candidate)
            row_ids.append(candidate)
        ids.append(row_ids)
    return ids


def _study_rows(a: OutcomeAnalysis, notes: list[str]) -> tuple[tuple[Cell, ...], ...]:
    """One row per study: arm data, analysis set, subgroup, weights and its effect with the interval of the random-
    effects fit's per-study rows (:meth:`PoolResult.to_frame`, in the order of ``a.studies``)."""
    intervals = a.random.to_frame().iloc[: len(a.studies)]
    rows = []
    for note, (_, r), low, high in zip(notes, a.studies.iterrows(), intervals["ci_low"], intervals["ci_high"]):
        if a.kind == "binary":
            arms = [f"{r.ai:g}/{r.n1i:g}", f"{r.ci:g}/{r.n2i:g}"]
        elif a.kind == "continuous":
            arms = [f"{r.m1i:.3g} ({r.sd1i:.3g}), {r.n1i:g}", f"{r.m2i:.3g} ({r.sd2i:.3g}), {r.n2i:g}"]
        else:  # effect sizes as given: no arm data
            arms = []
        group = "" if "group" not in r else "not classified" if r.group is None or (
            isinstance(r.group, float) and np.isnan(r.group)) else str(r.group)
        analysis_set = str(r.analysis_set) if "analysis_set" in r and isinstance(r.analysis_set, str) else "—"
        rows.append((Cell(f"{r.study}{r.mark or ''}", note), *(Cell(x, note) for x in arms), Cell(analysis_set),
                     Cell(group),
                     Cell(f"{r.weight:.1f}%"), Cell(f"{r.weight_fixed:.1f}%"),
                     Cell(effect_text(a.measure, r.yi, low, high), note)))
    return tuple(rows)


def _outcome_blocks(a: OutcomeAnalysis, notes: list[str], images: Mapping[str, str],
                    arms: tuple[str, str]) -> list[Block]:
    anchor = f"outcome-{slug(a.outcome)}"
    arm_head = tuple(f"{name} events/N" for name in arms) if a.kind == "binary" else \
        tuple(f"{name} mean (SD), N" for name in arms) if a.kind == "continuous" else ()
    blocks = [Block("h2", f"Outcome: {a.outcome}", anchor)]
    if f"forest-{slug(a.outcome)}" in images:
        blocks.append(Block("img", f"Forest plot: {a.outcome} ({a.measure})", image=f"forest-{slug(a.outcome)}"))
    blocks.append(Block("table", f"{a.outcome}: studies", header=("Study", *arm_head, "Analysis set", "Subgroup",
                                                                   "Weight (random)", "Weight (fixed)",
                                                                   f"{a.measure} [{a.random.level:g}% CI]"),
                        rows=_study_rows(a, notes)))
    fixed_name = "Mantel-Haenszel" if a.fixed.model == "Mantel-Haenszel" else a.fixed.model
    pooled = [
        (Cell(f"Random effects ({a.random.method}, {TESTS.get(a.random.test, a.random.test)})"),
         Cell(effect_text(a.measure, a.random.estimate, a.random.ci_low, a.random.ci_high), link=anchor),
         Cell(effect_text(a.measure, a.random.estimate, a.random.pi_low, a.random.pi_high)
              if a.random.k > 2 else "k < 3"),
         Cell(p_value(a.random.pvalue))),
        (Cell(f"Fixed effect ({fixed_name})"),
         Cell(effect_text(a.measure, a.fixed.estimate, a.fixed.ci_low, a.fixed.ci_high), link=anchor), Cell(""),
         Cell(p_value(a.fixed.pvalue))),
    ]
    level = f"{a.random.level:g}%"
    blocks.append(Block("table", f"{a.outcome}: pooled", header=("Model", f"{a.measure} [{level} CI]",
                                                                  f"{level} prediction interval", "p"),
                        rows=tuple(pooled)))
    lines = [heterogeneity_line(a.random), overall_effect_line(a.random), *appraisal_lines(a, arms[0])]
    if a.groups is not None:
        lines.append(subgroup_difference_line(a.groups))
        for name, fit in a.groups.fits.items():
            lines.append(f"Subgroup {name}: {a.measure} {effect_text(a.measure, fit.estimate, fit.ci_low, fit.ci_high)}"
                         f", k = {fit.k}; {heterogeneity_line(fit)}")
        if a.groups.missing:
            lines.append(f"Not classified: {len(a.groups.missing)} trial(s) without a subgroup value, shown without a "
                         "subgroup test (missing data is not a level).")
    blocks += [Block("p", line) for line in lines]
    blocks += _judgement_blocks(a, images)
    for m in a.moderators:
        stem = f"bubble-{slug(a.outcome)}-{slug(m.column)}"
        blocks.append(Block("h3", f"Meta-regression on {m.column} ({a.outcome})", stem))
        blocks.append(Block("p", f"Across-study association (observational), {m.fit.method} τ², "
                                 f"{TESTS.get(m.fit.test, m.fit.test)} test; permutation p from 1,000 permutations "
                                 "(seed 1). Coefficients on the analysis scale"
                                 + (" (log ratio)." if a.measure in RATIO else ".")))
        if stem in images:
            blocks.append(Block("img", f"Bubble plot: {a.outcome} on {m.column}", image=stem))
        blocks.append(_text_table("meta-regression", *moderator_rows(m, a.measure)))
    if a.predictors is not None:
        header, rows = predictor_rows(a.predictors)
        blocks.append(Block("h3", f"Across-trial comparisons, observational ({a.outcome})"))
        blocks.append(Block("p", "Trial characteristics compared across trials: an association between trials "
                                 "need not hold for the patients within them (ecological bias)."))
        blocks.append(Block("table", "predictors", header=header, rows=tuple(tuple(Cell(c) for c in r) for r in rows)))
    if a.sensitivity is not None:
        blocks += _sensitivity_blocks(a, a.sensitivity, notes, images)
    return blocks


def _judgement_blocks(a: OutcomeAnalysis, images: Mapping[str, str]) -> list[Block]:
    """Risk of bias (table and figures) and the GRADE rating of one outcome."""
    stem, out = slug(a.outcome), []
    rob = a.appraisal.rob if a.appraisal is not None else None
    if rob is not None and len(rob):
        out.append(Block("h3", f"Risk of bias, RoB 2 ({a.outcome})", f"rob-{stem}"))
        for name, caption in ((f"rob-{stem}", f"Risk of bias per trial: {a.outcome}"),
                              (f"robsummary-{stem}", f"Risk of bias, share of the weight: {a.outcome}")):
            if name in images:
                out.append(Block("img", caption, image=name))
        out.append(_text_table("risk of bias", ("Trial", *[LABELS.get(c, c) for c in rob.columns]),
                               [(str(study), *map(str, row)) for study, row in rob.iterrows()]))
    header, rows = grade_rows(a)
    certainty = a.appraisal.certainty if a.appraisal is not None else None
    if certainty is not None and rows:
        out += [Block("h3", f"Certainty of the evidence, GRADE ({a.outcome}): {certainty_text(certainty.certainty)}",
                      f"grade-{stem}"), _text_table("GRADE", header, rows)]
    return out


def _text_table(caption: str, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> Block:
    return Block("table", caption, header=header, rows=tuple(tuple(Cell(c) for c in r) for r in rows))


def _sensitivity_blocks(a: OutcomeAnalysis, s: Sensitivity, notes: list[str],
                        images: Mapping[str, str]) -> list[Block]:
    stem = slug(a.outcome)
    header, rows = leave_one_out_rows(a)  # one row per study, in the order of a.studies
    linked = tuple((Cell(r[0], note), *(Cell(c) for c in r[1:])) for note, r in zip(notes, rows))
    out = [Block("h3", f"Sensitivity analyses ({a.outcome})", f"sensitivity-{stem}"),
           Block("table", "leave-one-out", header=header, rows=linked),
           Block("p", "Influential: metafor's rule (|DFFITS| > 3√(1/(k − 1)), Cook's distance above the χ²₁ median, "
                      "hat > 3/k or |DFBETAS| > 1; Viechtbauer & Cheung 2010).")]
    for name, caption in ((f"cumulative-{stem}", f"Cumulative meta-analysis by year: {a.outcome}"),
                          (f"baujat-{stem}", f"Baujat plot: {a.outcome}")):
        if name in images:
            out.append(Block("img", caption, image=name))
    out.append(Block("h3", f"Small-study effects ({a.outcome})", f"small-study-{stem}"))
    if s.low_power:
        out.append(Block("p", f"Only {a.random.k} trials: with fewer than {ASYMMETRY_MIN_TRIALS}, tests for "
                              "funnel-plot asymmetry cannot tell asymmetry from chance (Cochrane Handbook 5.1 "
                              "§10.4.3.1; Sterne et al. 2011); they are shown for completeness, not as evidence for "
                              "or against publication bias."))
    if f"funnel-{stem}" in images:
        out.append(Block("img", f"Contour-enhanced funnel plot: {a.outcome}", image=f"funnel-{stem}"))
    out.append(_text_table("small-study effects", *small_study_rows(a)))
    return out


def _reproduction_blocks(report: Report) -> list[Block]:
    out = [Block("h2", "Reproduction of published analyses", "reproduction")]
    if report.reproduction is None:
        return out + [Block("p", f"Not run: {report.reproduction_note}.")]
    out.append(Block("p", "Each published pooled estimate recomputed from the trial records (baclofen) or the "
                          "published inputs (classic examples), compared at the precision it was printed with: "
                          "reproduced when |reproduced − published| ≤ ½ unit in the last printed digit. The same "
                          "table is printed by the command metabac reproduce."))
    return out + [_text_table("reproduction", *reproduction_rows(report.reproduction))]


def _who_responds_blocks(report: Report) -> list[Block]:
    """Within-trial evidence first (the stronger), then across-trial comparisons (observational), then published
    across-trial findings (second-hand); never mixed in one table."""
    out = [Block("h2", "Who responds?", "who-responds"),
           Block("p", severity_answer(report, pointer=False)),
           Block("h3", "(a) Within-trial evidence", "within-trial"),
           Block("p", "Subgroups compared inside one randomised trial share its protocol and randomisation: the "
                      "strongest evidence on an effect modifier (Fisher et al., BMJ 2017;356:j573). As published, "
                      "in the manner of the SWiM guideline (Campbell et al., BMJ 2020;368:l6890)."),
           _text_table("within-trial effect modification", *within_rows(report))]
    out += [Block("p", line) for line in pooled_interaction_lines(report)]
    out += [Block("h3", "(b) Across-trial comparisons, observational", "across-trial"),
            Block("p", "Trials compared by their characteristics (severity class, dose, detoxification, population): "
                       "an association across trials can come from anything else that differs between them. Each "
                       "trial's severity class and its ground (the WHO high-risk threshold, 60 g/day for men and "
                       "40 g/day for women, weighted by the trial's sex mix; drinks converted with the trial's "
                       "drink size, or an assumed one where it is not stated):"),
            _text_table("severity of each trial", *severity_rows(report))]
    out += [Block("p", f"The predictors tables under each outcome test these characteristics across trials "
                       f"({', '.join(a.outcome for a in report.analyses if a.predictors is not None) or 'none'}).")]
    header, rows = published_rows(report)
    out += [Block("h3", "(c) Published across-trial analyses, second-hand", "published-moderators"),
            Block("p", "Meta-regressions and subgroup analyses of other reviews, as their abstracts report them; "
                       "metabac cannot recompute them, and they are across-trial associations.")]
    out += [_text_table("published moderator analyses", header, rows)] if rows else [Block("p", "None recorded.")]
    return out


def _answer_blocks(report: Report) -> list[Block]:
    review = report.review
    out = []
    if review is not None:
        out.append(Block("p", f"Question: {review.question}"))
    header, rows = answer_rows(report)
    out += [Block("h2", "Answer", "answer"),
            Block("table", "answer", header=header,
                  rows=tuple(tuple(Cell(c, link=link if i == 0 else None) for i, c in enumerate(r))
                             for r, link in rows))]
    line = severity_answer(report)
    if line:
        out.append(Block("p", line))
    return out


def blocks(report: Report, images: Mapping[str, str]) -> list[Block]:
    """The report as an ordered list of blocks, shared by both renderers: the question and answer first, then
    the table of contents, the summary of findings, each outcome, who responds, reproduction and methods."""
    review = report.review
    title = review.title if review is not None else "Meta-analysis of the trial records"
    answer = _answer_blocks(report)
    header, rows, notes = sof_rows(report)
    body = [Block("h2", "Summary of findings", "summary-of-findings")]
    if review is not None:
        body.append(Block("p", f"Population: {review.population}. Setting: {review.setting}. Intervention: "
                               f"{review.intervention}. Comparison: {review.comparison}."))
    body.append(_text_table("summary of findings", header, rows))
    if notes or any(a.appraisal and a.appraisal.certainty for a in report.analyses):
        body += [Block("p", "Certainty (GRADE): ⊕⊕⊕⊕ high, ⊕⊕⊕◯ moderate, ⊕⊕◯◯ low, ⊕◯◯◯ very low; the evidence "
                            "from randomised trials starts high and is rated down for each concern below."),
                 Block("list", "summary-of-findings notes", rows=tuple((Cell(n),) for n in notes))]
    else:
        body.append(Block("p", "Certainty not rated: a GRADE rating needs the trials' risk of bias, which only trial "
                               "records carry (metabac init writes a review folder for them)."))
    ids = note_ids(report)
    if report.coverage is not None:
        body += [Block("h2", "Data coverage", "coverage"), _coverage_block(report.coverage, report, ids)]
    for outcome, reason in report.skipped:
        body.append(Block("p", f"Not pooled: {outcome}: {reason}."))
    for analysis, notes_of in zip(report.analyses, ids):
        body += _outcome_blocks(analysis, notes_of, images, report.arm_names)
    if report.who_responds is not None and report.who_responds.has_evidence:
        body += _who_responds_blocks(report)
    if report.reproduction is not None or report.reproduction_note is not None:
        body += _reproduction_blocks(report)
    body += [Block("h2", "Methods", "methods"), Block("p", convention(report)), Block("p", methods_paragraph(report)),
             Block("h2", "Sources of the numbers", "sources"), Block("notes")]
    contents = [Cell(b.text, link=b.anchor) for b in [*answer, *body] if b.kind == "h2" and b.anchor]
    return [Block("h1", title), *answer, Block("h2", "Contents", "contents"),
            Block("list", "contents", rows=tuple((c,) for c in contents)), *body]


def _coverage_block(frame: pd.DataFrame, report: Report, ids: list[list[str]]) -> Block:
    first_note: dict[tuple[str, str], str] = {}  # (trial, outcome) -> the footnote of its first comparison
    for a, notes in zip(report.analyses, ids):
        for note, (_, row) in zip(notes, a.studies.iterrows()):
            first_note.setdefault((_trial_key(row), a.outcome), note)
    rows = []
    for trial, values in frame.iterrows():
        cells = [Cell(str(trial))]
        for outcome, value in values.items():
            text = value if isinstance(value, str) and value else "missing"
            cells.append(Cell(text, first_note.get((str(trial), str(outcome)))) if text != "missing" else Cell(text))
        rows.append(tuple(cells))
    return Block("table", "coverage", header=("Trial", *map(str, frame.columns)), rows=tuple(rows))


def footnotes(report: Report) -> dict[str, dict[str, str]]:
    """Footnote id -> provenance fields (study, outcome, quote, citation, url, derived) of every pooled number."""
    notes: dict[str, dict[str, str]] = {}
    for a, ids in zip(report.analyses, note_ids(report)):
        for note, (_, r) in zip(ids, a.studies.iterrows()):
            fields = {k: str(r[k]) for k in ("source", "quote", "citation", "url", "derived", "source_kind", "file")
                      if k in r and isinstance(r[k], str) and r[k]}
            notes[note] = {"study": str(r.study), "outcome": a.outcome, **fields}
    return notes


def _note_text(note: Mapping[str, str]) -> str:
    parts = [f"{note['study']}, {note['outcome']}"]
    if "quote" in note:
        parts.append(f"“{note['quote']}”")
    if "citation" in note or "source" in note:
        parts.append(note.get("citation", note.get("source", "")))
    if "derived" in note:
        parts.append(f"† derived: {note['derived']}")
    if note.get("source_kind") == "secondary":
        parts.append("‡ second-hand (secondary source)")
    return " — ".join(parts)


# Markdown that text from trial files or the command line must not form: HTML (< > &), a table cell's end (|),
# code spans and emphasis (` *), and the backslash that would undo these escapes; control characters (line breaks,
# carriage returns) become spaces. Links and images need "](", "][" or a "]:" definition, and footnotes "[^": those
# brackets are escaped, so no "javascript:" link or remote image forms, while "1.32 [0.77, 2.26]" stays as it is.
_MARKDOWN = {ord("&"): "&amp;", ord("<"): "&lt;", ord(">"): "&gt;", **{ord(c): "\\" + c for c in "\\|`*"},
             **{code: " " for code in [*range(0x20), 0x7F, 0x85, 0x2028, 0x2029]}}
_LINK_BRACKET = re.compile(r"\](?=[(\[:])|\[(?=\^)")


def markdown_text(text: object) -> str:
    """``text`` as literal Markdown inline text on one line: it renders as the characters it holds, never as a link,
    image, footnote, HTML, code or table syntax."""
    return _LINK_BRACKET.sub(lambda bracket: "\\" + bracket.group(), str(text).translate(_MARKDOWN))


def render_markdown(report: Report, images: Mapping[str, str] | None = None) -> str:
    """Markdown twin of the HTML page; ``images`` maps figure names to file names relative to the report. Every
    text is escaped (:func:`markdown_text`), the run line (with the command line and ``--out`` path) too."""
    images = images or {}
    notes = footnotes(report)
    lines: list[str] = []
    esc = markdown_text
    for b in blocks(report, images):
        if b.kind in ("h1", "h2", "h3"):
            anchor = [f'<a id="{b.anchor}"></a>', ""] if b.anchor else []   # a slug of ours, never data
            lines += [*anchor, "#" * int(b.kind[1]) + " " + esc(b.text), ""]
        elif b.kind == "p":
            lines += [esc(b.text), ""]
        elif b.kind == "list":
            lines += [f"- [{esc(c.text)}](#{c.link})" if c.link else f"- {esc(c.text)}" for (c,) in b.rows] + [""]
        elif b.kind == "img":
            lines += [f"![{esc(b.text)}]({images[b.image]})", ""]
        elif b.kind == "table":
            lines.append("| " + " | ".join(esc(h) for h in b.header) + " |")
            lines.append("|" + "---|" * len(b.header))
            for row in b.rows:  # one footnote mark per row and source, on its first number
                seen: set[str] = set()
                cells = []
                for c in row:
                    note = c.note if c.note in notes and c.note not in seen else None
                    if note is not None:
                        seen.add(note)
                    cells.append(esc(c.text) + (f"[^{note}]" if note is not None else ""))
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")
        elif b.kind == "notes":
            lines += [f"[^{key}]: {esc(_note_text(note))}" for key, note in notes.items()] + [""]
    lines.append(f"_Run: {esc(stamp_text(report))}_")
    return "\n".join(lines) + "\n"


def stamp_text(report: Report) -> str:
    s = report.stamp
    parts = [f"metabac {s.metabac}", f"git {s.git}" if s.git else "", f"trials sha256:{s.trials_sha256[:16]}",
             f"numpy {s.numpy}", f"scipy {s.scipy}", f"statsmodels {s.statsmodels}", f"matplotlib {s.matplotlib}",
             f"command: {s.command}" if s.command else "", f"SOURCE_DATE_EPOCH {s.source_date_epoch}"
             if s.source_date_epoch else ""]
    return "; ".join(p for p in parts if p)


PAGE = Template("""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>$title</title>
<style>
body{font-family:"DejaVu Sans",Arial,sans-serif;max-width:1280px;margin:2em auto;padding:0 1em;color:#222;
line-height:1.4}
h1{font-size:1.6em}h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.8em 0;font-size:.88em}
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:right;vertical-align:top}
td:first-child{text-align:left}th{background:#f3f5f8;text-align:left}
td.missing{color:#a33;background:#fbeeee}td.t{text-align:left}sup a{text-decoration:none}
img{max-width:100%;border:1px solid #eee}p.convention{background:#f3f5f8;padding:.6em;border-left:4px solid #1f4e9c}
ol.notes{font-size:.85em}footer{margin-top:3em;font-size:.8em;color:#666}
div.scroll{overflow-x:auto;max-width:100%}
@media print{body{max-width:none;margin:0;font-size:9pt}div.scroll{overflow:visible}table{font-size:7.5pt;
width:100%;table-layout:auto}td,th{word-break:break-word}h2{break-before:auto;break-after:avoid}
figure{break-inside:avoid;margin:.5em 0}img{max-width:100%;border:none}}
</style></head><body>
$body
<footer>$stamp</footer>
</body></html>
""")


def render_html(report: Report, images: Mapping[str, bytes] | None = None) -> str:
    """One self-contained HTML page: SVG figures inline as ``data:`` URIs in ``<img>`` (vector, so the page and its
    PDF print stay sharp; an image cannot run script, so the SVG needs no sanitising), footnotes and tooltips for
    every number. ``images`` maps figure names to SVG bytes."""
    images = images or {}
    e = lambda s: html.escape(str(s), quote=True)  # noqa: E731
    notes = footnotes(report)
    numbers = {key: i for i, key in enumerate(notes, start=1)}
    parts: list[str] = []
    for b in blocks(report, {name: name for name in images}):
        anchor = f' id="{e(b.anchor)}"' if b.anchor else ""
        if b.kind in ("h1", "h2", "h3"):
            parts.append(f"<{b.kind}{anchor}>{e(b.text)}</{b.kind}>")
        elif b.kind == "p":
            cls = ' class="convention"' if b.text.startswith(("Convention", "Question")) else ""
            parts.append(f"<p{cls}>{e(b.text)}</p>")
        elif b.kind == "list":
            items = "".join(f'<li><a href="#{e(c.link)}">{e(c.text)}</a></li>' if c.link else f"<li>{e(c.text)}</li>"
                            for (c,) in b.rows)
            tag = "nav" if b.text == "contents" else "div"
            parts.append(f'<{tag} class="{e(slug(b.text))}"><ul>{items}</ul></{tag}>')
        elif b.kind == "img":
            data = base64.b64encode(images[b.image]).decode("ascii")
            parts.append(f'<figure><img alt="{e(b.text)}" src="data:image/svg+xml;base64,{data}"></figure>')
        elif b.kind == "table":
            head = "".join(f"<th>{e(h)}</th>" for h in b.header)
            body = "".join("<tr>" + "".join(_html_cell(c, notes, numbers, e) for c in row) + "</tr>" for row in b.rows)
            parts.append(f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
                         "</div>")
        elif b.kind == "notes":
            items = "".join(f'<li id="fn-{e(key)}">{e(_note_text(note))}'
                            + (f' <a href="{e(note["url"])}">source</a>' if note.get("url", "").startswith(
                                ("http://", "https://")) else "") + "</li>" for key, note in notes.items())
            parts.append(f'<ol class="notes">{items}</ol>')
    return PAGE.substitute(title=e("metabac report"), body="\n".join(parts), stamp=e(stamp_text(report)))


def _html_cell(cell: Cell, notes: Mapping[str, Mapping[str, str]], numbers: Mapping[str, int],
               e: Callable[[object], str]) -> str:
    text = e(cell.text)
    numeric = (bool(re.match(r"^[-−+]?[0-9.]", cell.text)) and len(cell.text) <= 40) or cell.text in ("", "—", "NA")
    cls = ' class="missing t"' if cell.text == "missing" else "" if numeric else ' class="t"'
    if cell.link:
        text = f'<a href="#{e(cell.link)}">{text}</a>'
    if cell.note is not None and cell.note in notes:
        tip = e(_note_text(notes[cell.note]))
        return (f'<td{cls} title="{tip}">{text}<sup><a href="#fn-{e(cell.note)}">{numbers[cell.note]}</a></sup>'
                f"</td>")
    return f"<td{cls}>{text}</td>"
