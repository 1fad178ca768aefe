"""Which heads and FFN neurons of the teacher matter: the scores importance pruning keeps by.

Michel et al. (2019, "Are Sixteen Heads Really Better than One?") score a head by the expected
sensitivity of the loss to a gate on its output, ``I_h = E |dL / d xi_h|``; DynaBERT (Hou et al.,
2020) scores FFN neurons the same way. Here every head's context vector and every neuron's
activation is multiplied by a gate fixed at 1 (forward pre-hooks on the attention-output and
FFN-output linear layers, public ``torch.nn.Module`` hooks), the teacher's own QA loss on labelled
windows is differentiated with respect to the gates only, and ``|gradient|`` is averaged over the
batches. The student builder then keeps each layer's highest-scoring units instead of a random
subset: a head the teacher's answers depend on is not thrown away by chance.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel

from paretodistill.errors import ModelMismatchError
from paretodistill.models.families import family_of


@dataclass(frozen=True)
class UnitImportance:
    """One score per attention head and per FFN neuron of each teacher layer (higher: keep)."""

    heads: tuple[tuple[float, ...], ...]
    neurons: tuple[tuple[float, ...], ...]

    def top(self, what: str, layer: int, keep: int) -> list[int]:
        """The ``keep`` highest-scoring units of ``layer`` (``what``: ``"heads"`` or ``"ffn"``), sorted
        by index; ties go to the lower index, so the choice is deterministic."""
        scores = (self.heads if what == "heads" else self.neurons)[layer]
        if keep >= len(scores):
            return list(range(len(scores)))
        ranked = sorted(range(len(scores)), key=lambda unit: (-scores[unit], unit))
        return sorted(ranked[:keep])


def measure_importance(teacher: PreTrainedModel, batches: Iterable[Mapping[str, torch.Tensor]]) -> UnitImportance:
    """Gate-gradient importance of the teacher's heads and neurons on labelled QA batches.

    Each batch holds the model inputs and ``start_positions`` / ``end_positions``. The teacher is
    left unchanged (eval mode, no weight gradients, hooks removed); dropout is off while scoring.
    """
    family = family_of(teacher, "teacher")
    layers = family.layers(teacher)
    head_gates, neuron_gates, handles = [], [], []
    for layer in layers:
        parts = family.layer_parts(layer)
        attention_out, ffn_out = parts.attention_output, parts.ffn_output
        width, neurons = attention_out.in_features, ffn_out.in_features
        head_size = parts.head_size  # per layer: a pruned layer keeps fewer heads of the same size
        head_gate = torch.ones(width // head_size, requires_grad=True, device=attention_out.weight.device)
        neuron_gate = torch.ones(neurons, requires_grad=True, device=ffn_out.weight.device)
        handles.append(attention_out.register_forward_pre_hook(_gated(head_gate, head_size)))
        handles.append(ffn_out.register_forward_pre_hook(_gated(neuron_gate, 1)))
        head_gates.append(head_gate)
        neuron_gates.append(neuron_gate)
    gates = head_gates + neuron_gates
    totals = [torch.zeros_like(gate) for gate in gates]
    was_training = teacher.training
    teacher.eval()
    count = 0
    try:
        for batch in batches:
            loss = teacher(**{name: value.to(teacher.device) for name, value in batch.items()}).loss
            for total, gradient in zip(totals, torch.autograd.grad(loss, gates), strict=True):
                total += gradient.abs()
            count += 1
    finally:
        for handle in handles:
            handle.remove()
        teacher.train(was_training)
    if count == 0:
        raise ModelMismatchError("importance pruning needs at least one labelled batch to score the teacher")
    scores = [tuple((total / count).tolist()) for total in totals]
    return UnitImportance(heads=tuple(scores[: len(layers)]), neurons=tuple(scores[len(layers):]))


def _gated(gate: torch.Tensor, unit_width: int):
    """A pre-hook multiplying each ``unit_width``-wide slice of the layer's input by its gate."""
    def hook(_module, inputs):
        return (inputs[0] * gate.repeat_interleave(unit_width), *inputs[1:])
    return hook
