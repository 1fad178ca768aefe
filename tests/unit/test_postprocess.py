"""Logits to answers: n-best spans across windows, maximum length, no-answer scores and thresholds."""

from __future__ import annotations

import json

import numpy as np
import pytest

from paretodistill.data.features import Features
from paretodistill.data.squad import Answer, Example
from paretodistill.evaluation.postprocess import NO_SPAN_SCORE, extract_answers

CONTEXT = "aa bb cc dd ee"  # tokens at 0-2, 3-5, 6-8, 9-11, 12-14


def make_features(windows):
    """windows: list of (example_index, [(start, end) or None per token]); token 0 is CLS."""
    offsets, starts, index = [], [0], []
    for example, window in windows:
        offsets.extend([(-1, -1) if o is None else o for o in window])
        starts.append(starts[-1] + len(window))
        index.append(example)
    n = len(offsets)
    return Features(
        input_ids=np.zeros(n, np.int32), token_type_ids=np.zeros(n, np.int8),
        offsets=np.asarray(offsets, np.int32), row_starts=np.asarray(starts, np.int64),
        start_positions=np.zeros(len(windows), np.int32), end_positions=np.zeros(len(windows), np.int32),
        example_index=np.asarray(index, np.int32),
    )


EXAMPLE = Example("q", "T", CONTEXT, "?", (Answer("bb cc", 3),), False)
ONE_WINDOW = [None, None, (0, 2), (3, 5), (6, 8), (9, 11), (12, 14)]  # CLS, question, 5 context tokens


def test_best_valid_span_and_na_score():
    features = make_features([(0, ONE_WINDOW)])
    start = np.array([1.0, 9.0, 0.0, 3.0, 0.0, 0.0, 0.0], np.float32)  # 9.0 on a question token: not allowed
    end = np.array([0.5, 9.0, 0.0, 0.0, 2.0, 4.0, 0.0], np.float32)
    answers = extract_answers([EXAMPLE], features, start, end)
    assert answers.best_span["q"] == "bb cc dd"  # start 3 + end 5 = 7 beats 3 + 2 = 5
    assert answers.na_score["q"] == pytest.approx((1.0 + 0.5) - 7.0)


def test_end_before_start_and_max_answer_length_are_skipped():
    features = make_features([(0, ONE_WINDOW)])
    start = np.array([0, 0, 0, 0, 0, 0, 5.0], np.float32)  # best start is the last token
    end = np.array([0, 0, 5.0, 0, 0, 0, 1.0], np.float32)  # best end before it
    answers = extract_answers([EXAMPLE], features, start, end)
    assert answers.best_span["q"] == "ee"
    start = np.array([0, 0, 5.0, 0, 0, 0, 0], np.float32)
    end = np.array([0, 0, 0, 0, 0, 0, 5.0], np.float32)
    assert extract_answers([EXAMPLE], features, start, end, max_answer_length=2).best_span["q"] != "aa bb cc dd ee"
    assert extract_answers([EXAMPLE], features, start, end, max_answer_length=5).best_span["q"] == "aa bb cc dd ee"


def test_spans_from_several_windows_and_the_lowest_null_score():
    w1 = [None, None, (0, 2), (3, 5), (6, 8)]
    w2 = [None, None, (6, 8), (9, 11), (12, 14)]
    features = make_features([(0, w1), (0, w2)])
    start = np.array([2, 0, 1, 0, 0, 0.5, 0, 0, 6, 0], np.float32)
    end = np.array([2, 0, 1, 0, 0, -1, 0, 0, 0, 6], np.float32)
    answers = extract_answers([EXAMPLE], features, start, end)
    assert answers.best_span["q"] == "dd ee"  # from window 2: 6 + 6
    assert answers.na_score["q"] == pytest.approx(min(2 + 2, 0.5 - 1) - 12)


def test_threshold_turns_answers_into_no_answer_and_files_are_official(tmp_path):
    features = make_features([(0, ONE_WINDOW), (1, ONE_WINDOW)])
    other = Example("r", "T", CONTEXT, "?", (), True)
    start, end = np.zeros(14, np.float32), np.zeros(14, np.float32)
    start[3], end[3] = 2.0, 2.0  # q: span score 4, null 0 -> na -4
    start[7], end[7] = 3.0, 3.0  # r: null 6, best span 0 -> na 6
    answers = extract_answers([EXAMPLE, other], features, start, end)
    assert answers.na_score == pytest.approx({"q": -4.0, "r": 6.0})
    assert answers.predictions(0.0) == {"q": "bb", "r": ""}
    assert answers.predictions(-5.0) == {"q": "", "r": ""}
    files = answers.write(tmp_path, threshold=0.0)
    assert json.loads(files["predictions"].read_text()) == {"q": "bb", "r": ""}
    assert json.loads(files["na_scores"].read_text()) == pytest.approx({"q": -4.0, "r": 6.0})
    assert json.loads(files["best_span_predictions"].read_text())["r"] != ""


def test_no_valid_span_means_no_answer_with_a_finite_score():
    features = make_features([(0, [None, None])])
    answers = extract_answers([EXAMPLE], features, np.zeros(2, np.float32), np.zeros(2, np.float32))
    assert answers.best_span["q"] == "" and answers.na_score["q"] == NO_SPAN_SCORE


def test_chosen_threshold_answers_nothing_when_that_is_best(tmp_path):
    """Every score is negative and every answer wrong: the official scan says 0.0, which would answer all."""
    from conftest import article, qa, write_squad
    from paretodistill.data.squad import load_squad
    from paretodistill.evaluation.inference import score_answers
    from paretodistill.evaluation.postprocess import Answers

    data = load_squad(write_squad(tmp_path / "d.json", [article("A", CONTEXT, [qa("x", "?"), qa("y", "?")])]))
    answers = Answers(best_span={"x": "aa", "y": "bb"}, na_score={"x": -3.0, "y": -1.0})
    scored = score_answers(data, answers, threshold=None)
    assert scored.threshold < -3.0
    assert scored.metrics["f1"] == 100.0 and scored.metrics["best_f1"] == 100.0
    assert score_answers(data, answers, threshold=0.0).metrics["f1"] == 0.0
