"""ELECTRA (the discriminator): BERT's layers behind embeddings that may be narrower than the hidden width."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn
from transformers import ElectraConfig, ElectraForQuestionAnswering, ElectraModel

from paretodistill.models.families.base import EmbeddingParts, Family
from paretodistill.models.pruned_encoders import PrunedElectraConfig, PrunedElectraForQuestionAnswering


@dataclass(frozen=True)
class ElectraFamily(Family):
    name: str = "electra"
    model_types: tuple[str, ...] = ("electra", PrunedElectraConfig.model_type)
    config_class: type = ElectraConfig
    qa_class: type = ElectraForQuestionAnswering
    base_class: type = ElectraModel
    pruned: tuple[type, type] | None = (PrunedElectraConfig, PrunedElectraForQuestionAnswering)

    def embedding_parts(self, model: nn.Module) -> EmbeddingParts:
        encoder = self.encoder(model)
        embeddings = encoder.embeddings
        return EmbeddingParts(
            words=embeddings.word_embeddings, positions=embeddings.position_embeddings,
            token_types=embeddings.token_type_embeddings, norm=embeddings.LayerNorm,
            projection=getattr(encoder, "embeddings_project", None),
        )

    def student_config(self, base: dict, **shape):
        """ELECTRA's embeddings keep the seed's ``embedding_size`` (its table is not the hidden width)."""
        base = {**base, "embedding_size": base.get("embedding_size") or shape["hidden"]}
        return super().student_config(base, **shape)
