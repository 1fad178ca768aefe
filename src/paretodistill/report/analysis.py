"""Error analysis of one student: which questions it gets wrong, and how.

Every wrong answer (official exact match 0, after the no-answer threshold) falls in exactly one
of four categories, so the counts add up to the number of errors:

* ``label_has_answer``: the question is answerable but the model abstained (its answer
  normalises to "", as the official metric reads it);
* ``label_has_no_answer``: the question is unanswerable but the model answered;
* ``mostly_correct``: answerable, answered, and the answer is right give or take small words:
  for some gold answer either (a) the content words are the same sequence, where content words
  are the official normalisation's tokens (lower case, no punctuation, no a/an/the) minus the
  small function words in ``STOP_WORDS`` (e.g. "in 1847" for "1847", "Gulf of Mexico" for
  "the Gulf, Mexico"), or (b) the official token F1 is at least ``MOSTLY_CORRECT_F1`` = 0.8
  (e.g. one token more or less on an answer of two or more tokens, "Denver Broncos team" for
  "Denver Broncos": F1 = 2n/(2n+1) >= 0.8);
* ``mostly_wrong``: answerable, answered, and not mostly correct ("Paris" for "France",
  "Paris France" for "Paris": F1 0.67).

The numbers come from the official scorer port (``per_question_scores``), so the number of
errors is exactly (100 - exact) % of the questions.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Mapping

from paretodistill.data.squad import Example, SquadData
from paretodistill.evaluation.squad_metric import compute_f1, normalize_answer, per_question_scores
from paretodistill.report.frontier import ReportError

MOSTLY_CORRECT = "mostly_correct"
MOSTLY_WRONG = "mostly_wrong"
LABEL_HAS_ANSWER = "label_has_answer"
LABEL_HAS_NO_ANSWER = "label_has_no_answer"
CATEGORIES = {
    MOSTLY_CORRECT: "mostly correct",
    MOSTLY_WRONG: "mostly wrong",
    LABEL_HAS_ANSWER: "label has answer (model abstained)",
    LABEL_HAS_NO_ANSWER: "label has no answer (model answered)",
}
MOSTLY_CORRECT_F1 = 0.8
# Small function words that do not change what an answer names (articles are already dropped
# by the official normalisation).
STOP_WORDS = frozenset(
    "of in on at to for by from with and or as about into over than its their his her our your "
    "is was are were be been".split()
)
RULE = (
    "mostly correct: for some gold answer, the same content words in the same order (official "
    "normalisation, then without the words " + ", ".join(sorted(STOP_WORDS)) + "), "
    f"or official token F1 >= {MOSTLY_CORRECT_F1}"
)


def content_tokens(text: str) -> list[str]:
    """Official normalised tokens without the small function words."""
    return [token for token in normalize_answer(text).split() if token not in STOP_WORDS]


def is_mostly_correct(prediction: str, golds: list[str]) -> bool:
    """Right give or take punctuation, articles and small words, or token F1 >= 0.8 (see the module doc)."""
    predicted = content_tokens(prediction)
    for gold in golds:
        if predicted and predicted == content_tokens(gold):
            return True
        if compute_f1(gold, prediction) >= MOSTLY_CORRECT_F1:
            return True
    return False


def gold_texts(example: Example) -> list[str]:
    """The gold answers the official scorer compares against ("" for an unanswerable question)."""
    return [a.text for a in example.answers if normalize_answer(a.text)] or [""]


def categorize(prediction: str, golds: list[str], has_answer: bool) -> str | None:
    """The error category of an answer, or None when it is right (official exact match)."""
    answered = bool(normalize_answer(prediction))
    if not has_answer:
        return LABEL_HAS_NO_ANSWER if answered else None
    if any(normalize_answer(gold) == normalize_answer(prediction) for gold in golds):
        return None
    if not answered:
        return LABEL_HAS_ANSWER
    return MOSTLY_CORRECT if is_mostly_correct(prediction, golds) else MOSTLY_WRONG


def snippet(example: Example, prediction: str, width: int = 160) -> dict:
    """A piece of the context around the gold answer and the prediction, with both spans marked."""
    context = example.context
    spans = {}
    if example.answers:
        gold = example.answers[0]
        spans["gold"] = (gold.start, gold.start + len(gold.text))
    if prediction:
        at = context.find(prediction)
        if at >= 0:
            spans["prediction"] = (at, at + len(prediction))
    if spans:
        start = min(s for s, _ in spans.values())
        end = max(e for _, e in spans.values())
        if end - start > 4 * width and "gold" in spans:  # far apart: centre on the gold answer
            start, end = spans["gold"]
            spans.pop("prediction", None)
    else:
        start = end = 0
    low = max(0, start - width)
    high = min(len(context), end + width)
    while low > 0 and not context[low - 1].isspace():
        low -= 1
    while high < len(context) and not context[high].isspace():
        high += 1
    return {
        "text": context[low:high],
        "prefix": low > 0,
        "suffix": high < len(context),
        **{f"{name}_span": [s - low, e - low] for name, (s, e) in spans.items()},
    }


def analyze_predictions(
    data: SquadData,
    predictions: Mapping[str, str],
    examples_per_category: int = 6,
    seed: int = 0,
    context_chars: int = 160,
) -> dict:
    """The analysis document (analysis.json) of thresholded predictions (qid -> text, "" = no answer)."""
    scores = per_question_scores(list(data.articles), predictions)
    errors, topics = [], {}
    for example in data.examples:
        if example.id not in scores:
            continue
        topic = topics.setdefault(example.title, {"title": example.title, "questions": 0, "errors": 0, **dict.fromkeys(CATEGORIES, 0)})
        topic["questions"] += 1
        exact, f1 = scores[example.id]
        if exact:
            continue
        golds = gold_texts(example)
        category = categorize(predictions[example.id], golds, bool(example.answers))
        if category is None:  # cannot happen when the scorer and categorize agree; keep the counts honest
            raise RuntimeError(f"{example.id}: scored wrong but no error category")
        topic["errors"] += 1
        topic[category] += 1
        errors.append({
            "id": example.id, "title": example.title, "category": category, "question": example.question,
            "gold": [] if not example.answers else golds, "prediction": predictions[example.id], "f1": round(float(f1), 4),
        })
    scored = len(scores)
    counts = {key: sum(e["category"] == key for e in errors) for key in CATEGORIES}
    by_id = {e.id: e for e in data.examples}
    rng = random.Random(seed)
    examples = {}
    for key in CATEGORIES:
        members = [e for e in errors if e["category"] == key]
        chosen = sorted(rng.sample(range(len(members)), min(examples_per_category, len(members))))
        examples[key] = [
            {**members[i], "context": snippet(by_id[members[i]["id"]], members[i]["prediction"], context_chars)}
            for i in chosen
        ]
    return {
        "rule": RULE,
        "categories": CATEGORIES,
        "counts": {
            "questions": len(data.examples),
            "scored": scored,
            "missing_predictions": len(data.examples) - scored,
            "correct": scored - len(errors),
            "errors": len(errors),
            **counts,
        },
        "by_topic": sorted(topics.values(), key=lambda t: (-t["errors"], t["title"])),
        "examples": examples,
        "errors": errors,
    }




def load_analysis(path: str | Path) -> dict:
    """An analysis.json, given the file or the folder holding it."""
    path = Path(path)
    if path.is_dir():
        path = path / "analysis.json"
    if not path.exists():
        raise ReportError(f"{path}: no analysis.json (write one with `paretodistill analyze ... --out DIR`)")
    try:
        analysis = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ReportError(f"{path}: not an analysis.json paretodistill wrote ({error})") from None
    problem = analysis_problem(analysis)
    if problem:
        raise ReportError(f"{path}: not an analysis.json paretodistill wrote ({problem})")
    analysis.setdefault("source_file", str(path))
    return analysis


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def analysis_problem(analysis) -> str | None:
    """What is wrong with an analysis document's shape, or None.

    The report computes with its counts and scores; a file that holds text where a number
    belongs (hand-edited, or from elsewhere) is named here rather than failing mid-page. Texts
    are not checked: the report escapes every one of them.
    """
    if not isinstance(analysis, dict):
        return "not a JSON object"
    for key, kind in (("counts", dict), ("categories", dict), ("by_topic", list), ("examples", dict)):
        if not isinstance(analysis.get(key), kind):
            return f"{key} is not a {'list' if kind is list else 'JSON object'}"
    categories = list(analysis["categories"])
    counts = analysis["counts"]
    for key in ("questions", "scored", "correct", "errors", *categories):
        if not _is_count(counts.get(key)):
            return f"counts.{key} is not a whole number"
    if not all(_is_number(v) for v in (analysis.get("metrics") or {}).values()):
        return "a metric is not a number"
    for topic in analysis["by_topic"]:
        if not isinstance(topic, dict) or not isinstance(topic.get("title"), str):
            return "a by_topic entry has no title text"
        if not all(_is_count(topic.get(k)) for k in ("questions", "errors", *categories)):
            return f"by_topic {topic['title'][:40]!r} lacks whole-number counts"
    for group in analysis["examples"].values():
        if not isinstance(group, list):
            return "examples holds something other than lists"
        for example in group:
            if not isinstance(example, dict) or not _is_number(example.get("f1")):
                return "an example has no numeric f1"
            if not isinstance(example.get("gold"), list) or not isinstance(example.get("context"), dict):
                return f"example {str(example.get('id'))[:40]!r} lacks its gold list or context"
            spans = [example["context"].get(k) for k in ("gold_span", "prediction_span") if example["context"].get(k)]
            if not all(isinstance(s, list) and len(s) == 2 and all(_is_count(i) for i in s) for s in spans):
                return f"example {str(example.get('id'))[:40]!r} has a span that is not two whole numbers"
    return None
