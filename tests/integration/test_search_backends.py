"""The search with real worker processes (local and Ray) and a real ``kill -9`` of the coordinator,
against cheap fake trials (tests/search_fakes.py): no training anywhere."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))  # search_fakes, for the workers too (the spec carries sys.path)

from paretodistill.config import load_config  # noqa: E402
from paretodistill.search.runner import cpu_count  # noqa: E402
from paretodistill.search.stages import run_search  # noqa: E402
from paretodistill.search.storage import open_storage  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = {
    "num_layers": {"type": "int", "low": 1, "high": 6},
    "learning_rate": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True},
}


def _config(**search):
    base = {
        "name": "b", "sampler": "tpe", "seed": 0, "n_startup_trials": 3, "thresholds": {}, "space": SPACE,
        "trial_function": "search_fakes:sleepy_trial", "flash": {"n_trials": 6}, "regular": {"top_k": 0},
        "heartbeat_interval": 1, "grace_period": 5,
    }
    return load_config(base={"search": {**base, **search}})


def _max_overlap(intervals):
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    level = peak = 0
    for _, delta in events:
        level += delta
        peak = max(peak, level)
    return peak


def _check_parallel_run(study_dir: Path, n_trials: int, workers: int):
    storage = open_storage(f"sqlite:///{study_dir / 'study.db'}")
    trials = optuna.load_study(study_name="b-flash", storage=storage).get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * n_trials
    # the fake writes its pid in its trial folder (recorded relative to the study folder); the study
    # keeps no pid or host (those live only in the study's lock file)
    pids = [int((study_dir / t.user_attrs["trial_dir"] / "pid.txt").read_text()) for t in trials]
    assert len(set(pids)) == n_trials and os.getpid() not in pids  # one fresh process per trial
    assert all(set(t.user_attrs["worker"]) == {"seconds"} for t in trials)
    spans = [(t.user_attrs["metrics"]["started_at"], t.user_attrs["metrics"]["ended_at"]) for t in trials]
    assert _max_overlap(spans) == workers  # all workers busy at once, never more
    return trials


def test_local_workers_run_trials_at_once_in_separate_processes(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_TRIAL_SECONDS", "1.5")
    pareto = run_search(_config(), tmp_path / "s", workers=2, backend="local", log=lambda m: None)
    trials = _check_parallel_run(tmp_path / "s", 6, 2)
    assert pareto["counts"]["flash"]["complete"] == 6 and pareto["frontier_stage"] == "flash"
    assert optuna.load_study(study_name="b-flash", storage=open_storage(f"sqlite:///{tmp_path / 's' / 'study.db'}")
                             ).user_attrs["config"]["threads"] == max(1, cpu_count() // 2)
    assert len({t.user_attrs["coordinator"]["run"] for t in trials}) == 1  # one coordinating run, by its token


def test_local_worker_crash_and_trial_bug_are_failed_trials(tmp_path):
    config = _config(trial_function="search_fakes:crashing_trial", flash={"n_trials": 4},
                     space={"num_layers": {"type": "int", "low": 1, "high": 2},
                            "learning_rate": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True}})
    pareto = run_search(config, tmp_path / "s", workers=2, backend="local", log=lambda m: None)
    storage = open_storage(f"sqlite:///{tmp_path / 's' / 'study.db'}")
    trials = optuna.load_study(study_name="b-flash", storage=storage).get_trials()
    assert pareto["counts"]["flash"]["failed"] == 4 and pareto["frontier"] == []
    reasons = {t.params["num_layers"]: t.user_attrs["failure_reason"] for t in trials}
    assert "exited with code 3" in reasons[1]  # the worker process died: the coordinator did not
    assert "RuntimeError: fake bug" in reasons[2]
    assert all(t.user_attrs["failure_kind"] == "error" for t in trials)


@pytest.fixture
def local_ray():
    ray = pytest.importorskip("ray", reason="the Ray backend needs ray: pip install 'paretodistill[ray]'")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=80 * 1024 * 1024,
             runtime_env={"env_vars": {"FAKE_TRIAL_SECONDS": "1.5"}})
    yield ray
    ray.shutdown()


def test_ray_backend_runs_the_same_search(tmp_path, local_ray):
    config = _config(ray={"num_cpus": 1})
    pareto = run_search(config, tmp_path / "s", workers=2, backend="ray", log=lambda m: None)
    _check_parallel_run(tmp_path / "s", 6, 2)
    assert pareto["counts"]["flash"]["complete"] == 6
    assert local_ray.is_initialized()  # a Ray started by the caller is left running for the caller


def _seen(study_dir: Path, trial) -> dict:
    """What the placed_trial fake saw in its own process (its seen.json)."""
    return json.loads((study_dir / trial.user_attrs["trial_dir"] / "seen.json").read_text())


def test_local_workers_each_get_one_declared_device_recorded_in_the_study(tmp_path, monkeypatch, capsys):
    """search.devices, declared without a GPU: one device per worker, each trial's process sees only its
    own (CUDA_VISIBLE_DEVICES), two trials never share one at once, and the study records it."""
    monkeypatch.setenv("FAKE_TRIAL_SECONDS", "1.0")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    config = _config(trial_function="search_fakes:placed_trial", devices=["cuda:0", "cuda:1"], flash={"n_trials": 4})
    pareto = run_search(config, tmp_path / "s", workers=2, backend="local", log=lambda m: None)
    trials = optuna.load_study(study_name="b-flash", storage=open_storage(f"sqlite:///{tmp_path / 's' / 'study.db'}")
                               ).get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 4
    for t in trials:  # recorded by the worker from its own environment, and the same as the trial saw
        assert t.user_attrs["placement"] == {"node": None, "devices": _seen(tmp_path / "s", t)["devices"]}
    by_device = {}
    for t in trials:
        seen = _seen(tmp_path / "s", t)
        by_device.setdefault(seen["devices"], []).append((seen["started"], seen["ended"]))
    assert set(by_device) == {"0", "1"} and all(_max_overlap(spans) == 1 for spans in by_device.values())
    assert all(entry["placement"]["devices"] in ("0", "1") for entry in pareto["frontier"])
    from paretodistill.cli import main

    assert main(["status", str(tmp_path / "s")]) == 0
    shown = capsys.readouterr().out  # each frontier trial with the GPU it ran on (which one is the scheduler's)
    assert all(f"GPU {entry['placement']['devices']}]" in shown for entry in pareto["frontier"]), shown


@pytest.fixture
def ray_cluster(monkeypatch):
    """A Ray cluster on this machine: a head that runs nothing and two worker nodes, each declaring 1 CPU
    and 2 GPUs (Ray schedules on declared GPUs and sets CUDA_VISIBLE_DEVICES; none need exist). The
    nodes inherit this environment (FAKE_TRIAL_SECONDS); health checks are quick, so a killed node is
    found dead in about a second."""
    pytest.importorskip("ray", reason="the Ray backend needs ray: pip install 'paretodistill[ray]'")
    from ray.cluster_utils import Cluster

    monkeypatch.setenv("FAKE_TRIAL_SECONDS", "2.5")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    light = {"object_store_memory": 80 * 1024 * 1024}
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "num_gpus": 0, "include_dashboard": False, **light,
        "_system_config": {"health_check_period_ms": 300, "health_check_failure_threshold": 3}})
    workers = [cluster.add_node(num_cpus=1, num_gpus=2, **light) for _ in range(2)]
    yield cluster, workers
    cluster.shutdown()


def _kill_node_when_its_trial_runs(cluster, node, study_dir: Path, found: list) -> threading.Thread:
    """In a thread: once a trial has started on ``node`` (its seen.json says so), kill the node (as a
    crash: no graceful shutdown) while that trial still sleeps."""
    def watch() -> None:
        deadline = time.time() + 60
        while time.time() < deadline:
            for seen in study_dir.glob("trials/*/seen.json"):
                try:
                    record = json.loads(seen.read_text())
                except ValueError:
                    continue  # being written
                if record["node"] == node.node_id and "ended" not in record:
                    time.sleep(0.5)
                    cluster.remove_node(node, allow_graceful=False)
                    found.append(seen.parent.name)
                    return
            time.sleep(0.1)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.integration
def test_ray_cluster_one_gpu_per_trial_across_nodes_and_a_node_lost_mid_trial(tmp_path, ray_cluster):
    """Head + 2 worker nodes of 2 declared GPUs each, num_gpus = 1 per trial: trials spread over both
    nodes, one per GPU at a time, each seeing its own GPU only; the study records each trial's node
    and GPU. One node is killed while its trial runs: that trial is ``node_lost`` (naming the node),
    not counted, and the search still finishes its whole budget on the node left."""
    cluster, (kept, killed) = ray_cluster
    study_dir, lost = tmp_path / "s", []
    config = _config(trial_function="search_fakes:placed_trial", address=cluster.address, flash={"n_trials": 6},
                     ray={"num_cpus": 0.5, "num_gpus": 1})
    watcher = _kill_node_when_its_trial_runs(cluster, killed, study_dir, lost)
    pareto = run_search(config, study_dir, workers=4, backend="ray", log=lambda m: None)
    watcher.join(timeout=5)
    trials = optuna.load_study(study_name="b-flash", storage=open_storage(f"sqlite:///{study_dir / 'study.db'}")
                               ).get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert lost and len(complete) == 6 and pareto["counts"]["flash"]["complete"] == 6  # the whole budget
    assert pareto["counts"]["flash"]["interrupted"] == len(failed) >= 1  # node_lost: not counted
    for t in failed:
        assert t.user_attrs["failure_kind"] == "node_lost" and t.user_attrs["placement"] == {"node": killed.node_id}
        assert t.user_attrs["failure_reason"] == f"the Ray node running it ({killed.node_id}) was lost (NodeDiedError)"
    assert any(lost[0] == f"flash-{t.number}" for t in failed)  # the trial the node was killed under
    for t in complete:  # recorded by the backend, and the same as the trial saw in its own process
        seen = _seen(study_dir, t)
        assert t.user_attrs["placement"] == {"node": seen["node"], "devices": seen["devices"]}
        assert seen["devices"] in ("0", "1")  # one GPU each
    assert {t.user_attrs["placement"]["node"] for t in complete} <= {kept.node_id, killed.node_id}
    spans = {}
    for t in complete + [t for t in failed if (study_dir / t.user_attrs["trial_dir"] / "seen.json").is_file()]:
        seen = _seen(study_dir, t)  # a lost trial may not have started yet
        spans.setdefault((seen["node"], seen["devices"]), []).append((seen["started"], seen.get("ended", seen["started"])))
    assert {node for node, _ in spans} == {kept.node_id, killed.node_id}  # spread over both nodes
    assert all(_max_overlap(intervals) <= 1 for intervals in spans.values())  # one trial per GPU at a time
    assert _max_overlap(spans[kept.node_id, "0"] + spans[kept.node_id, "1"]) == 2  # both of a node's GPUs busy at once


def test_early_stopping_works_in_local_worker_processes(tmp_path):
    """The evidence travels in the spec, the decision comes back with the result: a flash trial in its
    own process is stopped (PRUNED, with its reason and the decision) and never becomes a candidate."""
    config = _config(trial_function="search_fakes:learning_trial", sampler="random",
                     space={"num_layers": {"type": "fixed", "value": 3}, "learning_rate": SPACE["learning_rate"]},
                     flash={"n_trials": 8, "early_stop": {"safety": 1.0, "floor": 0.1, "min_curves": 1}},
                     regular={"top_k": 1})
    pareto = run_search(config, tmp_path / "s", workers=2, backend="local", log=lambda m: None)
    trials = optuna.load_study(study_name="b-flash", storage=open_storage(f"sqlite:///{tmp_path / 's' / 'study.db'}")
                               ).get_trials()
    stopped = [t for t in trials if t.state == TrialState.PRUNED]
    assert stopped and pareto["counts"]["flash"]["finished"] == 8 and pareto["counts"]["flash"]["stopped"] == len(stopped)
    for t in stopped:
        assert t.user_attrs["stop_reason"].startswith("stopped early") and t.user_attrs["early_stop"]["step"] < 4
        assert "early stop check at step 1/4" in (tmp_path / "s" / t.user_attrs["trial_dir"] / "trial.log").read_text()
    assert pareto["candidates"] and not set(pareto["candidates"]) & {t.number for t in stopped}


# ---------------------------------------------------------------- kill -9 and resume
def _read(study_db: Path):
    """The study's trials as a reader sees them while the search runs; read-only, so that a read before the search
    has created its tables cannot race it to create them ("table studies already exists" in the search)."""
    try:
        storage = open_storage(f"sqlite:///{study_db}", read_only=True)
        return optuna.load_study(study_name="k-flash", storage=storage).get_trials()
    except Exception:  # noqa: BLE001 - not created yet
        return []


def test_kill_9_then_resume_keeps_finished_trials_and_the_budget(tmp_path):
    n_trials = 8
    config = tmp_path / "search.toml"
    config.write_text(
        f"""
[search]
name = "k"
sampler = "tpe"
seed = 0
n_startup_trials = 3
workers = 2
trial_function = "search_fakes:sleepy_trial"
heartbeat_interval = 1
grace_period = 3
thresholds = {{}}
flash = {{ n_trials = {n_trials} }}
regular = {{ top_k = 0 }}

[search.space.num_layers]
type = "int"
low = 1
high = 6

[search.space.learning_rate]
type = "float"
low = 1e-5
high = 1e-3
log = true
"""
    )
    study_dir = tmp_path / "study"
    command = [sys.executable, "-m", "paretodistill.cli", "search", "--config", str(config), "--study", str(study_dir)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
           "FAKE_TRIAL_SECONDS": "1.5"}

    with open(tmp_path / "first.log", "w") as out:
        first = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + 120
        before = []
        while time.time() < deadline and first.poll() is None:
            trials = _read(study_dir / "study.db")
            complete = [t for t in trials if t.state == TrialState.COMPLETE]
            # kill while a trial runs under its coordinator; one caught between ask() and its first
            # record is the orphan case (tests/unit/test_search.py), interrupted for another reason
            if len(complete) >= 2 and any(t.state == TrialState.RUNNING and "coordinator" in t.user_attrs for t in trials):
                os.kill(first.pid, signal.SIGKILL)
                first.wait()
                before = complete
                break
            time.sleep(0.1)
    assert before, f"never saw 2 finished trials with one running: {(tmp_path / 'first.log').read_text()}"
    assert first.returncode == -signal.SIGKILL

    second = subprocess.run(command, capture_output=True, text=True, env=env, timeout=180)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "left running by a search that is gone" in second.stdout
    assert f"took over the study from pid {first.pid} on" in second.stdout

    after = {t.number: t for t in _read(study_dir / "study.db")}
    for t in before:  # finished before the kill: still there, unchanged
        assert after[t.number].state == TrialState.COMPLETE
        assert (after[t.number].params, after[t.number].values) == (t.params, t.values)
    complete = [t for t in after.values() if t.state == TrialState.COMPLETE]
    interrupted = [t for t in after.values() if t.state == TrialState.FAIL]
    assert len(complete) == n_trials  # exactly the budget: interrupted trials are not counted
    assert interrupted and all(t.user_attrs["failure_kind"] == "interrupted" for t in interrupted)
    assert all("ended while it was running" in t.user_attrs["failure_reason"] for t in interrupted)
    assert not [t for t in after.values() if t.state == TrialState.RUNNING]
    pareto = json.loads((study_dir / "pareto.json").read_text())
    assert pareto["counts"]["flash"]["complete"] == n_trials
    assert pareto["counts"]["flash"]["interrupted"] == len(interrupted)


# ---------------------------------------------------------------- the real thing (not run by default)
@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("PARETODISTILL_SLOW"), reason="real distillation: set PARETODISTILL_SLOW=1")
def test_smoke_preset_runs_a_real_search(tmp_path, dev_v2):
    """``paretodistill search --preset smoke``: real run_trial on the tiny teacher, 3 flash + 2 regular."""
    from paretodistill.cli import main

    study_dir = tmp_path / "smoke"
    assert main(["search", "--preset", "smoke", "--data", str(dev_v2), "--study", str(study_dir),
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    pareto = json.loads((study_dir / "pareto.json").read_text())
    assert pareto["counts"]["flash"]["finished"] == 3 and pareto["counts"]["regular"]["finished"] == 2
    assert pareto["frontier"] and all(entry["test"] for entry in pareto["frontier"])
    assert all((study_dir / entry["checkpoint"]).is_dir() for entry in pareto["frontier"])  # relative to the study
    teacher = pareto["teacher_latency"]  # timed once, as the students are
    assert teacher["latency"]["median_ms"] > 0 and teacher["num_parameters"] > 0
    assert (teacher["latency"]["batch_size"], teacher["latency"]["sequence_length"]) == (1, 128)  # the smoke preset's
