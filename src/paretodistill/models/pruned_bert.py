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

The same class also describes AutoDistill's MobileBERT-like template (all optional, all off by
default, so a student that uses none of them is exactly a pruned BERT):

* ``bottleneck_size``: each layer maps its input down to the bottleneck width (Linear + LayerNorm),
  runs attention and FFN(s) at that width, and maps back up (Linear, dropout, residual with the
  layer input, LayerNorm): the per-layer width differs from the width between layers. This is
  MobileBERT's bottleneck, simplified: queries, keys and values all read the bottlenecked input
  (MobileBERT feeds values from the full-width input), and LayerNorm stays (no NoNorm).
* ``stacked_ffn``: FFN blocks per layer, each with its own residual and LayerNorm (MobileBERT: 4);
  the first keeps BERT's module names (``intermediate``, ``output``), the others are ``stacked_ffn_blocks``.
* ``embedding_size``: a narrower word-embedding table and a ``Linear(embedding_size, hidden)``.
* ``embedded_vocab_size``: the table keeps only some tokens; the persistent ``token_map`` buffer
  (one entry per tokenizer id) maps each id to its row, so the tokenizer stays as it is.

This file imports only torch and transformers: ``models.saving.save_with_code`` copies it next to the
weights so that ``AutoModelForQuestionAnswering.from_pretrained(dir, trust_remote_code=True)``
loads the checkpoint without paretodistill installed. paretodistill itself never runs that copy:
the registration at the bottom of this file lets the Auto classes load ``paretodistill_bert``
checkpoints with the installed code (``models.loading``), whatever a folder's copy says.
"""


import torch
from torch import nn
from transformers import AutoConfig, AutoModelForQuestionAnswering, BertConfig, BertForQuestionAnswering
from transformers.activations import ACT2FN
from transformers.models.bert.modeling_bert import BertLayer

MODEL_TYPE = "paretodistill_bert"


class PrunedBertConfig(BertConfig):
    """``BertConfig`` plus per-layer head counts and FFN widths.

    ``heads_per_layer``/``intermediate_sizes`` default to the uniform BERT values;
    ``attention_head_size`` defaults to ``hidden_size // num_attention_heads`` and, when given,
    overrides ``num_attention_heads`` with ``hidden_size // attention_head_size``.
    ``qa_dropout`` is a dropout on the sequence output before the QA head (training only).
    Template fields (module docstring): ``bottleneck_size`` (None: off), ``stacked_ffn`` (>= 1),
    ``embedding_size`` (None: the hidden size, no projection) and ``embedded_vocab_size`` (None:
    ``vocab_size`` rows, no ``token_map``). With a bottleneck, ``attention_head_size`` must divide
    the bottleneck width instead of the hidden size.
    """

    model_type = MODEL_TYPE

    heads_per_layer: list[int] | None = None
    intermediate_sizes: list[int] | None = None
    attention_head_size: int | None = None
    qa_dropout: float = 0.0
    bottleneck_size: int | None = None
    stacked_ffn: int = 1
    embedding_size: int | None = None
    embedded_vocab_size: int | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        for name in ("bottleneck_size", "embedding_size", "embedded_vocab_size"):
            value = getattr(self, name)
            if value is not None and int(value) < 1:
                raise ValueError(f"{name} must be >= 1 (or None), got {value}")
        if int(self.stacked_ffn) < 1:
            raise ValueError(f"stacked_ffn must be >= 1, got {self.stacked_ffn}")
        width = self.layer_width
        if self.attention_head_size is None:
            self.attention_head_size = width // self.num_attention_heads
        if self.attention_head_size < 1 or width % self.attention_head_size != 0:
            raise ValueError(
                f"attention_head_size {self.attention_head_size} must be >= 1 and divide the layer width "
                f"{width} (bottleneck_size, else hidden_size)"
            )
        self.num_attention_heads = width // self.attention_head_size
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

    @property
    def layer_width(self) -> int:
        """The width attention and FFNs run at: the bottleneck's, else the hidden size."""
        return self.bottleneck_size or self.hidden_size

    @property
    def is_template(self) -> bool:
        """Whether the layers need :class:`TemplateBertLayer` (a bottleneck or stacked FFNs)."""
        return self.bottleneck_size is not None or self.stacked_ffn > 1


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


class FeedForwardOutput(nn.Module):
    """Linear, dropout, residual, LayerNorm: BERT's ``BertOutput`` between any two widths."""

    def __init__(self, width_in: int, width_out: int, config: PrunedBertConfig):
        super().__init__()
        self.dense = nn.Linear(width_in, width_out)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.LayerNorm = nn.LayerNorm(width_out, eps=config.layer_norm_eps)

    def forward(self, hidden_states: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(residual + self.dropout(self.dense(hidden_states)))


class FeedForward(nn.Module):
    """One FFN block with its own residual and LayerNorm: BERT's intermediate + output."""

    def __init__(self, width: int, ffn: int, config: PrunedBertConfig):
        super().__init__()
        self.intermediate = nn.Linear(width, ffn)
        self.activation = ACT2FN[config.hidden_act] if isinstance(config.hidden_act, str) else config.hidden_act
        self.output = FeedForwardOutput(ffn, width, config)

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        return self.output(self.activation(self.intermediate(hidden_states)), hidden_states)


class TemplateBertLayer(BertLayer):
    """A BERT layer at the bottleneck width, between two linear maps, with stacked FFN blocks.

    ``bottleneck_in`` (Linear + LayerNorm) maps the hidden states to ``bottleneck_size``;
    attention and the FFN blocks run there; ``bottleneck_out`` maps back up, adds the layer's
    input and normalises. Without a bottleneck only the stacked FFN blocks are added. It is a
    ``BertLayer``, so transformers records its output as a hidden state and attention runs
    through BERT's own code (eager, sdpa, ...).
    """

    def __init__(self, config: PrunedBertConfig, layer_idx: int, heads: int, ffn: int):
        super().__init__(config, layer_idx=layer_idx)
        hidden, width = config.hidden_size, config.layer_width
        eps = config.layer_norm_eps
        _size_layer(self, width, heads, config.attention_head_size, ffn, eps)
        self.bottleneck_in = self.bottleneck_out = None
        if config.bottleneck_size is not None:
            self.bottleneck_in = nn.Sequential(nn.Linear(hidden, width), nn.LayerNorm(width, eps=eps))
            self.bottleneck_out = FeedForwardOutput(width, hidden, config)
        self.stacked_ffn_blocks = nn.ModuleList(FeedForward(width, ffn, config) for _ in range(config.stacked_ffn - 1))

    def forward(self, hidden_states: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        inner = hidden_states if self.bottleneck_in is None else self.bottleneck_in(hidden_states)
        inner = super().forward(inner, *args, **kwargs)
        for block in self.stacked_ffn_blocks:
            inner = block(inner)
        return inner if self.bottleneck_out is None else self.bottleneck_out(inner, hidden_states)


class TemplateWordEmbeddings(nn.Module):
    """Word embeddings from a kept-token table, optionally narrower than the hidden size.

    ``token_map`` (present when only some tokens are kept) maps every tokenizer id to its row;
    ids outside the kept set map to the [UNK] row. ``projection`` (present when the table is
    narrower) maps ``embedding_size`` up to the hidden size, as in ALBERT and MobileBERT.
    """

    def __init__(self, config: PrunedBertConfig):
        super().__init__()
        rows = config.embedded_vocab_size or config.vocab_size
        width = config.embedding_size or config.hidden_size
        self.table = nn.Embedding(rows, width)
        self.projection = nn.Linear(width, config.hidden_size) if width != config.hidden_size else None
        if config.embedded_vocab_size is not None:
            self.token_map = nn.Buffer(torch.zeros(config.vocab_size, dtype=torch.long))
        else:
            self.token_map = None

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        if self.token_map is not None:
            input_ids = self.token_map[input_ids]
        embedded = self.table(input_ids)
        return embedded if self.projection is None else self.projection(embedded)


def _size_layer(layer: BertLayer, width: int, heads: int, head_size: int, ffn: int, eps: float) -> None:
    """Give a BERT layer ``heads`` heads of ``head_size`` reading ``width``-wide states, and an FFN of ``ffn``."""
    attention_width = heads * head_size
    attention = layer.attention.self
    attention.query = nn.Linear(width, attention_width)
    attention.key = nn.Linear(width, attention_width)
    attention.value = nn.Linear(width, attention_width)
    attention.num_attention_heads = heads
    attention.attention_head_size = head_size
    attention.all_head_size = attention_width
    attention.scaling = head_size**-0.5
    layer.attention.output.dense = nn.Linear(attention_width, width)
    layer.intermediate.dense = nn.Linear(width, ffn)
    layer.output.dense = nn.Linear(ffn, width)
    if layer.output.LayerNorm.normalized_shape != (width,):
        layer.attention.output.LayerNorm = nn.LayerNorm(width, eps=eps)
        layer.output.LayerNorm = nn.LayerNorm(width, eps=eps)


class PrunedBertForQuestionAnswering(BertForQuestionAnswering):
    """``BertForQuestionAnswering`` with per-layer head counts and FFN widths, a QA dropout, and
    the optional template parts (bottleneck, stacked FFNs, factorized or pruned word embeddings).

    Built as a full-width BERT first, then each layer's q/k/v, attention-output dense and FFN
    linears are replaced by ones of the configured size (template layers replace whole layers)
    and ``post_init`` initialises just those (transformers marks modules it has already initialised).
    """

    config_class = PrunedBertConfig
    config: PrunedBertConfig

    def __init__(self, config: PrunedBertConfig):
        super().__init__(config)
        layers = self.bert.encoder.layer
        for i, (heads, ffn) in enumerate(zip(config.heads_per_layer, config.intermediate_sizes, strict=True)):
            if config.is_template:
                layers[i] = TemplateBertLayer(config, i, heads, ffn)
            else:
                _size_layer(layers[i], config.hidden_size, heads, config.attention_head_size, ffn, config.layer_norm_eps)
        if config.embedding_size is not None or config.embedded_vocab_size is not None:
            self.bert.embeddings.word_embeddings = TemplateWordEmbeddings(config)
        self.qa_outputs = DropoutLinear(config.hidden_size, config.num_labels, config.qa_dropout)
        self.post_init()


PRUNED_CLASSES = ((PrunedBertConfig, PrunedBertForQuestionAnswering),)

AutoConfig.register(MODEL_TYPE, PrunedBertConfig, exist_ok=True)
AutoModelForQuestionAnswering.register(PrunedBertConfig, PrunedBertForQuestionAnswering, exist_ok=True)
