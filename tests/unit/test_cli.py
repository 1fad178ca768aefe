"""The command line: official-format scoring, loud missing predictions, and one-line errors for bad input."""

from __future__ import annotations

import json
import os

import pytest

from conftest import article, qa, write_squad
from paretodistill.cli import main

CONTEXT = "The Normans were a people in Normandy, France."


@pytest.fixture()
def data_file(tmp_path):
    return write_squad(tmp_path / "d.json", [article("N", CONTEXT, [
        qa("q1", "Who?", [("a people", 17)]), qa("q2", "When?"), qa("q3", "Where?", [("Normandy", 29)])])])


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_score_prints_official_keys(tmp_path, capsys, data_file):
    predictions = tmp_path / "p.json"
    predictions.write_text(json.dumps({"q1": "people in Normandy", "q2": "", "q3": "Normandy"}))
    code, out, _ = run(capsys, "score", data_file, predictions)
    metrics = json.loads(out)
    assert code == 0
    assert list(metrics)[:3] == ["exact", "f1", "total"]
    assert metrics["exact"] == pytest.approx(200 / 3)  # q2 and q3 right, q1 wrong
    # q1: "people in normandy" vs "people" (the article "a" is dropped): precision 1/3, recall 1, f1 0.5
    assert metrics["f1"] == pytest.approx(100 * (0.5 + 1 + 1) / 3)
    assert metrics["HasAns_total"] == 2 and metrics["NoAns_total"] == 1


def test_missing_predictions_are_loud_and_strict_fails(tmp_path, capsys, data_file):
    predictions = tmp_path / "p.json"
    predictions.write_text(json.dumps({"q1": "a people", "q2": ""}))
    code, out, err = run(capsys, "score", data_file, predictions)
    assert code == 0 and "1 question(s) have no prediction" in err and "q3" in err
    assert json.loads(out)["total"] == 2
    code, _, _ = run(capsys, "score", data_file, predictions, "--strict")
    assert code == 1


@pytest.mark.parametrize("content, message", [
    ("{not json", "malformed JSON"),
    ('{"version": "v2.0", "data": []}', "holds no articles"),
])
def test_bad_data_file_is_one_clear_line(tmp_path, capsys, content, message):
    bad = tmp_path / "bad.json"
    bad.write_text(content)
    predictions = tmp_path / "p.json"
    predictions.write_text("{}")
    code, out, err = run(capsys, "evaluate", "--model", tmp_path / "nomodel", "--data", bad)
    assert code == 2 and message in err and "Traceback" not in err and err.count("\n") == 1


def test_bad_predictions_file_is_an_error(tmp_path, capsys, data_file):
    predictions = tmp_path / "p.json"
    predictions.write_text('["not", "a", "dict"]')
    code, _, err = run(capsys, "score", data_file, predictions)
    assert code == 2 and "paretodistill score: error:" in err


def test_tokenizer_that_does_not_fit_the_model_is_refused(tmp_path, minilm_tokenizer):
    from transformers import BertConfig, BertForQuestionAnswering

    from paretodistill.errors import ModelMismatchError
    from paretodistill.models.loading import check_tokenizer_fits

    small = BertForQuestionAnswering(BertConfig(vocab_size=1000, hidden_size=32, num_hidden_layers=1,
                                                num_attention_heads=2, intermediate_size=32))
    with pytest.raises(ModelMismatchError, match="30522 tokens but the teacher embeds only 1000"):
        check_tokenizer_fits(minilm_tokenizer, small, "teacher")


def test_library_chatter_is_off_unless_the_user_asks(monkeypatch):
    """transformers' load reports and progress bars stay out of the main job's output; a user's own setting wins."""
    import subprocess
    import sys

    from paretodistill.cli import quiet_libraries

    monkeypatch.delenv("TRANSFORMERS_VERBOSITY", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "0")
    quiet_libraries()
    assert os.environ["TRANSFORMERS_VERBOSITY"] == "error" and os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "0"

    def stderr_of_loading(quiet: bool) -> str:
        script = ("from paretodistill.cli import quiet_libraries; "
                  + ("quiet_libraries(); " if quiet else "")
                  + "from paretodistill.models.loading import load_qa_model; load_qa_model('minilm')")
        env = {k: v for k, v in os.environ.items() if k not in ("TRANSFORMERS_VERBOSITY", "HF_HUB_DISABLE_PROGRESS_BARS")}
        run = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-2000:]
        return run.stderr

    assert "LOAD REPORT" in stderr_of_loading(quiet=False)  # the MiniLM encoder has no QA head: reported
    assert "LOAD REPORT" not in stderr_of_loading(quiet=True) and "Loading weights" not in stderr_of_loading(quiet=True)


def test_evaluate_a_part_without_a_split_is_one_line(tmp_path, capsys, data_file):
    model_dir = tmp_path / "model"  # no split.json in it, and no --split
    model_dir.mkdir()
    code, _, err = run(capsys, "evaluate", "--model", model_dir, "--data", data_file, "--part", "test")
    assert code == 2 and "--part test needs a split" in err and "Traceback" not in err


def test_every_command_documents_its_options_defaults_and_an_example():
    import argparse

    from paretodistill.cli import EXAMPLES, build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(commands.choices) == set(EXAMPLES)  # a new command needs its example
    for name, command in commands.choices.items():
        undocumented = [a.dest for a in command._actions if not a.help]
        assert not undocumented, f"{name}: {undocumented}"
        text = command.format_help()
        assert f"example:\n  paretodistill {name} " in text, name
    teacher = " ".join(commands.choices["teacher"].format_help().split())  # as read, not as wrapped
    assert "(default: 0.0001)" in teacher and "(default: None)" not in teacher and "(default: False)" not in teacher
