"""One coordinator per study folder: an exclusive lock that names its holder.

Two coordinators on one study each take the other's running trials for dead ones, and both spend
the budget. So ``paretodistill search`` holds an OS lock (``filelock``'s ``flock`` on
``STUDY_DIR/.lock``) for as long as it runs. The kernel drops the lock when its holder dies, even
by ``kill -9``, so a stale lock never blocks: the next search takes it over. Who holds it is
written beside it in ``lock.json`` (run, pid, host, since), the only place a study keeps a pid or
a host name, so that a refused second search can say whom it waits for.
"""

from __future__ import annotations

import datetime
import json
import os
import socket
from pathlib import Path
from typing import Callable

from filelock import FileLock, Timeout

from paretodistill.errors import StudyError

LOCK_FILE = ".lock"
HOLDER_FILE = "lock.json"


def read_holder(study_dir: str | Path) -> dict | None:
    """What ``lock.json`` says about the holder (or the last holder), None when unreadable."""
    try:
        holder = json.loads((Path(study_dir) / HOLDER_FILE).read_text())
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def describe_holder(holder: dict | None) -> str:
    if not holder:
        return "another process (it has not said which yet)"
    return f"pid {holder.get('pid')} on {holder.get('host')} (run {holder.get('run')}, since {holder.get('since')})"


class StudyLock:
    """Held by the one search running a study folder; ``acquire`` refuses with the holder's name."""

    def __init__(self, study_dir: Path, run: str, lock: FileLock):
        self.study_dir = study_dir
        self.run = run
        self._lock = lock

    @classmethod
    def acquire(cls, study_dir: str | Path, run: str, log: Callable[[str], None] = print) -> "StudyLock":
        study_dir = Path(study_dir)
        if study_dir.exists() and not study_dir.is_dir():
            raise StudyError(f"{study_dir} is a file, not a study folder; give --study a folder (new or a search's)")
        try:
            study_dir.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise StudyError(f"{study_dir}: cannot create the study folder ({error})") from None
        lock = FileLock(study_dir / LOCK_FILE, timeout=0, thread_local=False)
        try:
            lock.acquire()
        except Timeout:
            raise StudyError(
                f"{study_dir} is in use by another search: {describe_holder(read_holder(study_dir))}; "
                "wait for it to end (or stop it), or use another --study folder"
            ) from None
        except OSError as error:
            raise StudyError(f"{study_dir}: cannot lock the study folder ({error})") from None
        previous = read_holder(study_dir)
        if previous:
            log(f"took over the study from {describe_holder(previous)}, which is no longer running")
        holder = {"run": run, "pid": os.getpid(), "host": socket.gethostname(),
                  "since": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
        temporary = study_dir / f".{HOLDER_FILE}.tmp"
        try:
            temporary.write_text(json.dumps(holder, indent=1) + "\n")
            os.replace(temporary, study_dir / HOLDER_FILE)
        except OSError:
            lock.release()
            raise
        return cls(study_dir, run, lock)

    def release(self) -> None:
        """Forget the holder, then unlock (a crash in between leaves a holder whose lock is free: stale)."""
        try:
            if (read_holder(self.study_dir) or {}).get("run") == self.run:
                (self.study_dir / HOLDER_FILE).unlink(missing_ok=True)
        finally:
            self._lock.release()

    def __enter__(self) -> "StudyLock":
        return self

    def __exit__(self, *exc) -> None:
        self.release()
