"""Running a QA model over features and scoring its answers the official way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from paretodistill.data.features import Features
from paretodistill.data.squad import SquadData
from paretodistill.evaluation.postprocess import Answers, extract_answers
from paretodistill.evaluation.squad_metric import evaluate
from paretodistill.hardware.device import autocast_context
from paretodistill.models.inputs import select_inputs
from paretodistill.training.batching import Batch, collate, evaluation_batches

HEADLINE_METRICS = ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1")


def curve_metrics(metrics: dict) -> dict:
    """The metrics a learning-curve point records, rounded for reading."""
    keys = (*HEADLINE_METRICS, "best_f1", "best_exact")
    return {key: round(float(metrics[key]), 4) for key in keys if key in metrics}


def no_answer_rate(metrics: dict) -> float:
    """What answering "no answer" to every question scores (exact = F1), in percent: the floor a
    SQuAD 2.0 model has to beat. Read from the official metrics' NoAns_total and total."""
    return 100.0 * float(metrics.get("NoAns_total", 0.0)) / float(metrics["total"])


def logits_over_features(
    forward: Callable[[Batch], tuple[np.ndarray, np.ndarray]], features: Features, batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Start and end logits for every feature token, flat and aligned with ``features``' tokens.

    ``forward`` maps a padded batch to (start, end) logits as float32 arrays (batch, width); it is
    the only thing that differs between runtimes (PyTorch here, ONNX Runtime in ``export.runtime``).
    """
    start_logits = np.zeros(features.num_tokens(), dtype=np.float32)
    end_logits = np.zeros(features.num_tokens(), dtype=np.float32)
    for indices in evaluation_batches(features.lengths, batch_size):
        starts, ends = forward(collate(features, indices))
        for row, feature in enumerate(indices):
            span = features.row(int(feature))
            length = span.stop - span.start
            start_logits[span] = starts[row, :length]
            end_logits[span] = ends[row, :length]
    return start_logits, end_logits


@torch.inference_mode()
def predict_logits(
    model: torch.nn.Module, features: Features, batch_size: int = 64, bf16: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Start and end logits of a PyTorch model for every feature token (see ``logits_over_features``)."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()

    def forward(batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        with autocast_context(device, bf16):
            outputs = model(**select_inputs(model, batch.to(device).model_inputs()))
        return outputs.start_logits.float().cpu().numpy(), outputs.end_logits.float().cpu().numpy()

    try:
        return logits_over_features(forward, features, batch_size)
    finally:
        model.train(was_training)


@dataclass
class Scored:
    metrics: dict[str, float]  # official keys at the threshold used, plus best_* thresholds
    answers: Answers
    threshold: float


def score_answers(data: SquadData, answers: Answers, threshold: float | None = 0.0) -> Scored:
    """Official metrics of the thresholded answers, plus the best thresholds on this data.

    ``threshold=None`` picks the best-F1 threshold on this same data: only for the data the
    threshold is tuned on (validation), never for reported test figures.
    """
    tuning = evaluate(list(data.articles), answers.best_span, answers.na_score).metrics
    if threshold is None:
        threshold = choose_threshold(data, answers, float(tuning["best_f1_thresh"]))
    metrics = dict(evaluate(list(data.articles), answers.predictions(threshold)).metrics)
    for key in ("best_exact", "best_exact_thresh", "best_f1", "best_f1_thresh"):
        metrics[key] = tuning[key]
    metrics["na_threshold"] = threshold
    return Scored(metrics, answers, threshold)


def choose_threshold(data: SquadData, answers: Answers, official_threshold: float) -> float:
    """The no-answer threshold with the best F1 on ``data``.

    The official scan reports 0.0 when answering nothing is best: right for probabilities in
    [0, 1], wrong for our scores (null minus best span logits, any sign). So the "answer nothing"
    threshold (below every score) competes with the official one, and the better F1 wins.
    """
    answer_nothing = min(answers.na_score.values(), default=0.0) - 1.0
    articles = list(data.articles)
    f1 = {t: evaluate(articles, answers.predictions(t)).metrics["f1"] for t in (official_threshold, answer_nothing)}
    return official_threshold if f1[official_threshold] >= f1[answer_nothing] else answer_nothing


def evaluate_model(
    model: torch.nn.Module,
    data: SquadData,
    features: Features,
    batch_size: int = 64,
    bf16: bool = False,
    threshold: float | None = 0.0,
) -> Scored:
    """Predict, extract answers and score: the whole evaluation of one model on one data part."""
    start_logits, end_logits = predict_logits(model, features, batch_size, bf16)
    answers = extract_answers(data.examples, features, start_logits, end_logits)
    return score_answers(data, answers, threshold)
