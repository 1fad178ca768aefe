"""Assembling the three data parts a run needs: train, validation and test, as examples and features.

The file that is split (the SQuAD 2.0 dev set here) gives validation and test articles and,
optionally, training articles; other files only add training articles. Unanswerable questions
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


def held_out_parts(settings: DataSettings, source: SquadData) -> tuple[ArticleSplit, SquadData, SquadData]:
    """The split of ``source`` and its validation and test parts, as every run of these settings
    scores them (also read before a search's first trial: what its metrics can measure)."""
    split = split_by_article(source, dict(zip(("train", "validation", "test"), settings.fractions)), settings.split_seed)
    if settings.max_eval_articles:
        # A quick run scores only the first N held-out articles; the split records exactly those.
        split = dataclasses.replace(split, validation=split.validation[: settings.max_eval_articles],
                                    test=split.test[: settings.max_eval_articles])
    return split, split.select(source, "validation"), split.select(source, "test")


def prepare_data(settings: DataSettings, tokenizer, cache_dir=None, log=print,
                 exclude_titles: Collection[str] = ()) -> PreparedData:
    """Read, split, tokenize (through the cache) and oversample; everything a training run needs.

    ``exclude_titles`` are extra-file articles to leave out before sampling: a distillation run
    passes its teacher's training articles when ``unseen_by_teacher`` asks for a transfer set the
    teacher never saw.
    """
    if settings.split_train_repeats < 1:
        raise ConfigError(f"split_train_repeats must be at least 1, got {settings.split_train_repeats}")
    source = load_squad(settings.split_file)
    split, validation, test = held_out_parts(settings, source)

    extra_parts = [load_squad(path) for path in settings.extra_train_files]
    extra = combine(extra_parts) if extra_parts else None
    left_out: set[str] = set()
    hard_kinds: dict[str, int] = {}
    if extra is not None:
        held_out = set(split.validation) | set(split.test)
        leaked = held_out & set(extra.titles)
        if leaked:
            raise ConfigError(f"training files contain held-out articles {sorted(leaked)[:5]}: remove them")
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

    parts = ([split.select(source, "train")] if settings.use_split_train else []) + ([extra] if extra else [])
    if not parts:
        raise ConfigError("no training data: give extra training files or use the split's train articles")
    train = combine(parts)
    if settings.max_train_questions is not None and settings.max_train_questions < len(train.examples):
        kept = train.examples[: settings.max_train_questions]
        titles = {example.title for example in kept}
        articles = tuple(a for a in train.articles if a["title"] in titles)
        train = dataclasses.replace(train, examples=kept, articles=articles)

    features = settings.features
    log(f"tokenizing {len(train.examples)} training questions (cached after the first run)")
    train_features = cached_features(train.examples, tokenizer, features, cache_dir)
    if settings.use_split_train and settings.split_train_repeats > 1:
        train_features = _repeat_titles(train, train_features, set(split.train), settings.split_train_repeats)
    validation_features = cached_features(validation.examples, tokenizer, features, cache_dir)
    test_features = cached_features(test.examples, tokenizer, features, cache_dir)

    summary = {
        "split_file": settings.split_file,
        "extra_train_files": list(settings.extra_train_files),
        "split_seed": settings.split_seed,
        "train": {**question_counts(train), "features": len(train_features)},
        "validation": {**question_counts(validation), "features": len(validation_features)},
        "test": {**question_counts(test), "features": len(test_features)},
        "split_train_repeats": settings.split_train_repeats,
        "max_extra_articles": settings.max_extra_articles,
        "synthetic_unanswerable_fraction": settings.synthetic_unanswerable_fraction,
        "hard_unanswerable_fraction": settings.hard_unanswerable_fraction,
        "hard_unanswerable_kinds": dict(sorted(hard_kinds.items())),
        "teacher_articles_left_out": len(left_out),
        "feature_settings": asdict(features),
    }
    return PreparedData(split, train, train_features, validation, validation_features, test, test_features, summary)


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
