"""Span losses: hard targets (gold start/end) and soft targets (the teacher's distributions).

Padding positions are masked out before any softmax, so a batch's padding never takes probability
mass: a window gives the same loss whatever it was batched with.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

MASKED = -1e4  # finite, so that 0 * masked stays 0 in the KL sum


def masked_logits(logits: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Float32 logits with padding positions pushed to a large negative value."""
    return logits.float().masked_fill(attention_mask == 0, MASKED)


def hard_loss(
    start_logits: torch.Tensor,
    end_logits: torch.Tensor,
    start_positions: torch.Tensor,
    end_positions: torch.Tensor,
    attention_mask: torch.Tensor,
) -> torch.Tensor:
    """Mean of the start and end cross-entropies against the gold token positions (CLS = no answer)."""
    start = F.cross_entropy(masked_logits(start_logits, attention_mask), start_positions)
    end = F.cross_entropy(masked_logits(end_logits, attention_mask), end_positions)
    return (start + end) / 2


def soft_loss(
    student_start: torch.Tensor,
    student_end: torch.Tensor,
    teacher_start: torch.Tensor,
    teacher_end: torch.Tensor,
    attention_mask: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """KL(teacher || student) of the temperature-softened start and end distributions, times T².

    The T² factor (Hinton et al., 2015) keeps the gradient scale of the soft term independent of
    the temperature, so the soft and hard weights mean the same thing at every temperature.
    """

    def kl(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
        student_log = F.log_softmax(masked_logits(student, attention_mask) / temperature, dim=-1)
        teacher_log = F.log_softmax(masked_logits(teacher, attention_mask) / temperature, dim=-1)
        return F.kl_div(student_log, teacher_log, log_target=True, reduction="batchmean")

    return (kl(student_start, teacher_start) + kl(student_end, teacher_end)) / 2 * temperature**2
