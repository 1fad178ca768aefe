"""The encoder families a teacher, a seed and a student may be, each behind one adapter.

Everything that differs between BERT, DistilBERT, RoBERTa, ELECTRA and DeBERTa-v2 (where the
layers are, what their linears are called, which config keys hold the shape, which searched
parameters the family can take) is answered by its :class:`~paretodistill.models.families.base.Family`;
the student builder, importance scoring, layer-wise losses and export ask the adapter and never
test a ``model_type``. :func:`family_of` finds the adapter of a model, a config or a checkpoint's
``config.json`` values.
"""

from __future__ import annotations

from paretodistill.errors import ModelMismatchError
from paretodistill.models.families.base import EmbeddingParts, Family, LayerParts
from paretodistill.models.families.bert import BertFamily
from paretodistill.models.families.deberta_v2 import DebertaV2Family
from paretodistill.models.families.distilbert import DistilBertFamily
from paretodistill.models.families.electra import ElectraFamily
from paretodistill.models.families.roberta import RobertaFamily

FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (BertFamily(), DistilBertFamily(), RobertaFamily(), ElectraFamily(), DebertaV2Family())
}
_BY_MODEL_TYPE = {model_type: family for family in FAMILIES.values() for model_type in family.model_types}
MODEL_TYPES = tuple(_BY_MODEL_TYPE)

__all__ = ["FAMILIES", "MODEL_TYPES", "EmbeddingParts", "Family", "LayerParts", "family_named", "family_of"]


def family_of(source, what: str = "model") -> Family:
    """The adapter of a model, a transformers config, or a ``config.json``'s values (a dict)."""
    config = getattr(source, "config", source)
    model_type = config.get("model_type") if isinstance(config, dict) else getattr(config, "model_type", None)
    if model_type not in _BY_MODEL_TYPE:
        raise ModelMismatchError(
            f"the {what} is a {model_type!r} model; paretodistill builds students of the families "
            f"{', '.join(FAMILIES)} (model types {', '.join(MODEL_TYPES)})"
        )
    return _BY_MODEL_TYPE[model_type]


def family_named(name: str) -> Family:
    """The adapter called ``name`` (``bert``, ``distilbert``, ``roberta``, ``electra``, ``deberta-v2``)."""
    if name not in FAMILIES:
        raise ModelMismatchError(f"unknown model family {name!r}; expected one of {', '.join(FAMILIES)}")
    return FAMILIES[name]
