"""BERT, and the pruned / template BERT that ``models.pruned_bert`` adds (MiniLM is a BERT)."""

from __future__ import annotations

from dataclasses import dataclass

from transformers import BertConfig, BertForQuestionAnswering, BertModel

from paretodistill.models.families.base import Family
from paretodistill.models.pruned_bert import MODEL_TYPE, PrunedBertConfig, PrunedBertForQuestionAnswering


@dataclass(frozen=True)
class BertFamily(Family):
    """The one family with AutoDistill's template parts and a QA-head dropout (both in the pruned class)."""

    name: str = "bert"
    model_types: tuple[str, ...] = ("bert", MODEL_TYPE)
    config_class: type = BertConfig
    qa_class: type = BertForQuestionAnswering
    base_class: type = BertModel
    pruned: tuple[type, type] | None = (PrunedBertConfig, PrunedBertForQuestionAnswering)
    template: bool = True

    def student_config(self, base: dict, *, template: dict | None = None, qa_dropout: float = 0.0, **shape):
        """Plain BERT when it can describe the student, else :class:`PrunedBertConfig`, which alone
        has the template parts (``template``: its fields) and a QA-head dropout."""
        defaults = {"stacked_ffn": 1, "vocabulary": "full"}  # the template parts when off, as are the None ones
        template = {k: v for k, v in (template or {}).items() if v is not None and v != defaults.get(k)}
        config = super().student_config(base, qa_dropout=qa_dropout, **shape)
        if type(config) is BertConfig and not template and qa_dropout == 0:
            return config
        values = config.to_dict()
        values.pop("model_type", None)
        values.update(heads_per_layer=shape["heads"], intermediate_sizes=shape["intermediate"],
                      attention_head_size=shape["head_size"], qa_dropout=float(qa_dropout), **template)
        config = PrunedBertConfig(**values)
        config._attn_implementation = "sdpa"
        return config
