"""Where ``export`` and ``report`` may write, and what their published files may say about paths.

A week of search lives in one study folder, so an ``--out`` that is, holds or lies inside what the
command reads (the study, the trial's checkpoint) is refused before anything is written: with
``export --force`` it would be deleted. A report is one HTML file and may sit in the study folder
(the usual place), but never over a file that is not an earlier report (``study.db``).

What an export publishes names paths relative to the study or by their last part only: an
absolute path tells the world a user name and a machine's layout, and means nothing elsewhere.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from paretodistill.errors import ParetodistillError

HTML_STARTS = ("<!doctype html", "<html")
EXPORT_FILE = "export.json"  # marks a folder as an export: the only kind export --force replaces


class OutputRefused(ParetodistillError):
    """An ``--out`` that would overwrite or delete what the command reads."""


def _resolved(path: str | Path) -> Path:
    return Path(path).expanduser().resolve()


def overlaps(first: str | Path, second: str | Path) -> bool:
    """Whether one folder is the other or lies inside it (links followed, so a link to the study counts)."""
    a, b = _resolved(first), _resolved(second)
    return a == b or a in b.parents or b in a.parents


def check_export_out(out: Path, protected: dict[str, Path]) -> None:
    """Refuse an export folder that is a file, or is, holds or lies inside a protected folder.

    ``protected`` maps what a folder is ("the study", "the trial's checkpoint") to its path.
    """
    if out.exists() and not out.is_dir():
        raise OutputRefused(f"--out {out} is a file; export writes a folder: name a new or an earlier export folder")
    for what, path in protected.items():
        if overlaps(out, path):
            raise OutputRefused(f"--out {out} is, holds or lies inside {what} ({path}); "
                                "export to a folder outside it")


def check_report_out(out: Path, study: Path) -> None:
    """Refuse a report file that is or holds the study, is a folder, or would replace a file that is not HTML."""
    if _resolved(out) == _resolved(study) or _resolved(out) in _resolved(study).parents:
        raise OutputRefused(f"--out {out} is or holds the study {study}; name an HTML file, e.g. {study}/report.html")
    if out.is_dir():
        raise OutputRefused(f"--out {out} is a folder; name an HTML file, e.g. {out}/report.html")
    if out.exists() and not is_html_file(out):
        raise OutputRefused(f"--out {out} exists and is not an HTML report; the report never replaces another "
                            "file (name a new file, e.g. report.html)")


def is_html_file(path: Path) -> bool:
    """Whether a file starts as an HTML document does (the report's own first line is ``<!DOCTYPE html>``)."""
    with open(path, "rb") as handle:
        start = handle.read(64).decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n").lower()
    return start.startswith(HTML_STARTS)


# An absolute POSIX, home-relative or Windows path inside any text: its last part is kept.
_ABSOLUTE_PATH = re.compile(
    r"(?<![\w.:/\\~-])(?:/|~/|[A-Za-z]:[\\/])(?:[^\s\"'`|,;+()\[\]{}<>\\/]+[\\/])*([^\s\"'`|,;+()\[\]{}<>\\/]+)[\\/]?")


def public_text(text: str) -> str:
    """``text`` with every absolute path replaced by its last part (``/home/ann/data/dev.json`` -> ``dev.json``)."""
    return _ABSOLUTE_PATH.sub(lambda match: match.group(1), text)


def public(value: Any) -> Any:
    """A JSON-like value with :func:`public_text` applied to every string in it, keys included."""
    if isinstance(value, str):
        return public_text(value)
    if isinstance(value, dict):
        return {public(k) if isinstance(k, str) else k: public(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [public(v) for v in value]
    return value


def relative_name(path: str | Path, base: str | Path) -> str:
    """``path`` relative to ``base`` when it lies inside it, else its last part."""
    try:
        return _resolved(path).relative_to(_resolved(base)).as_posix() or "."
    except ValueError:
        return Path(path).name
