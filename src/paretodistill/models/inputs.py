"""Which of the tokenizer's inputs a model takes.

Every window is stored with input ids, an attention mask and token types, whatever the model:
BERT, ELECTRA and DeBERTa-v2 read token types, RoBERTa reads them but has one type (the windows of a
RoBERTa tokenizer hold zeros), and DistilBERT has no token-type embedding at all: its ``forward``
does not take them. A call passes a model only what its ``forward`` names.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def input_names(model) -> tuple[str, ...]:
    """The names of :data:`MODEL_INPUTS` that ``model.forward`` declares, in that order.

    A wrapper whose ``forward`` declares none of them (``forward(**inputs)``, passing everything on
    to the model it wraps) takes all of them: it is the wrapped model's call that chooses.
    """
    declared = inspect.signature(model.forward).parameters
    if "input_ids" not in declared:
        return MODEL_INPUTS
    return tuple(name for name in MODEL_INPUTS if name in declared)


def select_inputs(model, inputs: Mapping) -> dict:
    """``inputs`` less the model inputs ``model`` does not take (other keys, like labels, pass)."""
    names = input_names(model)
    return {key: value for key, value in inputs.items() if key not in MODEL_INPUTS or key in names}
