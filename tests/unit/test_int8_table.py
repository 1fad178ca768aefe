"""benchmarks/int8_table.py: every frontier student exported with --int8, its figures read back from
the export (one row per student, resumable), and the report drawing them as their own marked points."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/report_fixtures.py
import report_fixtures as fx  # noqa: E402

pytest.importorskip("onnxruntime")

import paretodistill.export.int8 as int8_module  # noqa: E402
from paretodistill.cli import main  # noqa: E402
from paretodistill.errors import ParetodistillError  # noqa: E402
from paretodistill.export.int8 import build_int8_table, layers_by_heads  # noqa: E402
from paretodistill.export.students import ExportError  # noqa: E402
from paretodistill.report.html import build_report  # noqa: E402
from paretodistill.report.int8_table import TABLE_FILE, default_out  # noqa: E402

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "int8_table.py"
_spec = importlib.util.spec_from_file_location("int8_table", _PATH)
int8_script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(int8_script)

M = 1_000_000
TRACE = "int8 (ONNX dynamic)"


@pytest.fixture(scope="module")
def study(tmp_path_factory, one_torch_thread) -> Path:
    """Regular stage, objectives exact/size: trials 0 (plain tiny BERT) and 1 (a pruned student) are
    frontier students with checkpoints and split.json; 2 is dominated; 3 is on the frontier without a
    checkpoint (the row that cannot be exported)."""
    directory = tmp_path_factory.mktemp("int8-study") / "study"
    directory.mkdir(parents=True)
    _, split = fx.tiny_squad_with_split(directory.parent / "data.json")
    plain = fx.tiny_checkpoint(directory / "trials" / "regular-0" / "checkpoint", seed=2, metrics={"na_threshold": 0.5})
    pruned = fx.tiny_checkpoint(directory / "trials" / "regular-1" / "checkpoint", pruned=True, seed=3,
                                metrics={"na_threshold": -0.25})
    for checkpoint in (plain, pruned):
        split.save(checkpoint / "split.json")
    regular = [
        fx.FakeTrial(70.0, 20 * M, 9.0, params=fx.params_for(0), test_exact=68.0, checkpoint=str(plain)),
        fx.FakeTrial(65.0, 10 * M, 5.0, params=fx.params_for(1), test_exact=66.0, checkpoint="trials/regular-1/checkpoint"),
        fx.FakeTrial(60.0, 25 * M, 6.0, params=fx.params_for(2)),
        fx.FakeTrial(55.0, 5 * M, 2.0, params=fx.params_for(3)),
    ]
    return fx.write_study(directory, fx.HAND_FLASH[:3], regular, fx.HAND_BASELINE, objectives=fx.OBJECTIVES_2D)


@pytest.fixture(scope="module")
def made(study) -> tuple[dict, str]:
    """The script run once, as a user runs it (default --out, 1 thread): its JSON and what it printed."""
    import contextlib
    import io

    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(io.StringIO()):
        assert int8_script.main(["--study", str(study), "--threads", "1"]) == 0
    return json.loads((default_out(study) / TABLE_FILE).read_text()), printed.getvalue()


def test_one_row_per_frontier_student_with_the_exports_own_figures(study, made):
    table, printed = made
    rows = table["rows"]
    assert [(r["stage"], r["trial"]) for r in rows] == [("regular", 3), ("regular", 1), ("regular", 0)]  # by size
    assert (table["study"], table["stage"], table["threads"]) == ("study", "regular", 1)
    assert table["load_average_at_start"] >= 0
    missing, pruned, plain = rows
    assert "no checkpoint" in missing["error"]
    assert (plain["architecture"], pruned["architecture"]) == ("2 x 4", "1 x 2")
    assert (plain["num_parameters"], pruned["num_parameters"]) == (20 * M, 10 * M)
    assert plain["search_test"] == {"exact": 68.0, "f1": 71.0}  # the search's PyTorch figures, beside
    for row in (plain, pruned):  # PyTorch latency of the exported checkpoint, timed here with the same settings
        assert row["torch"]["latency_ms"] > 0 and row["torch"]["latency"]["threads"] == 1
        assert row["torch"]["latency"]["sequence_length"] == row["float32"]["latency"]["sequence_length"]
    assert f"| {plain['torch']['latency_ms']:.2f} | {plain['float32']['latency_ms']:.2f} | " in printed
    assert "; PyTorch in " in printed
    for row in (plain, pruned):
        folder = default_out(study) / row["export"]
        exported = json.loads((folder / "export.json").read_text())["variants"]
        card = (folder / "README.md").read_text()
        assert row["int8"]["size_mb"] < row["float32"]["size_mb"]
        for variant in ("float32", "int8"):
            figures = row[variant]
            assert 0 <= figures["exact"] <= 100 and 0 <= figures["f1"] <= 100 and figures["questions"] == 4
            assert figures["latency"]["threads"] == 1  # --threads, not the study's 2
            assert {k: figures[k] for k in ("size_mb", "exact", "f1", "latency_ms")} == {
                k: exported[variant][k] for k in ("size_mb", "exact", "f1", "latency_ms")}
            assert (f"| {variant} | `{figures['file']}` | {figures['size_mb']:.1f} | {figures['exact']:.2f} | "
                    f"{figures['f1']:.2f} | {figures['latency_ms']:.2f} |") in card
    assert f"| regular #0 | 2 x 4 | 20.00M | {plain['float32']['size_mb']:.1f} | {plain['int8']['size_mb']:.1f} | " in printed
    assert f"{plain['int8']['exact']:.2f} / {plain['int8']['f1']:.2f}" in printed and "| 68.00 / 71.00 |" in printed
    assert "| regular #3 | – | 5.00M | not exported:" in printed
    assert "4 questions of the split's test part" in printed and "1 thread(s)" in printed
    assert "load average" in printed


def test_a_second_run_reads_the_exports_back(study, made, monkeypatch):
    table, _ = made
    calls = []
    real = int8_module.export_trial

    def counting(directory, trial, *args, **kwargs):
        calls.append(trial)
        return real(directory, trial, *args, **kwargs)

    monkeypatch.setattr(int8_module, "export_trial", counting)
    again = build_int8_table(study, threads=1, log=lambda m: None)
    assert calls == [3]  # only the student without a checkpoint is tried again
    assert again["rows"] == table["rows"]  # PyTorch latencies too: read from the earlier table, not timed again


def test_an_export_of_another_trial_in_the_way_is_refused(study, made, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    shutil.copytree(default_out(study) / "regular-0", out / "regular-1")
    with pytest.raises(ExportError, match="holds an export of another trial"):
        build_int8_table(study, out, log=lambda m: None)


def test_out_inside_the_study_is_refused(study):
    with pytest.raises(ParetodistillError, match="lies inside the study"):
        build_int8_table(study, study / "int8", log=lambda m: None)


def test_layers_by_heads():
    assert layers_by_heads({"num_hidden_layers": 6, "num_attention_heads": 6}) == "6 x 6"
    assert layers_by_heads({"num_hidden_layers": 2, "num_attention_heads": 12, "heads_per_layer": [4, 4]}) == "2 x 4"
    assert layers_by_heads({"num_hidden_layers": 3, "heads_per_layer": [12, 8, 6]}) == "3 x 12/8/6"
    assert layers_by_heads({}) is None


def test_the_report_draws_the_int8_points_found_beside_the_study(study, made, tmp_path):
    page = build_report(study, tmp_path / "report.html").read_text()
    assert page.count(TRACE) >= 1 and "float32 (ONNX)" in page
    assert "int8 variants of the frontier students" in page and "regular #3 was not exported" in page
    assert "python benchmarks/int8_table.py --study" in page


def test_no_int8_points_without_a_table(tmp_path):
    directory = fx.write_study(tmp_path / "plain", fx.HAND_FLASH[:3], [fx.FakeTrial(70.0, 20 * M, 9.0)], fx.HAND_BASELINE)
    page = build_report(directory, tmp_path / "report.html").read_text()
    assert TRACE not in page and "No int8 variants measured" in page


def test_a_table_of_another_search_is_not_drawn(study, made, tmp_path, capsys):
    table, _ = made
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**table, "study": "elsewhere"}))
    assert main(["report", "--study", str(study), "--out", str(tmp_path / "r.html"), "--int8-table", str(other)]) == 0
    page = (tmp_path / "r.html").read_text()
    assert TRACE not in page and "the int8 table is of the search &#x27;elsewhere&#x27;" in page
    changed = tmp_path / "changed.json"
    rows = [{**r, "params": {**r["params"], "num_layers": 99}} if r["trial"] == 0 else r for r in table["rows"]]
    changed.write_text(json.dumps({**table, "rows": rows}))
    assert main(["report", "--study", str(study), "--out", str(tmp_path / "c.html"), "--int8-table", str(changed)]) == 0
    page = (tmp_path / "c.html").read_text()
    assert TRACE in page and "regular #0 of the int8 table has other parameters" in page


def test_timing_settings_leave_unset_values_to_the_timing_defaults():
    """A search's stored latency settings say ``sequence_length: None`` for the default length."""
    from paretodistill.export.variants import timing_settings

    stored = {"enabled": True, "batch_size": 1, "sequence_length": None, "warmup": 5, "repeats": 30, "runtime": "torch",
              "threads": 2}
    assert timing_settings(stored) == {"warmup": 5, "repeats": 30, "threads": 2}
    assert timing_settings(stored, threads=1) == {"warmup": 5, "repeats": 30, "threads": 1}
    assert timing_settings(None) == {}
