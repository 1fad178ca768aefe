"""What a weak student has learned that its thresholded score hides: candidate flash metrics.

At flash budgets most students' best validation threshold is "answer nothing", so exact and F1 at
that threshold equal the floor for all of them and rank nothing. These look beneath the threshold:

* ``span_f1``: F1 on the answerable questions when the student always answers (span finding);
* ``no_answer_auc``: how well its no-answer score separates unanswerable from answerable questions,
  whatever the threshold (0.5 is chance);
* ``teacher_kl``: KL(teacher || student) of the start and end distributions over the validation
  windows, the distillation loss on held-out text (lower is better).

Which one predicts the regular stage best is measured on flash/regular pairs (docs/results.md#the-real-search),
not assumed here.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from paretodistill.data.squad import SquadData
from paretodistill.evaluation.postprocess import Answers
from paretodistill.evaluation.squad_metric import evaluate


def span_f1(data: SquadData, answers: Answers) -> float:
    """HasAns F1 of the best non-empty spans, never abstaining."""
    return float(evaluate(list(data.articles), answers.best_span).metrics.get("HasAns_f1", 0.0))


def no_answer_auc(data: SquadData, answers: Answers) -> float:
    """Area under the ROC curve of the no-answer score for "this question is unanswerable" (ties count half)."""
    labels = np.array([example.is_impossible for example in data.examples])
    if labels.all() or not labels.any():
        return float("nan")
    scores = np.array([answers.na_score[example.id] for example in data.examples])
    ranks = rankdata(scores)
    positives = labels.sum()
    negatives = len(labels) - positives
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def window_kl(student: tuple[np.ndarray, np.ndarray], teacher: tuple[np.ndarray, np.ndarray],
              row_starts: np.ndarray) -> float:
    """Mean over windows of KL(teacher || student) of the start and end softmaxes (averaged), at T = 1.

    The logits are flat arrays aligned with the features' tokens; ``row_starts`` delimits windows.
    """
    starts = np.asarray(row_starts[:-1])
    total = 0.0
    for s, t in zip(student, teacher):
        log_p_student = _log_softmax_rows(np.asarray(s, np.float64), starts)
        log_p_teacher = _log_softmax_rows(np.asarray(t, np.float64), starts)
        per_token = np.exp(log_p_teacher) * (log_p_teacher - log_p_student)
        total += float(np.add.reduceat(per_token, starts).mean())
    return total / 2


def _log_softmax_rows(logits: np.ndarray, starts: np.ndarray) -> np.ndarray:
    lengths = np.diff(np.append(starts, len(logits)))
    shifted = logits - np.repeat(np.maximum.reduceat(logits, starts), lengths)
    return shifted - np.repeat(np.log(np.add.reduceat(np.exp(shifted), starts)), lengths)
