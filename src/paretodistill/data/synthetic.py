"""Synthetic unanswerable questions from answerable ones, for training only.

SQuAD 2.0's unanswerable questions are scarce outside its own train set (not available here), and
a model trained on too few of them never learns when to say "no answer". A cheap source: ask an
answerable SQuAD 1.1 question about a *different* paragraph of the same article, one that does
not contain any of its answers. Same topic, same vocabulary, no answer: the CLS token is the
target. These negatives are easier than SQuAD 2.0's adversarial ones (written against the very
paragraph), so they complement the real unanswerable questions rather than replace them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
from collections import defaultdict

from paretodistill.data.squad import Example, SquadData
from paretodistill.errors import ConfigError

SYNTHETIC_ID_SUFFIX = "-synthetic-unanswerable"


def synthetic_unanswerables(data: SquadData, fraction: float, seed: int) -> list[Example]:
    """About ``fraction`` x (answerable questions) new unanswerable examples, seeded.

    Each chosen question is paired with a random other paragraph of its article that contains
    none of its answer texts (case-insensitively); a question whose article has no such paragraph
    is skipped, so the count can come out a little lower than asked.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ConfigError(f"synthetic_unanswerable_fraction must be in [0, 1], got {fraction}")
    if fraction == 0.0:
        return []
    # Each article's distinct paragraphs, in order, with their lower-cased text for the answer check.
    paragraphs_by_title: dict[str, dict[str, str]] = defaultdict(dict)
    for example in data.examples:
        paragraphs_by_title[example.title].setdefault(example.context, example.context.lower())
    rng = random.Random(seed)
    answerable = [e for e in data.examples if not e.is_impossible]
    chosen = rng.sample(answerable, round(fraction * len(answerable)))
    made = []
    for example in chosen:
        answers = [a.text.lower() for a in example.answers]
        others = [
            context for context, lowered in paragraphs_by_title[example.title].items()
            if context != example.context and not any(answer in lowered for answer in answers)
        ]
        if not others:
            continue
        made.append(Example(
            id=example.id + SYNTHETIC_ID_SUFFIX,
            title=example.title,
            context=rng.choice(others),
            question=example.question,
            answers=(),
            is_impossible=True,
        ))
    return made


def with_synthetic_unanswerables(data: SquadData, fraction: float, seed: int) -> SquadData:
    """``data`` plus its synthetic unanswerable examples (training use: articles are left as they were)."""
    extra = synthetic_unanswerables(data, fraction, seed)
    if not extra:
        return data
    fingerprint = hashlib.sha256(f"{data.fingerprint}|synthetic|{fraction}|{seed}".encode()).hexdigest()
    return dataclasses.replace(data, examples=data.examples + tuple(extra), version="v2.0", fingerprint=fingerprint)
