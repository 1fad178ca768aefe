"""What the files ``export`` and ``report`` publish may say about paths.

What an export publishes names paths relative to the study or by their last part only: an absolute
path tells the world a user name and a machine's layout, and means nothing elsewhere. Where the
commands may write is ``paretodistill.outputs``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from paretodistill.outputs import resolved

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
        return resolved(path).relative_to(resolved(base)).as_posix() or "."
    except ValueError:
        return Path(path).name
