"""DistilBERT, RoBERTa and ELECTRA for extractive QA whose layers keep some of their heads.

The same extension :mod:`pruned_bert` makes to BERT (read its docstring for why transformers
needs one), for the other families whose attention reshapes by head size, so that a layer can
keep any number of heads: the config keeps the unpruned head count (so every module computes the
right head size) and lists the heads and FFN width each layer really has; the model then resizes
each layer's linears. Module names, and so state-dict keys, are exactly the stock class's. DeBERTa-v2
is not here: its disentangled attention repeats the relative-position projections per head, so a
layer cannot drop heads by resizing its linears.

This file imports only torch and transformers: a saved pruned student gets a copy next to its
weights (``save_with_code``), so ``AutoModelForQuestionAnswering.from_pretrained(dir,
trust_remote_code=True)`` loads it without paretodistill; with paretodistill imported the
registration at the bottom loads it with no flag at all.
"""

from torch import nn
from transformers import (
    AutoConfig,
    AutoModelForQuestionAnswering,
    DistilBertConfig,
    DistilBertForQuestionAnswering,
    ElectraConfig,
    ElectraForQuestionAnswering,
    RobertaConfig,
    RobertaForQuestionAnswering,
)


def _complete(config, width: int, layers: int, ffn: int) -> None:
    """Fill ``attention_head_size``, ``heads_per_layer`` and ``intermediate_sizes`` and check them;
    returns the unpruned head count the stock modules must be built with."""
    if config.attention_head_size is None:
        config.attention_head_size = width // config.num_attention_heads
    size = int(config.attention_head_size)
    if size < 1 or width % size != 0:
        raise ValueError(f"attention_head_size {size} must be >= 1 and divide the hidden width {width}")
    config.num_attention_heads = width // size
    config.heads_per_layer = [int(k) for k in (config.heads_per_layer or [config.num_attention_heads] * layers)]
    config.intermediate_sizes = [int(f) for f in (config.intermediate_sizes or [ffn] * layers)]
    for name in ("heads_per_layer", "intermediate_sizes"):
        values = getattr(config, name)
        if len(values) != layers:
            raise ValueError(f"{name} has {len(values)} entries but the model has {layers} layers")
        if any(v < 1 for v in values):
            raise ValueError(f"{name} entries must be >= 1, got {values}")


class PrunedDistilBertConfig(DistilBertConfig):
    """``DistilBertConfig`` plus per-layer head counts and FFN widths."""

    model_type = "paretodistill_distilbert"

    heads_per_layer: list[int] | None = None
    intermediate_sizes: list[int] | None = None
    attention_head_size: int | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        _complete(self, self.dim, self.n_layers, self.hidden_dim)


class PrunedDistilBertForQuestionAnswering(DistilBertForQuestionAnswering):
    """``DistilBertForQuestionAnswering`` whose blocks keep ``heads_per_layer`` heads and ``intermediate_sizes`` neurons."""

    config_class = PrunedDistilBertConfig

    def __init__(self, config: PrunedDistilBertConfig):
        super().__init__(config)
        size, width = config.attention_head_size, config.dim
        for block, heads, ffn in zip(self.distilbert.transformer.layer, config.heads_per_layer,
                                     config.intermediate_sizes, strict=True):
            attention = block.attention
            for name in ("q_lin", "k_lin", "v_lin"):
                setattr(attention, name, nn.Linear(width, heads * size))
            attention.out_lin = nn.Linear(heads * size, width)
            attention.n_heads, attention.attention_head_size, attention.scaling = heads, size, size**-0.5
            block.ffn.lin1, block.ffn.lin2 = nn.Linear(width, ffn), nn.Linear(ffn, width)
        self.post_init()


def _size_bert_like_layers(layers, config) -> None:
    """Resize BERT-structured layers (RoBERTa's and ELECTRA's are) to their kept heads and neurons."""
    size, width = config.attention_head_size, config.hidden_size
    for layer, heads, ffn in zip(layers, config.heads_per_layer, config.intermediate_sizes, strict=True):
        attention = layer.attention.self
        for name in ("query", "key", "value"):
            setattr(attention, name, nn.Linear(width, heads * size))
        attention.num_attention_heads, attention.attention_head_size = heads, size
        attention.all_head_size, attention.scaling = heads * size, size**-0.5
        layer.attention.output.dense = nn.Linear(heads * size, width)
        layer.intermediate.dense, layer.output.dense = nn.Linear(width, ffn), nn.Linear(ffn, width)


class PrunedRobertaConfig(RobertaConfig):
    """``RobertaConfig`` plus per-layer head counts and FFN widths."""

    model_type = "paretodistill_roberta"

    heads_per_layer: list[int] | None = None
    intermediate_sizes: list[int] | None = None
    attention_head_size: int | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        _complete(self, self.hidden_size, self.num_hidden_layers, self.intermediate_size)


class PrunedRobertaForQuestionAnswering(RobertaForQuestionAnswering):
    """``RobertaForQuestionAnswering`` whose layers keep ``heads_per_layer`` heads and ``intermediate_sizes`` neurons."""

    config_class = PrunedRobertaConfig

    def __init__(self, config: PrunedRobertaConfig):
        super().__init__(config)
        _size_bert_like_layers(self.roberta.encoder.layer, config)
        self.post_init()


class PrunedElectraConfig(ElectraConfig):
    """``ElectraConfig`` plus per-layer head counts and FFN widths."""

    model_type = "paretodistill_electra"

    heads_per_layer: list[int] | None = None
    intermediate_sizes: list[int] | None = None
    attention_head_size: int | None = None

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        _complete(self, self.hidden_size, self.num_hidden_layers, self.intermediate_size)


class PrunedElectraForQuestionAnswering(ElectraForQuestionAnswering):
    """``ElectraForQuestionAnswering`` whose layers keep ``heads_per_layer`` heads and ``intermediate_sizes`` neurons."""

    config_class = PrunedElectraConfig

    def __init__(self, config: PrunedElectraConfig):
        super().__init__(config)
        _size_bert_like_layers(self.electra.encoder.layer, config)
        self.post_init()


PRUNED_CLASSES = (
    (PrunedDistilBertConfig, PrunedDistilBertForQuestionAnswering),
    (PrunedRobertaConfig, PrunedRobertaForQuestionAnswering),
    (PrunedElectraConfig, PrunedElectraForQuestionAnswering),
)

for _config_class, _model_class in PRUNED_CLASSES:
    AutoConfig.register(_config_class.model_type, _config_class, exist_ok=True)
    AutoModelForQuestionAnswering.register(_config_class, _model_class, exist_ok=True)
