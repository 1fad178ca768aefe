"""A study cannot be destroyed by a slip, fooled by a bad file or turned against its user.

Each test tries the failure for real, through the command line, with the cheap fake trials of
``search_fakes``: two searches on one study (a held lock, then a second process), ``kill -9`` and
a rerun, bad data files, a full disk, a changed config, a password in the storage URL, a moved
study, and the inputs that used to end in a traceback. docs/reliability.md lists them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: search_fakes, conftest

import search_fakes  # noqa: E402,F401  (the trial_function paths below resolve)
from conftest import article, qa, write_squad  # noqa: E402
from paretodistill.cli import main  # noqa: E402
from paretodistill.errors import BAD_INPUT, FAILED, INTERRUPTED, OK  # noqa: E402
from paretodistill.redaction import redact_url  # noqa: E402
from paretodistill.search.domain import resolve_in_study  # noqa: E402
from paretodistill.search.lock import HOLDER_FILE, StudyLock  # noqa: E402
from paretodistill.search.storage import open_storage  # noqa: E402
from paretodistill.search.study import recover_interrupted  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)
pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")

REPO = Path(__file__).resolve().parents[2]
CONTEXT = "The Normans were a people in Normandy, France."


def config_file(tmp_path: Path, name: str = "search.toml", *, trial: str = "fake_trial", n_trials: int = 3,
                top_k: int = 1, max_steps: int = 10, extra: str = "") -> Path:
    path = tmp_path / name
    path.write_text(f"""
[search]
name = "t"
sampler = "random"
seed = 1
backend = "inline"
trial_function = "search_fakes:{trial}"
thresholds = {{}}
heartbeat_interval = 1
grace_period = 2
{extra}
[search.space]
num_layers = {{type = "int", low = 1, high = 8}}
learning_rate = {{type = "float", low = 1e-5, high = 1e-3, log = true}}
[search.flash]
n_trials = {n_trials}
budget = {{"training.max_steps" = {max_steps}}}
[search.regular]
top_k = {top_k}
""")
    return path


def search(capsys, config: Path, study: Path, *more) -> tuple[int, str, str]:
    code = main(["search", "--config", str(config), "--study", str(study), *map(str, more)])
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> bool:
    return err.count("\n") == 1 and "Traceback" not in err


def stage_trials(study: Path, stage: str = "flash") -> list:
    """The trials of one stage, read as status reads them (read-only); none before the search made its tables."""
    from optuna.exceptions import StorageInternalError
    from sqlalchemy.exc import OperationalError

    if not (study / "study.db").exists():
        return []
    try:
        storage = open_storage(f"sqlite:///{study / 'study.db'}", read_only=True)
        names = {s.study_name for s in storage.get_all_studies()}
    except (OperationalError, StorageInternalError):  # the search is creating its tables this very moment
        return []
    if f"t-{stage}" not in names:
        return []
    return optuna.load_study(study_name=f"t-{stage}", storage=storage).get_trials()


def finished(trials) -> int:
    return sum(1 for t in trials if t.state == TrialState.COMPLETE
               or (t.state == TrialState.FAIL and t.user_attrs.get("failure_kind") != "interrupted"))


def good_squad(path: Path) -> Path:
    return write_squad(path, [article("N", CONTEXT, [qa("q1", "Who?", [("a people", 17)]), qa("q2", "When?")])])


def background_search(tmp_path: Path, config: Path, study: Path, seconds: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO / "tests")]),
           "FAKE_TRIAL_SECONDS": str(seconds)}
    return subprocess.Popen([sys.executable, "-m", "paretodistill.cli", "search", "--config", str(config),
                             "--study", str(study)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for(condition, timeout: float = 60.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


# ---------------------------------------------------------------- one coordinator per study
def test_a_second_search_on_a_held_study_is_refused_naming_the_holder(tmp_path, capsys):
    config, study = config_file(tmp_path), tmp_path / "s"
    held = StudyLock.acquire(study, "first", log=lambda m: None)
    code, _, err = search(capsys, config, study)
    assert code == BAD_INPUT and one_line(err)
    assert f"in use by another search: pid {os.getpid()} on {socket.gethostname()} (run first" in err
    assert stage_trials(study) == []  # nothing touched
    held.release()
    code, out, _ = search(capsys, config, study)
    assert code == OK and finished(stage_trials(study)) == 3
    assert not (study / HOLDER_FILE).exists()  # released at the end: the pid and host are gone with it


def test_two_coordinators_in_two_processes_and_a_long_inline_trial_keeps_beating(tmp_path, capsys):
    """A second search is refused while the first runs; the first's inline trial outlives the
    grace period and is still not taken for dead (its heartbeats come from a thread); the first
    finishes exactly its budget."""
    config, study = config_file(tmp_path, trial="sleepy_trial", n_trials=1, top_k=0), tmp_path / "s"
    first = background_search(tmp_path, config, study, seconds=5.0)
    try:
        wait_for(lambda: (study / HOLDER_FILE).exists() and json.loads((study / HOLDER_FILE).read_text() or "{}").get("pid"),
                 what="the first search to hold the study")
        code, _, err = search(capsys, config, study)
        assert code == BAD_INPUT and one_line(err) and f"pid {first.pid} on" in err

        wait_for(lambda: any(t.state == TrialState.RUNNING for t in stage_trials(study)), what="a running trial")
        time.sleep(3.0)  # longer than the 2 s grace period, while the trial blocks its coordinator
        storage = open_storage(f"sqlite:///{study / 'study.db'}", heartbeat_interval=1, grace_period=2)
        flash = optuna.load_study(study_name="t-flash", storage=storage)
        assert [t.state for t in flash.get_trials()] == [TrialState.RUNNING]  # still running, past the grace period
        assert recover_interrupted(flash, token="another search", log=lambda m: None) == []
        output, _ = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == OK, output
    trials = stage_trials(study)
    assert len(trials) == finished(trials) == 1  # not interrupted, not run twice


def test_kill_9_then_the_rerun_takes_over_and_finishes_the_exact_total(tmp_path, capsys, monkeypatch):
    config, study = config_file(tmp_path, trial="sleepy_trial", n_trials=5, top_k=2), tmp_path / "s"
    first = background_search(tmp_path, config, study, seconds=0.4)
    try:
        wait_for(lambda: finished(stage_trials(study)) >= 2, what="two finished flash trials")
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    assert json.loads((study / HOLDER_FILE).read_text())["pid"] == first.pid  # a stale lock, left by kill -9

    monkeypatch.setenv("FAKE_TRIAL_SECONDS", "0.01")
    code, out, _ = search(capsys, config, study)
    assert code == OK, out
    assert f"took over the study from pid {first.pid} on" in out
    flash, regular = stage_trials(study), stage_trials(study, "regular")
    assert finished(flash) == 5 and finished(regular) == 2
    assert all(t.state != TrialState.RUNNING for t in flash + regular)
    pareto = json.loads((study / "pareto.json").read_text())
    assert sorted(pareto["candidates"]) == sorted(t.user_attrs["flash_trial"] for t in regular)


def test_kill_9_in_the_regular_stage_then_the_rerun_runs_every_candidate(tmp_path, capsys, monkeypatch):
    """A candidate whose regular run was killed is run again, not dropped (a real search once lost two that way)."""
    config, study = config_file(tmp_path, trial="sleepy_trial", n_trials=3, top_k=2), tmp_path / "s"
    first = background_search(tmp_path, config, study, seconds=0.5)
    try:
        wait_for(lambda: any(t.state == TrialState.RUNNING for t in stage_trials(study, "regular")),
                 what="a running regular trial")
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    assert finished(stage_trials(study, "regular")) < 2

    monkeypatch.setenv("FAKE_TRIAL_SECONDS", "0.01")
    code, out, _ = search(capsys, config, study)
    assert code == OK, out
    regular = stage_trials(study, "regular")
    done = [t.user_attrs["flash_trial"] for t in regular if t.state == TrialState.COMPLETE]
    pareto = json.loads((study / "pareto.json").read_text())
    assert sorted(done) == sorted(pareto["candidates"]) and len(done) == 2  # each candidate once
    assert any(t.user_attrs.get("failure_kind") == "interrupted" for t in regular)


def test_a_trial_finished_by_another_process_is_not_a_crash(tmp_path):
    from paretodistill.search.objectives import ObjectiveSet
    from paretodistill.search.study import open_study, record_result
    from paretodistill.trial import TrialResult

    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}")
    objectives = ObjectiveSet.from_search({})
    study = open_study(storage, "t", "flash", objectives)
    metrics = {"exact": 60, "num_parameters": 1e6}
    finished_there = study.ask({"num_layers": optuna.distributions.IntDistribution(1, 4)})
    storage.set_trial_state_values(finished_there._trial_id, state=TrialState.COMPLETE, values=[70, 2e6])
    frozen = record_result(study, finished_there, TrialResult("ok", finished_there.params, metrics=metrics), objectives)
    assert frozen.number == finished_there.number and frozen.values == [70, 2e6]  # its result: kept

    trial = study.ask({"num_layers": optuna.distributions.IntDistribution(1, 4)})
    trial.set_user_attr("trial_dir", "trials/flash-1")
    storage.set_trial_user_attr(trial._trial_id, "failure_kind", "interrupted")
    storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)  # as another coordinator did
    frozen = record_result(study, trial, TrialResult("ok", trial.params, metrics=metrics), objectives)
    assert frozen.state == TrialState.COMPLETE and frozen.number == 2  # the result this run finished: landed
    assert frozen.params == trial.params and frozen.values == [60, 1e6] and frozen.user_attrs["metrics"] == metrics
    assert frozen.user_attrs["failure_kind"] is None and frozen.user_attrs["trial_dir"] == "trials/flash-1"
    assert study.trials[1].state == TrialState.FAIL and study.trials[1].user_attrs["failure_kind"] == "interrupted"


# ---------------------------------------------------------------- fail fast and honestly
BAD_FILES = {
    "wrong version": ({"version": "v3.0", "data": []}, "unsupported SQuAD version"),
    "is_impossible with answers": (
        {"version": "v2.0", "data": [article("N", CONTEXT, [qa("q1", "Who?", [("a people", 17)], impossible=True)])]},
        "is_impossible disagrees"),
    "duplicate ids": (
        {"version": "v2.0", "data": [article("N", CONTEXT, [qa("q1", "Who?", [("a people", 17)]), qa("q1", "When?")])]},
        "duplicate question ids: q1"),
    "non-UTF-8": (b'{"version": "v2.0", "data": [{"title": "\xff"}]}', "not UTF-8"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_a_bad_data_file_is_refused_before_any_trial(tmp_path, capsys, case):
    content, message = BAD_FILES[case]
    data = tmp_path / "data.json"
    data.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
    code, _, err = search(capsys, config_file(tmp_path), tmp_path / "s", "--data", data)
    assert code == BAD_INPUT and one_line(err) and message in err
    assert stage_trials(tmp_path / "s") == []  # no trial spent, no study started


def test_the_fixed_data_file_then_runs_the_full_budget(tmp_path, capsys):
    config, study, data = config_file(tmp_path), tmp_path / "s", tmp_path / "data.json"
    data.write_text(json.dumps(BAD_FILES["duplicate ids"][0]))
    assert search(capsys, config, study, "--data", data)[0] == BAD_INPUT
    good_squad(data)
    code, out, _ = search(capsys, config, study, "--data", data)
    assert code == OK and "0 finished already" in out
    assert finished(stage_trials(study)) == 3


def test_a_full_disk_stops_the_search_without_spending_its_budget(tmp_path, capsys, monkeypatch):
    config, study, flag = config_file(tmp_path, trial="full_disk_trial"), tmp_path / "s", tmp_path / "disk-full"
    flag.touch()
    monkeypatch.setenv("FAKE_FULL_DISK", str(flag))
    code, out, err = search(capsys, config, study)
    assert code == FAILED and one_line(err)
    assert "No space left on device" in err and "run the same command again" in err
    trials = stage_trials(study)
    assert len(trials) == 1 and finished(trials) == 0  # it stopped at once; the trial does not count
    assert "No space left on device" in trials[0].user_attrs["failure_reason"]

    flag.unlink()  # space freed
    code, out, _ = search(capsys, config, study)
    assert code == OK and "0 finished already" in out
    assert finished(stage_trials(study)) == 3


def test_an_oserror_in_the_distillation_trial_is_an_environment_failure():
    from paretodistill.distill.run import Stage, _classify

    assert _classify(OSError(28, "No space left on device"), Stage.SAVING) == "environment"
    assert _classify(PermissionError(13, "Permission denied"), Stage.PREPARING_DATA) == "environment"
    torch_save = RuntimeError("[enforce fail at inline_container.cc:595] . PytorchStreamWriter failed writing file "
                              "data/0: file write failed")
    safetensors_save = Exception('Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: '
                                 '"No space left on device" })')
    assert _classify(torch_save, Stage.TRAINING) == _classify(safetensors_save, Stage.SAVING) == "environment"
    assert _classify(ValueError("x"), Stage.TRAINING) == "error"


def test_exit_status_one_when_every_trial_failed(tmp_path, capsys):
    config = config_file(tmp_path, trial="failing_trial", extra="")
    config.write_text(config.read_text().replace("low = 1, high = 8", "low = 5, high = 8"))  # all out of memory
    code, _, err = search(capsys, config, tmp_path / "s")
    assert code == FAILED and one_line(err) and "every flash trial failed (out_of_memory 3)" in err


def test_exit_status_130_when_a_trial_is_interrupted(tmp_path, capsys):
    code, out, _ = search(capsys, config_file(tmp_path, trial="interrupted_trial"), tmp_path / "s")
    assert code == INTERRUPTED and "Run the same command again to continue" in out


# ---------------------------------------------------------------- study identity
def test_a_rerun_with_other_settings_is_refused_naming_the_differences(tmp_path, capsys):
    study, data = tmp_path / "s", good_squad(tmp_path / "data.json")
    assert search(capsys, config_file(tmp_path), study, "--data", data)[0] == OK
    recorded = optuna.load_study(study_name="t-flash", storage=f"sqlite:///{study / 'study.db'}").user_attrs["config"]

    code, _, err = search(capsys, config_file(tmp_path, max_steps=20), study, "--data", data)
    assert code == BAD_INPUT and one_line(err)
    assert "budgets.flash.training.max_steps: 10 -> 20" in err and "new --study folder" in err

    code, _, _ = search(capsys, config_file(tmp_path), study, "--data", data, "--set", "training.learning_rate=0.1")
    assert code == OK  # learning_rate is searched: its config value is no part of any trial
    code, _, err = search(capsys, config_file(tmp_path), study, "--data", data, "--set", "distillation.temperature=4")
    assert code == BAD_INPUT and "fixed.distillation.temperature: 2.0 -> 4" in err

    write_squad(data, [article("M", CONTEXT, [qa("q9", "Who?", [("a people", 17)])])])
    code, _, err = search(capsys, config_file(tmp_path), study, "--data", data)
    assert code == BAD_INPUT and "inputs.data.split_file: sha256 " in err
    assert stage_trials(study) and finished(stage_trials(study)) == 3  # nothing was added

    good_squad(data)  # the same content again, and a larger budget of trials: the same study
    moved = tmp_path / "elsewhere.json"
    shutil.move(data, moved)
    code, _, _ = search(capsys, config_file(tmp_path), study, "--data", moved, "--n-trials", 5)
    assert code == OK and finished(stage_trials(study)) == 5
    flash = optuna.load_study(study_name="t-flash", storage=f"sqlite:///{study / 'study.db'}")
    assert flash.user_attrs["config"] == recorded  # what the study was started with, not overwritten


# ---------------------------------------------------------------- no leaks, portable studies
def test_no_password_is_written_anywhere(tmp_path, capsys, monkeypatch):
    """A shared database's password stays out of search.json, pareto.json and the study's records."""
    from paretodistill.search import stages

    shared = tmp_path / "shared.db"
    monkeypatch.setattr(stages, "open_checked_storage", lambda url, *a, **k: open_storage(f"sqlite:///{shared}", *a))
    monkeypatch.setattr(stages.DatabaseLock, "acquire", lambda *a, **k: None)  # no server to lock the search on
    url = "postgresql://bob:s3cret@db.example/optuna"
    code, _, _ = search(capsys, config_file(tmp_path), tmp_path / "s", "--set", f'search.storage="{url}"')
    assert code == OK
    meta = json.loads((tmp_path / "s" / "search.json").read_text())
    assert meta == {"name": "t", "storage": redact_url(url)} and meta["storage"] == "postgresql://bob:***@db.example/optuna"
    assert "s3cret" not in (tmp_path / "s" / "pareto.json").read_text()
    storage = open_storage(f"sqlite:///{shared}")
    for summary in storage.get_all_studies():
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        recorded = json.dumps([study.user_attrs, [t.user_attrs for t in study.get_trials()]], default=str)
        assert "s3cret" not in recorded and str(os.getpid()) not in recorded and socket.gethostname() not in recorded

    code = main(["status", "--study", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == BAD_INPUT and one_line(err) and "--storage URL" in err
    assert main(["status", "--study", str(tmp_path / "s"), "--storage", f"sqlite:///{shared}"]) == OK


def test_a_moved_study_reports_and_resolves_from_its_own_copy(tmp_path, capsys):
    assert search(capsys, config_file(tmp_path), tmp_path / "a")[0] == OK
    meta = json.loads((tmp_path / "a" / "search.json").read_text())
    assert meta == {"name": "t", "storage": None}  # the folder's own study.db; no absolute path
    assert str(tmp_path) not in (tmp_path / "a" / "pareto.json").read_text()
    shutil.move(tmp_path / "a", tmp_path / "b")
    assert main(["status", "--study", str(tmp_path / "b")]) == OK
    assert "flash    3 trials: 3 complete" in capsys.readouterr().out
    pareto = json.loads((tmp_path / "b" / "pareto.json").read_text())
    for entry in pareto["frontier"]:
        assert not Path(entry["checkpoint"]).is_absolute()
        assert (resolve_in_study(tmp_path / "b", entry["checkpoint"]) / "metrics.json").is_file()


def test_status_reads_a_study_without_writing_to_it(tmp_path, capsys):
    """A read-only study.db (or folder) can be reported on: status opens it read-only."""
    import sqlite3

    from paretodistill.search.storage import open_checked_storage

    assert search(capsys, config_file(tmp_path, n_trials=1, top_k=0), tmp_path / "s")[0] == OK
    database = tmp_path / "s" / "study.db"
    database.chmod(0o444)
    try:
        assert main(["status", "--study", str(tmp_path / "s")]) == OK
        storage = open_checked_storage(f"sqlite:///{database}", read_only=True)
        with storage.engine.connect() as connection, pytest.raises(Exception, match="readonly"):
            connection.exec_driver_sql("CREATE TABLE x (y INTEGER)")
        if os.geteuid() != 0:  # root writes read-only files anyway
            code, _, err = search(capsys, config_file(tmp_path, n_trials=1, top_k=0), tmp_path / "s")
            assert code == BAD_INPUT and "is read-only" in err
    finally:
        database.chmod(0o644)
    assert isinstance(sqlite3.sqlite_version, str)


# ---------------------------------------------------------------- one line instead of a traceback
def test_inputs_that_used_to_end_in_a_traceback_are_one_line(tmp_path, capsys):
    config = config_file(tmp_path)
    cases = []
    latin = tmp_path / "latin.toml"
    latin.write_bytes(b'[search]\nname = "\xe9t\xe9"\n')
    cases.append((["--config", latin], "not UTF-8"))
    cases.append((["--config", config, "--set", "search.storage=5"], "search.storage: expected a string"))
    dedupe = tmp_path / "dedupe.toml"
    dedupe.write_text('[search]\ndedupe = "false"\n')
    cases.append((["--config", dedupe], "search.dedupe: expected true or false"))
    cases.append((["--config", config, "--workers", "0"], "--workers: expected an integer >= 1, got 0"))
    cases.append((["--config", config, "--n-trials", "-5"], "--n-trials: expected an integer >= 0, got -5"))
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    cases.append((["--config", config, "--study", a_file], "is a file, not a study folder"))
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "study.db").write_bytes(b"this is not an SQLite database" * 100)
    cases.append((["--config", config, "--study", corrupt], "cannot open the study database"))
    for argv, message in cases:
        if "--study" not in argv:
            argv = [*argv, "--study", tmp_path / "unused"]
        code = main(["search", *map(str, argv)])
        err = capsys.readouterr().err
        assert code == BAD_INPUT and one_line(err) and message in err, (argv, err)

    (corrupt / "search.json").write_text('{"name": "t", "storage": null}')
    assert main(["status", "--study", str(corrupt)]) == BAD_INPUT
    assert "cannot read the study database" in capsys.readouterr().err
    (corrupt / "search.json").write_text('{"name": "t", "storage": 5}')
    assert main(["status", "--study", str(corrupt)]) == BAD_INPUT
    err = capsys.readouterr().err
    assert one_line(err) and "search.json: expected" in err
    assert main(["status", "--study", str(a_file)]) == BAD_INPUT and "is a file" in capsys.readouterr().err


def test_an_oserror_anywhere_is_one_line_and_exit_status_one(tmp_path, capsys, monkeypatch):
    from paretodistill.search import stages

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(stages, "check_inputs", full)
    code, _, err = search(capsys, config_file(tmp_path), tmp_path / "s")
    assert code == FAILED and one_line(err) and "No space left on device" in err


def test_distill_refuses_a_bad_data_file_in_one_line(tmp_path, capsys):
    """`distill` on the malformed files the search refuses: the same one line and exit status 2."""
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(BAD_FILES["is_impossible with answers"][0]))
    code = main(["distill", "--teacher", str(REPO / "teachers" / "minilm-l6-squad2"), "--data", str(bad),
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == BAD_INPUT and one_line(err) and "is_impossible disagrees" in err
    assert not (tmp_path / "out").exists()


def test_on_a_shared_database_a_search_whose_trials_still_beat_is_not_joined(tmp_path):
    """Another folder's lock cannot be seen from here; the heartbeats of its running trials can."""
    from paretodistill.errors import StudyError
    from paretodistill.search.objectives import ObjectiveSet
    from paretodistill.search.storage import refuse_live_coordinators
    from paretodistill.search.study import open_study

    storage = open_storage(f"sqlite:///{tmp_path / 'shared.db'}", heartbeat_interval=1, grace_period=2)
    study = open_study(storage, "t", "flash", ObjectiveSet.from_search({}))
    trial = study.ask({"num_layers": optuna.distributions.IntDistribution(1, 4)})
    trial.set_user_attr("coordinator", {"run": "elsewhere"})
    storage.record_heartbeat(trial._trial_id)
    with pytest.raises(StudyError, match="being run by another search .run elsewhere"):
        refuse_live_coordinators(storage, "t", "mine", "the shared database")
    refuse_live_coordinators(storage, "t", "elsewhere", "the shared database")  # its own trial
    time.sleep(3.2)  # no heartbeat for longer than the grace period: that search is gone
    refuse_live_coordinators(storage, "t", "mine", "the shared database")
