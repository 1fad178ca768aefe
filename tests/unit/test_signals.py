"""Candidate flash metrics, checked against hand-worked values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import article, qa, write_squad
from paretodistill.data.squad import load_squad
from paretodistill.evaluation.postprocess import Answers
from paretodistill.evaluation.signals import no_answer_auc, span_f1, window_kl


@pytest.fixture
def data(tmp_path):
    return load_squad(write_squad(tmp_path / "d.json", [article("A", "red green blue", [
        qa("a1", "First?", [("red", 0)]), qa("a2", "Last?", [("blue", 10)]),
        qa("n1", "None?"), qa("n2", "Neither?")])]))


def test_span_f1_ignores_abstention(data):
    # the student abstains on everything at any sane threshold, yet finds one of the two spans
    answers = Answers({"a1": "red", "a2": "green", "n1": "red", "n2": "blue"}, {q: 9.0 for q in ("a1", "a2", "n1", "n2")})
    assert span_f1(data, answers) == 50.0


def test_no_answer_auc_is_threshold_free(data):
    perfect = Answers({q: "x" for q in ("a1", "a2", "n1", "n2")}, {"a1": -3.0, "a2": 1.0, "n1": 2.0, "n2": 5.0})
    reversed_ = Answers(perfect.best_span, {q: -v for q, v in perfect.na_score.items()})
    half = Answers(perfect.best_span, {"a1": -3.0, "a2": 2.5, "n1": 2.0, "n2": 5.0})
    assert no_answer_auc(data, perfect) == 1.0 and no_answer_auc(data, reversed_) == 0.0
    assert no_answer_auc(data, half) == 0.75  # 3 of the 4 (unanswerable, answerable) pairs ordered right
    tied = Answers(perfect.best_span, {q: 0.0 for q in perfect.best_span})
    assert no_answer_auc(data, tied) == 0.5


def test_window_kl_by_hand():
    row_starts = np.array([0, 2, 5])
    teacher = (np.array([0.0, 0.0, 1.0, 1.0, 1.0]), np.array([0.0, 0.0, 1.0, 1.0, 1.0]))
    assert window_kl(teacher, teacher, row_starts) == pytest.approx(0.0, abs=1e-12)
    # window 0: teacher (1/2, 1/2) vs student softmax(0, ln 3) = (1/4, 3/4); window 1 equal
    student = (np.array([0.0, math.log(3), 7.0, 7.0, 7.0]), np.array([0.0, math.log(3), 1.0, 1.0, 1.0]))
    expected_window0 = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert window_kl(student, teacher, row_starts) == pytest.approx(expected_window0 / 2)
