"""One coordinator per search on a database server: a lock the server itself holds.

The study folder's lock (:mod:`search.lock`) sees one folder on one machine. A search whose
studies live on a database server (``search.storage = "postgresql://..."``) can be started from a
second folder or a second machine, and two coordinators would each spend its budget and take the
other's running trials for dead. So on PostgreSQL the coordinator also takes a session-level
advisory lock (``pg_try_advisory_lock``) keyed by the search's name, on a connection of its own
that it keeps open for as long as it runs. The server drops the lock when that session ends: at
``release``, or when the process dies, ``kill -9`` included (the socket closes with it); a machine
that vanishes is noticed through the session's TCP keepalives, within about a minute. While held,
no other coordinator of the search runs anywhere, so every RUNNING trial not this run's was left
by one that ended. The session's ``application_name`` (run, pid, host) names the holder to a
refused search.

Other database servers hold no such lock: there a search still refuses another run whose trials
beat within the grace period (:func:`search.storage.refuse_live_coordinators`).
"""

from __future__ import annotations

import hashlib
import re
import socket

import sqlalchemy
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from paretodistill.errors import StudyError
from paretodistill.redaction import redact_text, redact_url
from paretodistill.search.storage import database_reason

# A lock session is idle for hours: it must not be ended for that, and a dead client must be noticed.
SESSION_SETTINGS = {"idle_session_timeout": "0", "tcp_keepalives_idle": "30", "tcp_keepalives_interval": "10",
                    "tcp_keepalives_count": "3"}
HOLDER_NAME = re.compile(r"^paretodistill run (?P<run>\S+) pid (?P<pid>\d+) on (?P<host>.*)$")

_HOLDER_QUERY = sqlalchemy.text("""
    SELECT l.pid, a.application_name, host(a.client_addr), a.backend_start
    FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND l.classid::bigint = :high AND l.objid::bigint = :low""")


def lock_key(name: str) -> int:
    """The advisory lock key of the search ``name``: a signed 64-bit number from its sha256."""
    digest = hashlib.sha256(f"paretodistill search {name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def holder_name(run: str, pid: int, host: str) -> str:
    """The lock session's ``application_name`` (PostgreSQL keeps 63 characters: the host is cut)."""
    return f"paretodistill run {run[:8]} pid {pid} on {host}"[:63]


def supports_database_lock(url: str) -> bool:
    return sqlalchemy.engine.make_url(url).get_backend_name() == "postgresql"


def current_holder(url: str, name: str) -> str | None:
    """Who holds the lock of the search ``name`` on the server ``url`` now (``status`` says it), in a
    read-only session; None when nobody does or the server has no such lock."""
    if not supports_database_lock(url):
        return None
    engine = sqlalchemy.create_engine(url, poolclass=NullPool, execution_options={"postgresql_readonly": True})
    try:
        with engine.connect() as connection:
            return _holder_of(connection, lock_key(name))
    finally:
        engine.dispose()


def _holder_of(connection, key: int) -> str | None:
    """``pid N on HOST (run R, since T)`` of the session that holds lock ``key``; None when none does."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    row = connection.execute(_HOLDER_QUERY, {"high": unsigned >> 32, "low": unsigned & 0xFFFFFFFF}).first()
    if row is None:
        return None
    session, application, address, started = row
    since = started.isoformat(timespec="seconds") if started is not None else "unknown"
    ours = HOLDER_NAME.match(application or "")
    if ours:
        return f"pid {ours['pid']} on {ours['host']} (run {ours['run']}, since {since})"
    return (f"server session {session} ({application or 'no application name'}) from "
            f"{address or 'a local socket'}, since {since}")


class DatabaseLock:
    """Held by the one coordinator of a search on a PostgreSQL server, for as long as it runs."""

    def __init__(self, engine, connection, key: int):
        self._engine = engine
        self._connection = connection
        self._key = key

    @classmethod
    def acquire(cls, url: str, name: str, run: str, pid: int) -> "DatabaseLock | None":
        """The lock of the search ``name`` on the server ``url``; None where the server has none to
        give (SQLite, MySQL...); ``StudyError`` naming the holder while another coordinator has it."""
        if not supports_database_lock(url):
            return None
        engine = sqlalchemy.create_engine(url, poolclass=NullPool)
        try:
            connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            lock = cls(engine, connection, lock_key(name))
            lock._set_up_session(holder_name(run, pid, socket.gethostname()))
            if lock._try():
                return lock
            holder = lock._holder()
            if holder is None and lock._try():  # the holder ended between the two questions
                return lock
        except SQLAlchemyError as error:
            engine.dispose()
            raise StudyError(f"{redact_url(url)}: cannot lock search {name!r} on the database server "
                             f"({redact_text(database_reason(error), url)})") from None
        lock._close()
        raise StudyError(f"search {name!r} on {redact_url(url)} is being run by another search: "
                         f"{holder or 'another session (the server did not say which)'}; wait for it to end "
                         "(or stop it), or use another search.name")

    def _set_up_session(self, application_name: str) -> None:
        settings = {"application_name": application_name, **SESSION_SETTINGS}
        for setting, value in settings.items():
            try:
                self._connection.execute(sqlalchemy.text("SELECT set_config(:setting, :value, false)"),
                                         {"setting": setting, "value": value})
            except SQLAlchemyError:  # an older server without the setting: the lock works without it
                continue

    def _try(self) -> bool:
        return bool(self._connection.execute(sqlalchemy.text("SELECT pg_try_advisory_lock(:key)"),
                                             {"key": self._key}).scalar())

    def _holder(self) -> str | None:
        return _holder_of(self._connection, self._key)

    def release(self) -> None:
        """Unlock and close the session (closing alone would unlock: the server ends the lock with it)."""
        try:
            self._connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
        except SQLAlchemyError:
            pass  # the session is gone already, and its lock with it
        finally:
            self._close()

    def _close(self) -> None:
        try:
            self._connection.close()
        finally:
            self._engine.dispose()
