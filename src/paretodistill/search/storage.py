"""Where a search's studies live: connecting to the database, stale trials, live coordinators.

``sqlite:///STUDY_DIR/study.db`` unless ``search.storage`` names another database URL. Only the
coordinating process writes to it (workers return their results), so SQLite is safe for local
workers and Ray alike. Every trial is told the moment it finishes, so a crash or ``kill -9`` loses
at most the trials that were running. Those stay RUNNING in the database; the next run marks them
FAIL with ``failure_kind = "interrupted"`` (:func:`search.study.recover_interrupted`: at once when
the study lives in the folder whose lock that run holds, see :mod:`search.lock`, or on a PostgreSQL
server whose lock on the search it holds, see :mod:`search.database_lock`; on another shared
database after ``grace_period`` seconds without a heartbeat, Optuna's RDBStorage heartbeat) and
runs their share of the budget again. A trial records only the run that owns it (a random token),
never a pid or a host: a copied study carries nothing of the machine it ran on.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import optuna
from optuna.exceptions import StorageInternalError
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from paretodistill.errors import StudyError
from paretodistill.redaction import redact_text, redact_url
from paretodistill.search.domain import STAGES, stage_study_name
from paretodistill.search.optuna_adapter import stale_trial_ids, storage_of, trial_id
from paretodistill.search.results import StoredTrial

_logger = logging.getLogger("paretodistill.search")
POSTGRES_DRIVER_HINT = "pip install 'paretodistill[postgres]' installs psycopg 3, the driver of postgresql+psycopg:// URLs"


class _SqliteConnect:
    """SQLite connections in WAL mode with ``synchronous=NORMAL``; read-only ones for readers.

    A search commits a few dozen small transactions per trial; with SQLite's default rollback
    journal each one waits for an fsync (about 12 ms on a busy disk, most of a fast trial's
    overhead). In WAL mode with NORMAL sync a commit is in the WAL file before it returns, so it
    survives a crash or ``kill -9`` of the process; only a power cut can lose the last commits,
    never corrupt the file. (Keep a study.db on a local disk: WAL needs shared memory.)

    Setting the journal mode writes to the file, so a reader (``status``, the report) opens it
    read-only and sets nothing: a study on a read-only disk or shared read-only can be reported on.
    """

    def __init__(self, path: str, read_only: bool = False):
        self.path = path
        self.read_only = read_only

    def __call__(self):
        if self.read_only:
            return self._read_only()
        connection = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection

    def _read_only(self) -> sqlite3.Connection:
        """``mode=ro`` where the folder is writable (a WAL database needs its ``-shm`` file beside
        it, even to be read: SQLite fails at the first query, not at the connect); else, on a
        read-only disk or folder, ``immutable=1``: the file as it is, nothing written beside it."""
        path = Path(self.path).resolve()
        if os.access(path.parent, os.W_OK):
            connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=60, check_same_thread=False)
            try:
                connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
                return connection
            except sqlite3.Error as error:
                connection.close()
                if not isinstance(error, sqlite3.OperationalError) or "locked" in str(error):
                    raise  # damaged, or busy: not a question of where it may write
        return sqlite3.connect(f"{path.as_uri()}?immutable=1", uri=True, check_same_thread=False)


def open_storage(url: str, heartbeat_interval: int = 30, grace_period: int = 120, *,
                 read_only: bool = False) -> optuna.storages.RDBStorage:
    """An RDBStorage with heartbeats, so that trials of a dead process can be told apart from slow ones.

    ``read_only``: for readers of a study; an SQLite file is opened without writing to it, and on
    PostgreSQL every transaction is READ ONLY and no table is created (the server refuses a write).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # heartbeat_interval is flagged experimental
        engine_kwargs = None
        is_file = url.startswith("sqlite:///") and url != "sqlite:///:memory:"
        if is_file:
            engine_kwargs = {"creator": _SqliteConnect(url[len("sqlite:///"):], read_only)}
        elif read_only and make_url(url).get_backend_name() == "postgresql":
            engine_kwargs = {"execution_options": {"postgresql_readonly": True}}
        return optuna.storages.RDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=int(heartbeat_interval),
            grace_period=int(grace_period),
            heartbeat_stale_trial_callback=_stale_trial_callback,
            skip_table_creation=read_only and not url.startswith("sqlite"),
        )


def open_checked_storage(url: str, heartbeat_interval: int = 30, grace_period: int = 120, *,
                         read_only: bool = False) -> optuna.storages.RDBStorage:
    """``open_storage``, with a database that cannot be opened, read (or, for a search, written)
    refused as one line (``StudyError``) before anything runs."""
    where = redact_url(url)
    path = Path(url[len("sqlite:///"):]) if url.startswith("sqlite:///") and url != "sqlite:///:memory:" else None
    if path is not None and not read_only and path.exists() and not os.access(path, os.W_OK):
        raise StudyError(f"{path} is read-only: a search writes to its study; copy the folder somewhere "
                         "writable to continue it (status and report read it as it is)")
    if path is not None and read_only and not path.is_file():
        raise StudyError(f"{path}: no study database here")
    try:
        if path is not None and path.is_file():
            check_sqlite_file(path)
        storage = open_storage(url, heartbeat_interval, grace_period, read_only=read_only)
        storage.get_all_studies()
    except (SQLAlchemyError, sqlite3.Error, StorageInternalError, RuntimeError, ImportError, ValueError) as error:
        hint = f"; {POSTGRES_DRIVER_HINT}" if isinstance(error, ImportError) and url.startswith("postgresql") else ""
        raise StudyError(f"{where}: cannot {'read' if read_only else 'open'} the study database "
                         f"({redact_text(database_reason(error), url)}){hint}") from None
    return storage


def close_storage(storage: optuna.storages.RDBStorage) -> None:
    """Give the storage's database connections back now, not when the garbage collector finds them:
    a server counts its clients, and a process that opens studies again and again (a notebook, a
    monitor polling ``status``) would otherwise run out of them."""
    storage.engine.dispose()


@contextmanager
def opened_storage(url: str, *, read_only: bool = False) -> Iterator[optuna.storages.RDBStorage]:
    """``open_checked_storage`` for one reading or writing, closed when it is done."""
    storage = open_checked_storage(url, read_only=read_only)
    try:
        yield storage
    finally:
        close_storage(storage)


def check_sqlite_file(path: Path) -> None:
    """SQLite's own ``quick_check`` of a study file (a second or so for a large study): random bytes
    in it or a truncated file are named before a command reads half a study and fails midway."""
    if path.stat().st_size == 0:  # SQLite reads an empty file as an empty database, and a writer would fill it
        raise sqlite3.DatabaseError("empty file: the study's tables are gone")
    connection = _SqliteConnect(str(path), read_only=True)()
    try:
        problems = [row[0] for row in connection.execute("PRAGMA quick_check(3)").fetchall()]
    finally:
        connection.close()
    if problems != ["ok"]:
        raise sqlite3.DatabaseError(f"damaged: {'; '.join(map(str, problems))}")


def database_reason(error: BaseException) -> str:
    """``DatabaseError: database disk image is malformed``: the database's own words, in one line."""
    cause = getattr(error, "orig", None) or error.__cause__ or error
    return f"{type(cause).__name__}: {' '.join(str(cause).split())[:300]}"


@contextmanager
def reading_study(where: str) -> Iterator[None]:
    """A database that fails while a study is read (damage ``quick_check`` cannot see: a page of a
    table it never walks, a value that is no longer JSON) is one line naming it, not a traceback."""
    try:
        yield
    except (SQLAlchemyError, sqlite3.Error, StorageInternalError) as error:
        raise StudyError(f"{where}: cannot read the study database ({database_reason(error)})") from None


def _stale_trial_callback(study: optuna.Study, trial: FrozenTrial) -> None:
    """Called when Optuna's own ``fail_stale_trials`` fails a trial (our runner marks them first)."""
    _logger.warning("trial %d of %s had no heartbeat for too long and was marked FAIL", trial.number, study.study_name)


def heartbeat_stale_ids(study: optuna.Study) -> set[int]:
    """Trials whose heartbeat is too old; empty for a storage that keeps no heartbeats. A storage
    that keeps them but cannot answer is logged: recovery then waits for a run that can read them."""
    if getattr(storage_of(study), "get_heartbeat_interval", lambda: None)() is None:
        return set()
    try:
        return set(stale_trial_ids(study))
    except Exception as error:  # noqa: BLE001 - database errors differ by backend; a later check retries
        _logger.warning("[%s] could not read stale trials (%s: %s); none recovered by heartbeat this time",
                        study.study_name, type(error).__name__, error)
        return set()


def refuse_live_coordinators(storage, name: str, token: str, where: str) -> None:
    """On a shared database without a lock of its own (not PostgreSQL, see :mod:`search.database_lock`):
    refuse to run a search whose trials another live search is running.

    Another folder's lock cannot be seen from here; a RUNNING trial of another run whose heartbeat
    is within the grace period can (that run's thread beats for as long as it lives).
    """
    existing = {s.study_name for s in storage.get_all_studies()}
    for stage in STAGES:
        if stage_study_name(name, stage) not in existing:
            continue
        study = optuna.load_study(study_name=stage_study_name(name, stage), storage=storage)
        stale = heartbeat_stale_ids(study)
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            run = StoredTrial.of(trial).owner_run
            if run and run != token and trial_id(trial) not in stale:
                raise StudyError(
                    f"search {name!r} on {where} "
                    f"is being run by another search (run {run}: its {stage} trial {trial.number} beats within the "
                    "grace period); wait for it to end, or use another search.name"
                )

