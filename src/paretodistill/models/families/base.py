"""What a family adapter answers, and the parts of a layer and of the embeddings it names.

A transformer layer of every supported family is, for seeding and scoring, the same eight linear
and normalisation modules under different names (:class:`LayerParts`); the embeddings are a word
table, maybe positions and token types, a LayerNorm and maybe a projection up to the hidden width
(:class:`EmbeddingParts`). The student builder copies heads and neurons between any two families
through these parts, so a DistilBERT student can be seeded from a BERT checkpoint and back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn
from transformers import PreTrainedConfig

from paretodistill.errors import ModelMismatchError


@dataclass(frozen=True)
class LayerParts:
    """One layer's modules, as every family has them."""

    attention: nn.Module  # holds the head count and size attributes
    query: nn.Linear
    key: nn.Linear
    value: nn.Linear
    attention_output: nn.Linear  # its input columns are the heads' context vectors
    attention_norm: nn.Module
    ffn_input: nn.Linear  # its output rows are the FFN neurons
    ffn_output: nn.Linear  # its input columns are the FFN neurons
    output_norm: nn.Module

    @property
    def head_size(self) -> int:
        return int(self.attention.attention_head_size)


@dataclass(frozen=True)
class EmbeddingParts:
    """The embedding modules; ``None`` where the family has no such part."""

    words: nn.Embedding
    positions: nn.Embedding | None
    token_types: nn.Embedding | None
    norm: nn.Module | None
    projection: nn.Linear | None = None  # from the embedding width up to the hidden width
    position_offset: int = 0  # the row of position 0 (RoBERTa counts from its padding id + 1)


# A student's config fields, by the name this package uses, and each family's key for them.
BERT_KEYS = {
    "layers": "num_hidden_layers",
    "heads": "num_attention_heads",
    "hidden": "hidden_size",
    "intermediate": "intermediate_size",
    "hidden_dropout": "hidden_dropout_prob",
    "attention_dropout": "attention_probs_dropout_prob",
    "activation": "hidden_act",
}


@dataclass(frozen=True)
class Family:
    """One encoder family. Subclasses name the classes and modules; the defaults are BERT's layout."""

    name: str
    model_types: tuple[str, ...]
    config_class: type  # the family's transformers classes
    qa_class: type
    base_class: type
    pruned: tuple[type, type] | None = None  # (config, QA class) of a student keeping some heads; None: cannot
    keys: dict[str, str] = field(default_factory=lambda: dict(BERT_KEYS))
    qa_dropout_key: str | None = None  # the config key of a dropout before the QA head, where the family has one
    template: bool = False  # AutoDistill's template parts (bottleneck, stacked FFNs, factorized or cut vocabulary)

    def pruned_classes(self) -> tuple[type, type]:
        """(config class, QA class) of a student whose layers keep different heads or FFN widths."""
        if self.pruned is None:
            raise ModelMismatchError(f"the {self.name} family cannot keep only some of a layer's heads")
        return self.pruned

    @property
    def prunes_heads(self) -> bool:
        """Whether a layer can keep only some of its heads."""
        return self.pruned is not None

    # ------------------------------------------------------------------ modules
    def encoder(self, model: nn.Module) -> nn.Module:
        """The base model inside a task model (a base model is its own)."""
        return getattr(model, "base_model", model)

    def layers(self, model: nn.Module) -> list[nn.Module]:
        return list(self.encoder(model).encoder.layer)

    def layer_parts(self, layer: nn.Module) -> LayerParts:
        attention = layer.attention
        return LayerParts(
            attention=attention.self, query=attention.self.query, key=attention.self.key,
            value=attention.self.value, attention_output=attention.output.dense,
            attention_norm=attention.output.LayerNorm, ffn_input=layer.intermediate.dense,
            ffn_output=layer.output.dense, output_norm=layer.output.LayerNorm,
        )

    def embedding_parts(self, model: nn.Module) -> EmbeddingParts:
        embeddings = self.encoder(model).embeddings
        return EmbeddingParts(
            words=embeddings.word_embeddings, positions=embeddings.position_embeddings,
            token_types=embeddings.token_type_embeddings, norm=embeddings.LayerNorm,
        )

    def extra_modules(self, model: nn.Module) -> dict[str, nn.Module]:
        """Encoder-level modules outside the layers and embeddings (DeBERTa's relative positions), by name."""
        return {}

    # ------------------------------------------------------------------ shape
    def read(self, config: PreTrainedConfig | dict, what: str):
        """A shape field (``layers``, ``heads``, ``hidden``, ``intermediate``) of a config or its JSON values."""
        key = self.keys[what]
        return config[key] if isinstance(config, dict) else getattr(config, key)

    def head_size(self, config) -> int:
        return getattr(config, "attention_head_size", None) or self.read(config, "hidden") // self.read(config, "heads")

    def heads_per_layer(self, config) -> list[int]:
        return list(getattr(config, "heads_per_layer", None) or [self.read(config, "heads")] * self.read(config, "layers"))

    def intermediate_sizes(self, config) -> list[int]:
        return list(getattr(config, "intermediate_sizes", None)
                    or [self.read(config, "intermediate")] * self.read(config, "layers"))

    def has_qa_head(self, model: nn.Module) -> bool:
        return isinstance(getattr(model, "qa_outputs", None), nn.Linear)

    # ------------------------------------------------------------------ student configs
    def unsupported(self, arch) -> list[str]:
        """The student settings of ``arch`` this family cannot build, as ``student.<name>`` strings."""
        refused = []
        if not self.template:
            for name in ("bottleneck_size", "embedding_size"):
                if getattr(arch, name) is not None:
                    refused.append(name)
            if arch.stacked_ffn != 1:
                refused.append("stacked_ffn")
            if arch.vocabulary != "full":
                refused.append("vocabulary")
        if self.qa_dropout_key is None and arch.qa_dropout != 0 and not self.template:
            refused.append("qa_dropout")
        return refused

    def refused_parameters(self, names) -> list[str]:
        """The searched parameters among ``names`` that a student of this family cannot take."""
        refused = []
        if not self.template:
            refused += [n for n in ("bottleneck_size", "embedding_size", "stacked_ffn", "vocabulary") if n in names]
            if self.qa_dropout_key is None and "qa_dropout" in names:
                refused.append("qa_dropout")
        if not self.prunes_heads and "heads_per_layer" in names:
            refused.append("heads_per_layer")
        return refused

    def student_config(self, base: dict, *, layers: int, hidden: int, head_size: int, heads: list[int],
                       intermediate: list[int], hidden_dropout: float, attention_dropout: float,
                       qa_dropout: float, initializer_range: float, provenance: dict) -> PreTrainedConfig:
        """The student's config: ``base`` (the seed's config values) with the student's shape.

        The stock class when every layer keeps all its heads and one FFN width, else the family's
        pruned variant (refused for a family that cannot drop heads).
        """
        values = {k: v for k, v in base.items() if k not in _NOT_INHERITED}
        values.update({
            self.keys["layers"]: layers,
            self.keys["hidden"]: hidden,
            self.keys["heads"]: hidden // head_size,
            self.keys["intermediate"]: intermediate[0],
            self.keys["hidden_dropout"]: float(hidden_dropout),
            self.keys["attention_dropout"]: float(attention_dropout),
            "initializer_range": float(initializer_range),
            **provenance,
        })
        if self.qa_dropout_key is not None:
            values[self.qa_dropout_key] = float(qa_dropout)
        values.pop("model_type", None)  # the config class sets its own
        config_class = self.config_class
        if not (all(k * head_size == hidden for k in heads) and len(set(intermediate)) == 1):
            config_class, _ = self.pruned_classes()
            values.update(heads_per_layer=heads, intermediate_sizes=intermediate, attention_head_size=head_size)
        config = config_class(**values)
        config._attn_implementation = "sdpa" if self.sdpa else "eager"
        return config

    @property
    def sdpa(self) -> bool:
        """Whether the family's attention has PyTorch's fused path (DeBERTa's has not)."""
        return True

    def student_class(self, config):
        """The QA class that builds ``config``."""
        return self.qa_class if type(config) is self.config_class else self.pruned_classes()[1]


# Config values a student never takes from its seed: they describe the seed's own files and code.
_NOT_INHERITED = ("architectures", "auto_map", "_name_or_path", "transformers_version", "torch_dtype", "dtype",
                  "heads_per_layer", "intermediate_sizes", "attention_head_size", "_attn_implementation",
                  "attn_implementation", "kept_heads", "seeded_from", "seed_checkpoint", "id2label", "label2id")
