"""SQuAD 1.1 / 2.0 scoring that gives exactly the numbers of the official SQuAD 2.0 script.

This is a readable port of the official ``evaluate-v2.0.py`` (Rajpurkar et al., 2018; a verbatim
copy for comparison lives in ``tests/reference/evaluate_v2_official.py``). Every number is
computed with the same operations in the same order as the official script, so results agree to
the last bit, not just to a tolerance; ``benchmarks/check_scoring.py`` checks that on the full
dev set.

Where the official script crashes, this module does something defined instead:

* Missing predictions. The official script prints ``Missing prediction for <id>``, drops the
  question from ``exact``/``f1``/``total`` and then dies with ``KeyError`` while computing the
  ``HasAns``/``NoAns`` breakdown. Here the questions without a prediction are listed in
  ``EvaluationResult.missing_ids`` (the library never prints; the CLI warns) and every metric is
  computed over the predicted questions only, i.e. exactly what the official script outputs
  when run on the dataset restricted to the questions that have a prediction. ``exact``, ``f1``
  and ``total`` are also what the official script computes before it crashes.
* No prediction for any question (official: ``ZeroDivisionError``) and a no-answer probability
  missing for a predicted question (official: ``KeyError``) raise ``DataFormatError``.

Official behaviours kept on purpose (they change numbers, so a drop-in port must keep them):

* A question is answerable iff its ``answers`` list is non-empty (``is_impossible`` is never
  read), so SQuAD 1.1 files score as all-answerable.
* Gold answers whose normalised text is empty are ignored; if none is left the only correct
  prediction is the empty string.
* ``best_exact``/``best_f1`` come from one scan over the questions sorted by no-answer
  probability (stable sort, ties in the na-prob file's order); the threshold only moves on a
  strict improvement and may land inside a group of tied probabilities, so the best score is
  not always reachable by thresholding. For unanswerable questions the scan counts any
  non-empty prediction string as wrong, even one that normalises to "" (e.g. "the").
"""

from __future__ import annotations

import collections
import gzip
import json
import re
import string
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import Any, Mapping, Sequence

from paretodistill.errors import DataFormatError

__all__ = [
    "EvaluationResult",
    "compute_exact",
    "compute_f1",
    "evaluate",
    "evaluate_files",
    "normalize_answer",
    "per_question_scores",
]

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = frozenset(string.punctuation)


@dataclass(frozen=True)
class EvaluationResult:
    """Official metrics plus the question ids the official script would only print or ignore.

    ``metrics`` has the official keys in the official order: exact, f1, total, then
    HasAns_exact/f1/total and NoAns_exact/f1/total when such questions were scored, then
    best_exact, best_exact_thresh, best_f1, best_f1_thresh when no-answer probabilities were given.
    """

    metrics: dict[str, float | int]
    missing_ids: list[str] = field(default_factory=list)
    extra_ids: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Answer comparison (identical to the official functions)
# --------------------------------------------------------------------------------------------


def normalize_answer(s: str) -> str:
    """Lower-case, drop ASCII punctuation, the articles a/an/the and extra whitespace.

    The order (lower, punctuation, articles, whitespace) is the official one and it matters:
    "The-End" becomes "theend" (the hyphen goes first, so "the" is no longer a word), not "end".
    """
    text = s.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def _tokens(s: str) -> list[str]:
    if not s:
        return []
    return normalize_answer(s).split()


def compute_exact(a_gold: str, a_pred: str) -> int:
    """1 if the normalised strings are equal, else 0."""
    return int(normalize_answer(a_gold) == normalize_answer(a_pred))


def compute_f1(a_gold: str, a_pred: str) -> float:
    """Bag-of-tokens F1 of the normalised strings; "" against "" counts as a perfect match."""
    gold_toks = _tokens(a_gold)
    pred_toks = _tokens(a_pred)
    common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
    num_same = sum(common.values())
    if len(gold_toks) == 0 or len(pred_toks) == 0:
        # Either side is a no-answer: 1 if both are, 0 otherwise (an int, as officially).
        return int(gold_toks == pred_toks)
    if num_same == 0:
        return 0
    # Same expressions as the official script, so the floats are bit-identical.
    precision = 1.0 * num_same / len(pred_toks)
    recall = 1.0 * num_same / len(gold_toks)
    return (2 * precision * recall) / (precision + recall)


# --------------------------------------------------------------------------------------------
# Input checks (the official script would crash with a KeyError/TypeError instead)
# --------------------------------------------------------------------------------------------


@dataclass
class _Question:
    has_answer: bool
    gold_answers: list[str]


def _collect_questions(articles: Any) -> dict[str, _Question]:
    """Map question id -> answerability and gold texts, in dataset order.

    A repeated id keeps the position of its first occurrence and the content of its last one,
    which is what the official script's dicts do.
    """
    if not isinstance(articles, list):
        raise DataFormatError(f"'data' must be a list of articles, got {type(articles).__name__}")
    questions: dict[str, _Question] = {}
    for a_i, article in enumerate(articles):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise DataFormatError(f"data[{a_i}] has no 'paragraphs' list")
        for p_i, paragraph in enumerate(paragraphs):
            qas = paragraph.get("qas") if isinstance(paragraph, dict) else None
            if not isinstance(qas, list):
                raise DataFormatError(f"data[{a_i}].paragraphs[{p_i}] has no 'qas' list")
            for q_i, qa in enumerate(qas):
                where = f"data[{a_i}].paragraphs[{p_i}].qas[{q_i}]"
                if not isinstance(qa, dict) or not isinstance(qa.get("id"), str):
                    raise DataFormatError(f"{where} has no string 'id'")
                answers = qa.get("answers")
                if not isinstance(answers, list) or not all(
                    isinstance(a, dict) and isinstance(a.get("text"), str) for a in answers
                ):
                    raise DataFormatError(
                        f"{where} (id {qa['id']!r}) needs an 'answers' list of objects with a "
                        "string 'text'"
                    )
                golds = [a["text"] for a in answers if normalize_answer(a["text"])]
                # For unanswerable questions the only correct answer is the empty string.
                questions[qa["id"]] = _Question(bool(answers), golds or [""])
    return questions


def _check_predictions(predictions: Any) -> None:
    if not isinstance(predictions, dict):
        raise DataFormatError(
            "predictions must be a JSON object mapping question id to answer text, got "
            f"{type(predictions).__name__}"
        )
    for qid, text in predictions.items():
        if not isinstance(text, str):
            raise DataFormatError(
                f"prediction for {qid!r} must be a string, got {type(text).__name__}"
            )


def _check_na_probs(na_probs: Any) -> None:
    if not isinstance(na_probs, dict):
        raise DataFormatError(
            "no-answer probabilities must be a JSON object mapping question id to a number, "
            f"got {type(na_probs).__name__}"
        )
    for qid, prob in na_probs.items():
        if isinstance(prob, bool) or not isinstance(prob, (int, float)):
            raise DataFormatError(
                f"no-answer probability for {qid!r} must be a number, got {type(prob).__name__}"
            )


# --------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------


@dataclass
class _Scored:
    questions: dict[str, _Question]
    predictions: Mapping[str, str]
    na_probs: Mapping[str, float]
    exact_raw: dict[str, int]
    f1_raw: dict[str, float]
    exact_thresh: dict[str, float]
    f1_thresh: dict[str, float]
    missing_ids: list[str]
    extra_ids: list[str]


def _score(
    articles: Sequence[dict],
    predictions: Mapping[str, str],
    na_probs: Mapping[str, float] | None,
    na_prob_thresh: float,
) -> _Scored:
    questions = _collect_questions(articles)
    _check_predictions(predictions)
    if na_probs is None:
        # Official default: every predicted question has no-answer probability 0.0.
        na_probs = {qid: 0.0 for qid in predictions}
    else:
        _check_na_probs(na_probs)

    missing_ids = [qid for qid in questions if qid not in predictions]
    extra_ids = [qid for qid in predictions if qid not in questions]

    # Raw scores: max over the gold answers, in dataset order (the order sums are taken in).
    exact_raw: dict[str, int] = {}
    f1_raw: dict[str, float] = {}
    for qid, question in questions.items():
        if qid not in predictions:
            continue
        pred = predictions[qid]
        exact_raw[qid] = max(compute_exact(gold, pred) for gold in question.gold_answers)
        f1_raw[qid] = max(compute_f1(gold, pred) for gold in question.gold_answers)
    if not exact_raw:
        raise DataFormatError(
            f"no prediction matches any of the {len(questions)} question ids of the dataset"
        )

    lacking = [qid for qid in exact_raw if qid not in na_probs]
    if lacking:
        shown = ", ".join(lacking[:5]) + (" ..." if len(lacking) > 5 else "")
        raise DataFormatError(
            f"no-answer probability missing for {len(lacking)} predicted question(s): {shown}"
        )

    def apply_threshold(scores: dict[str, Any]) -> dict[str, Any]:
        # Above the threshold the prediction counts as "no answer": right iff unanswerable.
        return {
            qid: float(not questions[qid].has_answer) if na_probs[qid] > na_prob_thresh else s
            for qid, s in scores.items()
        }

    return _Scored(
        questions=questions,
        predictions=predictions,
        na_probs=na_probs,
        exact_raw=exact_raw,
        f1_raw=f1_raw,
        exact_thresh=apply_threshold(exact_raw),
        f1_thresh=apply_threshold(f1_raw),
        missing_ids=missing_ids,
        extra_ids=extra_ids,
    )


def _mean_metrics(exact: dict, f1: dict, qids: list[str]) -> dict[str, float | int]:
    # sum() over a generator in qids order: the official summation order, hence same rounding.
    total = len(qids)
    return {
        "exact": 100.0 * sum(exact[k] for k in qids) / total,
        "f1": 100.0 * sum(f1[k] for k in qids) / total,
        "total": total,
    }


def _best_threshold(
    predictions: Mapping[str, str],
    scores: dict[str, float],
    na_probs: Mapping[str, float],
    has_answer: dict[str, bool],
) -> tuple[float, float]:
    """Best score over no-answer thresholds, as the official ``find_best_thresh``.

    Start from "everything abstains" (all unanswerable questions right), then walk the questions
    by increasing no-answer probability, letting each one answer in turn; remember the
    probability at which the running score was strictly highest.
    """
    cur_score = sum(1 for qid in has_answer if not has_answer[qid])
    best_score = cur_score
    best_thresh = 0.0
    for qid in sorted(na_probs, key=lambda k: na_probs[k]):
        if qid not in scores:
            continue
        if has_answer[qid]:
            diff = scores[qid]
        else:
            # Official quirk: the raw string decides, so "the" or "." counts as answering.
            diff = -1 if predictions[qid] else 0
        cur_score += diff
        if cur_score > best_score:
            best_score = cur_score
            best_thresh = na_probs[qid]
    return 100.0 * best_score / len(scores), best_thresh


def evaluate(
    articles: Sequence[dict],
    predictions: Mapping[str, str],
    na_probs: Mapping[str, float] | None = None,
    na_prob_thresh: float = 1.0,
) -> EvaluationResult:
    """Score predictions against the ``data`` list of a SQuAD 1.1 or 2.0 file.

    ``predictions`` maps question id to answer text ("" means "no answer"). ``na_probs`` maps
    question id to the model's probability that there is no answer; a question whose
    probability exceeds ``na_prob_thresh`` is scored as answered "". Passing ``na_probs`` also
    adds the best-threshold metrics. Numbers are identical to the official script's.
    """
    scored = _score(articles, predictions, na_probs, na_prob_thresh)
    has_answer = {qid: scored.questions[qid].has_answer for qid in scored.exact_raw}
    all_qids = list(scored.exact_thresh)

    metrics = _mean_metrics(scored.exact_thresh, scored.f1_thresh, all_qids)
    has_ans_qids = [qid for qid, has in has_answer.items() if has]
    no_ans_qids = [qid for qid, has in has_answer.items() if not has]
    for prefix, qids in (("HasAns", has_ans_qids), ("NoAns", no_ans_qids)):
        if qids:
            for key, value in _mean_metrics(scored.exact_thresh, scored.f1_thresh, qids).items():
                metrics[f"{prefix}_{key}"] = value

    if na_probs is not None:
        best_exact, exact_thresh = _best_threshold(
            scored.predictions, scored.exact_raw, scored.na_probs, has_answer
        )
        best_f1, f1_thresh = _best_threshold(
            scored.predictions, scored.f1_raw, scored.na_probs, has_answer
        )
        metrics["best_exact"] = best_exact
        metrics["best_exact_thresh"] = exact_thresh
        metrics["best_f1"] = best_f1
        metrics["best_f1_thresh"] = f1_thresh

    return EvaluationResult(metrics, scored.missing_ids, scored.extra_ids)


def per_question_scores(
    articles: Sequence[dict],
    predictions: Mapping[str, str],
    na_probs: Mapping[str, float] | None = None,
    na_prob_thresh: float = 1.0,
) -> dict[str, tuple[float, float]]:
    """(exact, f1) per predicted question after the no-answer threshold, for error analysis.

    The means of these values are ``evaluate(...).metrics['exact']`` and ``['f1']`` (/100).
    """
    scored = _score(articles, predictions, na_probs, na_prob_thresh)
    return {qid: (scored.exact_thresh[qid], scored.f1_thresh[qid]) for qid in scored.exact_thresh}


# --------------------------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------------------------


def _load_json(path: str | PathLike[str], what: str) -> Any:
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError, EOFError) as e:
        raise DataFormatError(f"cannot read {what} file {path}: {e}") from e
    except json.JSONDecodeError as e:
        raise DataFormatError(f"{what} file {path} is not valid JSON: {e}") from e
    except RecursionError:
        raise DataFormatError(f"{what} file {path}: JSON nested too deeply to read") from None


def evaluate_files(
    data_path: str | PathLike[str],
    pred_path: str | PathLike[str],
    na_prob_path: str | PathLike[str] | None = None,
    na_prob_thresh: float = 1.0,
) -> EvaluationResult:
    """``evaluate`` on a SQuAD JSON file, a predictions file and optionally a na-prob file.

    Files may be gzip-compressed (``.gz``). Malformed input raises ``DataFormatError`` naming
    the file, where the official script would stop with a traceback.
    """
    dataset = _load_json(data_path, "dataset")
    if not isinstance(dataset, dict) or "data" not in dataset:
        raise DataFormatError(f"dataset file {data_path} has no top-level 'data' key")
    try:
        _collect_questions(dataset["data"])
    except DataFormatError as e:
        raise DataFormatError(f"dataset file {data_path}: {e}") from e

    predictions = _load_json(pred_path, "predictions")
    try:
        _check_predictions(predictions)
    except DataFormatError as e:
        raise DataFormatError(f"predictions file {pred_path}: {e}") from e

    na_probs = None
    if na_prob_path is not None:
        na_probs = _load_json(na_prob_path, "no-answer probability")
        try:
            _check_na_probs(na_probs)
        except DataFormatError as e:
            raise DataFormatError(f"no-answer probability file {na_prob_path}: {e}") from e

    try:
        return evaluate(dataset["data"], predictions, na_probs, na_prob_thresh)
    except DataFormatError as e:
        na_part = f" with no-answer probability file {na_prob_path}" if na_prob_path else ""
        raise DataFormatError(
            f"scoring predictions file {pred_path} against dataset file {data_path}{na_part}: {e}"
        ) from e
