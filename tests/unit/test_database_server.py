"""A study on a PostgreSQL server, as teams run Optuna: searched, killed, resumed, read, locked.

A throwaway server (the ``postgres_server`` fixture: ``tests/postgres_server.py``) and the cheap
fake trials of ``search_fakes``, through the command line as a user runs it: a search with
``search.storage`` naming the server, ``kill -9`` of its coordinator and the same command again,
``status``, ``report`` and optuna-dashboard reading the study, and a second coordinator, from
another study folder, refused by the server's own lock. docs/reliability.md lists the cases.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import wsgiref.util
from pathlib import Path

import optuna
import pytest
import sqlalchemy
from optuna.trial import TrialState

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: search_fakes, conftest
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the helpers of test_study_safety

from test_study_safety import config_file, finished, one_line, search, wait_for  # noqa: E402

from paretodistill.cli import main  # noqa: E402
from paretodistill.errors import BAD_INPUT, OK, StudyError  # noqa: E402
from paretodistill.search.database_lock import DatabaseLock, holder_name, lock_key  # noqa: E402
from paretodistill.search.storage import close_storage, open_storage  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)
pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")

REPO = Path(__file__).resolve().parents[2]


def server_trials(url: str, stage: str = "flash") -> list:
    """The trials of one stage, read as status reads them (read-only); none before the search made them."""
    storage = None
    try:
        storage = open_storage(url, read_only=True)
        if f"t-{stage}" not in {s.study_name for s in storage.get_all_studies()}:
            return []
        return optuna.load_study(study_name=f"t-{stage}", storage=storage).get_trials()
    except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError):  # no tables yet
        return []
    finally:  # polled many times a second: each poll gives its connections back
        if storage is not None:
            close_storage(storage)


def client_sessions(url: str) -> int:
    """How many sessions the server has open on the study's database, besides the one asking."""
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:
            return connection.execute(sqlalchemy.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )).scalar()
    finally:
        engine.dispose()


def coordinator(config: Path, study: Path, seconds: float) -> subprocess.Popen:
    """``paretodistill search`` in a process of its own, each fake trial ``seconds`` long."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO / "tests")]),
           "FAKE_TRIAL_SECONDS": str(seconds)}
    return subprocess.Popen([sys.executable, "-m", "paretodistill.cli", "search", "--config", str(config),
                             "--study", str(study)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def kill_9(process: subprocess.Popen) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)


def wsgi_get(app, path: str) -> tuple[str, dict]:
    """One GET request to a WSGI app, in-process: its status line and its JSON."""
    environ: dict = {}
    wsgiref.util.setup_testing_defaults(environ)
    environ.update(PATH_INFO=path, QUERY_STRING="", REQUEST_METHOD="GET")
    status = []
    body = b"".join(app(environ, lambda line, headers, exc_info=None: status.append(line)))
    return status[0], json.loads(body)


def server_config(tmp_path: Path, url: str, **settings) -> Path:
    """A search config whose studies live on the server; a grace period far longer than any test:
    whatever is recovered at once is recovered through the server's lock, not by heartbeats."""
    path = config_file(tmp_path, extra=f'storage = "{url}"', **settings)
    path.write_text(path.read_text().replace("grace_period = 2\n", "grace_period = 600\n"))
    return path


# ---------------------------------------------------------------- a search and its readers
def test_search_status_report_and_dashboard_on_a_database_server(tmp_path, capsys, postgres_url):
    config, study = config_file(tmp_path, n_trials=3, top_k=1), tmp_path / "s"
    code, out, err = search(capsys, config, study, "--set", f"search.storage={postgres_url}")
    assert code == OK, out + err
    flash, regular = server_trials(postgres_url), server_trials(postgres_url, "regular")
    assert finished(flash) == len(flash) == 3 and finished(regular) == len(regular) == 1
    assert not (study / "study.db").exists()  # the study is on the server, nothing of it in the folder
    assert json.loads((study / "search.json").read_text()) == {"name": "t", "storage": postgres_url}
    pareto = json.loads((study / "pareto.json").read_text())
    assert pareto["storage"] == postgres_url and pareto["frontier"]

    assert client_sessions(postgres_url) == 0  # the search closed its connections when it ended

    code, out, _ = main(["status", str(study)]), *capsys.readouterr()
    assert code == OK and "flash    3 trials: 3 complete, 0 running" in out and "regular  1 trials: 1 complete" in out
    assert "running: no search holds its lock on the server" in out
    code = main(["report", str(study), "--out", str(tmp_path / "report.html")])
    out, _ = capsys.readouterr()
    assert code == OK and (tmp_path / "report.html").stat().st_size > 10_000, out
    assert client_sessions(postgres_url) == 0  # and so did status and report: a monitor polling them leaks none

    optuna_dashboard = pytest.importorskip("optuna_dashboard")
    dashboard_storage = open_storage(postgres_url, read_only=True)
    app = optuna_dashboard.wsgi(dashboard_storage)
    status, body = wsgi_get(app, "/api/studies")
    assert status.startswith("200")
    studies = {s["study_name"]: s for s in body["study_summaries"]}
    assert set(studies) == {"t-flash", "t-regular"}
    status, detail = wsgi_get(app, f"/api/studies/{studies['t-flash']['study_id']}")
    assert status.startswith("200") and len(detail["trials"]) == 3
    close_storage(dashboard_storage)


def test_readers_of_a_study_on_a_server_cannot_write_to_it(tmp_path, capsys, postgres_url):
    config, study = config_file(tmp_path, n_trials=1, top_k=0), tmp_path / "s"
    assert search(capsys, config, study, "--set", f"search.storage={postgres_url}")[0] == OK
    reader = open_storage(postgres_url, read_only=True)
    assert [s.study_name for s in reader.get_all_studies()] == ["t-flash"]
    with pytest.raises(optuna.exceptions.StorageInternalError) as refused:
        reader.create_new_study([optuna.study.StudyDirection.MAXIMIZE], "written-by-a-reader")
    assert "cannot execute INSERT in a read-only transaction" in str(refused.value.__cause__)
    close_storage(reader)
    assert main(["status", str(study)]) == OK and "flash    1 trials: 1 complete" in capsys.readouterr()[0]


# ---------------------------------------------------------------- the server's lock on the search
def test_a_coordinator_in_another_folder_is_refused_by_the_server_then_kill_9_and_resume(tmp_path, capsys,
                                                                                          monkeypatch, postgres_url):
    """Two folders, one study on the server: the second coordinator is refused by the server's lock
    (no folder lock can see it), naming the first. After ``kill -9`` of the first the server has
    dropped its lock: the same command takes over at once (the grace period is 600 s) and finishes
    exactly the budget."""
    config, first_study = server_config(tmp_path, postgres_url, trial="sleepy_trial", n_trials=4, top_k=2), tmp_path / "a"
    first = coordinator(config, first_study, seconds=2.0)
    try:
        wait_for(lambda: finished(server_trials(postgres_url)) >= 1, what="a finished flash trial")
        code, _, err = search(capsys, config, tmp_path / "b")
        assert code == BAD_INPUT and one_line(err), err
        assert (f"search 't' on {postgres_url} is being run by another search: pid {first.pid} on "
                f"{socket.gethostname()[:20]}") in err
        assert not (tmp_path / "b" / "search.json").exists()  # refused before anything was written
        assert main(["status", str(first_study)]) == OK
        assert f"running: pid {first.pid} on {socket.gethostname()[:20]}" in capsys.readouterr()[0]
        wait_for(lambda: any(t.state == TrialState.RUNNING for t in server_trials(postgres_url)), what="a running trial")
    finally:
        kill_9(first)
    left_running = [t.number for t in server_trials(postgres_url) if t.state == TrialState.RUNNING]
    assert left_running  # kill -9 left its trial running; only the lock says that its coordinator is gone

    monkeypatch.setenv("FAKE_TRIAL_SECONDS", "0.01")
    code, out, err = search(capsys, config, first_study)
    assert code == OK, out + err
    assert f"trial(s) {left_running} were left running by a search that is gone" in out
    flash, regular = server_trials(postgres_url), server_trials(postgres_url, "regular")
    assert finished(flash) == 4 and finished(regular) == 2
    assert all(t.state != TrialState.RUNNING for t in flash + regular)
    assert [t.number for t in flash if t.user_attrs.get("failure_kind") == "interrupted"] == left_running


def test_the_lock_names_its_holder_is_per_search_and_dies_with_its_session(postgres_url):
    held = DatabaseLock.acquire(postgres_url, "t", "run-one-token", pid=4242)
    try:
        with pytest.raises(StudyError, match=r"search 't' on .* is being run by another search: pid 4242 on .* "
                                             r"\(run run-one-, since 20\d\d-"):
            DatabaseLock.acquire(postgres_url, "t", "run-two", pid=1)
        other = DatabaseLock.acquire(postgres_url, "t-2", "run-two", pid=1)  # another search: its own lock
        other.release()
    finally:
        held.release()
    DatabaseLock.acquire(postgres_url, "t", "run-two", pid=1).release()  # released: free again

    # a session that is not a search's (someone's psql), holding the key: named by the server's words
    engine = sqlalchemy.create_engine(postgres_url, connect_args={"application_name": "psql"})
    with engine.connect() as session:
        assert session.execute(sqlalchemy.text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_key("t")}).scalar()
        with pytest.raises(StudyError, match=r"another search: server session \d+ \(psql\) from 127.0.0.1, since "):
            DatabaseLock.acquire(postgres_url, "t", "run-two", pid=1)
    engine.dispose()  # the session ends, and the lock with it
    DatabaseLock.acquire(postgres_url, "t", "run-two", pid=1).release()


def test_no_lock_is_asked_of_sqlite_and_a_holder_name_fits_the_server(tmp_path):
    assert DatabaseLock.acquire(f"sqlite:///{tmp_path / 'shared.db'}", "t", "run", pid=1) is None
    name = holder_name("0123456789abcdef" * 2, 4_194_304, "a-very-long-host-name." * 4)
    assert name == "paretodistill run 01234567 pid 4194304 on a-very-long-host-name"  # 63: what the server keeps
    assert lock_key("t") == lock_key("t") != lock_key("t2") and -2**63 <= lock_key("t") < 2**63


def test_a_missing_driver_is_one_line_naming_the_extra(tmp_path, capsys):
    try:
        import psycopg2  # noqa: F401
        pytest.skip("psycopg2 is installed here")
    except ImportError:
        pass
    code, _, err = search(capsys, config_file(tmp_path), tmp_path / "s", "--set",
                          "search.storage=postgresql+psycopg2://bob:secret@127.0.0.1:1/db")
    assert code == BAD_INPUT and one_line(err) and "secret" not in err
    assert "No module named 'psycopg2'); pip install 'paretodistill[postgres]' installs psycopg 3" in err


def test_a_server_that_cannot_be_locked_is_one_line_without_its_secrets():
    pytest.importorskip("psycopg")
    url = "postgresql+psycopg://bob:pwUSERINFO@127.0.0.1:1/optuna?password=pwQUERY&options=-c%20password%3DpwOPTIONS"
    with pytest.raises(StudyError) as refused:
        DatabaseLock.acquire(url, "t", "run", pid=1)
    message = str(refused.value)
    assert message.startswith("postgresql+psycopg://bob:***@127.0.0.1:1/optuna?password=***&options=***: cannot lock "
                              "search 't' on the database server (OperationalError: ")
    assert "\n" not in message and "pwUSERINFO" not in message and "pwQUERY" not in message and "pwOPTIONS" not in message
