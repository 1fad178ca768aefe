"""``paretodistill search --plan``: the projection's arithmetic on made-up timings, and the command
on the smoke preset (real steps of a tiny teacher's student: the table, projection.json, no trial)."""

from __future__ import annotations

import datetime
import json
import math
from pathlib import Path

import pytest
from optuna.trial import FrozenTrial, TrialState

from paretodistill.cli import main
from paretodistill.distill.engine import DeviceTiming, TrialTimings
from paretodistill.errors import BAD_INPUT, OK
from paretodistill.search.projection import (
    StageShape,
    actual_seconds,
    project_search,
    projection_line,
    trial_seconds,
    trial_threads,
)
from paretodistill.training.loop import evaluation_count

WINDOWS = dict(train_windows=1000, validation_windows=200, test_windows=150)
STAGES = (StageShape("flash", 6, 40, 1, False), StageShape("regular", 1, 400, 2, True),
          StageShape("baseline", 1, 400, 2, True))


def cpu(threads: int, step_s: float) -> DeviceTiming:
    return DeviceTiming("cpu", "a CPU", threads, "fp32", step_s=step_s, eval_window_s=0.01, teacher_window_s=0.02,
                        latency_s=1.5, setup_s=4.0)


GPU = DeviceTiming("cuda:0", "a GPU", None, "bf16", step_s=0.05, eval_window_s=0.001, teacher_window_s=0.002,
                   latency_s=0.5, setup_s=6.0)
TIMINGS = TrialTimings((GPU, cpu(1, 0.8), cpu(2, 0.5)), **WINDOWS, teacher_logits_cached=False)


def test_a_trial_is_setup_steps_evaluation_passes_and_latency():
    windows = {"train": 1000, "validation": 200, "test": 150}
    assert trial_seconds(cpu(1, 0.8), STAGES[0], windows) == pytest.approx(4.0 + 40 * 0.8 + 1 * 200 * 0.01 + 1.5)  # 39.5
    assert trial_seconds(cpu(2, 0.5), STAGES[1], windows) == pytest.approx(4.0 + 400 * 0.5 + (2 * 200 + 150) * 0.01 + 1.5)


def test_the_wall_clock_with_one_and_two_workers_is_the_formula():
    """2 cores: with 1 worker every trial has both; with 2, flash trials get one each, the
    regular and baseline stages (one trial each) both again."""
    one, two = (project_search(TIMINGS, STAGES, workers, cores=2) for workers in (1, 2))
    flash_2t, flash_1t = 4.0 + 40 * 0.5 + 2.0 + 1.5, 4.0 + 40 * 0.8 + 2.0 + 1.5  # 27.5 s, 39.5 s
    full_2t = 4.0 + 400 * 0.5 + 5.5 + 1.5  # 211 s
    teacher = (1000 + 200) * 0.02  # 24 s, on every core
    by_device = {d.device: d for d in one.devices}
    assert by_device["cpu"].total_s == pytest.approx(teacher + 6 * flash_2t + full_2t + full_2t)  # 611 s
    assert by_device["cpu"].trial_s["flash"] == pytest.approx(flash_2t)
    assert by_device["cpu"].device_hours == pytest.approx(by_device["cpu"].total_s / 3600)
    by_device = {d.device: d for d in two.devices}
    assert by_device["cpu"].stage_wall_s == pytest.approx({"flash": 3 * flash_1t, "regular": full_2t, "baseline": full_2t})
    assert by_device["cpu"].total_s == pytest.approx(teacher + 3 * flash_1t + 2 * full_2t)  # 564.5 s
    assert by_device["cpu"].step_s == 0.8  # a flash trial's threads: one each
    gpu_flash, gpu_full = 6.0 + 40 * 0.05 + 0.2 + 0.5, 6.0 + 400 * 0.05 + 0.55 + 0.5
    gpu_total = 1200 * 0.002 + 3 * gpu_flash + 2 * gpu_full
    assert by_device["cuda:0"].total_s == pytest.approx(gpu_total)
    assert by_device["cuda:0"].device_hours == pytest.approx(2 * gpu_total / 3600)  # one GPU per worker


def test_cached_teacher_logits_cost_the_search_nothing_and_fixed_threads_win():
    cached = project_search(TrialTimings(TIMINGS.timings, **WINDOWS, teacher_logits_cached=True), STAGES[:1], 1, cores=2)
    assert cached.devices[1].total_s == pytest.approx(6 * 27.5) and cached.devices[1].teacher_logits_s == pytest.approx(24.0)
    assert trial_threads(2, cores=8) == 4 and trial_threads(3, cores=2) == 1 and trial_threads(2, cores=8, fixed=1) == 1
    assert "(cached)" in cached.table() and "a CPU (fp32)" in cached.table()


def test_evaluation_count_is_the_loops_curve_points():
    assert evaluation_count(40, per_epoch=250, every=40) == 1
    assert evaluation_count(400, per_epoch=250, every=200) == 3  # 200, 250 (the epoch's end), 400
    assert evaluation_count(24, per_epoch=25, every=12) == 2
    assert evaluation_count(30, per_epoch=10, every=None) == 3


def test_status_line_sets_projected_beside_taken():
    start = datetime.datetime(2026, 12, 7, 12, 0, 0)

    def trial(begin: int, end: int):
        return FrozenTrial(number=begin, trial_id=begin, state=TrialState.COMPLETE, value=1.0, values=None,
                           datetime_start=start + datetime.timedelta(seconds=begin),
                           datetime_complete=start + datetime.timedelta(seconds=end), params={}, distributions={},
                           user_attrs={}, system_attrs={}, intermediate_values={})

    stages = {"flash": [trial(0, 100), trial(5, 130)], "regular": [trial(140, 400)]}
    assert actual_seconds(stages["flash"]) == 130 and actual_seconds([]) is None
    doc = project_search(TIMINGS, STAGES[:2], 2, cores=2, measured={"load_average": [3.5, 3.0, 2.0]}).to_dict()
    line = projection_line(json.loads(json.dumps(doc)), stages)
    assert line.startswith("projection: trials 53 s projected on a GPU, 2 worker(s), against 6 min 40 s taken")
    assert "flash 26 s/2 min 10 s, regular 27 s/4 min 20 s" in line and "timed at load 3.5" in line


def test_plan_prints_the_table_and_writes_projection_json_without_a_trial(tmp_path, capsys, dev_v2, teacher_dir,
                                                                          cache_dir):
    study = tmp_path / "study"
    code = main(["search", "--plan", "--plan-steps", "2", "--preset", "smoke", "--data", str(dev_v2),
                 "--teacher", str(teacher_dir), "--cache-dir", str(cache_dir), "--study", str(study),
                 "--set", "data.max_train_questions=64", "--set", "student.importance_windows=16"])
    out = capsys.readouterr().out
    assert code == OK
    assert "s/step" in out and "total, 1 worker" in out and "device-hours" in out  # the smoke preset runs inline
    doc = json.loads((study / "projection.json").read_text())
    per_epoch = math.ceil(doc["windows"]["train"] / 16)  # 64 questions: fewer windows than 12 steps of 16
    assert [(s["name"], s["trials"], s["steps"], s["evaluations"]) for s in doc["stages"]] == [
        ("flash", 3, 12, evaluation_count(12, per_epoch, 12)), ("regular", 2, 24, evaluation_count(24, per_epoch, 12))]
    assert doc["stages"][0]["evaluations"] == 2 and doc["stages"][1]["evaluations"] >= 3  # the epoch's ends count
    cpu_row = next(d for d in doc["devices"] if d["device"] == "cpu")
    assert cpu_row["step_s"] > 0 and cpu_row["total_s"] > cpu_row["stage_wall_s"]["flash"] > 0
    assert math.isclose(cpu_row["stage_wall_s"]["flash"], 3 * cpu_row["trial_s"]["flash"])
    assert doc["windows"]["validation"] > 0 and doc["student"] == "config" and doc["measured"]["steps"] == 2
    assert sorted(p.name for p in study.iterdir()) == ["projection.json"]  # no study.db, no trial folder


def test_a_flash_budget_in_windows_is_planned_in_steps_and_timed_on_the_steps_asked(tmp_path, capsys, dev_v2, teacher_dir,
                                                                                    cache_dir, monkeypatch):
    import paretodistill.distill.step_timing as step_timing

    timed_steps = []

    def recording_train(model, features, loss, settings, **kwargs):
        timed_steps.append(step_timing.total_steps(len(features), settings))
        return real_train(model, features, loss, settings, **kwargs)

    real_train = step_timing.train
    monkeypatch.setattr(step_timing, "train", recording_train)
    study = tmp_path / "study"
    code = main(["search", "--plan", "--plan-steps", "2", "--preset", "smoke", "--data", str(dev_v2),
                 "--teacher", str(teacher_dir), "--cache-dir", str(cache_dir), "--study", str(study),
                 "--set", "data.max_train_questions=64", "--set", "student.importance_windows=16",
                 "--set", 'search.flash.budget={"training.max_windows" = 100, "training.eval_every_steps" = 12}'])
    capsys.readouterr()
    assert code == OK
    doc = json.loads((study / "projection.json").read_text())
    assert doc["stages"][0]["name"] == "flash" and doc["stages"][0]["steps"] == 7  # ceil(100 / 16)
    assert timed_steps and set(timed_steps) <= {2}  # warm-up and timed runs: the steps asked, not the budget


def test_a_search_without_study_or_a_plan_of_no_steps_is_one_line(capsys):
    assert main(["search", "--preset", "smoke"]) == BAD_INPUT
    assert capsys.readouterr().err.strip().splitlines() == [
        "paretodistill search: error: give the study folder: --study DIR"]
    quickstart = str(Path(__file__).resolve().parents[2] / "configs" / "quickstart.toml")
    assert main(["search", "--plan", "--plan-steps", "0", "--config", quickstart]) == BAD_INPUT
    assert "--plan-steps: expected an integer >= 1, got 0" in capsys.readouterr().err
