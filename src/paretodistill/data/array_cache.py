"""Cache folders of named numpy arrays: written atomically, read back as read-only memory maps.

Why memory maps: every trial of a search reads the same training features and teacher logits.
Mapped read-only from one file, they live once in the operating system's page cache and N worker
processes share those pages (each one's PSS for them is 1/N) instead of holding N private copies.

Why a manifest: a folder marked done can still be damaged (a disk error, a copy cut short, a file
edited by hand). Each array's dtype and shape are recorded when written and checked when read, from
the ``.npy`` headers only, so a cache hit reads no data. A folder that does not match is reported
as damaged and set aside, for the caller to rebuild rather than train on garbage. Folders written
before the manifest existed are read without it; their callers check what they can (lengths that
must agree).

Writes go to a temporary folder renamed into place, so a killed run leaves no half-written folder,
and of two processes writing the same key the second simply uses the first one's folder.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

DONE = "done"
MANIFEST = "arrays.json"
DESCRIPTION = "key.json"


class DamagedCache(Exception):
    """A done cache folder whose arrays cannot be trusted (missing, cut short, other dtype or shape)."""


def write_arrays(directory: Path, arrays: dict[str, np.ndarray], description: str) -> None:
    """Each array as ``<name>.npy``, the manifest and ``description``; renamed into place at the end."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=".tmp-"))
    try:
        manifest = {}
        for name, array in arrays.items():
            array = np.ascontiguousarray(array)
            np.save(staging / f"{name}.npy", array, allow_pickle=False)
            manifest[name] = {"dtype": array.dtype.str, "shape": list(array.shape)}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=1))
        (staging / DESCRIPTION).write_text(description)
        (staging / DONE).write_text("")
        _move_into_place(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _move_into_place(staging: Path, directory: Path) -> None:
    """Rename ``staging`` to ``directory``; a done folder already there (another process wrote the same
    key first) stands, a folder without the done mark (not a cache entry) is set aside first."""
    try:
        os.rename(staging, directory)
        return
    except OSError:
        if (directory / DONE).exists():
            shutil.rmtree(staging, ignore_errors=True)
            return
    set_aside(directory)
    try:
        os.rename(staging, directory)
    except OSError:  # written meanwhile by another process
        shutil.rmtree(staging, ignore_errors=True)


def read_arrays(directory: Path, names: tuple[str, ...]) -> dict[str, np.memmap] | None:
    """The arrays of a done folder as read-only memory maps; None when there is no done folder.

    Raises :class:`DamagedCache` when a file is missing or unreadable, or disagrees with the manifest.
    """
    if not (directory / DONE).exists():
        return None
    try:
        arrays = {name: np.load(directory / f"{name}.npy", mmap_mode="r", allow_pickle=False) for name in names}
        manifest = json.loads((directory / MANIFEST).read_text()) if (directory / MANIFEST).exists() else None
    except (OSError, ValueError, EOFError) as error:  # cut short, a bad header, not there
        raise DamagedCache(f"{directory}: {type(error).__name__}: {error}") from error
    for name, array in arrays.items():
        if manifest is None:
            continue
        expected = manifest.get(name, {})
        if np.dtype(expected.get("dtype", "V")) != array.dtype or list(array.shape) != expected.get("shape"):
            raise DamagedCache(f"{directory}: {name}.npy is {array.dtype} {list(array.shape)}, the manifest "
                               f"recorded {expected.get('dtype')} {expected.get('shape')}")
    return arrays


def set_aside(directory: Path) -> None:
    """Remove a damaged folder (renamed first, so a process rebuilding the key can rename into place;
    a process that still maps its files keeps reading them until it closes them)."""
    aside = directory.with_name(f".damaged-{directory.name}-{os.getpid()}")
    try:
        os.rename(directory, aside)
    except OSError:  # already set aside by another process
        return
    shutil.rmtree(aside, ignore_errors=True)
