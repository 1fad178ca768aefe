"""RoBERTa: BERT's layout, one token type, positions counted from the padding id + 1."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn
from transformers import RobertaConfig, RobertaForQuestionAnswering, RobertaModel

from paretodistill.models.families.base import EmbeddingParts, Family
from paretodistill.models.pruned_encoders import PrunedRobertaConfig, PrunedRobertaForQuestionAnswering


@dataclass(frozen=True)
class RobertaFamily(Family):
    name: str = "roberta"
    model_types: tuple[str, ...] = ("roberta", PrunedRobertaConfig.model_type)
    config_class: type = RobertaConfig
    qa_class: type = RobertaForQuestionAnswering
    base_class: type = RobertaModel
    pruned: tuple[type, type] | None = (PrunedRobertaConfig, PrunedRobertaForQuestionAnswering)

    def embedding_parts(self, model: nn.Module) -> EmbeddingParts:
        embeddings = self.encoder(model).embeddings
        return EmbeddingParts(
            words=embeddings.word_embeddings, positions=embeddings.position_embeddings,
            token_types=embeddings.token_type_embeddings, norm=embeddings.LayerNorm,
            position_offset=embeddings.padding_idx + 1,
        )
