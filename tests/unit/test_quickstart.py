"""The main job: its choice of teacher (the shipped one by default, a given one, or a quick one trained
here) and its settings, configs/quickstart.toml."""

from __future__ import annotations

import json

import pytest

from paretodistill.cli import main
from paretodistill.errors import ModelMismatchError
from paretodistill.recipes import shipped_teacher


def test_teacher_and_train_teacher_exclude_each_other(tmp_path, capsys):
    assert main(["quickstart", "--teacher", str(tmp_path), "--train-teacher", "--out", str(tmp_path / "q")]) == 2
    assert "exclude each other" in capsys.readouterr().err


def test_a_missing_shipped_teacher_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(shipped_teacher, "REPOSITORY", tmp_path)
    with pytest.raises(ModelMismatchError, match="--train-teacher"):
        shipped_teacher.shipped_teacher_dir()


def test_the_shipped_teacher_is_found_in_the_checkout():
    folder = shipped_teacher.shipped_teacher_dir()
    assert folder.name == shipped_teacher.SHIPPED_TEACHER_NAME and (folder / "config.json").exists()


def test_the_quick_search_is_a_valid_config_that_ranks_flash_students_by_span_f1():
    from paretodistill.recipes.quickstart import quickstart_config

    teacher = json.dumps(str(shipped_teacher.shipped_teacher_dir()))
    config = quickstart_config([f"teacher.path={teacher}"])
    search = config.search
    assert search.flash.objectives == ("span_f1:maximize", "num_parameters:minimize")
    assert search.objectives[0] == "exact:maximize"  # the frontier stays on the user's objectives
    assert search.regular.budget["training.max_steps"] > search.flash.budget["training.max_steps"]
    assert config.training.train_batch_size == 8


def test_configs_quickstart_toml_holds_the_quick_scale():
    """The settings the quickstart's figures were measured with (the TOML replaced a dict that gave exactly these)."""
    from paretodistill.config import DEFAULT_OBJECTIVES, DEFAULT_THRESHOLDS, FeatureSettings
    from paretodistill.recipes.quickstart import QUICKSTART_CONFIG, quickstart_config

    assert QUICKSTART_CONFIG.parent.name == "configs"
    config = quickstart_config(['teacher.path="/t"', 'data.split_file="/d.json"'])
    data, training, latency, search = config.data, config.training, config.latency, config.search
    assert (data.split_file, data.max_train_questions, data.max_eval_articles) == ("/d.json", 2000, 3)
    assert data.features == FeatureSettings(max_seq_length=256, doc_stride=96, max_query_length=64)
    assert (training.epochs, training.train_batch_size, training.warmup_steps, training.eval_every_steps) == (1.0, 8, 10, 100)
    assert (training.learning_rate, training.max_steps) == (1e-4, None)
    assert (latency.threads, latency.repeats, latency.warmup) == (1, 20, 3)
    assert (search.name, search.sampler, search.seed, search.n_startup_trials, search.baseline) == (
        "quickstart", "gp", 0, 4, "sigopt-2020")
    assert search.objectives == DEFAULT_OBJECTIVES and search.thresholds == DEFAULT_THRESHOLDS == {"exact": 50.0}
    assert (search.flash.n_trials, search.flash.budget) == (6, {"training.max_steps": 40, "training.eval_every_steps": 40})
    assert (search.regular.top_k, search.regular.budget) == (1, {"training.max_steps": 400, "training.eval_every_steps": 200})
    assert list(search.space) == ["num_layers", "heads_per_layer", "intermediate_size", "learning_rate", "soft_weight",
                                  "hard_weight", "temperature", "attention_dropout"]
    assert search.space["learning_rate"] == {"type": "float", "low": 2e-5, "high": 3e-4, "log": True}
    assert search.space["temperature"] == {"type": "float", "low": 1.0, "high": 6.0}
    assert search.space["attention_dropout"] == {"type": "fixed", "value": 0.0}


def _small_squad(path):
    """Six articles of two questions (one answerable, one not): a split with a train, validation and test part."""
    from conftest import article, qa, write_squad

    context = "The Rhine rises in the Swiss canton of Graubunden and flows into the North Sea."
    return write_squad(path, [article(f"Article {n}", context, [
        qa(f"a{n}", "Where does the Rhine rise?", [("Graubunden", context.index("Graubunden"))]),
        qa(f"u{n}", "Who painted the Rhine?")]) for n in range(6)])


def test_the_smoke_quickstart_runs_every_stage_and_writes_a_report_with_a_frontier(tmp_path, quiet_transformers, capsys):
    """``quickstart --smoke`` by the command line: the smoke preset's tiny teacher, a search, the report, in the
    cache's quickstart-smoke folder (two flash steps instead of twelve, to stay a unit test)."""
    data = _small_squad(tmp_path / "squad.json")
    cache = tmp_path / "cache"
    code = main(["quickstart", "--smoke", "--data", str(data), "--cache-dir", str(cache), "--workers", "1",
                 "--set", 'search.flash.budget={"training.max_steps" = 2, "training.eval_every_steps" = 2}',
                 "--set", "training.max_steps=4", "--set", "latency.repeats=1", "--set", "search.flash.n_trials=2",
                 "--set", "search.regular.top_k=1"])
    out = capsys.readouterr().out
    assert code == 0
    folder = cache / "quickstart-smoke"
    summary = json.loads((folder / "quickstart.json").read_text())
    assert summary["report"] == str(folder / "report.html") and (folder / "report.html").stat().st_size > 10_000
    assert f"report {folder / 'report.html'}" in out  # where the report is, said at the end
    pareto = json.loads((folder / "study" / "pareto.json").read_text())
    assert len(pareto["frontier"]) >= 1 and summary["frontier_size"] == len(pareto["frontier"])
    assert all((folder / "study" / entry["checkpoint"]).is_dir() for entry in pareto["frontier"])
    assert summary["teacher"].startswith(str(cache / "smoke_teacher"))


def test_smoke_and_train_teacher_exclude_each_other(tmp_path, capsys):
    assert main(["quickstart", "--smoke", "--train-teacher", "--out", str(tmp_path / "q")]) == 2
    assert "exclude each other" in capsys.readouterr().err
