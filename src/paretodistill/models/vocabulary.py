"""Pruning the vocabulary to the tokens a corpus uses (TextPruner's vocabulary pruning).

The word-embedding table holds half of a MiniLM's parameters, and SQuAD uses a fraction of its
30,522 tokens. A student keeps only the rows of the tokens its training and validation text uses,
plus the special tokens. The tokenizer is left as it is: the model carries a ``token_map`` from
every tokenizer id to its row (see ``pruned_bert.TemplateWordEmbeddings``), so a saved student
tokenizes and answers with no extra step, and any id outside the kept set reads the [UNK] row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch

from paretodistill.errors import ModelMismatchError


@dataclass(frozen=True)
class KeptVocabulary:
    """The tokenizer ids whose embedding rows a student keeps (sorted), and the id of [UNK]."""

    token_ids: tuple[int, ...]
    unknown_id: int

    def __post_init__(self) -> None:
        ids = tuple(int(i) for i in self.token_ids)
        if list(ids) != sorted(set(ids)) or not ids or ids[0] < 0:
            raise ModelMismatchError("kept token ids must be non-negative, sorted and unique")
        if self.unknown_id not in ids:
            raise ModelMismatchError(f"the unknown token id {self.unknown_id} must be among the kept ids")
        object.__setattr__(self, "token_ids", ids)

    def __len__(self) -> int:
        return len(self.token_ids)

    def token_map(self, vocab_size: int) -> torch.Tensor:
        """Row of each tokenizer id (``vocab_size`` entries): its kept row, else the [UNK] row."""
        if self.token_ids[-1] >= vocab_size:
            raise ModelMismatchError(f"kept token id {self.token_ids[-1]} is outside a vocabulary of {vocab_size}")
        ids = torch.tensor(self.token_ids, dtype=torch.long)
        mapping = torch.full((vocab_size,), self.token_ids.index(self.unknown_id), dtype=torch.long)
        mapping[ids] = torch.arange(len(ids))
        return mapping


def corpus_token_ids(texts: Iterable[str], tokenizer) -> list[int]:
    """Sorted ids of every token ``tokenizer`` produces on ``texts``, plus all its special tokens."""
    unique = sorted(set(texts))
    ids = set(tokenizer.all_special_ids)
    for start in range(0, len(unique), 1000):
        for row in tokenizer(unique[start : start + 1000], add_special_tokens=False)["input_ids"]:
            ids.update(row)
    return sorted(ids)


def corpus_vocabulary(texts: Iterable[str], tokenizer) -> KeptVocabulary:
    """The :class:`KeptVocabulary` of ``texts`` (unknown pieces fall to the tokenizer's [UNK])."""
    return KeptVocabulary(tuple(corpus_token_ids(texts, tokenizer)), tokenizer.unk_token_id)
