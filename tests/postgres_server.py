"""A throwaway PostgreSQL server for the tests of a study on a database server.

``initdb`` and ``pg_ctl`` from the machine's PostgreSQL (``PATH``, else Debian's
``/usr/lib/postgresql/*/bin``), in a folder of its own under the system's temporary folder, with
``trust`` authentication, listening on a free port of 127.0.0.1 only. PostgreSQL refuses to run as
root, so under root the server runs as the ``postgres`` user the packages create. Made for speed,
not durability (``--no-sync``, ``fsync=off``): it lives for one test session, then is stopped and
deleted. CI installs PostgreSQL (``.ci/run``); elsewhere, without it, the tests skip and say why.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

SERVER_USER = "postgres"  # the superuser initdb creates, and under root the OS user that runs the server


def find_binaries() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``, or None where PostgreSQL is not installed."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(os.path.realpath(found)).parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(versions[-1]).parent if versions else None


def why_not_available() -> str | None:
    """Why no server can be started here, or None when one can."""
    if find_binaries() is None:
        return "PostgreSQL is not installed (initdb and pg_ctl not found; .ci/run installs it)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return f"running as root and there is no {SERVER_USER!r} user to run PostgreSQL as"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'paretodistill[postgres]')"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PostgresServer:
    """``start`` it, make databases with ``new_database``, ``stop`` it (which deletes everything)."""

    def __init__(self):
        self.binaries = find_binaries()
        self.folder = Path(tempfile.mkdtemp(prefix="paretodistill-postgres-"))
        self.data = self.folder / "data"
        self.port = free_port()
        self._databases = 0

    def _run(self, *command: str) -> None:
        as_server_user = ["runuser", "-u", SERVER_USER, "--"] if os.geteuid() == 0 else []
        done = subprocess.run([*as_server_user, *command], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stdout}{done.stderr}")

    def start(self) -> "PostgresServer":
        if os.geteuid() == 0:
            user = pwd.getpwnam(SERVER_USER)
            os.chown(self.folder, user.pw_uid, user.pw_gid)
        self._run(str(self.binaries / "initdb"), "-D", str(self.data), "-U", SERVER_USER, "-A", "trust",
                  "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=50")
        self._run(str(self.binaries / "pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "server.log"),
                  "-o", options, "-w", "-t", "30", "start")
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{SERVER_USER}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """The URL of a new, empty database (``paretodistill_test``, then numbered ones)."""
        import sqlalchemy

        self._databases += 1
        name = "paretodistill_test" if self._databases == 1 else f"paretodistill_test_{self._databases}"
        engine = sqlalchemy.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
        return self.url(name)

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self._run(str(self.binaries / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
