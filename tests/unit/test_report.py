"""The study report: trial classes, the SigOpt comparison table, hypervolume, pairing, and the HTML page.

Expected classes and percentages are worked out by hand from ``report_fixtures.HAND_FLASH``:

    trial  exact  size  latency  note
    0      70     20M   9.0      frontier
    1      65     10M   5.0      frontier
    2      60     15M   3.0      dominated by 1 (2-D); frontier with latency (fastest feasible)
    3      72     30M   14.0     frontier (most accurate)
    4      45      5M   2.0      below threshold (exact >= 50)
    5      FAIL (out_of_memory)  failed
    6      68     25M   10.0     dominated by 0
    7      55      8M   4.0      frontier (smallest feasible)
    8      COMPLETE but failure_kind=diverged -> failed
    9      65     10M   5.5      ties 1 in 2-D (both frontier); dominated by 1 with latency
    10     49.9    1M   1.0      below threshold
    11     PRUNED  failed;  12 RUNNING  unfinished
    baseline: 64, 22M
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/report_fixtures.py
import report_fixtures as fx  # noqa: E402
from paretodistill.report import frontier as fr  # noqa: E402
from paretodistill.report.frontier import (  # noqa: E402
    Objective,
    Reference,
    ReportError,
    TrialRecord,
    accuracy_floor,
    classify,
    comparison_table,
    dominates,
    exact_size_hypervolume,
    flash_regular_pairs,
    hypervolume_history,
    load_study_dir,
    parse_objectives,
    parse_thresholds,
    threshold_miss,
)
from paretodistill.search.domain import spearman  # noqa: E402
from paretodistill.search.objectives import ObjectiveSet  # noqa: E402
from paretodistill.search.plan import Baseline  # noqa: E402

M = 1_000_000


@pytest.fixture(scope="module")
def hand_dir(tmp_path_factory) -> Path:
    return fx.write_study(tmp_path_factory.mktemp("hand"), fx.HAND_FLASH, baseline=fx.HAND_BASELINE)


@pytest.fixture(scope="module")
def hand(hand_dir):
    return load_study_dir(hand_dir)


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory) -> Path:
    return fx.demo_study(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="module")
def demo_html(demo_dir) -> str:
    from paretodistill.report.html import build_report

    return build_report(demo_dir, demo_dir / "report.html").read_text()


def numbers(records, category) -> list[int]:
    return sorted(r.number for r in records if r.category == category)


# ---------------------------------------------------------------- classification
def test_classes_of_the_hand_made_trials(hand):
    records = hand.records("flash")
    assert numbers(records, "frontier") == [0, 1, 3, 7, 9]
    assert numbers(records, "dominated") == [2, 6]
    assert numbers(records, "below_threshold") == [4, 10]
    assert numbers(records, "failed") == [5, 8, 11]
    assert numbers(records, "unfinished") == [12]
    by_number = {r.number: r for r in records}
    assert by_number[4].violations == ["exact 45 < 50"]
    assert (by_number[5].failure_kind, by_number[5].failure_reason) == ("out_of_memory", "CUDA out of memory at batch 32")
    assert by_number[8].failure_kind == "diverged" and by_number[11].failure_kind == "pruned"
    assert hand.final_stage == "flash" and hand.notes == []  # pareto.json's frontier agrees with the recomputed one


def test_latency_as_third_objective_changes_the_frontier(tmp_path):
    data = load_study_dir(fx.write_study(tmp_path, fx.HAND_FLASH, baseline=fx.HAND_BASELINE, objectives=fx.OBJECTIVES_3D))
    records = data.records("flash")
    assert numbers(records, "frontier") == [0, 1, 2, 3, 7]  # 2 is the fastest feasible student
    assert numbers(records, "dominated") == [6, 9]  # 9 ties 1 on exact and size but is slower
    assert data.has_latency


def test_dominance_and_ties():
    objectives = parse_objectives(["exact:maximize", "num_parameters:minimize"])
    assert dominates([70, 10], [65, 10], objectives)
    assert not dominates([65, 10], [65, 10], objectives)  # equal points do not dominate each other
    assert not dominates([70, 20], [65, 10], objectives)


def test_thresholds_are_read_as_the_search_writes_them():
    objectives = [Objective("exact", "maximize"), Objective("latency_ms", "minimize")]
    written = ObjectiveSet.parse(["exact:maximize", "latency_ms:minimize"],
                                 {"exact": 50, "latency_ms": 20, "f1": ">= 40", "NoAns_exact": "<= 90"})
    thresholds = parse_thresholds(written.describe_thresholds(), objectives)  # what a study stores
    assert thresholds == list(written.thresholds)
    assert [str(t) for t in thresholds] == ["exact >= 50", "latency_ms <= 20", "f1 >= 40", "NoAns_exact <= 90"]
    exact, latency = thresholds[0], thresholds[1]
    assert threshold_miss(exact, 49.9) == "exact 49.9 < 50" and threshold_miss(exact, 50) is None
    assert threshold_miss(latency, 20.5) == "latency_ms 20.5 > 20" and threshold_miss(latency, None) == "latency_ms not measured"
    assert accuracy_floor(thresholds) == 50.0 and accuracy_floor(thresholds[1:]) is None
    with pytest.raises(ReportError, match="about 50"):
        parse_thresholds({"exact": "about 50"}, objectives)


def test_optuna_constraint_makes_a_trial_infeasible():
    objectives = parse_objectives(None)
    ok = TrialRecord("flash", 0, "COMPLETE", {}, metrics={"exact": 60, "num_parameters": 5}, objective_names=["exact"])
    flagged = TrialRecord("flash", 1, "COMPLETE", {}, metrics={"exact": 70, "num_parameters": 4},
                          constraints={"threshold:f1": 0.2, "failed": -1.0})
    missing = TrialRecord("flash", 2, "COMPLETE", {}, metrics={"exact": 70})
    assert classify([ok, flagged, missing], objectives, []) == {0: "frontier", 1: "below_threshold", 2: "failed"}
    assert flagged.violations == ["constraint threshold:f1 violated"]
    assert missing.failure_reason == "no value for num_parameters"


def test_a_trial_stopped_early_is_shown_with_its_reason_and_step():
    stopped = TrialRecord("flash", 0, "PRUNED", {}, metrics={"exact": 30.0, "num_parameters": 5},
                          stop_reason="stopped early at 25% of training: dominated", stop_step=24)
    assert classify([stopped], parse_objectives(None), []) == {0: "failed"}
    assert (stopped.failure_kind, stopped.failure_step) == ("stopped_early", 24)
    assert stopped.failure_reason == "stopped early at 25% of training: dominated"


def test_metric_falls_back_to_the_optuna_value():
    record = TrialRecord("flash", 0, "COMPLETE", {}, values=[61.0, 3e6], objective_names=["exact", "num_parameters"])
    assert record.metric("num_parameters") == 3e6 and record.metric("latency_ms") is None


# ---------------------------------------------------------------- the comparison table
def test_comparison_table_picks_and_percentages(hand):
    rows = {row.label: row for row in comparison_table([r for r in hand.records("flash") if r.is_feasible], hand.baseline)}
    assert list(rows) == ["Baseline", fr.RETAIN_SIZE, fr.RETAIN_ACCURACY, fr.SMALLEST, fr.MOST_ACCURATE]
    base = rows["Baseline"]
    assert (base.size, base.exact, base.test_exact) == (22 * M, 64.0, 63.0)

    def check(label, number, size_pct, exact_pct, points, test_pct):
        row = rows[label]
        assert row.record.number == number
        assert row.size_change_pct == pytest.approx(size_pct)
        assert row.exact_change_pct == pytest.approx(exact_pct)
        assert row.exact_change_points == pytest.approx(points)
        assert row.test_exact_change_pct == pytest.approx(test_pct)

    # most accurate with size <= 22M: trial 0 (70, 20M). (20-22)/22, (70-64)/64, test (68-63)/63
    check(fr.RETAIN_SIZE, 0, -9.090909, 9.375, 6.0, 7.936508)
    # smallest with exact >= 64: trials 1 and 9 tie at 10M / 65; the lower number wins
    check(fr.RETAIN_ACCURACY, 1, -54.545455, 1.5625, 1.0, 4.761905)
    # smallest feasible: 7 (8M); 4 (5M) and 10 (1M) are below the threshold
    check(fr.SMALLEST, 7, -63.636364, -14.0625, -9.0, -14.285714)
    check(fr.MOST_ACCURATE, 3, 36.363636, 12.5, 8.0, 12.698413)


def test_comparison_table_without_baseline_or_matches(hand):
    feasible = [r for r in hand.records("flash") if r.is_feasible]
    rows = comparison_table(feasible, None)
    assert [(r.label, r.record.number) for r in rows] == [(fr.SMALLEST, 7), (fr.MOST_ACCURATE, 3)]
    assert rows[0].size_change_pct is None
    tiny = fr.BaselineResult(Baseline("custom", {}), {"exact": 80.0, "num_parameters": 2 * M}, None, "test")
    rows = {r.label: r for r in comparison_table(feasible, tiny)}
    assert rows[fr.RETAIN_SIZE].record is None and "as small as" in rows[fr.RETAIN_SIZE].note
    assert rows[fr.RETAIN_ACCURACY].record is None and "as accurate as" in rows[fr.RETAIN_ACCURACY].note


# ---------------------------------------------------------------- hypervolume, pairing
def test_hypervolume_2d_by_hand():
    reference = Reference(exact=50, size=40)
    # sizes as fractions of 40: (0.25, 65) and (0.5, 70): 0.25 * 15 + 0.5 * 20 = 13.75
    assert exact_size_hypervolume([(70, 20), (65, 10)], reference) == pytest.approx(13.75)
    assert exact_size_hypervolume([(70, 20), (65, 10), (60, 30), (45, 5), (80, 50)], reference) == pytest.approx(13.75)
    assert exact_size_hypervolume([], reference) == 0.0


def test_hypervolume_history_counts_every_finished_trial(hand):
    history = hypervolume_history(hand.records("flash"), Reference(50, 40 * M))
    assert [count for count, _ in history] == list(range(1, 13))  # 12 finished, the running one left out
    values = [value for _, value in history]
    assert values == sorted(values) and values[0] == pytest.approx(0.5 * 20)  # trial 0 alone: (1 - 0.5) * (70 - 50)
    feasible = [(r.metric("exact"), r.metric("num_parameters")) for r in hand.records("flash") if r.is_feasible]
    assert values[-1] == pytest.approx(exact_size_hypervolume(feasible, Reference(50, 40 * M)))


def test_flash_regular_pairing_by_parameters_only():
    """A pair is one parameter key completed in both stages; a ``flash_trial``
    attribute naming another student does not pair (it used to, in the report only)."""
    flash = [TrialRecord("flash", i, "COMPLETE", {"a": i, "epochs": 1}, category="frontier") for i in range(4)]
    regular = [
        TrialRecord("regular", 0, "COMPLETE", {"a": 9}, flash_trial=2, category="frontier"),
        TrialRecord("regular", 1, "COMPLETE", {"a": 1, "epochs": 3}, category="dominated"),  # epochs ignored
        TrialRecord("regular", 2, "COMPLETE", {"a": 7}, category="dominated"),  # no match
        TrialRecord("regular", 3, "FAIL", {"a": 3}, category="failed"),
    ]
    assert [(f.number, r.number) for f, r in flash_regular_pairs(flash, regular)] == [(1, 1)]
    assert spearman([1, 2, 3, 4], [10, 30, 20, 40]) == pytest.approx(0.8)
    assert spearman([1, 2], [1, 2]) is None


def test_importance_is_a_note_with_too_few_trials(tmp_path):
    data = load_study_dir(fx.write_study(tmp_path, fx.HAND_FLASH[:3]))
    notes = fr.parameter_importances(data, "flash")
    assert set(notes) == {"exact", "num_parameters"} and all(isinstance(v, str) and "at least" in v for v in notes.values())


def test_importance_per_objective(hand):
    importances = fr.parameter_importances(hand, "flash")
    assert set(importances) == {"exact", "num_parameters"}
    assert all(isinstance(v, dict) and set(v) <= set(fx.SPACE) and sum(v.values()) == pytest.approx(1.0)
               for v in importances.values())


# ---------------------------------------------------------------- the study directory
def test_demo_study_reads_per_stage(demo_dir):
    data = load_study_dir(demo_dir)
    assert data.final_stage == "regular" and set(data.stages) == {"flash", "regular"}
    assert data.baseline.value("exact") == 64.0 and data.baseline.test_value("exact") == 63.0
    pairs = flash_regular_pairs(data.records("flash"), data.records("regular"))
    assert len(pairs) == 8 and all(r.flash_trial == f.number for f, r in pairs)
    # trial 8 was interrupted: not finished (it is run again), so neither failed nor counted
    assert numbers(data.records("regular"), "interrupted") == [8] and numbers(data.records("regular"), "failed") == []


def test_study_directory_errors(tmp_path):
    with pytest.raises(ReportError, match="no study.db"):
        load_study_dir(tmp_path)
    fx.write_study(tmp_path, fx.HAND_FLASH[:2], name="one", pareto=False)
    fx.write_study(tmp_path, fx.HAND_FLASH[:2], name="two", pareto=False)
    with pytest.raises(ReportError, match="--name"):
        load_study_dir(tmp_path)
    assert load_study_dir(tmp_path, name="two").name == "two"


def test_note_when_pareto_json_disagrees(tmp_path):
    fx.write_study(tmp_path, fx.HAND_FLASH, baseline=fx.HAND_BASELINE)
    document = json.loads((tmp_path / "pareto.json").read_text())
    document["frontier"] = document["frontier"][:2]
    (tmp_path / "pareto.json").write_text(json.dumps(document))
    notes = load_study_dir(tmp_path).notes
    assert len(notes) == 1 and "[0, 1, 3, 7, 9]" in notes[0]


# ---------------------------------------------------------------- the page
SECTIONS = ("overview", "comparison", "frontier", "failures", "importance", "parallel", "curves", "progress", "errors")


def strip_plotly_bundle(page: str) -> str:
    start = page.index('<script type="text/javascript" id="plotly-js">')
    return page[:start] + page[page.index("</script>", start):]


def test_html_has_every_section_and_figure(demo_html):
    for section in SECTIONS:
        assert f'<section id="{section}">' in demo_html
    divs = re.findall(r'<div id="(plot-[^"]+)" class="plotly-graph-div"', demo_html)
    expected = {"frontier-regular", "frontier-flash", "importance-regular", "importance-flash", "parallel-frontier",
                "parallel-above-baseline", "curves", "hypervolume", "flash-regular"}
    assert {d.split("-", 2)[2] for d in divs} == expected
    assert "Retain size, maximize accuracy" in demo_html and "Minimize size, retain accuracy" in demo_html
    assert "CUDA out of memory at batch 32" in demo_html and "worker lost (node preempted)" in demo_html
    assert 'id="report-errors"' in demo_html and "addEventListener('error'" in demo_html
    assert demo_html.count('"dimensions":[') == 2  # the two parallel-coordinates plots


def test_html_is_self_contained(demo_html):
    assert demo_html.count('id="plotly-js"') == 1  # plotly.js embedded exactly once
    rest = strip_plotly_bundle(demo_html)
    assert not re.search(r"<(script|img|iframe)[^>]*\ssrc=", rest)
    assert not re.search(r"<link[^>]*\shref=", rest)
    assert "http://" not in rest and "https://" not in rest


def test_hover_text_lists_parameters(hand):
    from paretodistill.report.figures import hover_text

    text = hover_text(next(r for r in hand.records("flash") if r.number == 0))
    assert "flash #0" in text and "exact: 70" in text and "num_layers:" in text and "learning_rate:" in text


def test_report_of_a_flash_only_study_without_latency_or_pareto_json(tmp_path):
    from paretodistill.report.html import build_report

    trials = [fx.FakeTrial(**{**t.__dict__, "latency": None}) for t in fx.HAND_FLASH]
    fx.write_study(tmp_path, trials, pareto=False)
    page = build_report(tmp_path, tmp_path / "r.html").read_text()
    assert "Latency was not measured" in page and "No baseline was found" in page
    assert "Flash against regular" not in page


def test_cli_report_command(hand_dir, tmp_path, capsys):
    from paretodistill.cli import build_parser, main

    choices = build_parser()._subparsers._group_actions[0].choices
    assert {"report", "analyze", "export"} <= set(choices)
    assert main(["report", "--study", str(hand_dir), "--out", str(tmp_path / "report.html")]) == 0
    assert (tmp_path / "report.html").exists() and "self-contained" in capsys.readouterr().out
    assert main(["report", "--study", str(tmp_path / "missing"), "--out", str(tmp_path / "x.html")]) == 2


def test_report_of_a_study_written_by_the_real_search(tmp_path):
    """The contract end to end: the search's own writer (with its cheap fake trial) -> this report."""
    import search_fakes  # noqa: F401  (the trial function below; an import error fails the test, never skips it)
    from paretodistill.config import load_config
    from paretodistill.report.html import build_report
    from paretodistill.search import stages

    search = {
        "name": "t", "sampler": "tpe", "seed": 1, "n_startup_trials": 4, "backend": "inline",
        "trial_function": "search_fakes:failing_trial", "thresholds": {"exact": 40.0},
        "space": {"num_layers": {"type": "int", "low": 1, "high": 8},
                  "learning_rate": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True}},
        "flash": {"n_trials": 8, "budget": {"training.max_steps": 10}}, "regular": {"top_k": 3},
        "baseline": {"num_layers": 3},
    }
    pareto = stages.run_search(load_config(base={"search": search}), tmp_path / "s", log=lambda m: None)
    data = load_study_dir(tmp_path / "s")
    assert data.notes == []  # the recomputed frontier is the one pareto.json lists
    assert {r.number for r in data.records("regular") if r.category == "frontier"} == {e["trial_number"] for e in pareto["frontier"]}
    assert data.baseline is not None and data.baseline.params == {"num_layers": 3}
    assert len(flash_regular_pairs(data.records("flash"), data.records("regular"))) == 3
    page = build_report(tmp_path / "s", tmp_path / "report.html").read_text()
    assert 'id="comparison"' in page and "Flash against regular" in page
