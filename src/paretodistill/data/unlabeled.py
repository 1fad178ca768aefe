"""Unlabeled text for task-agnostic distillation: paragraphs of SQuAD articles, as token sequences.

The text is the contexts of SQuAD-format files (the SQuAD 1.1 train articles here); questions
and answers are ignored. Every article of the file the evaluation split is cut from is left out,
by title and by paragraph text, whatever the split's seed or fractions, so no validation or test
paragraph is ever read. A paragraph becomes one sequence ``[CLS] tokens [SEP]``; a longer one is
cut into several. Sequences are :class:`Features` (start and end positions 0), so the training
loop batches them by length as it does QA windows.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from paretodistill.data.features import Features
from paretodistill.data.squad import load_squad
from paretodistill.errors import ConfigError

MIN_TOKENS = 8  # a tail shorter than this after cutting a long paragraph is dropped: too little to mask


@dataclass(frozen=True)
class Paragraphs:
    """The training and held-out paragraphs, and what was left out."""

    train: tuple[str, ...]
    heldout: tuple[str, ...]
    articles: int  # articles the paragraphs come from
    left_out_articles: tuple[str, ...]  # titles of the text files that are evaluation-file articles
    left_out_paragraphs: int  # paragraphs left out (their article, or their text, is in the evaluation file)


def unlabeled_paragraphs(
    text_files: Sequence[str], evaluation_file: str | Sequence[str], *, max_paragraphs: int | None = None,
    heldout: int = 0, seed: int = 13,
) -> Paragraphs:
    """The unique paragraphs of ``text_files`` that no article of the evaluation file(s) holds (the
    split file, and a user's own validation and test files).

    ``heldout`` paragraphs (a seeded sample) are set aside for measuring; ``max_paragraphs`` keeps
    a seeded sample of the rest (quick runs).
    """
    if not text_files:
        raise ConfigError("no text: give pretrain.text_files (SQuAD-format files whose paragraphs are the text)")
    files = [evaluation_file] if isinstance(evaluation_file, str) else list(evaluation_file)
    evaluation = [article for path in files for article in load_squad(path).articles]
    held_titles = {article["title"] for article in evaluation}
    held_contexts = {paragraph["context"] for article in evaluation for paragraph in article["paragraphs"]}
    return _select(_articles(text_files), held_titles, held_contexts, max_paragraphs, heldout, seed)


def _articles(text_files: Sequence[str]) -> list[dict]:
    return [article for path in text_files for article in load_squad(path).articles]


def _select(articles: list[dict], held_titles: Collection[str], held_contexts: Collection[str],
            max_paragraphs: int | None, heldout: int, seed: int) -> Paragraphs:
    kept: dict[str, None] = {}  # unique paragraphs, in file order
    left_out_titles: list[str] = []
    left_out = 0
    titles = set()
    for article in articles:
        if article["title"] in held_titles:
            left_out_titles.append(article["title"])
            left_out += len(article["paragraphs"])
            continue
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            if context in held_contexts:
                left_out += 1
                continue
            kept.setdefault(context)
            titles.add(article["title"])
    paragraphs = list(kept)
    if len(paragraphs) <= heldout:
        raise ConfigError(f"the text has {len(paragraphs)} usable paragraphs: too few to hold {heldout} out")
    random.Random(seed).shuffle(paragraphs)
    held, train = paragraphs[:heldout], paragraphs[heldout:]
    if max_paragraphs is not None:
        train = train[:max_paragraphs]
    return Paragraphs(tuple(train), tuple(held), len(titles), tuple(dict.fromkeys(left_out_titles)), left_out)


def text_features(paragraphs: Sequence[str], tokenizer, max_seq_length: int) -> Features:
    """Each paragraph as ``[CLS] ... [SEP]`` sequences of at most ``max_seq_length`` tokens."""
    if max_seq_length < MIN_TOKENS + 2:
        raise ConfigError(f"pretrain.max_seq_length must be at least {MIN_TOKENS + 2}, got {max_seq_length}")
    room = max_seq_length - 2
    rows: list[list[int]] = []
    for start in range(0, len(paragraphs), 1000):
        encoded = tokenizer(list(paragraphs[start : start + 1000]), add_special_tokens=False, verbose=False)["input_ids"]
        for ids in encoded:
            for first in range(0, len(ids), room):
                piece = ids[first : first + room]
                if len(piece) >= MIN_TOKENS or first == 0:
                    rows.append([tokenizer.cls_token_id, *piece, tokenizer.sep_token_id])
    if not rows:
        raise ConfigError("the text gave no token sequences")
    lengths = np.array([len(row) for row in rows], dtype=np.int64)
    tokens = int(lengths.sum())
    return Features(
        input_ids=np.concatenate([np.asarray(row, dtype=np.int32) for row in rows]),
        token_type_ids=np.zeros(tokens, np.int8),
        offsets=np.full((tokens, 2), -1, np.int32),
        row_starts=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        start_positions=np.zeros(len(rows), np.int32),
        end_positions=np.zeros(len(rows), np.int32),
        example_index=np.arange(len(rows), dtype=np.int32),
    )
