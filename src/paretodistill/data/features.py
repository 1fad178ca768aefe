"""Tokenized QA features: doc-stride windows with offsets and answer token positions, cached on disk.

A long context is cut into overlapping windows (``doc_stride`` tokens of overlap); each window is a
feature. Features are kept unpadded (one flat token array plus row starts) so training can batch
windows of similar length: most SQuAD windows are far shorter than ``max_seq_length``.
An unanswerable question, or a window that does not hold the whole answer, points at the CLS token.

Every family's fast tokenizer goes in. One that returns no token types (RoBERTa, DistilBERT) gets
zeros. Context offsets are cut to the token's text without surrounding whitespace: a SentencePiece
(Metaspace) tokenizer such as DeBERTa-v3's counts the space before a word in the word's "▁word"
offsets, which would put a space in front of every answer; a token of whitespace only ("▁" before
a digit, a run of spaces) is marked like the question, so it cannot start or end an answer.

The cache key is the examples' content, the tokenizer's full definition and the three lengths, so
a second run with the same inputs loads the arrays instead of re-tokenizing; they are read as
memory maps, shared by every process that reads the same key (``array_cache``).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from paretodistill.config import FeatureSettings
from paretodistill.data.array_cache import DamagedCache, read_arrays, set_aside, write_arrays
from paretodistill.data.squad import Example
from paretodistill.errors import ModelMismatchError

FEATURE_DTYPES = {
    "input_ids": np.int32,
    "token_type_ids": np.int8,
    "offsets": np.int32,
    "row_starts": np.int64,
    "start_positions": np.int32,
    "end_positions": np.int32,
    "example_index": np.int32,
}
ARRAY_NAMES = tuple(FEATURE_DTYPES)


@dataclass
class Features:
    """Ragged arrays of tokenized windows; row ``i`` spans ``row_starts[i]:row_starts[i+1]``."""

    input_ids: np.ndarray  # int32, all windows concatenated
    token_type_ids: np.ndarray  # int8
    offsets: np.ndarray  # int32 (tokens, 2): character span in the context (no surrounding whitespace), -1 outside
    row_starts: np.ndarray  # int64 (features + 1)
    start_positions: np.ndarray  # int32 token index of the answer start, 0 (CLS) when absent
    end_positions: np.ndarray  # int32
    example_index: np.ndarray  # int32 index into the examples the features were built from

    def __len__(self) -> int:
        return len(self.start_positions)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.row_starts)

    def row(self, i: int) -> slice:
        return slice(int(self.row_starts[i]), int(self.row_starts[i + 1]))

    def num_tokens(self) -> int:
        return int(self.row_starts[-1])

    def take(self, indices: np.ndarray) -> "Features":
        """The given windows (repeats allowed, e.g. to oversample), as a new contiguous set."""
        indices = np.asarray(indices, dtype=np.int64)
        starts, lengths = self.row_starts[:-1][indices], self.lengths[indices]
        token_index = np.concatenate([np.arange(s, s + n) for s, n in zip(starts, lengths)]) if len(indices) else []
        return Features(
            input_ids=np.asarray(self.input_ids)[token_index],
            token_type_ids=np.asarray(self.token_type_ids)[token_index],
            offsets=np.asarray(self.offsets)[token_index],
            row_starts=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            start_positions=np.asarray(self.start_positions)[indices],
            end_positions=np.asarray(self.end_positions)[indices],
            example_index=np.asarray(self.example_index)[indices],
        )


def tokenizer_fingerprint(tokenizer) -> str:
    """A hash of everything that decides token ids: the full fast-tokenizer definition."""
    if not getattr(tokenizer, "is_fast", False):
        raise ModelMismatchError(
            f"{type(tokenizer).__name__} is not a fast tokenizer; offsets for answer spans need one"
        )
    definition = tokenizer.backend_tokenizer.to_str()
    return hashlib.sha256(f"{type(tokenizer).__name__}|{definition}".encode()).hexdigest()


def examples_fingerprint(examples: list[Example] | tuple[Example, ...]) -> str:
    digest = hashlib.sha256()
    for example in examples:
        digest.update(example.id.encode())
        digest.update(example.question.encode())
        digest.update(example.context.encode())
        for answer in example.answers:
            digest.update(f"{answer.start}:{answer.text}".encode())
    return digest.hexdigest()


def default_cache_dir() -> Path:
    """``$PARETODISTILL_CACHE`` or ``~/.cache/paretodistill``: outside the repository, shared by runs."""
    return Path(os.environ.get("PARETODISTILL_CACHE", Path.home() / ".cache" / "paretodistill"))


def _truncate_questions(questions: list[str], tokenizer, max_query_length: int) -> list[str]:
    """Cut each question after its ``max_query_length``-th token (by character offset)."""
    encoded = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
    truncated = []
    for question, offsets in zip(questions, encoded["offset_mapping"]):
        if len(offsets) > max_query_length:
            question = question[: offsets[max_query_length - 1][1]]
        truncated.append(question)
    return truncated


def build_features(
    examples: list[Example] | tuple[Example, ...], tokenizer, settings: FeatureSettings
) -> Features:
    """Tokenize examples into doc-stride windows with answer token positions (HF ``run_qa`` style)."""
    settings.validate()
    if tokenizer.padding_side != "right":
        raise ModelMismatchError("the tokenizer must pad on the right (question first, then context)")
    questions = _truncate_questions([e.question.lstrip() for e in examples], tokenizer, settings.max_query_length)
    ids, types, offsets, starts, ends, example_index, row_starts = [], [], [], [], [], [], [0]
    chunk = 2048
    for first in range(0, len(examples), chunk):
        batch = examples[first : first + chunk]
        encoded = tokenizer(
            questions[first : first + chunk],
            [e.context for e in batch],
            truncation="only_second",
            max_length=settings.max_seq_length,
            stride=settings.doc_stride,
            return_overflowing_tokens=True,
            return_offsets_mapping=True,
            padding=False,
        )
        # RoBERTa and DistilBERT tokenizers return no token types (their model_input_names lack them)
        token_types = encoded["token_type_ids"] if "token_type_ids" in encoded else None
        for i, input_ids in enumerate(encoded["input_ids"]):
            local_example = encoded["overflow_to_sample_mapping"][i]
            example = batch[local_example]
            window_offsets = _context_offsets(example.context, encoded.sequence_ids(i), encoded["offset_mapping"][i])
            start_token, end_token = _answer_tokens(example, window_offsets)
            ids.append(np.asarray(input_ids, dtype=np.int32))
            types.append(np.asarray(token_types[i], dtype=np.int8) if token_types is not None
                         else np.zeros(len(input_ids), dtype=np.int8))
            offsets.append(np.asarray(window_offsets, dtype=np.int32))
            starts.append(start_token)
            ends.append(end_token)
            example_index.append(first + local_example)
            row_starts.append(row_starts[-1] + len(input_ids))
    return Features(
        input_ids=np.concatenate(ids),
        token_type_ids=np.concatenate(types),
        offsets=np.concatenate(offsets),
        row_starts=np.asarray(row_starts, dtype=np.int64),
        start_positions=np.asarray(starts, dtype=np.int32),
        end_positions=np.asarray(ends, dtype=np.int32),
        example_index=np.asarray(example_index, dtype=np.int32),
    )


def _context_offsets(context: str, sequence_ids: list, offsets: list) -> list[tuple[int, int]]:
    """Each context token's character span without surrounding whitespace; (-1, -1) for every other token.

    A token of whitespace only (or of no characters) has no span left and is marked (-1, -1) too.
    """
    window_offsets = []
    for sequence, (start, end) in zip(sequence_ids, offsets):
        if sequence != 1:
            window_offsets.append((-1, -1))
            continue
        if start < end and (context[start].isspace() or context[end - 1].isspace()):
            while start < end and context[start].isspace():
                start += 1
            while end > start and context[end - 1].isspace():
                end -= 1
        window_offsets.append((start, end) if start < end else (-1, -1))
    return window_offsets


def _answer_tokens(example: Example, window_offsets: list[tuple[int, int]]) -> tuple[int, int]:
    """Token span of the first gold answer inside this window, or (0, 0) for CLS."""
    if example.is_impossible or not example.answers:
        return 0, 0
    answer = example.answers[0]
    start_char, end_char = answer.start, answer.start + len(answer.text)
    context_tokens = [t for t, (s, _) in enumerate(window_offsets) if s >= 0]
    first, last = context_tokens[0], context_tokens[-1]
    if window_offsets[first][0] > start_char or window_offsets[last][1] < end_char:
        return 0, 0
    start_token = first
    while start_token <= last and window_offsets[start_token][1] <= start_char:
        start_token += 1
    end_token = last
    # skip back over the tokens after the answer and over whitespace tokens (-1) among them
    while end_token >= first and (window_offsets[end_token][0] >= end_char or window_offsets[end_token][0] < 0):
        end_token -= 1
    if end_token < start_token:  # an answer inside one token (e.g. part of a word)
        end_token = start_token
    return start_token, end_token


def cached_features(
    examples: list[Example] | tuple[Example, ...],
    tokenizer,
    settings: FeatureSettings,
    cache_dir: str | Path | None = None,
    log: Callable[[str], None] | None = None,
) -> Features:
    """``build_features`` with an on-disk cache; the arrays come back as read-only memory maps of the
    cache files, also right after building, so every process reading the same key shares one copy
    (``array_cache``). A damaged cache entry is rebuilt (and ``log`` told), never trusted."""
    settings.validate()
    key_material = json.dumps(
        {
            "examples": examples_fingerprint(examples),
            "tokenizer": tokenizer_fingerprint(tokenizer),
            "settings": [settings.max_seq_length, settings.doc_stride, settings.max_query_length],
            "format": 2,  # 2: context offsets without whitespace
        }
    )
    key = hashlib.sha256(key_material.encode()).hexdigest()[:24]
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    directory = root / "features" / key
    try:
        cached = load_features(directory)
        if cached is not None:
            return cached
    except DamagedCache as damage:
        (log or print)(f"feature cache damaged, rebuilding it: {damage}")
        set_aside(directory)
    save_features(build_features(examples, tokenizer, settings), directory, key_material)
    return load_features(directory)


def save_features(features: Features, directory: Path, description: str = "") -> None:
    """Write the arrays to a temporary folder and rename it into place, so a kill leaves no half cache."""
    write_arrays(directory, {name: getattr(features, name) for name in ARRAY_NAMES}, description)


def load_features(directory: Path) -> Features | None:
    """The cached features as memory maps; None when not cached; :class:`DamagedCache` when the
    files cannot be read or do not fit together."""
    arrays = read_arrays(directory, ARRAY_NAMES)
    if arrays is None:
        return None
    features = Features(**arrays)
    problem = _inconsistency(features)
    if problem:
        raise DamagedCache(f"{directory}: {problem}")
    return features


def _inconsistency(features: Features) -> str | None:
    """What makes the arrays disagree with one another (lengths, dtypes, row starts), or None."""
    tokens, windows = len(features.input_ids), len(features.start_positions)
    for name, dtype in FEATURE_DTYPES.items():
        if getattr(features, name).dtype != dtype:
            return f"{name} is {getattr(features, name).dtype}, expected {np.dtype(dtype)}"
    if len(features.token_type_ids) != tokens or features.offsets.shape != (tokens, 2):
        return "token arrays of different lengths"
    if len(features.end_positions) != windows or len(features.example_index) != windows:
        return "window arrays of different lengths"
    row_starts = np.asarray(features.row_starts)
    if len(row_starts) != windows + 1 or row_starts[0] != 0 or row_starts[-1] != tokens:
        return f"row starts do not span the {tokens} tokens in {windows} windows"
    if windows and np.any(np.diff(row_starts) <= 0):
        return "row starts are not increasing"
    return None
