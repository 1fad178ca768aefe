"""predict / answer(): the recorded threshold and feature lengths are applied, PyTorch and ONNX give the
same answers, the command reads one question, a SQuAD file or JSON lines, and bad input is one line, exit 2."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/report_fixtures.py
import report_fixtures as fx  # noqa: E402
from conftest import article, qa, write_squad  # noqa: E402
from paretodistill.cli import main  # noqa: E402
from paretodistill.errors import ConfigError, ModelMismatchError  # noqa: E402
from paretodistill.export.predict import Predictor, answer, question  # noqa: E402
from paretodistill.export.runtime import choose_runtime, recorded_settings  # noqa: E402

CONTEXT = ("the river thames flows through london . london is the capital city of it . "
           "paris is the capital of france . the battle of hastings was in 1066 .")
SHORT_WINDOWS = {"data": {"feature_settings": {"max_seq_length": 32, "doc_stride": 8, "max_query_length": 16}}}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, one_torch_thread) -> Path:
    """A tiny checkpoint that records a threshold and short windows (so the context needs several)."""
    return fx.tiny_checkpoint(tmp_path_factory.mktemp("m") / "student", seed=1,
                              metrics={"na_threshold": -1.5, **SHORT_WINDOWS})


def test_answer_applies_the_recorded_threshold(model_dir):
    result = answer(model_dir, "where does the river thames flow ?", CONTEXT)
    assert result.threshold == -1.5
    assert result.no_answer == (result.na_score > -1.5)
    assert result.best_span and result.best_span in CONTEXT
    assert result.text == ("" if result.no_answer else result.best_span)
    always = answer(model_dir, "where does the river thames flow ?", CONTEXT, threshold=1e12)
    never = answer(model_dir, "where does the river thames flow ?", CONTEXT, threshold=-1e12)
    assert (always.no_answer, always.text) == (False, result.best_span)
    assert (never.no_answer, never.text) == (True, "")
    assert always.score == pytest.approx(result.score) and always.na_score == pytest.approx(result.na_score)


def test_recorded_settings_sources(model_dir, tmp_path):
    recorded = recorded_settings(model_dir)
    assert (recorded.na_threshold, recorded.threshold_source) == (-1.5, "metrics.json")
    assert (recorded.features.max_seq_length, recorded.features.doc_stride) == (32, 8)
    exported = fx.tiny_checkpoint(tmp_path / "exported")
    (exported / "export.json").write_text(json.dumps({"na_threshold": 2.25}))
    assert recorded_settings(exported).na_threshold == 2.25
    bare = fx.tiny_checkpoint(tmp_path / "bare")
    assert (recorded_settings(bare).na_threshold, recorded_settings(bare).threshold_source) == (0.0, "default (0.0)")
    assert recorded_settings(bare).features.max_seq_length == 384


def test_predict_matches_evaluate(model_dir, tmp_path, monkeypatch):
    """The answers of predict --data are the answers evaluate scores (one feature and postprocessing path)."""
    import paretodistill.recipes.evaluate as evaluate_recipe

    monkeypatch.setattr(evaluate_recipe, "supports_fast_bf16", lambda device: False)  # float32 on both sides
    data = write_squad(tmp_path / "d.json", [article("T", CONTEXT, [
        qa("q1", "where does the river thames flow ?", [("london", 31)]),
        qa("q2", "what is the capital of france ?", [("paris", CONTEXT.index("paris"))]),
        qa("q3", "who won the battle of rome ?"),
    ])])
    evaluate_recipe.evaluate_checkpoint(str(model_dir), str(data), out_dir=str(tmp_path / "eval"), log=lambda m: None,
                                        cache_dir=str(tmp_path / "cache"))
    expected = json.loads((tmp_path / "eval" / "predictions.json").read_text())
    assert main(["predict", "--model", str(model_dir), "--data", str(data), "--out", str(tmp_path / "p.jsonl")]) == 0
    lines = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert {line["id"]: line["text"] for line in lines} == expected


def test_onnx_gives_the_same_answers(model_dir, tmp_path):
    pytest.importorskip("onnxruntime")
    from paretodistill.export.students import export_checked_onnx

    folder = tmp_path / "onnx"
    fx.tiny_checkpoint(folder, seed=1, metrics={"na_threshold": -1.5, **SHORT_WINDOWS})
    export_checked_onnx(folder, folder / "model.onnx")
    questions = [question(str(i), q, CONTEXT) for i, q in enumerate(
        ["where does the river thames flow ?", "what is the capital of france ?", "when was the battle ?"])]
    torch_answers = Predictor(folder, "torch").answer_examples(questions)
    onnx_predictor = Predictor(folder, "onnx")
    assert onnx_predictor.runtime == "onnx"
    for a, b in zip(torch_answers, onnx_predictor.answer_examples(questions)):
        assert (a.text, a.no_answer, a.best_span) == (b.text, b.no_answer, b.best_span)
        assert a.score == pytest.approx(b.score, abs=1e-4) and a.na_score == pytest.approx(b.na_score, abs=1e-4)
    (folder / "model.safetensors").unlink()  # only the ONNX file left: it is the default
    assert choose_runtime(folder)[0] == "onnx"
    with pytest.raises(ModelMismatchError, match="no PyTorch weights"):
        choose_runtime(folder, "torch")


def test_runtime_choice_errors(model_dir):
    assert choose_runtime(model_dir) == ("torch", model_dir)
    with pytest.raises(ModelMismatchError, match="export --onnx"):
        choose_runtime(model_dir, "onnx")
    with pytest.raises(ModelMismatchError, match="export --int8"):
        choose_runtime(model_dir, int8=True)
    with pytest.raises(ConfigError, match="--runtime onnx"):
        choose_runtime(model_dir, "torch", int8=True)


def test_predict_command_inputs(model_dir, capsys, monkeypatch):
    assert main(["predict", "--model", str(model_dir), "--question", "what is the capital of france ?",
                 "--context", CONTEXT]) == 0
    captured = capsys.readouterr()
    line = json.loads(captured.out)
    assert set(line) == {"id", "text", "score", "no_answer", "na_score", "threshold", "best_span"}
    assert "torch:" in captured.err and "threshold -1.5 (metrics.json)" in captured.err
    rows = [{"id": "a", "question": "what is the capital of france ?", "context": CONTEXT},
            {"question": "where does the river thames flow ?", "context": CONTEXT}]
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(json.dumps(r) for r in rows) + "\n"))
    assert main(["predict", "--model", str(model_dir)]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["id"] for x in lines] == ["a", "2"] and lines[0] == {**line, "id": "a"}


@pytest.mark.parametrize("argv, stdin, message", [
    (["--question", "what ?"], "", "--question and --context go together"),
    (["--part", "test", "--question", "q", "--context", "c"], "", "--part selects from a --data file"),
    ([], "", "no questions on stdin"),
    ([], "{not json\n", "stdin line 1: not JSON"),
    ([], '{"question": "q"}\n', 'stdin line 1: expected an object with "question" and "context"'),
    (["--question", "  ", "--context", "c"], "", "the question is empty"),
    (["--data", "/nonexistent.json"], "", "no such file"),
    (["--int8"], '{"question": "q", "context": "c"}\n', "export --int8"),
])
def test_bad_input_is_one_line_and_exit_2(model_dir, capsys, monkeypatch, argv, stdin, message):
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    assert main(["predict", "--model", str(model_dir), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("paretodistill predict: error:") and message in err and "\n" not in err


FRANCE = {"question": "what is the capital of france ?", "context": "paris is the capital of france ."}
HAMLET = {"question": "who wrote hamlet ?", "context": "william shakespeare wrote hamlet in london ."}


def _stdin_bytes(monkeypatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


@pytest.mark.parametrize("rows, lines", [
    ([{"id": "q", **FRANCE}, {"id": "q", **HAMLET}], "1 and 2"),
    ([{"id": "2", **FRANCE}, HAMLET], "1 and 2"),  # line 2 has no id: it would be answered as "2"
    ([{"id": 7, **FRANCE}, {"id": "7", **HAMLET}], "1 and 2"),
])
def test_a_repeated_id_is_refused_naming_both_lines(model_dir, capsys, monkeypatch, rows, lines):
    _stdin_bytes(monkeypatch, "".join(json.dumps(r) + "\n" for r in rows).encode())
    assert main(["predict", "--model", str(model_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert f"stdin lines {lines}: the same question id" in err and "\n" not in err


def test_each_answer_comes_from_its_own_context_whatever_the_ids(model_dir, capsys, monkeypatch):
    """Ids that read like the other line's number, given in the opposite order: each answer still comes
    from its own question's context (answers are keyed by position, the user's id is echoed)."""
    rows = [{"id": "2", **FRANCE}, {"id": "1", **HAMLET}, {"id": 0, **FRANCE}]
    _stdin_bytes(monkeypatch, "".join(json.dumps(r) + "\n" for r in rows).encode())
    assert main(["predict", "--model", str(model_dir)]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["id"] for x in lines] == ["2", "1", "0"]
    assert lines[0]["best_span"] in FRANCE["context"] and lines[1]["best_span"] in HAMLET["context"]
    assert lines[2] == {**lines[0], "id": "0"}


@pytest.mark.parametrize("data, message", [
    (b'{"id": "a", "question": "\\ud800 where ?", "context": "paris"}\n', "a lone surrogate"),
    (b'{"id": "\\udfff", "question": "where ?", "context": "paris"}\n', "a lone surrogate"),
    (b'{"id": "a", "question": "\xff\xfe where ?", "context": "paris"}\n', "stdin line 1: not UTF-8 text"),
    (b'{"question": "q", "context": "c"}\n\x80\n', "stdin line 2: not UTF-8 text"),
    (b'{"id": ["a"], "question": "q", "context": "c"}\n', "the id must be a string or an integer"),
    (b'{"question": 5, "context": "c"}\n', "the question must be a string, got int"),
    (b"[" * 100_000 + b"]" * 100_000 + b"\n", "stdin line 1: JSON nested too deeply"),
])
def test_bad_text_on_stdin_is_one_line(model_dir, capsys, monkeypatch, data, message):
    _stdin_bytes(monkeypatch, data)
    assert main(["predict", "--model", str(model_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("paretodistill predict: error:") and message in err and "\n" not in err


def test_a_command_line_argument_that_is_not_utf8_is_one_line(model_dir, capsys):
    """Bytes the shell could not decode arrive as lone surrogates (surrogateescape)."""
    argument = b"where \xff ?".decode("utf-8", "surrogateescape")
    assert main(["predict", "--model", str(model_dir), "--question", argument, "--context", "paris"]) == 2
    assert "a lone surrogate" in capsys.readouterr().err


def test_a_base_encoder_without_a_qa_head_is_refused_by_name(tmp_path, capsys):
    """Loaded into a QA class, a bare encoder gets a random head: its answers would be noise at threshold 0."""
    from transformers import BertForQuestionAnswering

    folder = fx.tiny_checkpoint(tmp_path / "bare")
    BertForQuestionAnswering.from_pretrained(folder).bert.save_pretrained(folder)
    assert main(["predict", "--model", str(folder), "--question", "q ?", "--context", "paris"]) == 2
    err = capsys.readouterr().err
    assert "no trained question-answering head (qa_outputs.bias, qa_outputs.weight missing)" in err
