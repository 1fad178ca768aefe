"""DistilBERT: no token types, its own names for the shape and the layers, and a native QA dropout."""

from __future__ import annotations

from dataclasses import dataclass, field

from torch import nn
from transformers import DistilBertConfig, DistilBertForQuestionAnswering, DistilBertModel

from paretodistill.models.families.base import EmbeddingParts, Family, LayerParts
from paretodistill.models.pruned_encoders import PrunedDistilBertConfig, PrunedDistilBertForQuestionAnswering

DISTILBERT_KEYS = {
    "layers": "n_layers",
    "heads": "n_heads",
    "hidden": "dim",
    "intermediate": "hidden_dim",
    "hidden_dropout": "dropout",
    "attention_dropout": "attention_dropout",
    "activation": "activation",
}


@dataclass(frozen=True)
class DistilBertFamily(Family):
    name: str = "distilbert"
    model_types: tuple[str, ...] = ("distilbert", PrunedDistilBertConfig.model_type)
    config_class: type = DistilBertConfig
    qa_class: type = DistilBertForQuestionAnswering
    base_class: type = DistilBertModel
    pruned: tuple[type, type] | None = (PrunedDistilBertConfig, PrunedDistilBertForQuestionAnswering)
    keys: dict[str, str] = field(default_factory=lambda: dict(DISTILBERT_KEYS))
    qa_dropout_key: str | None = "qa_dropout"

    def layers(self, model: nn.Module) -> list[nn.Module]:
        return list(self.encoder(model).transformer.layer)

    def layer_parts(self, layer: nn.Module) -> LayerParts:
        attention = layer.attention
        return LayerParts(
            attention=attention, query=attention.q_lin, key=attention.k_lin, value=attention.v_lin,
            attention_output=attention.out_lin, attention_norm=layer.sa_layer_norm,
            ffn_input=layer.ffn.lin1, ffn_output=layer.ffn.lin2, output_norm=layer.output_layer_norm,
        )

    def embedding_parts(self, model: nn.Module) -> EmbeddingParts:
        embeddings = self.encoder(model).embeddings
        return EmbeddingParts(words=embeddings.word_embeddings, positions=embeddings.position_embeddings,
                              token_types=None, norm=embeddings.LayerNorm)
