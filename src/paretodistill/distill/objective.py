"""The distillation loss of one training step.

    loss = soft_weight      * KL(teacher || student) of the softened start/end distributions, x T²
         + hard_weight      * cross-entropy against the gold start/end tokens
         + margin_weight    * smooth-L1 between student and teacher null-score margins (optional)
         + hidden_weight    * layer-wise MSE of hidden states          (optional)
         + attention_weight * layer-wise KL of attention distributions (optional)

Soft targets come from the cached teacher logits (``teacher_cache``): the teacher does not run.

The no-answer decision (whether to answer) is what limits the students, and soft targets teach
spans rather than it. Two levers aim at it, both off by default:

* ``margin_weight``: each window's null margin, (CLS start + CLS end logit) minus the best valid
  span's start + end logit (``losses.null_margin``), is the quantity the no-answer threshold cuts;
  the student's margin is pulled towards the teacher's (read from the same cached logits);
* ``no_answer_weight``: in the hard loss, the windows whose gold target is CLS (an unanswerable
  question, or an answer outside the window) weigh ``no_answer_weight`` against 1 for the others,
  as the teacher recipe's option does (``hard_loss``); in the soft loss, the windows where the
  teacher's most likely start and end are both CLS do (``teacher_no_answer_weights``). Both are
  weighted means, so each loss keeps its scale; the margin and layer-wise terms are not weighted.

Layer-wise transfer (only when ``hidden_weight`` or ``attention_weight`` > 0) pairs student layer
``i`` with teacher layer ``layer_map(teacher_layers, student_layers)[i]``, the layer it was
seeded from; student layers with no teacher layer (a deeper student's extra top layers) are not
paired (``layer_selection`` chooses the teacher layers, as for seeding). For each pair:

* hidden: MSE between the student layer's output and the teacher layer's output, over real
  (non-padding) tokens. When the widths differ, the student's states go through one learned
  ``Linear(student_width, teacher_width)`` shared by all layers (TinyBERT's W_h); it is trained
  with the student (it is part of ``DistillationObjective.model``) and discarded afterwards.
* attention: KL(teacher || student) between attention distributions over the keys, per head and
  real query token (MiniLM style). Heads are paired as follows: a student layer seeded from its
  teacher layer with the same width pairs each student head with the teacher head it was copied
  from (``config.kept_heads``), which covers pruned layers exactly; otherwise heads pair by index
  when the counts match; otherwise (different head counts and no known correspondence) both
  sides are averaged over heads and the head-mean maps are compared. With attention dropout the
  student's returned probabilities are post-dropout: dropped entries add a constant with no
  gradient, the kept ones get the right gradient.

Cost: layer-wise transfer needs the teacher's hidden states or attentions, so the teacher runs
forward (no backward) at every step, about a third of a same-size model's training step on top
of the student's; attention transfer also needs attention probabilities, which the fused sdpa
kernel does not return, so student and teacher switch to eager attention, which materialises
the (length x length) maps and is several times slower. Logit distillation alone pays neither.

Progressive schedule (``progressive=True``): during the first epoch the layer pairs are switched
on bottom-up. The epoch is cut into as many equal stages as there are pairs, and stage ``k``
(0-based) trains the bottom ``k + 1`` pairs; from the second epoch on all pairs are trained. The
layer-wise terms are means over the active pairs, so their weight means the same at every stage.
The stage is counted from this objective's own calls (one per training step): a run resumed from
a saved state restarts the schedule.
"""

from __future__ import annotations

import torch
from torch import nn

from paretodistill.config import DistillSettings
from paretodistill.distill.losses import (
    LayerPair,
    attention_map_loss,
    hard_loss,
    hidden_state_loss,
    layer_pairs,
    margin_loss,
    null_margin,
    soft_loss,
    teacher_no_answer_weights,
    width_projection,
)
from paretodistill.distill.teacher_cache import TeacherLogits
from paretodistill.errors import ConfigError
from paretodistill.models.inputs import select_inputs

__all__ = ["DistillationObjective", "DistillationModel", "LayerPair", "layer_pairs", "check_distill_settings",
           "needs_teacher_forward"]


def check_distill_settings(settings: DistillSettings) -> None:
    """Refuse weights that make no sense, or a loss with nothing in it."""
    for name in ("soft_weight", "hard_weight"):
        value = getattr(settings, name)
        if not 0.0 <= value <= 1.0:
            raise ConfigError(f"distillation.{name} must be in [0, 1], got {value}")
    for name in ("hidden_weight", "attention_weight", "margin_weight"):
        if getattr(settings, name) < 0:
            raise ConfigError(f"distillation.{name} must be >= 0, got {getattr(settings, name)}")
    if not settings.temperature > 0:
        raise ConfigError(f"distillation.temperature must be > 0, got {settings.temperature}")
    if not settings.no_answer_weight > 0:
        raise ConfigError(f"distillation.no_answer_weight must be > 0, got {settings.no_answer_weight}")
    if not any(getattr(settings, n) > 0 for n in ("soft_weight", "hard_weight", "hidden_weight", "attention_weight",
                                                  "margin_weight")):
        raise ConfigError(
            "soft_weight, hard_weight and margin_weight are all 0 and there is no layer-wise transfer: the loss would be empty"
        )


def needs_teacher_forward(settings: DistillSettings) -> bool:
    """Whether every step must run the teacher (layer-wise transfer), not only read cached logits."""
    return settings.hidden_weight > 0 or settings.attention_weight > 0


class DistillationModel(nn.Module):
    """The student plus what layer-wise transfer trains alongside it (the width projection).

    This is the module the training loop optimises; it asks the student for hidden states or
    attentions only when a layer-wise term needs them.
    """

    def __init__(self, student: nn.Module, projection: nn.Module | None, hidden: bool, attentions: bool):
        super().__init__()
        self.student = student
        self.projection = projection
        self.output_hidden_states = hidden
        self.output_attentions = attentions

    def forward(self, **inputs):
        return self.student(
            **select_inputs(self.student, inputs), output_hidden_states=self.output_hidden_states, output_attentions=self.output_attentions
        )


class DistillationObjective:
    """``loss_function(outputs, batch)`` for ``training.loop.train``; train ``objective.model``.

    ``model`` is the student itself for logit distillation, or a :class:`DistillationModel`
    around it for layer-wise transfer. Call :meth:`finish` after training to switch the student
    back to sdpa attention if transfer had switched it to eager.
    """

    def __init__(
        self,
        student: nn.Module,
        settings: DistillSettings,
        teacher_logits: TeacherLogits | None = None,
        *,
        teacher: nn.Module | None = None,
        steps_per_epoch: int = 1,
    ):
        check_distill_settings(settings)
        self.settings = settings
        self.student = student
        self.teacher_logits = teacher_logits
        self.teacher = teacher
        self.steps_per_epoch = max(1, steps_per_epoch)
        self.calls = 0  # training steps whose loss was computed: drives the progressive schedule
        self.layerwise = needs_teacher_forward(settings)
        if self.layerwise and teacher is None:
            raise ValueError("layer-wise transfer needs the teacher model: it runs at every step")
        if (settings.soft_weight > 0 or settings.margin_weight > 0) and teacher_logits is None and teacher is None:
            raise ValueError("the soft and margin losses need cached teacher logits (or the teacher)")
        self._original_attention = None
        self.pairs: list[LayerPair] = []
        self.model: nn.Module = student
        if self.layerwise:
            self.pairs = layer_pairs(student.config, teacher.config)
            if not self.pairs:
                raise ConfigError("layer-wise transfer: no student layer has a teacher layer to learn from")
            teacher.eval().requires_grad_(False)
            if settings.attention_weight > 0:  # sdpa returns no attention probabilities
                self._original_attention = student.config._attn_implementation
                student.set_attn_implementation("eager")
                teacher.set_attn_implementation("eager")
            projection = width_projection(student.config, teacher.config) if settings.hidden_weight > 0 else None
            if projection is not None:
                projection.to(next(student.parameters()).device)
            self.model = DistillationModel(
                student, projection, hidden=settings.hidden_weight > 0, attentions=settings.attention_weight > 0
            )

    def finish(self) -> None:
        """Undo the eager-attention switch, so the saved and timed student uses sdpa."""
        if self._original_attention is not None:
            self.student.set_attn_implementation(self._original_attention)
            self.teacher.set_attn_implementation(self._original_attention)
            self._original_attention = None

    def active_pairs(self, step: int) -> list[LayerPair]:
        """The layer pairs trained at ``step`` (all of them unless the progressive schedule is on)."""
        if not self.settings.progressive or step >= self.steps_per_epoch:
            return self.pairs
        stage = (step * len(self.pairs)) // self.steps_per_epoch
        return self.pairs[: stage + 1]

    def __call__(self, outputs, batch) -> torch.Tensor:
        terms = self.terms(outputs, batch)
        self.calls += 1
        return sum(getattr(self.settings, f"{name}_weight") * value for name, value in terms.items())

    def terms(self, outputs, batch) -> dict[str, torch.Tensor]:
        """The unweighted loss terms whose weight is positive, by name (soft, hard, margin, hidden, attention)."""
        s = self.settings
        mask = batch.attention_mask
        terms: dict[str, torch.Tensor] = {}
        teacher_outputs = None
        if self.layerwise:
            with torch.no_grad():
                teacher_outputs = self.teacher(
                    **select_inputs(self.teacher, batch.model_inputs()),
                    output_hidden_states=s.hidden_weight > 0,
                    output_attentions=s.attention_weight > 0,
                )
        if s.soft_weight > 0 or s.margin_weight > 0:
            teacher_start, teacher_end = self.teacher_span_logits(batch, teacher_outputs)
        if s.soft_weight > 0:
            weights = None if s.no_answer_weight == 1.0 else teacher_no_answer_weights(
                teacher_start, teacher_end, mask, s.no_answer_weight)
            terms["soft"] = soft_loss(
                outputs.start_logits, outputs.end_logits, teacher_start, teacher_end, mask, s.temperature, weights
            )
        if s.hard_weight > 0:
            terms["hard"] = hard_loss(
                outputs.start_logits, outputs.end_logits, batch.start_positions, batch.end_positions, mask,
                s.no_answer_weight,
            )
        if s.margin_weight > 0:
            terms["margin"] = self.margin_term(outputs, batch, teacher_start, teacher_end)
        if self.layerwise:
            pairs = self.active_pairs(self.calls)
            if s.hidden_weight > 0:
                terms["hidden"] = hidden_state_loss(outputs.hidden_states, teacher_outputs.hidden_states, mask, pairs,
                                                    self.model.projection)
            if s.attention_weight > 0:
                terms["attention"] = attention_map_loss(outputs.attentions, teacher_outputs.attentions, mask, pairs)
        return terms

    def teacher_span_logits(self, batch, teacher_outputs) -> tuple[torch.Tensor, torch.Tensor]:
        """The teacher's start and end logits of the batch: cached, else from its forward pass (run now if needed)."""
        mask = batch.attention_mask
        if self.teacher_logits is not None:
            start, end = self.teacher_logits.gather(batch.indices, mask.shape[1])
            return start.to(mask.device), end.to(mask.device)
        if teacher_outputs is None:
            with torch.no_grad():
                teacher_outputs = self.teacher(**select_inputs(self.teacher, batch.model_inputs()))
        return teacher_outputs.start_logits, teacher_outputs.end_logits

    @staticmethod
    def margin_term(outputs, batch, teacher_start: torch.Tensor, teacher_end: torch.Tensor) -> torch.Tensor:
        """:func:`margin_loss` of student against teacher null margins, both from :func:`null_margin`
        over the batch's context tokens (every real token but CLS when the batch has no context mask)."""
        span_mask = batch.attention_mask.bool()
        if batch.context_mask is not None:
            span_mask = span_mask & batch.context_mask.bool()
        student, has_span = null_margin(outputs.start_logits, outputs.end_logits, span_mask)
        with torch.no_grad():
            teacher, _ = null_margin(teacher_start, teacher_end, span_mask)
        return margin_loss(student, teacher, has_span)
