"""One coordinator per study folder: an exclusive lock that names its holder.

Two coordinators on one study each take the other's running trials for dead ones, and both spend
the budget. So ``paretodistill search`` holds an OS lock (``flock``) on the study folder itself
for as long as it runs: a lock on a file inside it (the former ``STUDY_DIR/.lock``) is lost the
moment someone deletes that file, and the next search walks in. The kernel drops the lock when its
holder dies, even by ``kill -9``, so a stale lock never blocks: the next search takes it over.
Where a folder cannot be locked (no ``fcntl``, or a file system that refuses ``flock`` on a
folder) the lock falls back to ``filelock`` on ``STUDY_DIR/.lock``. A folder's lock cannot see a
second folder or a second machine: a search on a PostgreSQL server is also locked by the server
(:mod:`search.database_lock`).

Who holds it is written beside it in ``lock.json`` (run, pid, host, since), the only place a study
keeps a pid or a host name, so that a refused second search can say whom it waits for. Before it
takes a study over, a search also asks whether that holder still runs (same host, same pid, same
start): a holder that does is never declared gone, whatever happened to the lock.
"""

from __future__ import annotations

import datetime
import errno
import json
import os
import socket
from pathlib import Path
from typing import Callable

from filelock import FileLock, Timeout

from paretodistill.errors import StudyError

try:
    import fcntl
except ImportError:  # Windows: the lock file only
    fcntl = None

LOCK_FILE = ".lock"  # only where the folder itself cannot be locked
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


def process_start(pid: int) -> str | None:
    """When process ``pid`` started (clock ticks since boot, from ``/proc``); None where unknown or
    when it is a zombie (dead, not yet reaped). A pid is reused, a pid and its start time are not."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]  # fields 3 (state) and 22 (start time)


def still_running(holder: dict | None) -> bool:
    """Whether the process ``lock.json`` names still runs here; False for another host (its lock
    is the word there) or a record without a pid."""
    if not holder or holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return False
    pid = holder["pid"]
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    now = process_start(pid)
    if now is None:
        return not Path("/proc/self/stat").exists()  # a zombie where /proc tells; alive where it cannot
    return holder.get("started") in (None, now)


class _FolderLock:
    """``flock`` on the study folder's own descriptor: no file inside it can be deleted to break it."""

    def __init__(self, study_dir: Path):
        self._fd = os.open(study_dir, os.O_RDONLY)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BaseException:
            os.close(self._fd)
            raise

    def release(self) -> None:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)


def _lock_folder(study_dir: Path):
    """The folder's own lock, else (where the file system refuses one) ``.lock``'s; raises
    ``Timeout`` while another process holds it."""
    if fcntl is not None:
        try:
            return _FolderLock(study_dir)
        except BlockingIOError:
            raise Timeout(str(study_dir)) from None
        except OSError as error:
            if error.errno not in (errno.EBADF, errno.ENOLCK, errno.EINVAL, errno.EOPNOTSUPP):
                raise
    lock = FileLock(study_dir / LOCK_FILE, timeout=0, thread_local=False)
    lock.acquire()
    return lock


class StudyLock:
    """Held by the one search running a study folder; ``acquire`` refuses with the holder's name."""

    def __init__(self, study_dir: Path, run: str, lock):
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
        try:
            lock = _lock_folder(study_dir)
        except Timeout:
            raise StudyError(
                f"{study_dir} is in use by another search: {describe_holder(read_holder(study_dir))}; "
                "wait for it to end (or stop it), or use another --study folder"
            ) from None
        except OSError as error:
            raise StudyError(f"{study_dir}: cannot lock the study folder ({error})") from None
        try:
            cls._take_over(study_dir, run, log)
        except OSError as error:
            lock.release()
            if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                raise StudyError(f"{study_dir} is read-only: a search writes to its study; copy the folder somewhere "
                                 "writable to continue it (status and report read it as it is)") from None
            raise
        except BaseException:
            lock.release()
            raise
        return cls(study_dir, run, lock)

    @staticmethod
    def _take_over(study_dir: Path, run: str, log: Callable[[str], None]) -> None:
        """Refuse a holder that still runs; else name the one taken over, and write ourselves in."""
        previous = read_holder(study_dir)
        if still_running(previous):
            raise StudyError(
                f"{study_dir} is in use by another search: {describe_holder(previous)}, which still runs "
                "although its lock is gone; wait for it to end (or stop it), or use another --study folder"
            )
        if previous:
            log(f"took over the study from {describe_holder(previous)}, which is no longer running")
        holder = {"run": run, "pid": os.getpid(), "host": socket.gethostname(), "started": process_start(os.getpid()),
                  "since": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
        temporary = study_dir / f".{HOLDER_FILE}.tmp"
        temporary.write_text(json.dumps(holder, indent=1) + "\n")
        os.replace(temporary, study_dir / HOLDER_FILE)

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
