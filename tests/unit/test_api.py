"""The Python API's own parts: the settings it builds (the commands' layers), the typed results it
reads from pareto.json, the package's callable rooms, and errors raised as the package's kinds."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

import paretodistill
from paretodistill.api import Baseline, FrontierMember, SearchResult, search_result
from paretodistill.config import ExperimentConfig, load_config
from paretodistill.errors import ConfigError, DataFormatError, RunFailed, StudyError
from paretodistill.search.cli import check_students_found, search_config


def entry(stage: str, number: int, exact: float, size: float, checkpoint: str | None, **extra) -> dict:
    """A student as pareto.json lists it."""
    return {"stage": stage, "trial_number": number, "params": {"num_layers": number + 1},
            "objective_values": {"exact": exact, "num_parameters": size},
            "validation": {"exact": exact, "num_parameters": size, "latency_ms": 2.5 * (number + 1)},
            "test": {"exact": exact - 1}, "checkpoint": checkpoint, "trial_dir": f"trials/{stage}-{number}", **extra}


PARETO = {
    "study": "s", "storage": None, "objectives": ["exact:maximize", "num_parameters:minimize"],
    "thresholds": {"exact": ">= 50"}, "split": {"split_seed": 13}, "frontier_stage": "regular",
    "frontier": [entry("regular", 0, 61.5, 9e6, "trials/regular-0/checkpoint", flash_trial=3),
                 entry("regular", 1, 58.0, 4e6, "/elsewhere/checkpoint", flash_trial=5)],
    "baseline": {**entry("baseline", 0, 57.0, 17e6, "trials/baseline-0/checkpoint"), "name": "sigopt-2020",
                 "status": "ok", "failure_kind": None, "failure_reason": None},
    "candidates": [3, 5], "flash_regular_spearman": 0.5, "counts": {"flash": {"complete": 6, "finished": 6}},
    "stopped_early": [], "generated": "2026-12-07T00:00:00+00:00",
}


def test_pareto_json_becomes_typed_students_with_paths_on_this_machine(tmp_path):
    result = search_result(tmp_path, json.loads(json.dumps(PARETO)))
    assert isinstance(result, SearchResult) and result.pareto_json == tmp_path / "pareto.json"
    first, second = result.frontier
    assert isinstance(first, FrontierMember) and (first.stage, first.trial_number, first.flash_trial) == ("regular", 0, 3)
    assert (first.num_parameters, first.latency_ms, first.test_metrics) == (9_000_000, 2.5, {"exact": 60.5})
    assert first.checkpoint == tmp_path / "trials" / "regular-0" / "checkpoint"  # recorded relative to the study
    assert second.checkpoint == Path("/elsewhere/checkpoint")  # recorded absolute: as it is
    assert isinstance(result.baseline, Baseline) and result.baseline.ok and result.baseline.name == "sigopt-2020"
    assert result.baseline.num_parameters == 17_000_000
    assert (result.candidates, result.flash_regular_spearman) == ((3, 5), 0.5)


def test_a_search_that_ran_before_is_read_from_its_pareto_json(tmp_path):
    (tmp_path / "pareto.json").write_text(json.dumps(PARETO))
    result = SearchResult.read(tmp_path)
    assert [m.trial_number for m in result.frontier] == [0, 1] and result.pareto == PARETO
    with pytest.raises(StudyError, match="no pareto.json"):
        SearchResult.read(tmp_path / "elsewhere")


def test_best_follows_each_objectives_direction_and_refuses_other_metrics(tmp_path):
    result = search_result(tmp_path, PARETO)
    assert result.best().trial_number == 0  # exact, maximized: 61.5 over 58.0
    assert result.best("num_parameters").trial_number == 1  # minimized: 4M under 9M
    with pytest.raises(ConfigError, match="latency_ms.*objectives"):
        result.best("latency_ms")


def test_a_failed_baseline_is_typed_as_failed(tmp_path):
    failed = {**PARETO, "baseline": {**PARETO["baseline"], "status": "failed", "objective_values": None,
                                     "failure_kind": "out_of_memory", "failure_reason": "CUDA"}}
    baseline = search_result(tmp_path, failed).baseline
    assert (baseline.ok, baseline.failure_kind, baseline.objective_values) == (False, "out_of_memory", None)


def test_overrides_as_a_mapping_keep_their_python_values(tmp_path):
    config = load_config(None, [("search.flash.n_trials", 4), ("search.objectives", ["f1:maximize"]),
                                ("teacher.path", "t=1"), ("search.baseline", None)])
    assert config.search.flash.n_trials == 4 and config.search.objectives == ("f1:maximize",)
    assert config.teacher.path == "t=1" and config.search.baseline is None
    assert load_config(None, ["search.flash.n_trials=7"]).search.flash.n_trials == 7  # --set text, as before


def test_search_settings_take_a_settings_object_with_flags_and_overrides_on_top():
    base = load_config(None, ['teacher.path="teacher"', "search.flash.n_trials=9"])
    config = search_config(base, data="d.json", overrides=[("search.regular.top_k", 3)])
    assert (config.teacher.path, config.data.split_file) == ("teacher", "d.json")
    assert (config.search.flash.n_trials, config.search.regular.top_k) == (9, 3)
    with pytest.raises(ConfigError, match="settings object"):
        search_config(ExperimentConfig(), preset="smoke")


@pytest.mark.parametrize("kwargs, match", [
    ({"study": "s"}, "--config FILE, --preset NAME"),
    ({"study": "s", "preset": "nope"}, "unknown preset 'nope'"),
    ({"study": "s", "preset": "smoke"}, "no validation or test data"),
    ({"study": "s", "config": "missing.toml"}, "no such config file"),
    ({"study": "s", "preset": "smoke", "data": "d.json", "overrides": "search.seed=1"}, "mapping or a list"),
])
def test_bad_search_input_raises_the_packages_error_not_system_exit(kwargs, match, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=match):
        paretodistill.search(**kwargs)
    assert not (tmp_path / "s").exists()  # nothing was started


def test_bad_distill_input_raises_before_any_model_loads(tmp_path):
    with pytest.raises(ConfigError, match="recipe 'nope'"):
        paretodistill.distill("teacher", data="d.json", out=tmp_path / "o", recipe="nope")
    with pytest.raises(ConfigError, match="no teacher"):
        paretodistill.distill(data="d.json", out=tmp_path / "o")
    with pytest.raises(ConfigError, match="student.num_layers"):
        paretodistill.distill(config=load_config(None, ['teacher.path="minilm"']), data="d.json", out=tmp_path / "o",
                              student={"num_layers": 0})


def test_every_flash_trial_failed_is_run_failed_naming_the_kinds():
    counts = {"counts": {"flash": {"finished": 3, "complete": 0, "failed_kinds": {"out_of_memory": 3}}}}
    with pytest.raises(RunFailed, match=r"every flash trial failed \(out_of_memory 3\)") as raised:
        check_students_found(counts, "runs/s")
    assert raised.value.kind == "every_flash_trial"
    check_students_found({"counts": {"flash": {"finished": 3, "complete": 1}}}, "runs/s")  # one student: fine


def test_the_rooms_are_callable_and_stay_packages():
    import paretodistill.search.stages

    assert callable(paretodistill.search) and callable(paretodistill.distill)
    assert paretodistill.search.stages.run_search.__name__ == "run_search"  # the room is still a package
    assert "study" in inspect.signature(paretodistill.search).parameters
    assert "out" in inspect.signature(paretodistill.distill).parameters
    assert paretodistill.Predictor.__module__ == "paretodistill.export.predict"
    assert {"search", "distill", "Predictor", "Prediction", "SearchResult", "DistillResult"} <= set(dir(paretodistill))
    with pytest.raises(AttributeError):
        paretodistill.no_such_name  # noqa: B018


def test_answer_many_refuses_what_is_not_a_pair_naming_its_position():
    from paretodistill.export.predict import Predictor

    predictor = Predictor.__new__(Predictor)  # the check comes before any model is needed
    with pytest.raises(DataFormatError, match="pair 1: expected \\(question, context\\)"):
        predictor.answer_many([("q", "c"), "just a question"])
