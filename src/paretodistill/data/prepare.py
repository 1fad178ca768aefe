"""Assembling the three data parts a run needs: train, validation and test, as examples and features.

The file that is split (the SQuAD 2.0 dev set here) gives validation and test articles and,
optionally, training articles; other files only add training articles. A user's own validation
and test files replace the split's parts (``layout.py`` has the rules). Unanswerable questions
are rare in the extra files, so the split's training articles can be repeated
(``split_train_repeats``) and the extra files can be given synthetic unanswerable questions
(``synthetic_unanswerable_fraction``, see ``synthetic.py``) to keep the no-answer decision from
being starved.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Collection
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from paretodistill.config import DataSettings
from paretodistill.data.features import Features, cached_features
from paretodistill.data.hard_negatives import with_hard_unanswerables
from paretodistill.data.layout import check_disjoint, check_layout, given_parts, load_given_part, split_shares
from paretodistill.data.splits import ArticleSplit, split_by_article
from paretodistill.data.squad import SquadData, combine, load_squad
from paretodistill.data.synthetic import with_synthetic_unanswerables
from paretodistill.errors import ConfigError


@dataclass
class PreparedData:
    split: ArticleSplit
    train: SquadData
    train_features: Features
    validation: SquadData
    validation_features: Features
    test: SquadData
    test_features: Features
    summary: dict


def question_counts(data: SquadData) -> dict[str, int]:
    impossible = sum(e.is_impossible for e in data.examples)
    return {
        "articles": len(data.articles),
        "questions": len(data.examples),
        "answerable": len(data.examples) - impossible,
        "unanswerable": impossible,
    }


@dataclass
class Parts:
    """The three parts as questions, before tokenizing (:func:`select_parts`)."""

    split: ArticleSplit
    train: SquadData
    validation: SquadData
    test: SquadData
    teacher_articles_left_out: int
    hard_kinds: dict[str, int]


def select_parts(settings: DataSettings, exclude_titles: Collection[str] = (), log=print) -> Parts:
    """Read the files and make the train, validation and test parts the settings describe.

    ``exclude_titles`` are extra-file articles to leave out before sampling: a distillation run
    passes its teacher's training articles when ``unseen_by_teacher`` asks for a transfer set the
    teacher never saw.
    """
    if settings.split_train_repeats < 1:
        raise ConfigError(f"split_train_repeats must be at least 1, got {settings.split_train_repeats}")
    check_layout(settings)
    split, held_out, split_train = held_out_parts(settings)
    extra = _extra_training(settings)
    training = [data for data in (split_train, extra) if data is not None]
    check_disjoint({"training": combine(training), **held_out} if training else held_out)
    extra, left_out, hard_kinds = _shaped_extra(settings, extra, exclude_titles, log)
    parts = ([split_train] if split_train is not None and settings.use_split_train else []) + ([extra] if extra else [])
    if not parts:
        raise ConfigError("no training data: give extra training files or use the split's train articles")
    train = combine(parts)
    if settings.max_train_questions is not None and settings.max_train_questions < len(train.examples):
        kept = train.examples[: settings.max_train_questions]
        titles = {example.title for example in kept}
        articles = tuple(a for a in train.articles if a["title"] in titles)
        train = dataclasses.replace(train, examples=kept, articles=articles)
    return Parts(split, train, held_out["validation"], held_out["test"], len(left_out), hard_kinds)


def prepare_data(settings: DataSettings, tokenizer, cache_dir=None, log=print,
                 exclude_titles: Collection[str] = ()) -> PreparedData:
    """Read, split, tokenize (through the cache) and oversample; everything a training run needs
    (``exclude_titles``: see :func:`select_parts`)."""
    parts = select_parts(settings, exclude_titles, log)
    split, train, validation, test = parts.split, parts.train, parts.validation, parts.test
    log(f"tokenizing {len(train.examples)} training questions (cached after the first run)")
    train_features = cached_features(train.examples, tokenizer, settings.features, cache_dir, log)
    if settings.use_split_train and settings.split_train_repeats > 1:
        train_features = _repeat_titles(train, train_features, set(split.train), settings.split_train_repeats)
    validation_features = cached_features(validation.examples, tokenizer, settings.features, cache_dir, log)
    test_features = cached_features(test.examples, tokenizer, settings.features, cache_dir, log)
    counts = {"train": {**question_counts(train), "features": len(train_features)},
              "validation": {**question_counts(validation), "features": len(validation_features)},
              "test": {**question_counts(test), "features": len(test_features)}}
    summary = _summary(settings, counts, parts.hard_kinds, parts.teacher_articles_left_out)
    return PreparedData(split, train, train_features, validation, validation_features, test, test_features, summary)


def held_out_parts(settings: DataSettings) -> tuple[ArticleSplit, dict[str, SquadData], SquadData | None]:
    """The split (with the given parts' files and titles), the validation and test data, and the
    split file's train articles (None without a split file); also read before a search's first trial:
    what its metrics can measure (``search.preflight``)."""
    given = given_parts(settings)
    files = {part: load_given_part(paths, part) for part, paths in given.items()}
    if settings.split_file:
        source = load_squad(settings.split_file)
        split = split_by_article(source, split_shares(settings.fractions, given), settings.split_seed)
    else:
        source = None
        split = ArticleSplit(source="", source_fingerprint="", seed=settings.split_seed, fractions={},
                             train=(), validation=(), test=())
    split = dataclasses.replace(split, files={part: tuple(paths) for part, paths in given.items()},
                                **{part: tuple(dict.fromkeys(data.titles)) for part, data in files.items()})
    if settings.max_eval_articles:
        # A quick run scores only the first N held-out articles; the split records exactly those.
        split = dataclasses.replace(split, validation=split.validation[: settings.max_eval_articles],
                                    test=split.test[: settings.max_eval_articles])

    def part_data(part: str) -> SquadData:
        return files[part].select_titles(split.titles(part)) if part in files else split.select(source, part)

    split_train = split.select(source, "train") if source is not None and split.train else None
    return split, {"validation": part_data("validation"), "test": part_data("test")}, split_train


def _extra_training(settings: DataSettings) -> SquadData | None:
    extra_parts = [load_squad(path, "train") for path in settings.extra_train_files]
    return combine(extra_parts) if extra_parts else None


def _shaped_extra(settings: DataSettings, extra: SquadData | None, exclude_titles: Collection[str],
                  log) -> tuple[SquadData | None, set[str], dict[str, int]]:
    """The extra training files without the teacher's articles, sampled, with the unanswerable
    questions the settings ask for; the articles left out and the kinds of hard questions made."""
    if extra is None:
        return None, set(), {}
    hard_kinds: dict[str, int] = {}
    left_out = set(exclude_titles) & set(extra.titles)
    if left_out:
        if len(left_out) == len(extra.titles):
            raise ConfigError("every article of the extra training files is one the teacher trained on")
        log(f"extra training files: {len(left_out)} articles the teacher trained on left out")
        extra = extra.select_titles([title for title in extra.titles if title not in left_out])
    if settings.max_extra_articles is not None and settings.max_extra_articles < len(extra.titles):
        extra = extra.select_titles(_sample_articles(extra, settings.max_extra_articles, settings.split_seed))
    if settings.synthetic_unanswerable_fraction:
        extra = with_synthetic_unanswerables(extra, settings.synthetic_unanswerable_fraction, settings.split_seed)
    if settings.hard_unanswerable_fraction:
        # only answerable questions are edited, so the synthetic ones above are never edited again
        extra, hard_kinds = with_hard_unanswerables(extra, settings.hard_unanswerable_fraction, settings.split_seed)
    return extra, left_out, hard_kinds


def _summary(settings: DataSettings, counts: dict, hard_kinds: dict[str, int], teacher_articles_left_out: int) -> dict:
    """What a run's data was, as recorded with its results (the given parts' files only when given)."""
    return {
        "split_file": settings.split_file,
        "extra_train_files": list(settings.extra_train_files),
        **{name: list(files) for name, files in (("validation_files", settings.validation_files),
                                                 ("test_files", settings.test_files)) if files},
        "split_seed": settings.split_seed,
        **counts,
        "split_train_repeats": settings.split_train_repeats,
        "max_extra_articles": settings.max_extra_articles,
        "synthetic_unanswerable_fraction": settings.synthetic_unanswerable_fraction,
        "hard_unanswerable_fraction": settings.hard_unanswerable_fraction,
        "hard_unanswerable_kinds": dict(sorted(hard_kinds.items())),
        "teacher_articles_left_out": teacher_articles_left_out,
        "feature_settings": asdict(settings.features),
    }


TRAIN_TITLES_FILE = "train_titles.json"  # beside a trained model: the articles it was trained on


def save_train_titles(data: PreparedData, folder: str | Path) -> None:
    """Record the training articles, so a later distillation can pick a transfer set the model never saw."""
    Path(folder, TRAIN_TITLES_FILE).write_text(json.dumps(data.train.titles, indent=0))


def load_train_titles(folder: str | Path) -> list[str]:
    """The training articles recorded beside a model; a clear error when it recorded none."""
    path = Path(folder, TRAIN_TITLES_FILE)
    if not path.exists():
        raise ConfigError(f"{folder} does not record its training articles ({TRAIN_TITLES_FILE}): "
                          "data.unseen_by_teacher needs a teacher that `paretodistill teacher` trained")
    titles = json.loads(path.read_text())
    if not isinstance(titles, list) or not all(isinstance(t, str) for t in titles):
        raise ConfigError(f"{path}: expected a JSON list of article titles")
    return titles


def _sample_articles(data: SquadData, count: int, seed: int) -> list[str]:
    """A seeded sample of ``count`` article titles that always keeps the articles with unanswerable
    questions (the scarce kind); the rest are drawn at random from the answerable-only articles."""
    with_unanswerable = list(dict.fromkeys(e.title for e in data.examples if e.is_impossible))
    if len(with_unanswerable) >= count:
        return with_unanswerable[:count]
    kept = set(with_unanswerable)
    others = [title for title in data.titles if title not in kept]
    return with_unanswerable + random.Random(seed).sample(others, count - len(with_unanswerable))


def _repeat_titles(data: SquadData, features: Features, titles: set[str], repeats: int) -> Features:
    """Windows of the given articles ``repeats`` times, the others once."""
    in_titles = np.array([data.examples[int(i)].title in titles for i in features.example_index])
    indices = np.concatenate([np.arange(len(features))] + [np.flatnonzero(in_titles)] * (repeats - 1))
    return features.take(indices)
