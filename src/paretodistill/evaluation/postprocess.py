"""From start/end logits to answer texts and no-answer scores.

For each question, every doc-stride window proposes its ``n_best`` start and end tokens; valid
spans (inside the context, end after start, at most ``max_answer_length`` tokens) are scored by
start + end logit, and the best one is cut from the original context by character offsets.
The no-answer score is the lowest CLS score over the windows minus the best span score: above the
threshold, the question is answered with "" (no answer). These are the files the official SQuAD
2.0 script reads: predictions (qid -> text) and no-answer scores (qid -> number).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from paretodistill.data.features import Features
from paretodistill.data.squad import Example

NO_SPAN_SCORE = 1e9
MAX_ANSWER_LENGTH = 30  # tokens: the longest span an answer may be (and a null-score margin compares against)


@dataclass
class Answers:
    """Per question: the best non-empty span and the no-answer score (null minus best span).

    ``span_score`` (start + end logit of the best span) is what ``paretodistill predict`` reports
    as the answer's score; the official files do not need it.
    """

    best_span: dict[str, str]
    na_score: dict[str, float]
    span_score: dict[str, float] = field(default_factory=dict)

    def predictions(self, threshold: float = 0.0) -> dict[str, str]:
        """Final answers: "" where the no-answer score is above ``threshold``."""
        return {
            qid: ("" if self.na_score[qid] > threshold else text) for qid, text in self.best_span.items()
        }

    def write(self, directory: str | Path, threshold: float) -> dict[str, Path]:
        """The official formats: thresholded predictions, best non-empty spans and no-answer scores.

        ``predictions.json`` is what a user ships; ``best_span_predictions.json`` with
        ``na_scores.json`` is what the official script needs to find the best threshold.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        files = {
            "predictions": directory / "predictions.json",
            "best_span_predictions": directory / "best_span_predictions.json",
            "na_scores": directory / "na_scores.json",
        }
        files["predictions"].write_text(json.dumps(self.predictions(threshold), ensure_ascii=False, indent=1))
        files["best_span_predictions"].write_text(json.dumps(self.best_span, ensure_ascii=False, indent=1))
        files["na_scores"].write_text(json.dumps(self.na_score, indent=1))
        return files


def extract_answers(
    examples: list[Example] | tuple[Example, ...],
    features: Features,
    start_logits: np.ndarray,
    end_logits: np.ndarray,
    n_best: int = 20,
    max_answer_length: int = MAX_ANSWER_LENGTH,
) -> Answers:
    """Best span and no-answer score for every example; logits are flat, aligned with the feature tokens."""
    by_example: dict[int, list[int]] = {}
    for feature, example in enumerate(features.example_index):
        by_example.setdefault(int(example), []).append(feature)

    best_span: dict[str, str] = {}
    na_score: dict[str, float] = {}
    span_score: dict[str, float] = {}
    for example_index, example in enumerate(examples):
        best_score, best_text, null_score = -math.inf, "", math.inf
        for feature in by_example.get(example_index, []):
            span = features.row(feature)
            starts, ends = np.asarray(start_logits[span]), np.asarray(end_logits[span])
            offsets = np.asarray(features.offsets[span])
            null_score = min(null_score, float(starts[0] + ends[0]))
            in_context = offsets[:, 0] >= 0
            top_starts = _top_context_tokens(starts, in_context, n_best)
            top_ends = _top_context_tokens(ends, in_context, n_best)
            for s in top_starts:
                for e in top_ends:
                    if e < s or e - s + 1 > max_answer_length:
                        continue
                    score = float(starts[s] + ends[e])
                    if score > best_score:
                        best_score = score
                        best_text = example.context[offsets[s, 0] : offsets[e, 1]]
        best_span[example.id] = best_text
        span_score[example.id] = best_score if best_score > -math.inf else -NO_SPAN_SCORE
        # With no valid span at all the question can only be answered with "": a huge finite
        # score keeps the JSON file standard (no Infinity).
        na_score[example.id] = null_score - best_score if best_score > -math.inf else NO_SPAN_SCORE
    return Answers(best_span, na_score, span_score)


def _top_context_tokens(logits: np.ndarray, in_context: np.ndarray, n_best: int) -> np.ndarray:
    """Indices of the ``n_best`` highest logits among context tokens, best first."""
    candidates = np.flatnonzero(in_context)
    if len(candidates) > n_best:
        part = np.argpartition(-logits[candidates], n_best - 1)[:n_best]
        candidates = candidates[part]
    return candidates[np.argsort(-logits[candidates], kind="stable")]
