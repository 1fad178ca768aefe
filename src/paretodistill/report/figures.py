"""Plotly figures of the report; each function takes plain records and returns a ``go.Figure``.

Colours and markers tell the trial classes apart in every figure (and in print, by shape too):
frontier red diamonds, dominated grey circles, below-threshold orange triangles, failed black
crosses, the baseline a blue star; a frontier student's int8 variant a green open diamond.
"""

from __future__ import annotations

import math
from typing import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from paretodistill.report.frontier import (
    ACCURACY,
    BELOW_THRESHOLD,
    DOMINATED,
    FAILED,
    FRONTIER,
    LATENCY,
    SIZE,
    BaselineResult,
    Objective,
    Reference,
    TrialRecord,
    two_d_frontier,
)
from paretodistill.search.objectives import Threshold

STYLE = {
    FRONTIER: dict(name="Pareto frontier", color="#d62728", symbol="diamond", size=12),
    DOMINATED: dict(name="dominated", color="#9a9a9a", symbol="circle", size=8),
    BELOW_THRESHOLD: dict(name="below threshold", color="#ff7f0e", symbol="triangle-down", size=10),
    FAILED: dict(name="failed (drawn at the bottom; reasons in the table)", color="#222222", symbol="x-thin-open", size=10),
}
BASELINE_STYLE = dict(name="baseline", color="#1f77b4", symbol="star", size=18)
VARIANT_STYLE = {
    "float32": dict(name="float32 (ONNX)", color="#d62728", symbol="diamond", size=12),
    "int8": dict(name="int8 (ONNX dynamic)", color="#2ca02c", symbol="diamond-open", size=14),
}
CURVE_METRICS = ("exact", "f1", "HasAns_exact", "NoAns_exact")
CURVE_COLORS = {"loss": "#444444", "exact": "#d62728", "f1": "#1f77b4", "HasAns_exact": "#2ca02c", "NoAns_exact": "#9467bd"}
AXIS_TITLES = {ACCURACY: "exact (validation)", SIZE: "parameters (millions)", LATENCY: "latency (ms)"}
LAYOUT = dict(template="plotly_white", font=dict(size=13), margin=dict(l=60, r=30, t=60, b=50))
MAX_CURVE_TRIALS = 60


def axis_value(record_or_baseline, name: str) -> float | None:
    """A metric in plotting units (parameters in millions)."""
    if isinstance(record_or_baseline, BaselineResult):
        value = record_or_baseline.value(name)
    else:
        value = record_or_baseline.metric(name)
    if value is None:
        return None
    return value / 1e6 if name == SIZE else value


def format_value(value, name: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, bool) or isinstance(value, str):
        return str(value)
    if name == SIZE or (isinstance(value, (int, float)) and abs(value) >= 1e5):
        return f"{value / 1e6:.2f}M"
    if isinstance(value, float):
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e4):
            return f"{value:.3g}"
        return f"{value:.4g}"
    return str(value)


def hover_text(record: TrialRecord) -> str:
    """The hover box: the trial, its metrics and every parameter."""
    lines = [f"<b>{record.label}</b> ({record.category.replace('_', ' ')})"]
    for name in (ACCURACY, "f1", SIZE, LATENCY):
        value = record.metric(name)
        if value is not None:
            lines.append(f"{name}: {format_value(value, name)}")
    if record.test_metric(ACCURACY) is not None:
        lines.append(f"test exact: {format_value(record.test_metric(ACCURACY))}")
    if record.violations:
        lines.append("misses: " + "; ".join(record.violations))
    if record.failure_kind:
        lines.append(f"failure: {record.failure_kind}: {record.failure_reason or ''}")
    lines.append("<i>parameters</i>")
    lines.extend(f"{k}: {format_value(v)}" for k, v in sorted(record.params.items()))
    return "<br>".join(lines)


def baseline_hover(baseline: BaselineResult) -> str:
    lines = ["<b>baseline</b>"]
    for name in (ACCURACY, "f1", SIZE, LATENCY):
        if baseline.value(name) is not None:
            lines.append(f"{name}: {format_value(baseline.value(name), name)}")
    if baseline.test_value(ACCURACY) is not None:
        lines.append(f"test exact: {format_value(baseline.test_value(ACCURACY))}")
    lines.append("<i>parameters</i>")
    lines.extend(f"{k}: {format_value(v)}" for k, v in sorted(baseline.params.items()))
    return "<br>".join(lines)


def frontier_figure(
    records: Sequence[TrialRecord],
    bounds: Sequence[Threshold],
    baseline: BaselineResult | None,
    title: str,
    with_latency: bool,
    teacher_latency_ms: float | None = None,
) -> go.Figure:
    """Exact against size (and against latency in a second panel): every class, the baseline, the
    threshold, and on the latency panel the teacher's latency (a vertical line) where it was timed."""
    xs = [SIZE] + ([LATENCY] if with_latency else [])
    fig = make_subplots(rows=1, cols=len(xs), shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=[f"exact vs {AXIS_TITLES[x]}" for x in xs])
    plotted = [r for r in records if r.category in (FRONTIER, DOMINATED, BELOW_THRESHOLD)]
    exacts = [r.metric(ACCURACY) for r in plotted] + ([baseline.value(ACCURACY)] if baseline else [])
    exacts = [e for e in exacts if e is not None]
    bottom = (min(exacts) - 0.06 * max(1.0, max(exacts) - min(exacts))) if exacts else 0.0
    for col, x in enumerate(xs, start=1):
        for category in (DOMINATED, BELOW_THRESHOLD, FAILED, FRONTIER):
            members = [r for r in records if r.category == category and axis_value(r, x) is not None]
            style = STYLE[category]
            ys = [bottom if category == FAILED else axis_value(r, ACCURACY) for r in members]
            fig.add_trace(go.Scatter(
                x=[axis_value(r, x) for r in members], y=ys, mode="markers",
                name=f"{style['name']} ({len(members)})", legendgroup=category, showlegend=col == 1,
                marker=dict(color=style["color"], symbol=style["symbol"], size=style["size"],
                            line=dict(width=1, color="white") if category != FAILED else dict(width=2, color=style["color"])),
                text=[hover_text(r) for r in members], hovertemplate="%{text}<extra></extra>",
            ), row=1, col=col)
        front = two_d_frontier(records, x)
        if len(front) > 1:
            fig.add_trace(go.Scatter(
                x=[axis_value(r, x) for r in front], y=[axis_value(r, ACCURACY) for r in front],
                mode="lines", line=dict(color=STYLE[FRONTIER]["color"], width=1, dash="dot", shape="hv"),
                name="2-D frontier of this panel", legendgroup="staircase", showlegend=col == 1, hoverinfo="skip",
            ), row=1, col=col)
        if baseline is not None and baseline.value(x) is not None and baseline.value(ACCURACY) is not None:
            fig.add_trace(go.Scatter(
                x=[axis_value(baseline, x)], y=[baseline.value(ACCURACY)], mode="markers", name=BASELINE_STYLE["name"],
                legendgroup="baseline", showlegend=col == 1,
                marker=dict(color=BASELINE_STYLE["color"], symbol=BASELINE_STYLE["symbol"], size=BASELINE_STYLE["size"],
                            line=dict(width=1, color="white")),
                text=[baseline_hover(baseline)], hovertemplate="%{text}<extra></extra>",
            ), row=1, col=col)
        if x == LATENCY and teacher_latency_ms is not None:
            fig.add_vline(x=teacher_latency_ms, line=dict(color="#444", dash="dot", width=1), row=1, col=col,
                          annotation_text=f"teacher: {teacher_latency_ms:.3g} ms", annotation_position="top left")
        fig.update_xaxes(title_text=AXIS_TITLES[x], row=1, col=col)
    for bound in bounds:
        if bound.metric == ACCURACY and bound.operator == ">=":
            fig.add_hline(y=bound.value, line=dict(color=STYLE[BELOW_THRESHOLD]["color"], dash="dash", width=1),
                          annotation_text=f"threshold: {bound}", annotation_position="bottom right")
    fig.update_yaxes(title_text=AXIS_TITLES[ACCURACY], row=1, col=1)
    fig.update_layout(**LAYOUT, title=title, height=520, hovermode="closest",
                      legend=dict(orientation="h", yanchor="top", y=-0.14, x=0))
    return fig


def variant_hover(record: TrialRecord, row: dict, variant: str) -> str:
    figures = row[variant]
    lines = [f"<b>{record.label}</b> {VARIANT_STYLE[variant]['name']}", f"file: {figures.get('file')}",
             f"size: {format_value(figures.get('size_mb'))} MB",
             f"test exact: {format_value(figures.get('exact'))}", f"test f1: {format_value(figures.get('f1'))}",
             f"latency: {format_value(figures.get('latency_ms'))} ms (batch 1)"]
    if row.get("architecture"):
        lines.append(f"layers x heads: {row['architecture']}")
    if row.get("num_parameters") is not None:
        lines.append(f"{SIZE}: {format_value(row['num_parameters'], SIZE)}")
    return "<br>".join(lines)


def int8_figure(pairs: Sequence[tuple[TrialRecord, dict]]) -> go.Figure | None:
    """Test exact against ONNX file size and batch-1 latency: each frontier student's float32 and int8
    files as their own points, joined by a dotted line.

    Its own figure, not points on the frontier plot: that plot is validation exact against parameters
    (an int8 file has as many) and the search's latency, while both files here are measured alike,
    on the test part, in ONNX Runtime.
    """
    rows = [(r, row) for r, row in pairs
            if all((row.get(v) or {}).get(k) is not None for v in VARIANT_STYLE for k in ("exact", "size_mb", "latency_ms"))]
    if not rows:
        return None
    panels = (("size_mb", "ONNX file size (MB)"), ("latency_ms", "latency (ms, batch 1, ONNX Runtime)"))
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=[f"test exact vs {title}" for _, title in panels])
    for col, (key, title) in enumerate(panels, start=1):
        xs, ys = [], []
        for _, row in rows:
            xs += [row["float32"][key], row["int8"][key], None]
            ys += [row["float32"]["exact"], row["int8"]["exact"], None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="#bbbbbb", width=1, dash="dot"),
                                 name="same student", legendgroup="pair", showlegend=col == 1, hoverinfo="skip"),
                      row=1, col=col)
        for variant, style in VARIANT_STYLE.items():
            fig.add_trace(go.Scatter(
                x=[row[variant][key] for _, row in rows], y=[row[variant]["exact"] for _, row in rows], mode="markers",
                name=f"{style['name']} ({len(rows)})", legendgroup=variant, showlegend=col == 1,
                marker=dict(color=style["color"], symbol=style["symbol"], size=style["size"], line=dict(width=2, color=style["color"])),
                text=[variant_hover(r, row, variant) for r, row in rows], hovertemplate="%{text}<extra></extra>",
            ), row=1, col=col)
        fig.update_xaxes(title_text=title, rangemode="tozero", row=1, col=col)
    fig.update_yaxes(title_text="exact (test)", row=1, col=1)
    fig.update_layout(**LAYOUT, title=f"Frontier students as float32 and int8 ONNX files ({len(rows)})", height=460,
                      hovermode="closest", legend=dict(orientation="h", yanchor="top", y=-0.16, x=0))
    return fig


def importance_figure(importances: dict[str, dict[str, float] | str], title: str) -> go.Figure | None:
    """Grouped horizontal bars: one group per parameter, one bar per objective."""
    usable = {k: v for k, v in importances.items() if isinstance(v, dict) and v}
    if not usable:
        return None
    params = sorted({p for v in usable.values() for p in v}, key=lambda p: -max(v.get(p, 0.0) for v in usable.values()))
    fig = go.Figure()
    for objective, values in usable.items():
        fig.add_trace(go.Bar(
            y=params[::-1], x=[values.get(p, 0.0) for p in params[::-1]], orientation="h", name=objective,
            hovertemplate="%{y}: %{x:.3f}<extra>" + objective + "</extra>",
        ))
    fig.update_layout(**LAYOUT, title=title, barmode="group", height=max(320, 40 + 28 * len(params) * len(usable)),
                      xaxis_title="importance (PED-ANOVA, normalized per objective)")
    return fig


def _dimension(label: str, values: list, distribution=None) -> dict:
    """A go.Parcoords dimension; categorical and log-scaled parameters get readable tick labels."""
    cls = type(distribution).__name__ if distribution is not None else ""
    if cls == "CategoricalDistribution" or any(isinstance(v, (str, bool)) or v is None for v in values):
        choices = list(distribution.choices) if cls == "CategoricalDistribution" else sorted({str(v) for v in values})
        if any(v not in choices for v in values):  # values missing from the choices (or the parameter absent)
            choices = list(dict.fromkeys([*choices, *[v for v in values if v not in choices]]))
        index = {repr(c): i for i, c in enumerate(choices)}
        return dict(label=label, values=[index[repr(v)] for v in values], tickvals=list(range(len(choices))),
                    ticktext=["–" if c is None else str(c) for c in choices], range=[-0.25, len(choices) - 0.75])
    numbers = [float(v) for v in values]
    if getattr(distribution, "log", False) and all(v > 0 for v in numbers):
        logs = [math.log10(v) for v in numbers]
        low, high = math.log10(distribution.low), math.log10(distribution.high)
        ticks = list(range(math.ceil(low), math.floor(high) + 1)) or [round(low, 2), round(high, 2)]
        return dict(label=f"{label} (log)", values=logs, range=[low, high], tickvals=ticks, ticktext=[f"1e{t:g}" for t in ticks])
    dimension = dict(label=label, values=numbers)
    if distribution is not None and hasattr(distribution, "low"):
        dimension["range"] = [distribution.low, distribution.high]
    return dimension


def parallel_coordinates_figure(records: Sequence[TrialRecord], objectives: Sequence[Objective], title: str) -> go.Figure | None:
    """One line per trial through its parameters and objectives, coloured by exact."""
    if not records:
        return None
    names = sorted({p for r in records for p in r.params})
    dimensions = []
    for name in names:
        distribution = next((r.distributions[name] for r in records if name in r.distributions), None)
        dimensions.append(_dimension(name, [r.params.get(name) for r in records], distribution))
    for objective in objectives:
        values = [axis_value(r, objective.metric) for r in records]
        if all(v is not None for v in values):
            dimensions.append(dict(label=AXIS_TITLES.get(objective.metric, objective.metric), values=values))
    exact = [r.metric(ACCURACY) or 0.0 for r in records]
    fig = go.Figure(go.Parcoords(
        dimensions=dimensions,
        line=dict(color=exact, colorscale="Viridis", showscale=True, colorbar=dict(title="exact")),
        labelangle=-20, labelside="top",
    ))
    fig.update_layout(**{**LAYOUT, "margin": dict(l=70, r=70, t=110, b=40)}, title=title, height=460)
    return fig


def learning_curves_figure(records: Sequence[TrialRecord]) -> go.Figure | None:
    """Loss and validation metrics against step; a dropdown picks the trial (or all frontier trials)."""
    with_curves = [r for r in records if r.curve][:MAX_CURVE_TRIALS]
    if not with_curves:
        return None
    fig = make_subplots(rows=1, cols=2, subplot_titles=("training loss", "validation metrics"), horizontal_spacing=0.08)
    groups: list[tuple[str, list[int]]] = []
    traces: list[tuple[go.Scatter, int]] = []  # added at once: one add_trace each re-validates all before (quadratic)

    def add(trace, col) -> int:
        traces.append((trace, col))
        return len(traces) - 1

    frontier = [r for r in with_curves if r.category == FRONTIER]
    if len(frontier) > 1:
        indices = []
        for r in frontier:
            steps = [p.get("step") for p in r.curve]
            indices.append(add(go.Scatter(x=steps, y=[p.get("loss") for p in r.curve], mode="lines", name=f"{r.label} loss",
                                          legendgroup=r.label, visible=False), 1))
            indices.append(add(go.Scatter(x=steps, y=[p.get("exact") for p in r.curve], mode="lines+markers", name=f"{r.label} exact",
                                          legendgroup=r.label, visible=False), 2))
        groups.append((f"all {len(frontier)} frontier trials: loss and exact", indices))
    for r in with_curves:
        steps = [p.get("step") for p in r.curve]
        indices = [add(go.Scatter(x=steps, y=[p.get("loss") for p in r.curve], mode="lines+markers", name="loss",
                                  line=dict(color=CURVE_COLORS["loss"]), visible=False), 1)]
        for metric in CURVE_METRICS:
            if any(metric in p for p in r.curve):
                indices.append(add(go.Scatter(x=steps, y=[p.get(metric) for p in r.curve], mode="lines+markers", name=metric,
                                              line=dict(color=CURVE_COLORS[metric]), visible=False), 2))
        final = r.metric(ACCURACY)
        suffix = f", exact {final:.1f}" if final is not None else ""
        groups.append((f"{r.label} ({r.category.replace('_', ' ')}{suffix})", indices))
    first = 1 if len(frontier) > 1 else 0  # open on the single best trial, not the busy overview
    for index in groups[first][1]:
        traces[index][0].visible = True
    fig.add_traces([trace for trace, _ in traces], rows=[1] * len(traces), cols=[col for _, col in traces])
    buttons = []
    for label, indices in groups:
        mask = [False] * len(fig.data)
        for index in indices:
            mask[index] = True
        buttons.append(dict(label=label, method="restyle", args=[{"visible": mask}]))
    fig.update_layout(
        **{**LAYOUT, "margin": dict(l=60, r=30, t=110, b=50)}, height=480, title="Learning curves of",
        updatemenus=[dict(buttons=buttons, active=first, x=0.16, xanchor="left", y=1.27, yanchor="top", direction="down")],
    )
    fig.update_xaxes(title_text="step")
    return fig


def hypervolume_figure(histories: dict[str, list[tuple[int, float]]], reference: Reference) -> go.Figure | None:
    if not any(histories.values()):
        return None
    fig = go.Figure()
    for stage, history in histories.items():
        if history:
            fig.add_trace(go.Scatter(x=[c for c, _ in history], y=[h for _, h in history], mode="lines+markers",
                                     name=stage, line=dict(shape="hv")))
    fig.update_layout(
        **LAYOUT, height=380,
        title=f"Hypervolume (exact × size) against trials; reference exact {reference.exact:g}, size {reference.size / 1e6:.1f}M",
        xaxis_title="finished trials", yaxis_title="hypervolume (exact × size share)",
    )
    return fig


def flash_regular_figure(pairs: Sequence[tuple[TrialRecord, TrialRecord]], rho: float | None) -> go.Figure | None:
    if not pairs:
        return None
    xs = [f.metric(ACCURACY) for f, _ in pairs]
    ys = [r.metric(ACCURACY) for _, r in pairs]
    low, high = min(xs + ys) - 1, max(xs + ys) + 1
    fig = go.Figure([
        go.Scatter(x=[low, high], y=[low, high], mode="lines", line=dict(color="#bbbbbb", dash="dash"), name="y = x", hoverinfo="skip"),
        go.Scatter(x=xs, y=ys, mode="markers", marker=dict(size=11, color="#1f77b4"), name="trial",
                   text=[f"flash #{f.number} → regular #{r.number}<br>flash exact {x:.2f}<br>regular exact {y:.2f}"
                         for (f, r), x, y in zip(pairs, xs, ys)], hovertemplate="%{text}<extra></extra>"),
    ])
    rho_text = "n/a (fewer than 3 pairs)" if rho is None else f"{rho:.3f}"
    fig.update_layout(**LAYOUT, height=420, title=f"Flash against regular exact (Spearman ρ = {rho_text}, {len(pairs)} pairs)",
                      xaxis_title="flash exact (short budget)", yaxis_title="regular exact (full budget)")
    return fig


ERROR_COLORS = {"mostly_correct": "#2ca02c", "mostly_wrong": "#d62728", "label_has_answer": "#1f77b4", "label_has_no_answer": "#ff7f0e"}


def topic_errors_figure(by_topic: Sequence[dict], categories: dict[str, str], top: int = 15) -> go.Figure | None:
    """Stacked bars of the topics with the most errors, split by category."""
    topics = sorted(by_topic, key=lambda t: (-t["errors"], t["title"]))[:top]
    if not topics or not topics[0]["errors"]:
        return None
    fig = go.Figure()
    for key, label in categories.items():
        fig.add_trace(go.Bar(
            y=[t["title"] for t in topics][::-1], x=[t[key] for t in topics][::-1], orientation="h", name=label,
            marker_color=ERROR_COLORS.get(key), hovertemplate="%{y}: %{x} " + label + "<extra></extra>",
        ))
    fig.update_layout(**{**LAYOUT, "margin": dict(l=220, r=30, t=100, b=50)}, barmode="stack",
                      height=max(340, 140 + 26 * len(topics)), title=f"Topics with the most errors (top {len(topics)})",
                      xaxis_title="wrong answers",
                      legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0, traceorder="normal"))
    return fig
