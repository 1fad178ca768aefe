"""DeBERTa-v2 and -v3: relative positions shared by all layers, and attention that cannot drop heads."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn
from transformers import DebertaV2Config, DebertaV2ForQuestionAnswering, DebertaV2Model

from paretodistill.models.families.base import EmbeddingParts, Family, LayerParts


@dataclass(frozen=True)
class DebertaV2Family(Family):
    """Disentangled attention projects the relative-position table with each layer's query and key
    linears and reshapes it by the layer's head count: a layer keeps all its heads or none. Its
    attention has no fused (sdpa) path in transformers."""

    name: str = "deberta-v2"
    model_types: tuple[str, ...] = ("deberta-v2",)
    config_class: type = DebertaV2Config
    qa_class: type = DebertaV2ForQuestionAnswering
    base_class: type = DebertaV2Model

    @property
    def sdpa(self) -> bool:
        return False

    def layer_parts(self, layer: nn.Module) -> LayerParts:
        attention = layer.attention
        return LayerParts(
            attention=attention.self, query=attention.self.query_proj, key=attention.self.key_proj,
            value=attention.self.value_proj, attention_output=attention.output.dense,
            attention_norm=attention.output.LayerNorm, ffn_input=layer.intermediate.dense,
            ffn_output=layer.output.dense, output_norm=layer.output.LayerNorm,
        )

    def embedding_parts(self, model: nn.Module) -> EmbeddingParts:
        embeddings = self.encoder(model).embeddings
        return EmbeddingParts(
            words=embeddings.word_embeddings, positions=embeddings.position_embeddings,
            token_types=embeddings.token_type_embeddings, norm=embeddings.LayerNorm,
            projection=embeddings.embed_proj,
        )

    def extra_modules(self, model: nn.Module) -> dict[str, nn.Module]:
        encoder = self.encoder(model).encoder
        return {name: module for name in ("rel_embeddings", "LayerNorm", "conv")
                if isinstance(module := getattr(encoder, name, None), nn.Module)}
