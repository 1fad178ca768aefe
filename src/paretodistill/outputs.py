"""Where a command may write: never over what it reads, into a model or a study, or over what paretodistill did not write.

One guard for every command that writes at a user-named path (``score``, ``predict``, ``evaluate``,
``export``, ``report``), checked before anything is read or computed. It refuses an output that

- is, holds or lies inside one of the command's inputs (paths compared with links, ``..`` and
  relative parts resolved, and by file identity, so a hard link counts too);
- is or lies inside a model folder (config.json beside weights) or a study folder (study.db,
  lock.json or pareto.json): a week of search or a shipped student is not a scratch folder;
- would replace something paretodistill did not write. Each command recognises its own earlier
  output by a marker it writes (``OutputKind.ours``): an export by its ``export.json``, a report by its
  generator tag, an evaluation by the tag in its metrics.json; ``score`` and ``predict`` write formats
  that others read (the official script's metrics, JSON lines of answers), so theirs are recognised by
  that format. ``--force`` replaces only such an output, never anything else.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from paretodistill.errors import ParetodistillError

EXPORT_FILE = "export.json"  # marks a folder as an export: the only folder export --force replaces
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # beside config.json: a model folder
STUDY_FILES = ("study.db", "lock.json", "pareto.json")  # search.domain.STUDY_DB, search.lock.HOLDER_FILE, the frontier
WRITTEN_BY = "written_by"  # the key of the tag paretodistill puts in a JSON record it writes at a user's --out
REPORT_GENERATOR = "paretodistill report"  # <meta name="generator" content=...> in every report
HTML_STARTS = ("<!doctype html", "<html")
PREDICTION_FIELDS = frozenset({"id", "text", "score", "no_answer", "na_score", "threshold", "best_span"})
SCORE_FIELDS = frozenset({"exact", "f1", "total"})  # the official script's metrics, all numbers

RELATIONS = ("is", "lies inside", "holds")  # how an output can stand to an input, closest first
Inputs = Mapping[str, "str | os.PathLike[str] | None"]


class OutputRefused(ParetodistillError):
    """An output path that would overwrite or delete what the command reads, a model, a study or a user's file."""


@dataclass(frozen=True)
class OutputKind:
    """What a command writes at its output path, and how its own earlier output there is recognised."""

    command: str  # "export", named in messages
    folder: bool  # writes a folder (export, evaluate) or one file (score, predict, report)
    what: str  # its output in words ("an export"), as messages name it
    marker: str  # how its own output is recognised, as messages say it ("holds export.json")
    ours: Callable[[Path], bool]  # paretodistill wrote what is at the path (checked only where something is)
    files: tuple[str, ...] = ()  # a folder output: the names it writes there; empty: it replaces the whole folder
    needs_force: bool = False  # replacing its own earlier output needs --force (export)


def written_by(command: str) -> dict[str, str]:
    """The tag that makes a JSON record recognisable as ``paretodistill <command>``'s own output."""
    return {WRITTEN_BY: f"paretodistill {command}"}


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_export(folder: Path) -> bool:
    return (folder / EXPORT_FILE).is_file()


def is_evaluation(folder: Path) -> bool:
    record = _read_json(folder / "metrics.json")
    return isinstance(record, dict) and record.get(WRITTEN_BY) == written_by("evaluate")[WRITTEN_BY]


def is_report(path: Path) -> bool:
    """An HTML page that carries the report's generator tag in its head."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(4096).decode("utf-8", errors="replace")
    except OSError:
        return False
    return (head.lstrip("\ufeff \t\r\n").lower().startswith(HTML_STARTS)
            and f'<meta name="generator" content="{REPORT_GENERATOR}">' in head)


def is_scores(path: Path) -> bool:
    """The official script's metrics object (``exact``, ``f1``, ``total``; every value a number), as ``score`` writes it."""
    record = _read_json(path)
    return (isinstance(record, dict) and SCORE_FIELDS <= set(record)
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in record.values()))


def is_prediction_lines(path: Path) -> bool:
    """JSON lines each of which is one of ``predict``'s answers (its fields exactly)."""
    try:
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        rows = [json.loads(line) for line in lines]
    except (OSError, ValueError):
        return False
    return bool(rows) and all(isinstance(row, dict) and set(row) == PREDICTION_FIELDS for row in rows)


EXPORT = OutputKind("export", folder=True, what="an export", marker=f"holds {EXPORT_FILE}", ours=is_export,
                    needs_force=True)
EVALUATION = OutputKind("evaluate", folder=True, what="an evaluation", marker=f'has a metrics.json tagged "{WRITTEN_BY}"',
                        ours=is_evaluation,
                        files=("metrics.json", "predictions.json", "best_span_predictions.json", "na_scores.json"))
REPORT = OutputKind("report", folder=False, what="a report",
                    marker=f'carries <meta name="generator" content="{REPORT_GENERATOR}">', ours=is_report)
SCORES = OutputKind("score", folder=False, what="a metrics file", marker="holds only numbers, exact, f1 and total among them",
                    ours=is_scores)
PREDICTIONS = OutputKind("predict", folder=False, what="predict's answers", marker="is JSON lines of answers",
                         ours=is_prediction_lines)


def resolved(path: str | os.PathLike[str]) -> Path:
    return Path(path).expanduser().resolve()


def _relation(out: Path, other: Path) -> str | None:
    """How ``out`` stands to ``other``: "is", "holds" or "lies inside" it, or None when apart."""
    try:
        if out.exists() and other.exists() and os.path.samefile(out, other):
            return "is"
    except OSError:
        pass
    a, b = resolved(out), resolved(other)
    if a == b:
        return "is"
    if a in b.parents:
        return "holds"
    if b in a.parents:
        return "lies inside"
    return None


def is_model_folder(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any((folder / name).is_file() for name in WEIGHT_FILES)


def guarded_kind(folder: Path) -> str | None:
    """What makes ``folder`` one that no command writes into: a model folder or a study folder."""
    if not folder.is_dir():
        return None
    if is_model_folder(folder):
        return "a model folder (config.json and weights)"
    found = [name for name in STUDY_FILES if (folder / name).exists()]
    return f"a study folder ({', '.join(found)})" if found else None


def check_output(out: str | os.PathLike[str], kind: OutputKind, inputs: Inputs, force: bool = False,
                 home: str | os.PathLike[str] | None = None, flag: str = "--out") -> None:
    """Refuse ``out`` (one line, exit 2) unless ``kind``'s command may write there; see the module docstring.

    ``inputs`` maps what each input is ("the data file") to its path (None: not given; one that does
    not exist, such as a hub id, cannot be written over). ``home`` is
    a folder the output may lie inside though it is a study (the report's own study); the output
    must still not be it or hold it. ``force``: replace the command's own earlier output where that
    needs it (export).
    """
    out = Path(out)
    _check_type(out, kind, flag)
    relation = None if home is None else _relation(out, Path(home))
    if relation in ("is", "holds"):
        raise OutputRefused(f"{flag} {out} {relation} the study {home}; name {kind.what} beside it or inside it, "
                            f"e.g. {Path(home) / 'report.html'}")
    clashes = [(RELATIONS.index(how), order, how, what, path) for order, (what, path) in enumerate(inputs.items())
               if path is not None and Path(path).exists() and (how := _relation(out, Path(path))) is not None]
    if clashes:  # the closest: "is the checkpoint" before "lies inside the study"
        _, _, relation, what, path = min(clashes)
        raise OutputRefused(f"{flag} {out} {relation} {what} ({path}), which paretodistill {kind.command} reads; "
                            "it never writes over its inputs: name a path outside it")
    _check_not_inside_guarded(out, flag, None if home is None else resolved(home))
    _check_replaceable(out, kind, force, flag)


def _check_type(out: Path, kind: OutputKind, flag: str) -> None:
    if kind.folder and out.exists() and not out.is_dir():
        raise OutputRefused(f"{flag} {out} is a file; {kind.command} writes a folder: name a new folder or "
                            f"{kind.what} it wrote earlier")
    if not kind.folder and out.is_dir():
        raise OutputRefused(f"{flag} {out} is a folder; {kind.command} writes one file: name a new file")


def _check_not_inside_guarded(out: Path, flag: str, home: Path | None) -> None:
    """No output inside a model or a study folder (``home`` excepted); the nearest one is named."""
    for folder in resolved(out).parents:
        if folder == home:
            continue
        what = guarded_kind(folder)
        if what is not None:
            raise OutputRefused(f"{flag} {out} lies inside {folder}, {what}; paretodistill never writes into one: "
                                "name a path outside it")


def _check_replaceable(out: Path, kind: OutputKind, force: bool, flag: str) -> None:
    """Only the command's own earlier output is replaced (with ``force`` where it needs it); nothing else ever."""
    if not out.exists() or (out.is_file() and out.stat().st_size == 0) or (out.is_dir() and not any(out.iterdir())):
        return  # new, or empty: nothing is lost
    ours = kind.ours(out)
    if kind.folder and not ours and guarded_kind(out) is not None:
        raise OutputRefused(f"{flag} {out} is {guarded_kind(out)}; paretodistill {kind.command} never writes into one: "
                            "name a new folder")
    if kind.folder and kind.files:
        replaced = [name for name in kind.files if (out / name).exists()]
    else:
        replaced = sorted(p.name for p in out.iterdir()) if kind.folder else [out.name]
    if not replaced:
        return
    if not ours:
        shown = ", ".join(replaced[:5]) + (" ..." if len(replaced) > 5 else "")
        held = f"holds files that are not {kind.what} ({shown}; " if kind.folder else f"exists and is not {kind.what} ("
        raise OutputRefused(f"{flag} {out} {held}{kind.command}'s own {kind.marker}); paretodistill {kind.command} "
                            f"never replaces what it did not write{', even with --force' if kind.needs_force else ''}: "
                            f"choose another {flag}")
    if kind.needs_force and not force:
        raise OutputRefused(f"{out} holds an earlier {kind.command}; pass --force to replace it")


def file_mode(directory: bool = False) -> int:
    """The mode a new file (or folder) gets under the process's umask: what a user expects of published files."""
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


def normal_permissions(folder: Path) -> None:
    """Give ``folder`` and everything in it the umask's modes (a temporary folder is private: 0700)."""
    os.chmod(folder, file_mode(directory=True))
    for root, directories, files in os.walk(folder):
        for name in directories:
            os.chmod(Path(root) / name, file_mode(directory=True))
        for name in files:
            path = Path(root) / name
            if not path.is_symlink():
                os.chmod(path, file_mode())
