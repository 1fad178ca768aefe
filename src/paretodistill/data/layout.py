"""Which files make the train, validation and test parts of a run, and the rules a layout must meet.

Data comes as users hold it: one SQuAD file to cut by article (``data.split_file``), or their
own validation and test files (``data.validation_files``, ``data.test_files``), with training
files beside either (``data.extra_train_files``). A part given as files IS that part; the split
file is then cut only into the parts that were not given, in the shares of ``data.fractions``
(both given: every article of the split file trains). Every impossible combination is one line
before anything is tokenized, and no article title may be in two parts: its questions share
paragraphs, so one in training and one in test would leak the answer.
"""

from __future__ import annotations

from paretodistill.config import DataSettings
from paretodistill.data.splits import PARTS
from paretodistill.data.squad import SquadData, combine, load_squad
from paretodistill.errors import ConfigError

GIVEN_PARTS = {"validation": "validation_files", "test": "test_files"}  # part -> the DataSettings field of its files
FLAGS = {"validation": "--validation FILE", "test": "--test FILE"}


def given_parts(settings: DataSettings) -> dict[str, tuple[str, ...]]:
    """The parts the user gave as files, with those files."""
    return {part: getattr(settings, name) for part, name in GIVEN_PARTS.items() if getattr(settings, name)}


def check_layout(settings: DataSettings) -> None:
    """One line for a layout that cannot make a train, a validation and a test part."""
    given = given_parts(settings)
    missing = [part for part in GIVEN_PARTS if part not in given]
    if not settings.split_file:
        if missing:
            raise ConfigError(f"no {' or '.join(missing)} data: give --data FILE to split by article, or "
                              f"{' and '.join(FLAGS[part] for part in missing)}")
        if not settings.extra_train_files:
            raise ConfigError("no training data: give --train FILE, or --data FILE (whose articles then train)")
        return
    if not missing and not settings.use_split_train and not settings.extra_train_files:
        raise ConfigError(f"no training data: with validation and test files given, {settings.split_file} "
                          "only trains, and data.use_split_train is false")
    split_shares(settings.fractions, given)  # the split file must have a part to go to


def split_shares(fractions: tuple[float, float, float], given) -> dict[str, float]:
    """The shares of the split file's articles: ``fractions``, with the given parts' shares moved
    pro rata to the others (unchanged when no part is given)."""
    shares = {part: 0.0 if part in given else float(share) for part, share in zip(PARTS, fractions)}
    if not given:
        return shares
    total = sum(shares.values())
    if total <= 0:
        raise ConfigError(f"data.fractions {list(fractions)} give the split file's articles to no part that is "
                          f"not given as files ({', '.join(given)})")
    return {part: share / total for part, share in shares.items()}


def load_given_part(files: tuple[str, ...], part: str) -> SquadData:
    """The user's files of one part as one dataset; a title or an id in two of them is an error
    (combining would drop the second copy, or score two questions under one id)."""
    datasets = [load_squad(path, part) for path in files]
    for name, values in (("article title", lambda d: set(d.titles)), ("question id", lambda d: {e.id for e in d.examples})):
        seen: dict[str, str] = {}
        for data in datasets:
            for value in sorted(values(data)):
                if value in seen and seen[value] != data.source:
                    raise ConfigError(f"{part} files: {name} {value!r} is in both {seen[value]} and {data.source}")
                seen.setdefault(value, data.source)
    return combine(datasets)


def check_disjoint(parts: dict[str, SquadData]) -> None:
    """Refuse an article title in two parts: it would be trained on and scored, or scored twice."""
    names = list(parts)
    for index, first in enumerate(names):
        for second in names[index + 1:]:
            shared = sorted(set(parts[first].titles) & set(parts[second].titles))
            if shared:
                raise ConfigError(
                    f"article {shared[0]!r}{f' (and {len(shared) - 1} more)' if len(shared) > 1 else ''} is in both "
                    f"the {first} data ({parts[first].source}) and the {second} data ({parts[second].source}): "
                    "an article must be in one part only, or its questions leak; remove it from one"
                )
