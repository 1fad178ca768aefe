"""The self-contained HTML report: one file, plotly.js embedded once, no request leaves the page.

The page opens offline from a laptop, a CI artifact or an e-mail attachment. A tiny script at the
top of the page records script errors into ``#report-errors`` (shown in red to a reader, read by
the browser test), so a broken page is never silently half-drawn.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import os
from pathlib import Path
from typing import Sequence

from paretodistill.outputs import REPORT, REPORT_GENERATOR, check_output
from paretodistill.report import figures
from paretodistill.report.analysis import load_analysis
from paretodistill.report.frontier import (
    ACCURACY,
    BELOW_THRESHOLD,
    CATEGORIES,
    DOMINATED,
    FAILED,
    FRONTIER,
    INTERRUPTED_CLASS,
    LATENCY,
    SIZE,
    UNFINISHED,
    ComparisonRow,
    StudyData,
    comparison_table,
    default_reference,
    describe_split,
    flash_regular_correlation,
    hypervolume_history,
    load_study_dir,
    parameter_importances,
)
from paretodistill.report.int8_table import default_table, load_int8_table, matched_rows, measured_how

esc = html.escape
PLOT_CONFIG = {"displaylogo": False, "responsive": True, "scrollZoom": False}

ERROR_COLLECTOR = """<script>
/* Records script errors into #report-errors: shown to readers, read by the browser test. */
(function () {
  var errors = [];
  function show() {
    var box = document.getElementById('report-errors');
    if (!box) return;
    box.textContent = errors.join('\\n');
    box.hidden = errors.length === 0;
  }
  window.addEventListener('error', function (e) {
    errors.push('script error: ' + (e.message || e) + (e.filename ? ' (' + e.filename + ':' + e.lineno + ')' : ''));
    show();
  });
  window.addEventListener('unhandledrejection', function (e) {
    errors.push('unhandled promise rejection: ' + ((e.reason && e.reason.message) || e.reason));
    show();
  });
  window.addEventListener('DOMContentLoaded', show);
  window.addEventListener('load', function () {
    show();
    setTimeout(function () {
      var plots = document.querySelectorAll('.plotly-graph-div');
      var drawn = 0;
      plots.forEach(function (p) { if (p.querySelector('.main-svg')) drawn += 1; });
      var status = document.getElementById('report-status');
      if (status) { status.setAttribute('data-plots', plots.length); status.setAttribute('data-drawn', drawn); }
      document.body.setAttribute('data-report-loaded', '1');
    }, 300);
  });
})();
</script>"""

CSS = """
:root { --red: #d62728; --grey: #666; --line: #ddd; }
* { box-sizing: border-box; }
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; margin: 0; color: #222;
       background: #fafafa; line-height: 1.45; }
header { background: #1f2a36; color: #fff; padding: 18px 32px; }
header h1 { margin: 0 0 4px 0; font-size: 24px; }
header .meta { color: #c9d3dd; font-size: 13px; }
nav { position: sticky; top: 0; background: #fff; border-bottom: 1px solid var(--line); padding: 8px 32px; z-index: 10;
      font-size: 14px; }
nav a { margin-right: 16px; color: #1f5f99; text-decoration: none; white-space: nowrap; }
main { padding: 8px 32px 48px; max-width: 1500px; margin: 0 auto; }
section { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 16px 20px; margin: 18px 0; }
h2 { margin-top: 0; font-size: 20px; }
h3 { font-size: 16px; margin: 18px 0 6px; }
p.note, div.note { color: var(--grey); font-size: 13px; }
.errors { background: #fde2e2; color: #8a1010; border: 1px solid #e99; padding: 8px 12px; white-space: pre-wrap;
          font-family: monospace; margin: 12px 32px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f3f5f7; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.up { color: #1a7f37; } .down { color: #b42318; }
.kv { display: grid; grid-template-columns: max-content auto; gap: 2px 16px; font-size: 14px; }
.kv div:nth-child(odd) { color: var(--grey); }
.badge { display: inline-block; padding: 0 6px; border-radius: 3px; font-size: 12px; color: #fff; }
.badge.frontier { background: var(--red); } .badge.dominated { background: #9a9a9a; }
.badge.below_threshold { background: #ff7f0e; } .badge.failed { background: #222; }
.example { border-left: 3px solid var(--line); padding: 4px 12px; margin: 10px 0; font-size: 13px; }
.example .q { font-weight: 600; }
mark.gold { background: #c8f0c8; } mark.pred { background: #ffd8a8; } mark.both { background: #b8e0ff; }
code { background: #f3f5f7; padding: 0 3px; border-radius: 3px; }
.plot { margin: 6px 0 14px; }
details summary { cursor: pointer; color: #1f5f99; }
"""


# ---------------------------------------------------------------- page assembly
class Page:
    """Collects sections and figures; renders one self-contained HTML document."""

    def __init__(self, title: str, subtitle: str = ""):
        self.title = title
        self.subtitle = subtitle
        self.sections: list[tuple[str, str, str]] = []  # id, heading, body
        self._figures = 0

    def figure(self, fig, name: str) -> str:
        """The div (and its drawing script) of one figure; plotly.js itself is in the page head."""
        import plotly.io as pio

        if fig is None:
            return ""
        self._figures += 1
        div_id = f"plot-{self._figures}-{name}"
        height = fig.layout.height or 450
        return '<div class="plot">' + pio.to_html(
            fig, include_plotlyjs=False, full_html=False, div_id=div_id, config=PLOT_CONFIG,
            default_width="100%", default_height=f"{height}px", validate=False,
        ) + "</div>"

    def add(self, section_id: str, heading: str, body: str) -> None:
        self.sections.append((section_id, heading, body))

    def render(self) -> str:
        from plotly.offline import get_plotlyjs

        nav = "".join(f'<a href="#{sid}">{esc(heading)}</a>' for sid, heading, _ in self.sections)
        body = "".join(f'<section id="{sid}"><h2>{esc(heading)}</h2>{content}</section>' for sid, heading, content in self.sections)
        return (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"generator\" content=\"{REPORT_GENERATOR}\">"  # marks the page as one a report may replace
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{esc(self.title)}</title>"
            f"{ERROR_COLLECTOR}<style>{CSS}</style>"
            "<script type=\"text/javascript\">window.PlotlyConfig = {MathJaxConfig: 'local'};</script>"
            f"<script type=\"text/javascript\" id=\"plotly-js\">{get_plotlyjs()}</script></head>"
            f"<body><header><h1>{esc(self.title)}</h1><div class=\"meta\">{self.subtitle}</div></header>"
            "<div id=\"report-errors\" class=\"errors\" hidden></div><div id=\"report-status\" hidden></div>"
            f"<nav>{nav}</nav><main>{body}</main></body></html>\n"
        )


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[int] = ()) -> str:
    """An HTML table; cells are already-escaped HTML, columns in ``numeric`` right-aligned."""
    head = "".join(f'<th class="{"num" if i in numeric else ""}">{h}</th>' for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f'<td class="{"num" if i in numeric else ""}">{c}</td>' for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def text(value) -> str:
    """Any value from a file, as escaped HTML text: what a study or analysis file holds is never markup."""
    return esc(str(value))


def kv(pairs: Sequence[tuple[str, str]]) -> str:
    return '<div class="kv">' + "".join(f"<div>{esc(k)}</div><div>{v}</div>" for k, v in pairs) + "</div>"


def fmt(value, name: str = "") -> str:
    return esc(figures.format_value(value, name))


def signed_pct(value: float | None) -> str:
    if value is None:
        return "–"
    css = "up" if value > 0 else "down" if value < 0 else ""
    return f'<span class="{css}">{value:+.2f}%</span>'


def params_text(params: dict) -> str:
    return esc(", ".join(f"{k}={figures.format_value(v)}" for k, v in sorted(params.items())))


def badge(category: str) -> str:
    return f'<span class="badge {category}">{esc(category.replace("_", " "))}</span>'


# ---------------------------------------------------------------- report sections
def _split_text(split) -> str:
    return "<br>".join(esc(line) for line in describe_split(split))


def overview_section(data: StudyData, page: Page) -> None:
    counts_rows = []
    for stage, records in data.stages.items():
        counts = {c: sum(r.category == c for r in records) for c in (*CATEGORIES, INTERRUPTED_CLASS, UNFINISHED)}
        counts_rows.append([esc(stage), *[str(counts[c]) for c in (*CATEGORIES, INTERRUPTED_CLASS, UNFINISHED)],
                            str(len(records))])
    teacher = (data.config.get("teacher") or {}).get("path") if isinstance(data.config.get("teacher"), dict) else None
    baseline = data.baseline
    pairs = [
        ("study", esc(f"{data.name} ({', '.join(f'{data.name}-{s}' for s in data.studies)})")),
        ("objectives", esc(", ".join(f"{o.metric} ({o.direction})" for o in data.objectives))),
        ("thresholds", esc("; ".join(
            f"{stage}: " + (" and ".join(str(b) for b in data.bounds_of(stage)) or "none") for stage in data.stages))),
        ("split", _split_text(data.split)),
        ("teacher", esc(teacher or "not recorded")),
        ("teacher latency", esc(data.teacher.describe() if data.teacher else "not measured (a study from before it was)")),
        ("results from", esc(f"the {data.final_stage} stage" if data.final_stage else "no stage")),
    ]
    if baseline is not None:
        pairs.append(("baseline", esc(
            f"exact {figures.format_value(baseline.value(ACCURACY))}, {figures.format_value(baseline.value(SIZE), SIZE)} "
            f"parameters ({baseline.source})")))
    body = kv(pairs) + "<h3>Trials by class</h3>" + table(
        ["stage", "frontier", "dominated", "below threshold", "failed", "interrupted (run again)", "unfinished", "all"],
        counts_rows, numeric=range(1, 8))
    body += (
        '<p class="note">Classes: <b>frontier</b> = meets every threshold and no other such trial of the stage is at least '
        "as good on every objective and better on one; <b>dominated</b> = meets the thresholds but is dominated; "
        "<b>below threshold</b> = completed but misses a threshold (not a usable student); <b>failed</b> = crashed, "
        "ran out of memory, diverged, or was stopped early (a flash trial that could no longer reach the front). "
        "Students are chosen on validation figures; test figures are reported, never used to choose.</p>"
    )
    for note in data.notes:
        body += f'<p class="note">Note: {esc(note)}</p>'
    page.add("overview", "Overview", body)


def comparison_section(data: StudyData, page: Page) -> list[ComparisonRow]:
    stage = data.final_stage
    candidates = [r for r in data.records(stage) if r.is_feasible] if stage else []
    rows = comparison_table(candidates, data.baseline)
    has_test = any(r.test_exact is not None for r in rows)
    has_latency = any(r.record is not None and r.record.metric(LATENCY) is not None for r in rows)
    headers = ["choice", "trial", "parameters", "size vs baseline", "exact (val)", "exact vs baseline", "points"]
    if has_test:
        headers += ["exact (test)", "test vs baseline"]
    if has_latency:
        headers += ["latency (ms)"]
    body_rows = []
    for row in rows:
        latency = row.record.metric(LATENCY) if row.record else (
            data.baseline.value(LATENCY) if row.label == "Baseline" and data.baseline else None)
        cells = [
            f"<b>{esc(row.label)}</b>" + (f'<br><span class="note">{esc(row.note)}</span>' if row.note else ""),
            esc(row.record.label) if row.record else ("–" if row.label != "Baseline" else esc(data.baseline.source)),
            fmt(row.size, SIZE), signed_pct(row.size_change_pct), fmt(row.exact), signed_pct(row.exact_change_pct),
            "–" if row.exact_change_points is None else f"{row.exact_change_points:+.2f}",
        ]
        if has_test:
            cells += [fmt(row.test_exact), signed_pct(row.test_exact_change_pct)]
        if has_latency:
            cells += [fmt(latency)]
        body_rows.append(cells)
    body = (
        f"<p>Chosen students of the {esc(stage or '')} stage against the baseline, as in SigOpt's BERT distillation "
        "experiment (2020): <i>retain size, maximize accuracy</i> is the most accurate student no larger than the "
        "baseline; <i>minimize size, retain accuracy</i> the smallest student at least as accurate. Changes are "
        "relative, 100 × (student − baseline) / baseline; <i>points</i> is the absolute change in exact.</p>"
        + table(headers, body_rows, numeric=range(2, len(headers)))
    )
    chosen = [r.record for r in rows if r.record is not None]
    if chosen:
        body += "<h3>Parameters of the chosen students</h3>" + table(
            ["choice", "trial", "parameters", "checkpoint"],
            [[esc(r.label), esc(r.record.label), params_text(r.record.params), esc(r.record.checkpoint or "–")]
             for r in rows if r.record],
        )
        best = chosen[0]
        body += (f'<p class="note">Export one with <code>paretodistill export --study {esc(str(data.directory))} --trial {best.number} '
                 f"--stage {esc(best.stage)} --out OUT</code>.</p>")
    page.add("comparison", "Chosen students against the baseline", body)
    return rows


def _two(value) -> str:
    return "–" if value is None else f"{value:.2f}"


def int8_block(data: StudyData, int8: dict | None, page: Page) -> str:
    """The frontier students' int8 variants beside their float ONNX files, when an int8 table was made."""
    command = f"python benchmarks/int8_table.py --study {esc(str(data.directory))}"
    if int8 is None:
        return (f'<p class="note">No int8 variants measured. <code>{command}</code> exports every frontier student '
                "with <code>--int8</code> and writes <code>int8_table.json</code> beside the study, where the report "
                "finds it (or pass <code>--int8-table FILE</code>).</p>")
    pairs, notes = matched_rows(data, int8)
    body = "<h3>int8 variants of the frontier students</h3>"
    body += ('<p class="note">Each frontier student exported as <code>model.onnx</code> (float32) and '
             "<code>model.int8.onnx</code> (onnxruntime dynamic int8 weights), both measured the same way by "
             f"<code>export --int8</code>, made by <code>{command}</code>. "
             f"{esc(measured_how(int8) or '')}</p>")
    body += page.figure(figures.int8_figure(pairs), "int8")
    rows = []
    for record, row in pairs:
        low, high = row["float32"], row["int8"]
        rows.append([esc(record.label), esc(row.get("architecture") or "–"), fmt(row.get("num_parameters"), SIZE),
                     *[f"{_two(low.get(k))} → {_two(high.get(k))}" for k in ("size_mb", "exact", "f1", "latency_ms")]])
    if rows:
        body += table(["trial", "layers x heads", "parameters", "file (MB)", "exact (test)", "f1 (test)",
                       "latency (ms, batch 1)"], rows, numeric=range(2, 7))
        body += '<p class="note">Cells read float32 → int8.</p>'
    for note in notes:
        body += f'<p class="note">Note: {esc(note)}</p>'
    return body


def frontier_section(data: StudyData, page: Page, int8_table: dict | None = None) -> None:
    body = ('<p class="note">Hover a point for its metrics and parameters; click a legend entry to hide a class. '
            "The dotted staircase is the 2-D frontier of each panel; red diamonds are the frontier over all objectives.</p>")
    order = sorted(data.stages, key=lambda s: s != data.final_stage)
    with_latency = data.has_latency
    for stage in order:
        records = data.records(stage)
        fig = figures.frontier_figure(records, data.bounds_of(stage), data.baseline,
                                      f"{stage} stage: {sum(r.category == FRONTIER for r in records)} frontier trials", with_latency,
                                      teacher_latency_ms=data.teacher.median_ms if data.teacher else None)
        body += f"<h3>{esc(stage.capitalize())} stage</h3>" + page.figure(fig, f"frontier-{stage}")
        if not with_latency:
            body += '<p class="note">Latency was not measured, so only exact against size is shown.</p>'
        front = sorted((r for r in records if r.category == FRONTIER), key=lambda r: r.metric(SIZE) or 0)
        body += f"<details><summary>{len(front)} frontier trials of the {esc(stage)} stage</summary>" + frontier_table(
            data, front) + "</details>"
        if stage == data.final_stage:
            body += int8_block(data, int8_table, page)
    below = [r for r in data.records() if r.category == BELOW_THRESHOLD]
    if below:
        body += f"<details><summary>{len(below)} trials below the threshold</summary>" + table(
            ["trial", "misses", "exact", "parameters", "params"],
            [[esc(r.label), esc("; ".join(r.violations)), fmt(r.metric(ACCURACY)),
              fmt(r.metric(SIZE), SIZE), params_text(r.params)] for r in below], numeric=(2, 3)) + "</details>"
    page.add("frontier", "Pareto frontier", body)


def frontier_table(data: StudyData, front: Sequence) -> str:
    """The frontier trials, smallest first, under a teacher row when the study timed its teacher:
    each student's latency also as a fraction of the teacher's ("–" where either is unknown)."""
    teacher = data.teacher

    def fraction(latency) -> str:
        value = teacher.fraction(latency) if teacher is not None else None
        return "–" if value is None else f"{value:.2f}"

    rows = []
    if teacher is not None:
        path = (data.config.get("teacher") or {}).get("path") if isinstance(data.config.get("teacher"), dict) else None
        rows.append(["<b>teacher</b>", "–", "–", "–", fmt(teacher.num_parameters, SIZE), fmt(teacher.median_ms),
                     "1.00", esc(path or "–"), "–"])
    rows += [[esc(str(r.number)), fmt(r.metric(ACCURACY)), fmt(r.test_metric(ACCURACY)), fmt(r.metric("f1")),
              fmt(r.metric(SIZE), SIZE), fmt(r.metric(LATENCY)), fraction(r.metric(LATENCY)), params_text(r.params),
              esc(r.checkpoint or "–")] for r in front]
    return table(["trial", "exact (val)", "exact (test)", "f1 (val)", "parameters", "latency (ms)", "latency / teacher",
                  "params", "checkpoint"], rows, numeric=range(1, 7))


def failures_section(data: StudyData, page: Page) -> None:
    """Failed trials and interrupted ones (not finished, run again; listed with why they stopped)."""
    failed = [r for r in data.records() if r.category in (FAILED, INTERRUPTED_CLASS)]
    if not failed:
        page.add("failures", "Failed trials", "<p>No trial failed.</p>")
        return
    kinds: dict[str, int] = {}
    for r in failed:
        kinds[r.failure_kind or r.state.lower()] = kinds.get(r.failure_kind or r.state.lower(), 0) + 1
    body = "<p>" + esc(", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(kinds.items(), key=lambda kv: -kv[1]))) + ".</p>"
    body += table(
        ["trial", "state", "kind", "reason", "step", "params"],
        [[esc(r.label), esc(r.state), esc(r.failure_kind or "–"), esc(r.failure_reason or "–"),
          esc("–" if r.failure_step is None else str(r.failure_step)), params_text(r.params)] for r in failed],
    )
    page.add("failures", f"Failed trials ({len(failed)})", body)


def importance_section(data: StudyData, page: Page) -> None:
    body = ('<p class="note">How much each parameter explains each objective (Optuna PED-ANOVA on the completed, '
            "non-failed trials of the stage; normalized to sum to 1 per objective). With few trials these are rough.</p>")
    for stage in sorted(data.stages, key=lambda s: s != data.final_stage):
        importances = parameter_importances(data, stage)
        body += f"<h3>{esc(stage.capitalize())} stage</h3>"
        for objective, value in importances.items():
            if isinstance(value, str):
                body += f'<p class="note">{esc(objective)}: {esc(value)}</p>'
        body += page.figure(figures.importance_figure(importances, f"Parameter importance, {stage} stage"), f"importance-{stage}")
    page.add("importance", "Parameter importance", body)


def parallel_section(data: StudyData, page: Page) -> None:
    stage = data.final_stage
    front = [r for r in data.records(stage) if r.category == FRONTIER] if stage else []
    body = '<p class="note">One line per frontier trial through its parameters and objectives; drag along an axis to filter.</p>'
    if not front:
        page.add("parallel", "Parallel coordinates", body + "<p>No frontier trials.</p>")
        return
    title = f"Frontier trials of the {stage} stage ({len(front)})"
    body += page.figure(figures.parallel_coordinates_figure(front, data.objectives, title), "parallel-frontier")
    base = data.baseline.value(ACCURACY) if data.baseline else None
    if base is None:
        body += '<p class="note">No baseline: the view of the frontier at or above the baseline is left out.</p>'
    else:
        above = [r for r in front if r.metric(ACCURACY) >= base]
        if above:
            title = f"Frontier trials at or above the baseline's exact {base:g} ({len(above)})"
            body += page.figure(figures.parallel_coordinates_figure(above, data.objectives, title), "parallel-above-baseline")
        else:
            body += f"<p>No frontier trial reaches the baseline's exact ({base:g}).</p>"
    page.add("parallel", "Parallel coordinates", body)


def curves_section(data: StudyData, page: Page) -> None:
    order = {FRONTIER: 0, DOMINATED: 1, BELOW_THRESHOLD: 2, FAILED: 3}
    records = sorted(
        (r for r in data.records() if r.curve and r.category in order),
        key=lambda r: (r.stage != data.final_stage, order[r.category], -(r.metric(ACCURACY) or 0), r.number),
    )
    fig = figures.learning_curves_figure(records)
    if fig is None:
        page.add("curves", "Learning curves", "<p>No trial recorded a learning curve.</p>")
        return
    body = ('<p class="note">Pick a trial from the menu (frontier trials of the final stage first). Curves are measured on '
            "the validation articles during training.</p>")
    if len(records) > figures.MAX_CURVE_TRIALS:
        body += f'<p class="note">The first {figures.MAX_CURVE_TRIALS} of {len(records)} trials with curves are shown.</p>'
    page.add("curves", "Learning curves", body + page.figure(fig, "curves"))


def progress_section(data: StudyData, page: Page) -> None:
    reference = default_reference(data)
    histories = {stage: hypervolume_history(records, reference) for stage, records in data.stages.items()}
    body = (f'<p class="note">2-D hypervolume of the feasible trials in exact × size (even when latency is an objective), '
            f"against the number of finished trials, with a fixed reference point: exact {reference.exact:g} (the "
            f"threshold, else 0) and {reference.size / 1e6:.2f}M parameters (1.1 × the largest size seen). A flat tail "
            "means the search stopped finding better students.</p>")
    body += page.figure(figures.hypervolume_figure(histories, reference), "hypervolume")
    if "flash" in data.stages and "regular" in data.stages:
        metric, pairs, rho = flash_regular_correlation(data)
        body += "<h3>Flash against regular</h3>"
        text = f"{len(pairs)} students completed in both stages (same parameters, budget aside)"
        text += f"; Spearman ρ of {metric} = {rho:.3f}" if rho is not None else "; too few pairs for a rank correlation"
        body += f"<p>{esc(text)}. A high ρ means the short flash budget ranks students as the full budget does.</p>"
        body += page.figure(figures.flash_regular_figure(pairs, rho), "flash-regular")
    page.add("progress", "Search progress", body)


# ---------------------------------------------------------------- error analysis
def _marked_snippet(context: dict) -> str:
    """The context snippet with the gold answer and the prediction highlighted (overlap in a third colour)."""
    text = str(context.get("text", ""))
    flags = [0] * len(text)
    for name, bit in (("gold_span", 1), ("prediction_span", 2)):
        if context.get(name):
            for i in range(max(0, context[name][0]), min(len(text), context[name][1])):
                flags[i] |= bit
    css = {1: "gold", 2: "pred", 3: "both"}
    out, start = [], 0
    for i in range(1, len(text) + 1):
        if i == len(text) or flags[i] != flags[start]:
            piece = esc(text[start:i])
            out.append(f'<mark class="{css[flags[start]]}">{piece}</mark>' if flags[start] else piece)
            start = i
    return ("… " if context.get("prefix") else "") + "".join(out) + (" …" if context.get("suffix") else "")


def analysis_body(analysis: dict, page: Page, key: str = "analysis") -> str:
    counts = analysis["counts"]
    categories = analysis.get("categories") or {}
    errors = max(1, counts["errors"])
    where = ", ".join(f"{k} {text(analysis.get(k))}"
                      for k in ("model", "predictions", "data", "part", "threshold") if analysis.get(k) is not None)
    body = f'<p class="note">{where}</p>'
    metrics = analysis.get("metrics") or {}
    body += kv([
        ("questions", f"{counts['questions']}"
         + (f" ({text(counts['missing_predictions'])} without prediction)" if counts.get("missing_predictions") else "")),
        ("correct (exact)", f"{counts['correct']} ({100 * counts['correct'] / max(1, counts['scored']):.2f}%)"),
        ("wrong", f"{counts['errors']}"),
        *([("official exact / f1", f"{metrics['exact']:.2f} / {metrics['f1']:.2f}")] if "exact" in metrics and "f1" in metrics else []),
    ])
    body += "<h3>Wrong answers by category</h3>" + table(
        ["category", "count", "share of errors"],
        [[text(label), str(counts[k]), f"{100 * counts[k] / errors:.1f}%"] for k, label in categories.items()], numeric=(1, 2))
    body += f'<p class="note">Rule: {text(analysis.get("rule", ""))}.</p>'
    body += page.figure(figures.topic_errors_figure(analysis["by_topic"], categories), f"{key}-topics")
    topics = analysis["by_topic"][:20]
    body += "<details><summary>Errors per topic (top 20)</summary>" + table(
        ["topic", "questions", "errors", "error rate", *map(text, categories.values())],
        [[text(t.get("title")), str(t["questions"]), str(t["errors"]), f"{100 * t['errors'] / max(1, t['questions']):.1f}%",
          *[str(t[k]) for k in categories]] for t in topics], numeric=range(1, 4 + len(categories))) + "</details>"
    body += "<h3>Examples</h3>"
    for k, label in categories.items():
        examples = analysis["examples"].get(k) or []
        opened = "open" if k in ("mostly_correct", "mostly_wrong") else ""
        body += f"<details {opened}><summary>{text(label)}: {len(examples)} of {counts[k]}</summary>"
        for e in examples:
            gold = " | ".join(map(str, e["gold"])) if e["gold"] else "(no answer)"
            body += (
                f'<div class="example"><div class="q">{text(e.get("question"))}</div>'
                f'<div><mark class="gold">gold</mark> {text(gold)} &nbsp; <mark class="pred">prediction</mark> '
                f'{text(e.get("prediction") or "(no answer)")} &nbsp; '
                f'<span class="note">F1 {e["f1"]:.2f} · {text(e.get("title"))} · {text(e.get("id"))}</span></div>'
                f'<div class="note">{_marked_snippet(e["context"])}</div></div>'
            )
        body += "</details>"
    return body


def analysis_page(analysis: dict) -> str:
    """analysis.html: the error analysis alone, as a self-contained page."""
    page = Page("paretodistill error analysis", esc(str(analysis.get("model") or analysis.get("predictions") or "")))
    page.add("analysis", "Error analysis", analysis_body(analysis, page))
    return page.render()


# ---------------------------------------------------------------- the whole report
def render_report(data: StudyData, analyses: Sequence[dict] = (), int8_table: dict | None = None) -> str:
    when = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    page = Page(f"paretodistill report: {data.name}", esc(f"{data.directory} · generated {when}"))
    overview_section(data, page)
    comparison_section(data, page)
    frontier_section(data, page, int8_table)
    failures_section(data, page)
    importance_section(data, page)
    parallel_section(data, page)
    curves_section(data, page)
    progress_section(data, page)
    if analyses:
        body = ""
        for i, analysis in enumerate(analyses):
            title = analysis.get("model") or analysis.get("predictions") or analysis.get("source_file") or f"analysis {i + 1}"
            body += f"<h3>{esc(str(title))}</h3>" + analysis_body(analysis, page, key=f"analysis-{i}")
        page.add("errors", "Error analysis", body)
    else:
        page.add("errors", "Error analysis", (
            "<p>No error analysis included. Run <code>paretodistill analyze --model CHECKPOINT --data FILE --part validation "
            f"--out {esc(str(data.directory))}/analysis/NAME</code>; the report picks up every "
            "<code>analysis/*/analysis.json</code> of the study directory, or pass <code>--analysis DIR</code>.</p>"))
    return page.render()


def write_analysis(analysis: dict, out_dir: str | Path) -> dict[str, Path]:
    """analysis.json (everything, every error) and analysis.html (a self-contained page)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"json": out_dir / "analysis.json", "html": out_dir / "analysis.html"}
    files["json"].write_text(json.dumps(analysis, indent=1, ensure_ascii=False))
    files["html"].write_text(analysis_page(analysis), encoding="utf-8")
    return files


def find_analyses(directory: Path) -> list[Path]:
    """The analyses stored in the study directory (``DIR/analysis/*/analysis.json``)."""
    return sorted((directory / "analysis").glob("*/analysis.json")) if (directory / "analysis").is_dir() else []


def build_report(directory: str | Path, out: str | Path, analysis_paths: Sequence[str | Path] = (), name: str | None = None,
                 int8_table: str | Path | None = None) -> Path:
    """Write the report of a study directory to ``out``; returns its path.

    ``int8_table``: an ``int8_table.json`` (``benchmarks/int8_table.py``); by default the one in
    ``<study>-int8/`` beside the study, when there is one.

    ``out`` is checked before anything is read (``paretodistill.outputs``: never the study, an input,
    a model folder or a file that is not an earlier report; inside the study is the usual place) and
    written through a temporary file and a rename, so a failed report never leaves half a page over
    an earlier one.
    """
    directory = Path(directory)
    out = Path(out)
    analyses_given = {f"the analysis {Path(p).name}": p for p in analysis_paths}
    check_output(out, REPORT, {**analyses_given, "the int8 table": int8_table}, home=directory)
    data = load_study_dir(directory, name)
    paths = [Path(p) for p in analysis_paths] or find_analyses(directory)
    analyses = [load_analysis(p) for p in paths]
    table_path = Path(int8_table) if int8_table is not None else default_table(directory)
    table = load_int8_table(table_path) if int8_table is not None or table_path.is_file() else None
    out.parent.mkdir(parents=True, exist_ok=True)
    temporary = out.with_name(f".{out.name}.tmp")
    temporary.write_text(render_report(data, analyses, table), encoding="utf-8")
    os.replace(temporary, out)
    return out
