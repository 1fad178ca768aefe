"""MLflow tracking: a search (fake trials, the real search loop) logged to a local file store and read
back with MLflow's own client: one run per trial with its study, stage, parameters, metrics, curve
steps and failures; without the setting nothing is logged, and without MLflow the setting is a clear error."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: search_fakes
sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_search import _search_config  # noqa: E402

import search_fakes  # noqa: E402,F401  (the trial_function path below resolves)
from paretodistill.config import load_config  # noqa: E402
from paretodistill.errors import ConfigError  # noqa: E402
from paretodistill.search.stages import run_search  # noqa: E402
from paretodistill.search.tracking import trackers  # noqa: E402


def test_search_is_logged_to_mlflow(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps the file store behind this switch
    uri = (tmp_path / "mlruns").as_uri()
    pareto = run_search(_search_config(tmp_path, mlflow_uri=uri), tmp_path / "s", log=lambda m: None)
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("t")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
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
    assert len(history) >= 2 and [m.step for m in history] == sorted(m.step for m in history)
    import optuna

    storage = f"sqlite:///{tmp_path / 's' / 'study.db'}"
    for stage in stages:  # one run per finished trial of every stage
        trials = optuna.load_study(study_name=f"t-{stage}", storage=storage).get_trials()
        logged = sorted(int(r.data.tags["trial"]) for r in runs if r.data.tags["stage"] == stage)
        assert logged == sorted(t.number for t in trials if t.state.is_finished())
    assert pareto["frontier"]

def test_a_store_mlflow_refuses_is_one_line(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "false")
    with pytest.raises(ConfigError, match=r"search.mlflow_uri: MLflow cannot use file:") as raised:
        trackers((tmp_path / "m").as_uri(), "t")
    assert "\n" not in str(raised.value)


def test_no_setting_no_tracking_and_a_clear_error_without_mlflow(monkeypatch):
    assert trackers(None, "t") == []
    with pytest.raises(ConfigError, match="search.mlflow_uri: expected a string"):
        load_config(None, ["search.mlflow_uri=3"])
    monkeypatch.setitem(sys.modules, "mlflow", None)
    monkeypatch.setitem(sys.modules, "mlflow.tracking", None)
    with pytest.raises(ConfigError, match=r"pip install 'paretodistill\[mlflow\]'"):
        trackers("file:/tmp/x", "t")
