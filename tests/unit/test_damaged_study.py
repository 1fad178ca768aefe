"""A damaged study is one line and exit status 2 from every command that reads it; a study on a
read-only disk can still be read (``status``, ``report``) and exported from.

One real (fake-trial) search is run once; each test damages a copy the way disks and people do:
random bytes inside ``study.db``, a truncated ``study.db``, a ``pareto.json`` that is not the
object a search writes, a folder that cannot be written. docs/reliability.md lists them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: search_fakes, report_fixtures
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the helpers of test_study_safety

from test_study_safety import config_file, one_line  # noqa: E402

import report_fixtures as fx  # noqa: E402
from paretodistill.cli import main  # noqa: E402
from paretodistill.errors import BAD_INPUT, OK  # noqa: E402
from paretodistill.models import pruned_bert  # noqa: E402,F401  (the students registered before tiny_checkpoint's Bert)

pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")


@pytest.fixture(scope="module")
def searched(tmp_path_factory) -> tuple[Path, Path]:
    """(config, study) of a finished search whose regular trial's checkpoint is a real (tiny) one."""
    where = tmp_path_factory.mktemp("searched")
    checkpoint = fx.tiny_checkpoint(where / "checkpoint", metrics={"na_threshold": 0.0})
    config, study = config_file(where, n_trials=3, top_k=1), where / "s"
    assert main(["search", "--config", str(config), "--study", str(study)]) == OK
    shutil.rmtree(study / "trials" / "regular-0" / "checkpoint")
    checkpoint.rename(study / "trials" / "regular-0" / "checkpoint")
    with contextlib.closing(sqlite3.connect(study / "study.db")) as database:  # every page in study.db itself,
        database.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # as a search leaves it when it ends
    return config, study


@pytest.fixture
def study(searched, tmp_path) -> Path:
    copy = tmp_path / "s"
    shutil.copytree(searched[1], copy)
    return copy


def commands(study: Path, config: Path, tmp_path: Path) -> dict[str, list[str]]:
    return {
        "status": ["status", "--study", str(study)],
        "report": ["report", "--study", str(study), "--out", str(tmp_path / "report.html")],
        "export": ["export", "--study", str(study), "--trial", "0", "--out", str(tmp_path / "export")],
        "search": ["search", "--config", str(config), "--study", str(study)],
    }


def run(argv: list[str], capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = main(argv)
    return code, capsys.readouterr().err


def scribble(database: Path) -> None:
    """Random bytes over the middle of the file, as a failing disk or a stray ``dd`` leaves it."""
    size = database.stat().st_size
    with database.open("r+b") as handle:
        handle.seek(size // 2)
        handle.write(os.urandom(size // 4))


def truncate(database: Path) -> None:
    """The first part only, as a copy cut short or a full disk leaves it."""
    with database.open("r+b") as handle:
        handle.truncate(database.stat().st_size // 2)


@pytest.mark.parametrize("command", ["status", "report", "export", "search"])
@pytest.mark.parametrize("damage", [scribble, truncate], ids=["random bytes", "truncated"])
def test_a_damaged_study_db_is_one_line_from_every_command(study, searched, tmp_path, capsys, command, damage):
    damage(study / "study.db")
    before = (study / "study.db").read_bytes()
    code, err = run(commands(study, searched[0], tmp_path)[command], capsys)
    assert code == BAD_INPUT and one_line(err), err
    assert "study.db: cannot" in err and "the study database (DatabaseError:" in err, err
    assert (study / "study.db").read_bytes() == before  # nothing written over it
    assert not (tmp_path / "report.html").exists() and not (tmp_path / "export").exists()


MALFORMED_PARETO = {"a list": "[]", "not JSON": "{not json", "not UTF-8": "\xff"}


@pytest.mark.parametrize("command, pareto", [
    *((command, case) for command in ("status", "report", "export") for case in MALFORMED_PARETO),
    ("status", "a frontier that is not a list"),
])
def test_a_malformed_pareto_json_is_one_line(study, searched, tmp_path, capsys, command, pareto):
    """(``search`` does not read ``pareto.json``: it writes a new one when it ends.)"""
    pareto = MALFORMED_PARETO.get(pareto, '{"frontier": 5}')
    (study / "pareto.json").write_bytes(pareto.encode("latin-1"))
    code, err = run(commands(study, searched[0], tmp_path)[command], capsys)
    assert code == BAD_INPUT and one_line(err) and "pareto.json" in err, err


@contextlib.contextmanager
def read_only(folder: Path):
    """The folder as a read-only disk: a read-only bind mount where this test may mount (root),
    else its permissions taken away (root ignores those)."""
    if os.geteuid() != 0:
        modes = {path: path.stat().st_mode for path in [folder, *folder.rglob("*")]}
        for path in modes:
            path.chmod(modes[path] & ~0o222)
        try:
            yield folder
        finally:
            for path, mode in modes.items():
                path.chmod(mode)
        return
    mounted = folder.parent / f"{folder.name}-ro"
    mounted.mkdir()
    if subprocess.run(["mount", "--bind", "-o", "ro", str(folder), str(mounted)], capture_output=True).returncode:
        pytest.skip("cannot mount a read-only folder here")
    try:
        yield mounted
    finally:
        subprocess.run(["umount", "--lazy", str(mounted)], check=True)  # the readers' pools may hold the file


def test_a_study_on_a_read_only_disk_is_read_reported_and_exported(study, searched, tmp_path, capsys):
    with read_only(study) as frozen:
        assert (frozen / "study.db").exists()
        with pytest.raises(OSError):
            (frozen / "probe").write_text("")
        for command in ("status", "report", "export"):
            code, err = run(commands(frozen, searched[0], tmp_path)[command], capsys)
            assert code == OK, (command, err)
        code, err = run(commands(frozen, searched[0], tmp_path)["search"], capsys)
        assert code == BAD_INPUT and one_line(err) and "read-only" in err, err
    assert (tmp_path / "report.html").is_file() and (tmp_path / "export" / "export.json").is_file()
