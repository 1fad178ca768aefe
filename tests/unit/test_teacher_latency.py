"""The teacher's batch-1 latency, measured once per study as the students are, and every student's
latency read as a fraction of it: in the study, ``pareto.json``, the report's frontier table.

A tiny random teacher (``testing.tiny_checkpoints``) and a hand-made study: seconds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import report_fixtures as fx  # noqa: E402
from paretodistill.config import DEFAULT_TRIAL_FUNCTION, load_config  # noqa: E402
from paretodistill.distill.engine import teacher_latency  # noqa: E402
from paretodistill.report.frontier import TeacherLatency, load_study_dir  # noqa: E402
from paretodistill.search.objectives import ObjectiveSet  # noqa: E402
from paretodistill.search.pareto import build_pareto  # noqa: E402
from paretodistill.search.results import Attr  # noqa: E402
from paretodistill.search.stages import record_teacher_latency  # noqa: E402
from paretodistill.testing.tiny_checkpoints import tiny_checkpoint  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TIMING = ["latency.repeats=3", "latency.warmup=1", "latency.sequence_length=32", "device=\"cpu\""]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> Path:
    return tiny_checkpoint("bert", tmp_path_factory.mktemp("teacher"), layers=1, hidden=32, heads=2, ffn=64)


def _config(teacher: Path, *overrides: str):
    return load_config(None, [f"teacher.path=\"{teacher}\"", "threads=2", *TIMING, *overrides])


def test_the_teacher_is_timed_with_the_students_settings_and_threads(teacher):
    before = torch.get_num_threads()
    measured = teacher_latency(_config(teacher), log=lambda _: None)
    assert torch.get_num_threads() == before  # the process's threads are its own again
    figures = measured["latency"]
    assert figures["median_ms"] > 0 and figures["repeats"] == 3 and figures["warmup"] == 1
    assert (figures["batch_size"], figures["sequence_length"], figures["threads"]) == (1, 32, 2)
    assert figures["runtime"] == "torch"
    from paretodistill.models.loading import load_qa_model

    assert measured["num_parameters"] == sum(p.numel() for p in load_qa_model(teacher).parameters())
    assert teacher_latency(_config(teacher, "latency.enabled=false")) is None


def _stages(log):
    return SimpleNamespace(backend=SimpleNamespace(name="inline"), log=log,
                           plan=SimpleNamespace(settings=SimpleNamespace(trial_function=DEFAULT_TRIAL_FUNCTION)))


def test_the_flash_study_records_it_once_and_pareto_json_carries_it(teacher):
    storage = optuna.storages.InMemoryStorage()
    flash = optuna.create_study(storage=storage, study_name="s-flash", directions=["maximize"])
    lines: list[str] = []
    values = _config(teacher).to_dict()
    record_teacher_latency(_stages(lines.append), flash, values)
    recorded = flash.user_attrs[Attr.TEACHER_LATENCY]
    assert recorded["latency"]["median_ms"] > 0 and any(line.startswith("teacher latency:") for line in lines)
    record_teacher_latency(_stages(lines.append), flash, values)  # a resumed study keeps its first figure
    assert sum(line.startswith("teacher latency:") for line in lines) == 1

    objectives = ObjectiveSet.parse(["exact:maximize"], {})
    pareto = build_pareto(storage, "s", objectives, objectives, [], {}, None)
    assert pareto["teacher_latency"] == recorded

    elsewhere = optuna.create_study(storage=storage, study_name="r-flash", directions=["maximize"])
    ray = _stages(lines.append)
    ray.backend.name = "ray"  # the trials run on other machines: nothing to compare with here
    record_teacher_latency(ray, elsewhere, values)
    assert Attr.TEACHER_LATENCY not in elsewhere.user_attrs
    assert build_pareto(storage, "r", objectives, objectives, [], {}, None)["teacher_latency"] is None


TEACHER = {"latency": {"median_ms": 10.0, "batch_size": 1, "sequence_length": 384, "runtime": "torch",
                       "dtype": "float32", "device": "cpu (2 threads)", "threads": 2}, "num_parameters": 22_700_000}


def _frontier_rows(page: str) -> list[str]:
    table = page.split("frontier trials of the flash stage</summary>", 1)[1].split("</table>", 1)[0]
    return table.split("<tr>")[2:]  # after the header row


def test_the_frontier_table_has_a_teacher_row_and_each_students_fraction(tmp_path):
    from paretodistill.report.html import build_report

    fx.write_study(tmp_path, fx.HAND_FLASH, baseline=fx.HAND_BASELINE, teacher_latency=TEACHER)
    data = load_study_dir(tmp_path)
    assert data.teacher == TeacherLatency(10.0, 22_700_000, TEACHER["latency"])
    page = build_report(tmp_path, tmp_path / "r.html").read_text()
    assert "latency / teacher" in page and "teacher latency" in page and "10.00 ms (batch 1, 384 tokens" in page
    rows = _frontier_rows(page)
    assert "<b>teacher</b>" in rows[0] and "22.70M" in rows[0] and ">1.00<" in rows[0]
    by_trial = {row.split("</td>", 1)[0].rsplit(">", 1)[1]: row for row in rows[1:]}
    assert ">0.90<" in by_trial["0"] and ">0.50<" in by_trial["1"]  # 9 ms and 5 ms against the teacher's 10


def test_an_older_study_without_it_renders_as_before_with_dashes(tmp_path):
    from paretodistill.report.html import build_report

    fx.write_study(tmp_path, fx.HAND_FLASH, baseline=fx.HAND_BASELINE)
    data = load_study_dir(tmp_path)
    assert data.teacher is None
    page = build_report(tmp_path, tmp_path / "r.html").read_text()
    rows = _frontier_rows(page)
    assert not any("<b>teacher</b>" in row for row in rows)
    assert all(row.count(">–<") >= 1 for row in rows) and "not measured (a study from before it was)" in page


def test_pareto_json_stands_in_for_the_study_attribute(tmp_path):
    fx.write_study(tmp_path, fx.HAND_FLASH, teacher_latency=TEACHER)
    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'study.db'}")
    storage.set_study_user_attr(storage.get_study_id_from_name("study-flash"), Attr.TEACHER_LATENCY, None)
    assert json.loads((tmp_path / "pareto.json").read_text())["teacher_latency"] == TEACHER
    assert load_study_dir(tmp_path).teacher.median_ms == 10.0
    for broken in (None, {}, {"latency": {"median_ms": 0}}, {"latency": {"median_ms": "fast"}}):
        assert TeacherLatency.of(broken) is None
