"""One coordinator per study, whatever happens to the files beside it, and SIGTERM taken as Ctrl-C.

Each test runs a real search in a second process (the fake trials of ``search_fakes``) and does to
it what a user or a machine does: deletes its lock files while it runs, or sends it SIGTERM.
docs/reliability.md lists them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from optuna.trial import TrialState

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: search_fakes, conftest
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the helpers of test_study_safety

from test_study_safety import config_file, finished, one_line, search, stage_trials, wait_for  # noqa: E402

import paretodistill  # noqa: E402
from paretodistill.errors import BAD_INPUT, OK  # noqa: E402
from paretodistill.search.lock import HOLDER_FILE  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")

SOURCE = Path(paretodistill.__file__).resolve().parents[1]  # the package under test, in the second process too
TESTS = Path(__file__).resolve().parents[1]
TERMINATED = 143  # 128 + SIGTERM, as a shell reports a process SIGTERM ended


def coordinator(config: Path, study: Path, seconds: float, *more: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SOURCE), str(TESTS)]), "FAKE_TRIAL_SECONDS": str(seconds)}
    return subprocess.Popen([sys.executable, "-m", "paretodistill.cli", "search", "--config", str(config),
                             "--study", str(study), *more], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def running(study: Path) -> bool:
    return any(t.state == TrialState.RUNNING for t in stage_trials(study))


def interrupted(trials) -> list[int]:
    return [t.number for t in trials if t.user_attrs.get("failure_kind") == "interrupted"]


@pytest.mark.parametrize("deleted", [(".lock",), (".lock", HOLDER_FILE)], ids=["lock file", "lock and holder files"])
def test_deleting_the_lock_files_lets_no_second_search_in(tmp_path, capsys, monkeypatch, deleted):
    """The first search's trial is running when its lock files are deleted: a second search is
    still refused, and the first's trial lands finished (it used to be marked interrupted by the
    second, and its result thrown away)."""
    config, study = config_file(tmp_path, trial="sleepy_trial", n_trials=2, top_k=0), tmp_path / "s"
    first = coordinator(config, study, seconds=4.0)
    try:
        wait_for(lambda: running(study), what="a running trial of the first search")
        for name in deleted:
            (study / name).unlink(missing_ok=True)
        monkeypatch.setenv("FAKE_TRIAL_SECONDS", "0.01")
        code, out, err = search(capsys, config, study)
        assert code == BAD_INPUT and one_line(err) and "is in use by another search" in err, out + err
        assert "took over the study" not in out
        output, _ = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == OK, output
    trials = stage_trials(study)
    assert len(trials) == finished(trials) == 2 and interrupted(trials) == []
    assert all(t.state == TrialState.COMPLETE for t in trials)


@pytest.mark.parametrize("backend", ["inline", "local"])
def test_sigterm_marks_the_trial_interrupted_releases_the_lock_and_says_so(tmp_path, capsys, monkeypatch, backend):
    """SIGTERM (a scheduler's stop, ``kill``) as Ctrl-C: the running trial interrupted, the lock
    released, one line, exit status 143; the same command then finishes the budget."""
    config, study = config_file(tmp_path, trial="sleepy_trial", n_trials=2, top_k=0), tmp_path / "s"
    first = coordinator(config, study, 60.0, "--backend", backend)
    try:
        wait_for(lambda: running(study), what="a running trial")
        first.send_signal(signal.SIGTERM)
        output, _ = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == TERMINATED, output
    last = output.strip().splitlines()[-1]
    assert "stopped by SIGTERM" in last and "Run the same command again to continue" in last, output
    assert "Traceback" not in output
    assert not (study / HOLDER_FILE).exists()  # released: status shows no search running
    trials = stage_trials(study)
    assert [t.state for t in trials] == [TrialState.FAIL] and interrupted(trials) == [0]

    monkeypatch.setenv("FAKE_TRIAL_SECONDS", "0.01")
    code, out, _ = search(capsys, config, study)
    assert code == OK and "took over" not in out, out
    assert finished(stage_trials(study)) == 2


def test_a_live_holder_is_never_taken_over_even_without_its_lock(tmp_path):
    """Where the folder cannot be locked (the ``.lock`` fallback), a holder whose process still
    runs on this host is refused by its pid and start time; a dead one is taken over."""
    from paretodistill.errors import StudyError
    from paretodistill.search import lock

    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        holder = {"run": "r", "pid": sleeper.pid, "host": lock.socket.gethostname(),
                  "started": lock.process_start(sleeper.pid), "since": "now"}
        assert lock.still_running(holder)
        assert not lock.still_running({**holder, "started": "1"})  # the pid was reused
        assert not lock.still_running({**holder, "host": "elsewhere"})
        (tmp_path / HOLDER_FILE).write_text(json.dumps(holder))
        with pytest.raises(StudyError, match=f"pid {sleeper.pid} .* which still runs"):
            lock.StudyLock.acquire(tmp_path, "mine", log=lambda message: None)
    finally:
        sleeper.kill()
        sleeper.wait()
    assert not lock.still_running(holder)
    said = []
    lock.StudyLock.acquire(tmp_path, "mine", log=said.append).release()
    assert said and "no longer running" in said[0]


def test_one_lock_whatever_path_names_the_folder(tmp_path, monkeypatch):
    """The lock is on the folder itself: a link to it, a relative or a ``..`` path is the same folder;
    where the folder cannot be locked, ``.lock`` in it is (the fallback)."""
    from paretodistill.errors import StudyError
    from paretodistill.search import lock

    study = tmp_path / "runs" / "s"
    study.parent.mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "runs", target_is_directory=True)
    monkeypatch.chdir(tmp_path / "runs")
    for fallback in (False, True):
        if fallback:
            monkeypatch.setattr(lock, "fcntl", None)
        held = lock.StudyLock.acquire(study, "first", log=lambda message: None)
        try:
            for other in (tmp_path / "link" / "s", Path("s"), Path("..") / "runs" / "s"):
                with pytest.raises(StudyError, match="is in use by another search: pid"):
                    lock.StudyLock.acquire(other, "second", log=lambda message: None)
        finally:
            held.release()
        assert (study / lock.LOCK_FILE).exists() == fallback
        lock.StudyLock.acquire(Path("s"), "third", log=lambda message: None).release()
