"""Distillation losses, shared by task-specific (``objective``) and task-agnostic (``pretrain``) distillation.

* span losses: hard targets (gold start/end) and soft targets (the teacher's distributions);
  padding positions are masked out before any softmax, so a batch's padding never takes
  probability mass: a window gives the same loss whatever it was batched with;
* :func:`distillation_kl`: KL(teacher || student) of temperature-softened distributions, x T², over
  any rows of logits (start/end positions, or a vocabulary at masked tokens);
* the no-answer decision: :func:`null_margin` (a window's CLS score minus its best span score, the
  quantity the no-answer threshold cuts) and :func:`margin_loss` between student and teacher margins;
* :func:`cosine_loss`: DistilBERT's cosine term between hidden states;
* layer-wise transfer between paired layers (:func:`layer_pairs`): :func:`hidden_state_loss`
  (MSE, through a width projection when widths differ) and :func:`attention_map_loss` (KL of
  attention distributions).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from paretodistill.evaluation.postprocess import MAX_ANSWER_LENGTH
from paretodistill.models.student import layer_map

MASKED = -1e4  # finite, so that 0 * masked stays 0 in the KL sum
ATTENTION_FLOOR = 1e-8  # log of a zero student probability (masked key, dropped entry) stays finite


def masked_logits(logits: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Float32 logits with padding positions pushed to a large negative value."""
    return logits.float().masked_fill(attention_mask == 0, MASKED)


def hard_loss(
    start_logits: torch.Tensor,
    end_logits: torch.Tensor,
    start_positions: torch.Tensor,
    end_positions: torch.Tensor,
    attention_mask: torch.Tensor,
    no_answer_weight: float = 1.0,
) -> torch.Tensor:
    """Mean of the start and end cross-entropies against the gold token positions (CLS = no answer).

    ``no_answer_weight`` weighs the windows whose target is CLS apart from the rest (a weighted mean,
    so the loss keeps its scale): the decision whether to answer can be taught harder than the span.
    """
    start = F.cross_entropy(masked_logits(start_logits, attention_mask), start_positions, reduction="none")
    end = F.cross_entropy(masked_logits(end_logits, attention_mask), end_positions, reduction="none")
    per_window = (start + end) / 2
    if no_answer_weight == 1.0:
        return per_window.mean()
    weights = torch.where(start_positions == 0, no_answer_weight, 1.0).to(per_window.dtype)
    return (per_window * weights).sum() / weights.sum()


def soft_loss(
    student_start: torch.Tensor,
    student_end: torch.Tensor,
    teacher_start: torch.Tensor,
    teacher_end: torch.Tensor,
    attention_mask: torch.Tensor,
    temperature: float,
    window_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """KL(teacher || student) of the temperature-softened start and end distributions, times T²
    (:func:`distillation_kl`), so the soft and hard weights mean the same thing at every temperature.

    ``window_weights`` (one per window): a weighted mean over the windows instead of the plain one,
    as :func:`hard_loss` weighs its windows (see :func:`teacher_no_answer_weights`)."""

    def kl(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        return distillation_kl(masked_logits(student, attention_mask), masked_logits(teacher, attention_mask), temperature,
                               window_weights)

    return (kl(student_start, teacher_start) + kl(student_end, teacher_end)) / 2


def teacher_no_answer_weights(teacher_start: torch.Tensor, teacher_end: torch.Tensor, attention_mask: torch.Tensor,
                              no_answer_weight: float) -> torch.Tensor:
    """``no_answer_weight`` for each window where the teacher's most likely start AND end are both
    [CLS] (position 0: the teacher says "no answer here"), 1 for the others.

    The soft loss's counterpart of :func:`hard_loss`'s weighting: gold says which windows are
    unanswerable, the teacher's argmax says it for the soft targets."""
    start = masked_logits(teacher_start, attention_mask).argmax(-1)
    end = masked_logits(teacher_end, attention_mask).argmax(-1)
    no_answer = (start == 0) & (end == 0)
    return torch.where(no_answer, no_answer_weight, 1.0).float()


def distillation_kl(student: torch.Tensor, teacher: torch.Tensor, temperature: float,
                    row_weights: torch.Tensor | None = None) -> torch.Tensor:
    """KL(teacher || student) of the softened distributions over the last dimension, mean over rows, x T².

    The T² factor (Hinton et al., 2015) keeps the gradient scale of a soft term independent of
    the temperature, so its weight means the same thing at every temperature. ``row_weights``
    (the rows' shape): a weighted mean over the rows (sum of weight x KL / sum of weights).
    """
    student_log = F.log_softmax(student.float() / temperature, dim=-1)
    teacher_log = F.log_softmax(teacher.float() / temperature, dim=-1)
    if row_weights is None:
        return F.kl_div(student_log.flatten(0, -2), teacher_log.flatten(0, -2), log_target=True,
                        reduction="batchmean") * temperature**2
    per_row = F.kl_div(student_log, teacher_log, log_target=True, reduction="none").sum(-1)
    weights = row_weights.to(per_row.dtype)
    return (per_row * weights).sum() / weights.sum() * temperature**2


# ---------------------------------------------------------------- the no-answer decision
def null_margin(start_logits: torch.Tensor, end_logits: torch.Tensor, span_mask: torch.Tensor,
                max_answer_length: int = MAX_ANSWER_LENGTH) -> tuple[torch.Tensor, torch.Tensor]:
    """Per window: (CLS start + CLS end) - the best start[s] + end[e] over valid spans, and whether
    the window has a valid span at all.

    A span is valid where ``s <= e < s + max_answer_length`` and both tokens are in ``span_mask``
    (context tokens; position 0, the CLS, never is one): what ``evaluation.postprocess`` scores,
    without its n-best cut. Vectorised over a band: ``(batch, length, max_answer_length)`` scores
    for end offsets 0..max_answer_length-1, masked, maximised. The max is differentiable (its
    gradient goes to the best span), so the same function gives the teacher's target and the
    student's prediction. A window without a valid span gets margin 0 and ``False``.
    """
    start, end = start_logits.float(), end_logits.float()
    allowed = span_mask.bool().clone()
    allowed[:, 0] = False
    band = min(max_answer_length, start.shape[1])
    end_band = F.pad(end, (0, band - 1)).unfold(1, band, 1)  # [b, s, k] = end[b, s + k]
    allowed_band = (F.pad(allowed.float(), (0, band - 1)).unfold(1, band, 1) > 0) & allowed.unsqueeze(-1)
    scores = (start.unsqueeze(-1) + end_band).masked_fill(~allowed_band, MASKED)
    best = scores.flatten(1).amax(-1)
    has_span = allowed_band.flatten(1).any(-1)
    margin = start[:, 0] + end[:, 0] - best
    return torch.where(has_span, margin, torch.zeros_like(margin)), has_span


def margin_loss(student_margin: torch.Tensor, teacher_margin: torch.Tensor, has_span: torch.Tensor) -> torch.Tensor:
    """Smooth-L1 (Huber, beta 1) between student and teacher null margins, mean over the windows with a span.

    Smooth-L1 rather than MSE: teacher margins spread over tens of logits, and the windows far
    from the decision (a clear answer, a clear "no") would dominate a squared loss; Huber's
    gradient is bounded there and quadratic within a logit of the student's target, where the
    decision is made. No temperature: the margin is compared in raw logits, the units the
    no-answer threshold cuts, so ``margin_weight`` means the same at every temperature.
    """
    if not bool(has_span.any()):
        return student_margin.sum() * 0.0
    return F.smooth_l1_loss(student_margin[has_span], teacher_margin[has_span].to(student_margin.dtype), beta=1.0)


def cosine_loss(student: torch.Tensor, teacher: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over real tokens of 1 - cos(student state, teacher state): DistilBERT's L_cos, which
    aligns the directions of the hidden states and leaves their norms free."""
    cosine = F.cosine_similarity(student.float(), teacher.float(), dim=-1)
    weights = mask.float()
    return ((1 - cosine) * weights).sum() / weights.sum()


# ---------------------------------------------------------------- layer-wise transfer
@dataclass(frozen=True)
class LayerPair:
    student_layer: int
    teacher_layer: int
    teacher_heads: tuple[int, ...] | None  # teacher head for each student head; None: compare head means


def layer_pairs(student_config, teacher_config) -> list[LayerPair]:
    """The (student layer, teacher layer) pairs of layer-wise transfer, bottom first (see ``objective``)."""
    mapping = layer_map(teacher_config.num_hidden_layers, student_config.num_hidden_layers,
                        getattr(student_config, "layer_selection", "spread"))
    # kept heads index the seed's heads: the teacher's only when the student was seeded from it
    from_teacher = getattr(student_config, "seed_checkpoint", None) is None
    seeded_from = (getattr(student_config, "seeded_from", None) if from_teacher else None) or [None] * len(mapping)
    kept_heads = (getattr(student_config, "kept_heads", None) if from_teacher else None) or [None] * len(mapping)
    student_heads = getattr(student_config, "heads_per_layer", None) or [student_config.num_attention_heads] * len(mapping)
    teacher_heads = getattr(teacher_config, "heads_per_layer", None) or (
        [teacher_config.num_attention_heads] * teacher_config.num_hidden_layers
    )
    pairs = []
    for i, t in enumerate(mapping):
        if t is None:
            continue
        if seeded_from[i] == t and kept_heads[i] is not None:
            heads = tuple(int(h) for h in kept_heads[i])
        elif student_heads[i] == teacher_heads[t]:
            heads = tuple(range(student_heads[i]))
        else:
            heads = None
        pairs.append(LayerPair(i, t, heads))
    return pairs


def hidden_state_loss(student_states, teacher_states, mask: torch.Tensor, pairs: list[LayerPair],
                      projection: nn.Module | None = None) -> torch.Tensor:
    """Mean over pairs of the per-token MSE of layer outputs (``hidden_states[i + 1]`` is layer i's),
    the student's through ``projection`` (TinyBERT's W_h) when the widths differ."""
    weights = mask.unsqueeze(-1).float()
    losses = []
    for pair in pairs:
        student = student_states[pair.student_layer + 1]
        if projection is not None:
            student = projection(student)
        difference = (student.float() - teacher_states[pair.teacher_layer + 1].float()) ** 2
        losses.append((difference * weights).sum() / (weights.sum() * difference.shape[-1]))
    return torch.stack(losses).mean()


def attention_map_loss(student_maps, teacher_maps, mask: torch.Tensor, pairs: list[LayerPair]) -> torch.Tensor:
    """Mean over pairs of KL(teacher || student) per head and real query token."""
    query_weights = mask[:, None, :].float()  # (batch, 1, query)
    losses = []
    for pair in pairs:
        student = student_maps[pair.student_layer].float()
        teacher = teacher_maps[pair.teacher_layer].float()
        if pair.teacher_heads is not None:
            teacher = teacher[:, list(pair.teacher_heads)]
        else:
            student, teacher = student.mean(1, keepdim=True), teacher.mean(1, keepdim=True)
        kl = (torch.xlogy(teacher, teacher) - teacher * student.clamp_min(ATTENTION_FLOOR).log()).sum(-1)
        losses.append((kl * query_weights).sum() / (query_weights.sum() * kl.shape[1]))
    return torch.stack(losses).mean()


def width_projection(student_config, teacher_config) -> nn.Linear | None:
    """``Linear(student width, teacher width)`` for hidden-state transfer between different widths
    (None at equal widths), initialised from the student's pruning seed so a trial is repeatable."""
    if student_config.hidden_size == teacher_config.hidden_size:
        return None
    projection = nn.Linear(student_config.hidden_size, teacher_config.hidden_size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(getattr(student_config, "pruning_seed", 0))
        projection.reset_parameters()
    return projection
