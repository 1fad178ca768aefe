"""Article-disjoint train / validation / test splits of one SQuAD file.

Questions about the same article share its paragraphs, so a split by question leaks the test
contexts into training. Splits here are by article title, seeded and deterministic, and the
``ArticleSplit`` is written next to every result that used it. A part a user gave as files of its
own (``data/layout.py``) is recorded in ``files``: its titles are that part, not the split file's.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

from paretodistill.data.squad import SquadData, combine, load_squad
from paretodistill.errors import ConfigError

PARTS = ("train", "validation", "test")


@dataclass(frozen=True)
class ArticleSplit:
    """Which articles of a source file are in which part, and how that was decided."""

    source: str
    source_fingerprint: str
    seed: int
    fractions: dict[str, float]
    train: tuple[str, ...]
    validation: tuple[str, ...]
    test: tuple[str, ...]
    files: dict[str, tuple[str, ...]] = field(default_factory=dict)  # part -> the user's files that are that part

    def titles(self, part: str) -> tuple[str, ...]:
        if part not in PARTS:
            raise ConfigError(f"unknown split part {part!r}; expected one of {PARTS}")
        return getattr(self, part)

    def select(self, data: SquadData, part: str) -> SquadData:
        """The examples of ``data`` in one part; refuses a file other than the one split."""
        if part in self.files:
            raise ConfigError(f"the {part} part is not a part of a split file: it was given as "
                              f"{', '.join(self.files[part])}; read that file instead of selecting --part {part}")
        if data.fingerprint != self.source_fingerprint:
            raise ConfigError(
                f"the split was made from {self.source} (sha256 {self.source_fingerprint[:12]}), "
                f"not from {data.source} (sha256 {data.fingerprint[:12]})"
            )
        return data.select_titles(self.titles(part))

    def to_dict(self) -> dict:
        values = asdict(self)
        if not self.files:
            del values["files"]  # a plain split records what it always did
        return values

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")

    @classmethod
    def from_dict(cls, values: dict) -> "ArticleSplit":
        files = {part: tuple(paths) for part, paths in values.get("files", {}).items()}
        return cls(**{**values, **{part: tuple(values[part]) for part in PARTS}, "files": files})

    @classmethod
    def load(cls, path: str | Path) -> "ArticleSplit":
        return cls.from_dict(json.loads(Path(path).read_text()))


def split_by_article(
    data: SquadData, fractions: dict[str, float] | None = None, seed: int = 13
) -> ArticleSplit:
    """Shuffle the article titles with ``seed`` and cut them into parts of the given fractions.

    Validation and test get ``round(fraction * articles)`` articles each (at least one when the
    fraction is positive); train gets the rest.
    """
    fractions = dict(fractions or {"train": 0.6, "validation": 0.2, "test": 0.2})
    if set(fractions) != set(PARTS):
        raise ConfigError(f"split fractions must name exactly {PARTS}, got {sorted(fractions)}")
    if any(value < 0 for value in fractions.values()) or abs(sum(fractions.values()) - 1.0) > 1e-6:
        raise ConfigError(f"split fractions must be non-negative and sum to 1, got {fractions}")
    titles = list(dict.fromkeys(data.titles))
    random.Random(seed).shuffle(titles)
    sizes = {
        part: max(1, round(fractions[part] * len(titles))) if fractions[part] > 0 else 0
        for part in ("validation", "test")
    }
    if sizes["validation"] + sizes["test"] >= len(titles) and fractions["train"] > 0:
        raise ConfigError(
            f"{data.source} has {len(titles)} articles: too few for a train part after "
            f"{sizes['validation']} validation and {sizes['test']} test articles"
        )
    validation = titles[: sizes["validation"]]
    test = titles[sizes["validation"] : sizes["validation"] + sizes["test"]]
    train = titles[sizes["validation"] + sizes["test"] :]
    return ArticleSplit(
        source=data.source,
        source_fingerprint=data.fingerprint,
        seed=seed,
        fractions=fractions,
        train=tuple(train),
        validation=tuple(validation),
        test=tuple(test),
    )


def read_part(split: ArticleSplit, part: str, data_file: str | None = None) -> SquadData:
    """The questions of one part as the run had them: from the user's files of that part when the
    split records some, else selected from ``data_file`` (default: the split's source)."""
    if part in split.files:
        return combine([load_squad(path, part) for path in split.files[part]]).select_titles(split.titles(part))
    return split.select(load_squad(data_file or split.source), part)


def load_part(data_file: str, part: str = "all", split_file: str | None = None, model_dir: str | None = None) -> SquadData:
    """The data (or one split part of it) a model is run on; the split defaults to the model's split.json."""
    data = load_squad(data_file)
    if part == "all":
        return data
    split_path = Path(split_file) if split_file else (Path(model_dir) / "split.json" if model_dir else None)
    if split_path is None or not split_path.exists():
        raise ConfigError(f"--part {part} needs a split: {split_path} does not exist (pass --split)")
    return ArticleSplit.load(split_path).select(data, part)
