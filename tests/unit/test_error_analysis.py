"""Error analysis: the four categories on hand-made answers, counts per topic, snippets, pages, CLI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/report_fixtures.py
import report_fixtures as fx  # noqa: E402
from paretodistill.data.squad import parse_squad  # noqa: E402
from paretodistill.evaluation.squad_metric import evaluate  # noqa: E402
from paretodistill.recipes.analyze import analyze  # noqa: E402
from paretodistill.report.analysis import (  # noqa: E402
    LABEL_HAS_ANSWER,
    LABEL_HAS_NO_ANSWER,
    MOSTLY_CORRECT,
    MOSTLY_WRONG,
    analyze_predictions,
    categorize,
    content_tokens,
    is_mostly_correct,
    snippet,
)
from paretodistill.report.html import write_analysis  # noqa: E402


@pytest.mark.parametrize(
    "prediction, golds, has_answer, expected",
    [
        ("1847.", ["1847"], True, None),  # official exact match: not an error
        ("in 1847", ["1847"], True, MOSTLY_CORRECT),  # a small word more
        ("the Gulf of Mexico", ["Gulf, Mexico"], True, MOSTLY_CORRECT),  # punctuation, article, "of"
        ("Denver Broncos team", ["Denver Broncos"], True, MOSTLY_CORRECT),  # F1 = 2*2/(2*2+1) = 0.8
        ("of the river Thames", ["London", "Thames river"], True, MOSTLY_CORRECT),  # second gold, F1 1.0
        ("Paris France", ["Paris"], True, MOSTLY_WRONG),  # F1 0.67, "france" is a content word
        ("France", ["Paris"], True, MOSTLY_WRONG),
        ("Battle of Hastings in 1066", ["1066"], True, MOSTLY_WRONG),  # F1 0.33
        ("", ["Paris"], True, LABEL_HAS_ANSWER),
        ("the", ["Paris"], True, LABEL_HAS_ANSWER),  # normalises to "": the official metric reads it as abstaining
        ("Paris", [""], False, LABEL_HAS_NO_ANSWER),
        ("", [""], False, None),
        (".", [""], False, None),  # normalises to "": right, as the official metric scores it
    ],
)
def test_categories(prediction, golds, has_answer, expected):
    assert categorize(prediction, golds, has_answer) == expected


def test_mostly_correct_rule_pieces():
    assert content_tokens("The Battle of Hastings, in 1066!") == ["battle", "hastings", "1066"]
    assert not is_mostly_correct("", ["of"])  # no content words on either side is not a match
    assert is_mostly_correct("Rome empire", ["the Rome empire of"])  # same content words


CONTEXT_A = "The river Thames flows through London. It is long."
CONTEXT_B = "Paris is the capital of France. Rome was the capital of the empire."
DOCUMENT = {
    "version": "v2.0",
    "data": [
        {"title": "Thames", "paragraphs": [{"context": CONTEXT_A, "qas": [
            {"id": "a1", "question": "Which river flows through London?", "answers": [{"text": "Thames", "answer_start": 10}], "is_impossible": False},
            {"id": "a2", "question": "Where does the Thames flow?", "answers": [{"text": "London", "answer_start": 31}], "is_impossible": False},
            {"id": "a3", "question": "What is long?", "answers": [{"text": "The river Thames", "answer_start": 0}], "is_impossible": False},
            {"id": "a4", "question": "Who built the Thames?", "answers": [], "is_impossible": True},
        ]}]},
        {"title": "Capitals", "paragraphs": [{"context": CONTEXT_B, "qas": [
            {"id": "b1", "question": "What is the capital of France?", "answers": [{"text": "Paris", "answer_start": 0}], "is_impossible": False},
            {"id": "b2", "question": "Which city was the capital of the empire?", "answers": [{"text": "Rome", "answer_start": 32}], "is_impossible": False},
            {"id": "b3", "question": "What is the capital of Spain?", "answers": [], "is_impossible": True},
            {"id": "b4", "question": "What is the capital of Italy?", "answers": [], "is_impossible": True},
        ]}]},
    ],
}
PREDICTIONS = {
    "a1": "Thames",  # right
    "a2": "London.",  # right (punctuation)
    "a3": "river Thames flows",  # gold "the river thames" -> "river thames": F1 2*2/5 = 0.8 -> mostly correct
    "a4": "London",  # answered an unanswerable question
    "b1": "France",  # mostly wrong
    "b2": "",  # abstained on an answerable question
    "b3": "",  # right
    "b4": "Rome",  # answered an unanswerable question
}
EXPECTED = {"a3": MOSTLY_CORRECT, "a4": LABEL_HAS_NO_ANSWER, "b1": MOSTLY_WRONG, "b2": LABEL_HAS_ANSWER, "b4": LABEL_HAS_NO_ANSWER}


@pytest.fixture(scope="module")
def data():
    return parse_squad(DOCUMENT, "hand.json", "0" * 64)


def test_every_error_in_exactly_one_category(data):
    analysis = analyze_predictions(data, PREDICTIONS, examples_per_category=10)
    assert {e["id"]: e["category"] for e in analysis["errors"]} == EXPECTED
    counts = analysis["counts"]
    assert (counts["questions"], counts["correct"], counts["errors"]) == (8, 3, 5)
    assert (counts[MOSTLY_CORRECT], counts[MOSTLY_WRONG], counts[LABEL_HAS_ANSWER], counts[LABEL_HAS_NO_ANSWER]) == (1, 1, 1, 2)
    # the official exact agrees: 3 of 8 right
    assert evaluate(list(data.articles), PREDICTIONS).metrics["exact"] == pytest.approx(100 * 3 / 8)
    by_topic = {t["title"]: t for t in analysis["by_topic"]}
    assert by_topic["Capitals"] == {"title": "Capitals", "questions": 4, "errors": 3, MOSTLY_CORRECT: 0,
                                        MOSTLY_WRONG: 1, LABEL_HAS_ANSWER: 1, LABEL_HAS_NO_ANSWER: 1}
    assert by_topic["Thames"]["errors"] == 2 and [t["title"] for t in analysis["by_topic"]] == ["Capitals", "Thames"]
    example = analysis["examples"][MOSTLY_WRONG][0]
    assert (example["id"], example["question"], example["gold"], example["prediction"]) == ("b1", "What is the capital of France?", ["Paris"], "France")
    assert analysis["examples"][LABEL_HAS_NO_ANSWER][0]["gold"] == []


def test_missing_predictions_are_counted_not_scored(data):
    partial = {k: v for k, v in PREDICTIONS.items() if k != "b4"}
    counts = analyze_predictions(data, partial)["counts"]
    assert (counts["scored"], counts["missing_predictions"], counts["errors"]) == (7, 1, 4)


def test_snippet_marks_gold_and_prediction(data):
    example = next(e for e in data.examples if e.id == "a2")
    piece = snippet(example, "flows", width=6)
    text = piece["text"]
    assert text == "Thames flows through London. It is"  # widened to word boundaries
    assert text[slice(*piece["gold_span"])] == "London" and text[slice(*piece["prediction_span"])] == "flows"
    assert piece["prefix"] and piece["suffix"]
    far = snippet(example, "The river", width=5)  # far apart for this width: centred on the gold answer only
    assert "prediction_span" not in far and far["text"][slice(*far["gold_span"])] == "London"
    wide = snippet(example, "It is long", width=200)
    assert wide["text"] == CONTEXT_A and not wide["prefix"]


def test_pages_and_report_section(data, tmp_path):
    from paretodistill.report.html import build_report

    analysis = {"model": "tiny", "data": "hand.json", "part": "all", **analyze_predictions(data, PREDICTIONS)}
    study = fx.write_study(tmp_path / "study", fx.HAND_FLASH, baseline=fx.HAND_BASELINE)
    files = write_analysis(analysis, study / "analysis" / "tiny")
    assert json.loads(files["json"].read_text())["counts"]["errors"] == 5
    page = files["html"].read_text()
    assert "Wrong answers by category" in page and '<mark class="gold">' in page and "plot-1-analysis-topics" in page
    report = build_report(study, tmp_path / "report.html").read_text()  # picks up DIR/analysis/*/analysis.json
    assert '<section id="errors">' in report and "What is the capital of France?" in report
    assert "label has no answer (model answered)" in report and "No error analysis included" not in report


def test_analyze_command_from_a_predictions_file(data, tmp_path, capsys):
    from paretodistill.cli import main

    data_file = tmp_path / "hand.json"
    data_file.write_text(json.dumps(DOCUMENT))
    predictions = tmp_path / "predictions.json"
    predictions.write_text(json.dumps(PREDICTIONS))
    assert main(["analyze", "--predictions", str(predictions), "--data", str(data_file), "--out", str(tmp_path / "a")]) == 0
    assert json.loads(capsys.readouterr().out.split("\nanalysis written")[0])["errors"] == 5
    assert (tmp_path / "a" / "analysis.html").exists()
    assert main(["analyze", "--predictions", str(predictions), "--data", str(data_file), "--part", "test"]) == 2


def test_analyze_runs_a_model_with_its_threshold(tmp_path):
    data_file = tmp_path / "hand.json"
    data_file.write_text(json.dumps(DOCUMENT))
    model = fx.tiny_checkpoint(tmp_path / "model", metrics={"na_threshold": 1e9})  # never abstains
    analysis = analyze(str(data_file), model_dir=str(model), out_dir=tmp_path / "out", cache_dir=str(tmp_path / "cache"),
                       log=lambda message: None)
    assert analysis["threshold"] == 1e9 and (tmp_path / "out" / "predictions" / "predictions.json").exists()
    counts = analysis["counts"]
    assert counts[LABEL_HAS_ANSWER] == 0 and counts[LABEL_HAS_NO_ANSWER] == 3  # answers every unanswerable question
    assert counts["errors"] == sum(counts[k] for k in analysis["categories"])
    assert counts["correct"] == pytest.approx(analysis["metrics"]["exact"] / 100 * counts["scored"])
