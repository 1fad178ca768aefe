"""The teacher shipped with the repository: it loads as committed and answers real questions correctly.

The questions come from the test articles of its split (no training or threshold tuning saw them);
the no-answer threshold is the one recorded in its metrics.json, as a user would apply it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from paretodistill.data.splits import ArticleSplit
from paretodistill.data.squad import load_squad
from paretodistill.evaluation.squad_metric import normalize_answer
from paretodistill.export.predict import answer

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("one_torch_thread")]

SHIPPED = Path(__file__).resolve().parents[2] / "teachers" / "minilm-l6-squad2"
ANSWERABLE = "56e17a7ccd28a01900c679a1"  # "What is the name given to the input string of a computational problem?"
UNANSWERABLE = "5ad532575b96ef001a10ab80"  # "What number is used in perpendicular computing?" (impossible)


def test_the_shipped_teacher_is_small_and_carded():
    weights = SHIPPED / "model.safetensors"
    assert weights.exists(), "the shipped teacher is missing"
    assert weights.stat().st_size <= 50 * 2**20
    metrics = json.loads((SHIPPED / "metrics.json").read_text())
    assert metrics["na_threshold_chosen_on"] == "validation" and metrics["test_f1_above_no_answer_baseline"] > 5
    card = (SHIPPED / "README.md").read_text()
    assert "license: apache-2.0" in card and f"{metrics['test']['f1']:.2f}" in card
    assert (SHIPPED / "LICENSE").exists() and (SHIPPED / "train_titles.json").exists()


def test_the_shipped_teacher_answers_real_test_questions(dev_v2):
    """Through the user's path, ``export.predict.answer``: the recorded threshold and feature lengths applied."""
    split = ArticleSplit.load(SHIPPED / "split.json")
    test = {e.id: e for e in split.select(load_squad(dev_v2), "test").examples}
    answerable, unanswerable = test[ANSWERABLE], test[UNANSWERABLE]
    assert answerable.answers and unanswerable.is_impossible

    reply = answer(SHIPPED, answerable.question, answerable.context)
    assert not reply.no_answer
    assert normalize_answer(reply.text) in {normalize_answer(a.text) for a in answerable.answers}
    assert reply.threshold == json.loads((SHIPPED / "metrics.json").read_text())["na_threshold"]
    assert answer(SHIPPED, unanswerable.question, unanswerable.context).no_answer
