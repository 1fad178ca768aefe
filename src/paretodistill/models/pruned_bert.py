"""BERT for extractive QA whose layers may keep different numbers of heads and FFN neurons.

transformers 5 dropped head pruning (no ``prune_heads``, no ``config.pruned_heads``), and its
``BertSelfAttention`` derives the head size as ``hidden_size / num_attention_heads``, so a pruned
layer cannot be described by a plain ``BertConfig``. This module is the smallest extension that
can: the config keeps ``num_attention_heads = hidden_size / attention_head_size`` (the unpruned
count, so every module computes the right head size) and lists the heads and FFN width each layer
really has; the model then resizes each layer's linears. Module names, and so state-dict keys,
are exactly those of ``BertForQuestionAnswering``. The attention code itself is BERT's, and it
reshapes with ``(*shape, -1, head_size)``, so eager, sdpa and the other attention backends work
with any number of heads per layer.

This file imports only torch and transformers: :func:`save_with_code` copies it next to the
weights so that ``AutoModelForQuestionAnswering.from_pretrained(dir, trust_remote_code=True)``
loads the checkpoint without paretodistill installed.
"""

import json
import shutil
from pathlib import Path

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForQuestionAnswering, BertConfig, BertForQuestionAnswering

MODEL_TYPE = "paretodistill_bert"


class PrunedBertConfig(BertConfig):
    """``BertConfig`` plus per-layer head counts and FFN widths.

    ``heads_per_layer``/``intermediate_sizes`` default to the uniform BERT values;
    ``attention_head_size`` defaults to ``hidden_size // num_attention_heads`` and, when given,
    overrides ``num_attention_heads`` with ``hidden_size // attention_head_size``.
    ``qa_dropout`` is a dropout on the sequence output before the QA head (training only).
    """

    model_type = MODEL_TYPE

    heads_per_layer: list[int] | None = None
    intermediate_sizes: list[int] | None = None
    attention_head_size: int | None = None
    qa_dropout: float = 0.0

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        if self.attention_head_size is None:
            self.attention_head_size = self.hidden_size // self.num_attention_heads
        if self.attention_head_size < 1 or self.hidden_size % self.attention_head_size != 0:
            raise ValueError(
                f"attention_head_size {self.attention_head_size} must be >= 1 and divide hidden_size "
                f"{self.hidden_size}"
            )
        self.num_attention_heads = self.hidden_size // self.attention_head_size
        if self.heads_per_layer is None:
            self.heads_per_layer = [self.num_attention_heads] * self.num_hidden_layers
        if self.intermediate_sizes is None:
            self.intermediate_sizes = [self.intermediate_size] * self.num_hidden_layers
        self.heads_per_layer = [int(k) for k in self.heads_per_layer]
        self.intermediate_sizes = [int(f) for f in self.intermediate_sizes]
        for name in ("heads_per_layer", "intermediate_sizes"):
            values = getattr(self, name)
            if len(values) != self.num_hidden_layers:
                raise ValueError(
                    f"{name} has {len(values)} entries but num_hidden_layers is {self.num_hidden_layers}"
                )
            if any(v < 1 for v in values):
                raise ValueError(f"{name} entries must be >= 1, got {values}")
        if not 0.0 <= self.qa_dropout < 1.0:
            raise ValueError(f"qa_dropout must be in [0, 1), got {self.qa_dropout}")


class DropoutLinear(nn.Linear):
    """A linear layer that applies dropout to its input.

    Used for ``qa_outputs`` so that the QA-head dropout adds no module and no state-dict key:
    checkpoints stay interchangeable with ``BertForQuestionAnswering``.
    """

    def __init__(self, in_features: int, out_features: int, dropout: float):
        super().__init__(in_features, out_features)
        self.dropout = nn.Dropout(dropout)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return super().forward(self.dropout(hidden_states))


class PrunedBertForQuestionAnswering(BertForQuestionAnswering):
    """``BertForQuestionAnswering`` with per-layer head counts and FFN widths, and a QA dropout.

    Built as a full-width BERT first, then each layer's q/k/v, attention-output dense and FFN
    linears are replaced by ones of the configured size and ``post_init`` initialises just those
    (transformers marks modules it has already initialised).
    """

    config_class = PrunedBertConfig
    config: PrunedBertConfig

    def __init__(self, config: PrunedBertConfig):
        super().__init__(config)
        hidden = config.hidden_size
        head_size = config.attention_head_size
        for layer, heads, ffn in zip(
            self.bert.encoder.layer, config.heads_per_layer, config.intermediate_sizes, strict=True
        ):
            width = heads * head_size
            attention = layer.attention.self
            attention.query = nn.Linear(hidden, width)
            attention.key = nn.Linear(hidden, width)
            attention.value = nn.Linear(hidden, width)
            attention.num_attention_heads = heads
            attention.attention_head_size = head_size
            attention.all_head_size = width
            attention.scaling = head_size**-0.5
            layer.attention.output.dense = nn.Linear(width, hidden)
            layer.intermediate.dense = nn.Linear(hidden, ffn)
            layer.output.dense = nn.Linear(ffn, hidden)
        self.qa_outputs = DropoutLinear(hidden, config.num_labels, config.qa_dropout)
        self.post_init()


def save_with_code(model: BertForQuestionAnswering, out_dir: str | Path, **save_kwargs) -> Path:
    """Save ``model`` so that it loads without paretodistill.

    Calls ``save_pretrained``; for a :class:`PrunedBertForQuestionAnswering` also copies this file
    into ``out_dir`` and writes ``auto_map`` into ``config.json`` so that
    ``AutoModelForQuestionAnswering.from_pretrained(out_dir, trust_remote_code=True)`` works in a
    fresh Python. A plain ``BertForQuestionAnswering`` needs no code and gets none.
    """
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir, **save_kwargs)
    if getattr(model.config, "model_type", None) != MODEL_TYPE:
        return out_dir
    source = Path(__file__)
    shutil.copyfile(source, out_dir / source.name)
    config_path = out_dir / "config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["auto_map"] = {
        "AutoConfig": f"{source.stem}.{PrunedBertConfig.__name__}",
        "AutoModelForQuestionAnswering": f"{source.stem}.{PrunedBertForQuestionAnswering.__name__}",
    }
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return out_dir


AutoConfig.register(MODEL_TYPE, PrunedBertConfig, exist_ok=True)
AutoModelForQuestionAnswering.register(PrunedBertConfig, PrunedBertForQuestionAnswering, exist_ok=True)
