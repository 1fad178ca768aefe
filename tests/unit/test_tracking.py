"""MLflow tracking: a search (fake trials, the real search loop) logged to a local store and read
back with MLflow's own client: a run for the search with its config and pareto.json, one nested run
per trial with its study, stage, parameters, metrics, curve steps (logged while the trial runs) and
failures; a folder URI becomes a database, MLflow 3's refused file store is one line naming the fix;
without the setting nothing is logged, and without MLflow the setting is a clear error."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: search_fakes, report_fixtures
sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_search import _search_config  # noqa: E402

import search_fakes  # noqa: E402,F401  (the trial_function path below resolves)
from paretodistill.config import load_config  # noqa: E402
from paretodistill.errors import ConfigError  # noqa: E402
from paretodistill.search.stages import run_search  # noqa: E402
from paretodistill.search.tracking import trackers  # noqa: E402


def _runs(uri: str, study: str):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name(study)
    return client, client.search_runs([experiment.experiment_id], max_results=1000)


def test_search_is_logged_to_mlflow(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    lines = []
    pareto = run_search(_search_config(tmp_path, mlflow_uri=str(tmp_path / "mlruns")), tmp_path / "s", log=lines.append)
    assert any("logged to the database" in line and "mlflow.db" in line for line in lines)  # a folder: said, not silent
    client, runs = _runs(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}", "t")
    search = [r for r in runs if r.info.run_name == "search"]
    assert len(search) == 1 and search[0].info.status == "FINISHED"
    search_id = search[0].info.run_id
    assert sorted(a.path for a in client.list_artifacts(search_id)) == ["config.json", "pareto.json"]
    logged_pareto = json.loads(Path(client.download_artifacts(search_id, "pareto.json", str(tmp_path))).read_text())
    assert logged_pareto == json.loads((tmp_path / "s" / "pareto.json").read_text())
    config = json.loads(Path(client.download_artifacts(search_id, "config.json", str(tmp_path))).read_text())
    assert config["search"]["name"] == "t" and config["search"]["flash"]["n_trials"] == 8
    assert (tmp_path / "mlruns" / "mlartifacts").is_dir()  # beside the database, not in the working folder

    runs = [r for r in runs if r.info.run_id != search_id]
    assert all(r.data.tags["mlflow.parentRunId"] == search_id for r in runs)
    stages = sorted({r.data.tags["stage"] for r in runs})
    assert stages == ["baseline", "flash", "regular"]
    assert sum(r.data.tags["stage"] == "flash" for r in runs) == 8
    assert all(r.data.tags["study"] == "t" for r in runs)

    ok = [r for r in runs if r.data.tags["state"] == "COMPLETE"]
    failed = [r for r in runs if r.data.tags["state"] == "FAIL"]
    assert ok and failed  # failing_trial runs out of memory from 5 layers on
    assert all(r.data.tags["failure_kind"] == "out_of_memory" and r.info.status == "FAILED" for r in failed)
    run = next(r for r in ok if r.data.tags["stage"] == "flash")
    assert {"num_layers", "learning_rate", "temperature"} <= set(run.data.params)
    assert 0 <= run.data.metrics["exact"] <= 100 and run.data.metrics["num_parameters"] > 0
    history = client.get_metric_history(run.info.run_id, "curve/exact")
    assert [m.step for m in history] == [1, 2, 3]  # fake_trial's curve, once each
    assert history[-1].value == pytest.approx(run.data.metrics["exact"])
    import optuna

    storage = f"sqlite:///{tmp_path / 's' / 'study.db'}"
    for stage in stages:  # one run per finished trial of every stage
        trials = optuna.load_study(study_name=f"t-{stage}", storage=storage).get_trials()
        logged = sorted(int(r.data.tags["trial"]) for r in runs if r.data.tags["stage"] == stage)
        assert logged == sorted(t.number for t in trials if t.state.is_finished())
    assert pareto["frontier"]


def test_curve_points_reach_mlflow_and_optuna_while_the_trial_runs(tmp_path, monkeypatch):
    """Worker processes: each point is logged when the trial reaches it, long before the trial ends."""
    pytest.importorskip("mlflow")
    import optuna

    monkeypatch.setenv("FAKE_POINT_SECONDS", "0.5")  # 1.5 s from the first point to the trial's end
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    config = _search_config(tmp_path, mlflow_uri=uri, backend="local", trial_function="search_fakes:paced_learning_trial",
                            flash={"n_trials": 2}, regular={"top_k": 0}, baseline=None, thresholds={})
    run_search(config, tmp_path / "s", log=lambda m: None)
    client, runs = _runs(uri, "t")
    trials = {t.number: t for t in optuna.load_study(study_name="t-flash", storage=f"sqlite:///{tmp_path / 's' / 'study.db'}").trials}
    flash_runs = [r for r in runs if r.data.tags.get("stage") == "flash"]
    assert len(flash_runs) == 2
    for run in flash_runs:
        history = client.get_metric_history(run.info.run_id, "curve/exact")
        assert [m.step for m in history] == [1, 2, 3, 4]
        assert history[0].timestamp <= run.info.end_time - 1000  # logged live, not when the trial ended
        trial = trials[int(run.data.tags["trial"])]
        assert trial.intermediate_values == {m.step: pytest.approx(m.value) for m in history}
        assert trial.intermediate_values[4] == pytest.approx(trial.values[0])  # the last point is the final exact


def test_a_file_store_mlflow_3_refuses_is_one_line_naming_the_fix(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "false")
    (tmp_path / "m" / "0").mkdir(parents=True)
    (tmp_path / "m" / "0" / "meta.yaml").write_text("name: Default\n")  # MLflow 2's file store
    with pytest.raises(ConfigError, match=r"search.mlflow_uri: file:.* holds an MLflow file store.*MLFLOW_ALLOW_FILE_STORE=true") as raised:
        trackers((tmp_path / "m").as_uri(), "t")
    assert "\n" not in str(raised.value)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # the user's choice: the file store, as asked
    assert trackers((tmp_path / "n").as_uri(), "t")[0].store.client.tracking_uri == (tmp_path / "n").as_uri()
    assert not (tmp_path / "n" / "mlflow.db").exists()


def test_no_setting_no_tracking_and_a_clear_error_without_mlflow(monkeypatch):
    assert trackers(None, "t") == []
    with pytest.raises(ConfigError, match="search.mlflow_uri: expected a string"):
        load_config(None, ["search.mlflow_uri=3"])
    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    with pytest.raises(ConfigError, match=r"pip install 'paretodistill\[mlflow\]'"):
        trackers("file:/tmp/x", "t")


DATA = Path(__file__).resolve().parents[2].parent / "shared/data/squad2/dev-v2.0.json"
FAST = ["threads=1", "latency.threads=1", "latency.repeats=3", "latency.warmup=1", "training.max_steps=8",
        "training.eval_every_steps=4", "training.log_every_steps=1000", "data.max_train_questions=100"]


@pytest.mark.skipif(not DATA.exists(), reason=f"{DATA} is not there")
def test_a_distillation_is_one_mlflow_run(teacher_dir, cache_dir, tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from paretodistill.cli import main

    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    out, uri = tmp_path / "run", f"sqlite:///{tmp_path / 'mlflow.db'}"
    status = main(["distill", "--preset", "smoke", "--data", str(DATA), "--out", str(out), "--cache-dir", str(cache_dir),
                   "--mlflow-uri", uri, *sum((["--set", o] for o in FAST), [])])
    assert status == 0
    client, runs = _runs(uri, "distill")
    assert len(runs) == 1 and runs[0].info.run_name == "run" and runs[0].info.status == "FINISHED"
    run = runs[0]
    metrics = json.loads((out / "metrics.json").read_text())
    assert run.data.metrics["f1"] == pytest.approx(metrics["f1"]) and run.data.params["num_layers"] == "1"
    history = client.get_metric_history(run.info.run_id, "curve/f1")
    assert [m.step for m in history] == [4, 8]  # eval_every_steps=4 of max_steps=8
    final = client.get_metric_history(run.info.run_id, "f1")[0]
    assert history[0].timestamp < final.timestamp  # step 4 was logged while training went on, not with the result
    assert {"config.json", "metrics.json", "curve.json"} <= {a.path for a in client.list_artifacts(run.info.run_id)}
    config = json.loads(Path(client.download_artifacts(run.info.run_id, "config.json", str(tmp_path))).read_text())
    assert config["training"]["max_steps"] == 8


def test_an_export_logs_its_model_card_under_the_search_run(tmp_path):
    pytest.importorskip("mlflow")
    import report_fixtures as fx
    from paretodistill.cli import main
    from paretodistill.tracking import MlflowStore

    checkpoint = fx.tiny_checkpoint(tmp_path / "study" / "trials" / "regular-0" / "checkpoint")
    regular = [fx.FakeTrial(70.0, 20_000_000, 9.0, params=fx.params_for(0), test_exact=68.0, checkpoint=str(checkpoint))]
    study = fx.write_study(tmp_path / "study", fx.HAND_FLASH[:3], regular, fx.HAND_BASELINE, objectives=fx.OBJECTIVES_3D)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    search = MlflowStore(uri, "study", setting="test").start_run("search")  # what the search left there
    assert main(["export", str(study), "--trial", "0", "--out", str(tmp_path / "student"), "--mlflow-uri", uri]) == 0
    client, runs = _runs(uri, "study")
    export = next(r for r in runs if r.info.run_name == "export-regular-0")
    assert export.data.tags["mlflow.parentRunId"] == search.run_id and export.info.status == "FINISHED"
    assert export.data.metrics["exact"] == 70.0 and export.data.metrics["test_exact"] == 68.0
    assert sorted(a.path for a in client.list_artifacts(export.info.run_id)) == ["README.md", "export.json"]
    card = Path(client.download_artifacts(export.info.run_id, "README.md", str(tmp_path))).read_text()
    assert card == (tmp_path / "student" / "README.md").read_text() and "regular trial 0" in card
