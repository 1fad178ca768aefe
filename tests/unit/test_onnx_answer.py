"""answer.py, shipped with an ONNX export: in a Python where torch and transformers cannot be imported it
answers real SQuAD 2.0 dev questions exactly as ``paretodistill predict`` does (ONNX Runtime and PyTorch),
from the settings the export wrote into the ONNX files' metadata; its windows are the feature builder's;
a model without token types (DistilBERT) exports, and is timed, with input ids and attention mask only."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/report_fixtures.py
import report_fixtures as fx  # noqa: E402

pytest.importorskip("onnxruntime")

from paretodistill.cli import main  # noqa: E402
from paretodistill.config import FeatureSettings  # noqa: E402
from paretodistill.data.squad import load_squad  # noqa: E402
from paretodistill.export import onnx_answer  # noqa: E402
from paretodistill.export.predict import Predictor, question  # noqa: E402
from paretodistill.export.students import export_checked_onnx, export_trial  # noqa: E402

M = 1_000_000
WINDOWS = {"max_seq_length": 96, "doc_stride": 48, "max_query_length": 32}  # long dev contexts need several
# Two answerable dev questions and one not (as tests/integration/test_predict_dev.py), and one of each about
# a long paragraph with non-ASCII characters (EU law: several windows, offsets past the ASCII range).
QUESTION_IDS = ("56ddde6b9a695914005b9628", "56ddde6b9a695914005b962b", "5ad39d53604f3c001a3fe8d2",
                "5725ca4389a1e219009abeb4", "5ad10f94645df0001a2d0bc4")
ANSWER_FIELDS = ("id", "text", "score", "no_answer", "na_score", "threshold", "best_span")

# A Python in which importing torch, transformers or paretodistill fails; it loads answer.py by path.
NO_TORCH = """
import importlib.util, json, sys
for name in ("torch", "transformers", "paretodistill"):
    sys.modules[name] = None
spec = importlib.util.spec_from_file_location("answer", sys.argv[1])
answer = sys.modules["answer"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(answer)
folder, int8 = sys.argv[2], sys.argv[3] == "int8"
for line in sys.stdin:
    row = json.loads(line)
    print(json.dumps({**answer.answer(folder, row["question"], row["context"], int8=int8), "id": row["id"]}))
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers", "paretodistill") and sys.modules[m])
assert not loaded, loaded
"""


def dev_examples(dev_v2, ids=QUESTION_IDS):
    by_id = {e.id: e for e in load_squad(dev_v2).examples}
    return [by_id[qid] for qid in ids]


@pytest.fixture(scope="module")
def export(tmp_path_factory, minilm_tokenizer, dev_v2, one_torch_thread) -> Path:
    """A 2-layer, 64-wide BERT QA student with the MiniLM tokenizer, exported with --int8 from a one-trial study.

    Its recorded threshold is the median no-answer score of the dev questions, so some are answered
    and some are not.
    """
    import torch
    from transformers import BertConfig, BertForQuestionAnswering

    directory = tmp_path_factory.mktemp("study")
    checkpoint = directory / "trials" / "regular-0" / "checkpoint"
    torch.manual_seed(7)
    config = BertConfig(vocab_size=len(minilm_tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=128, pad_token_id=minilm_tokenizer.pad_token_id)
    BertForQuestionAnswering(config).save_pretrained(checkpoint)
    minilm_tokenizer.save_pretrained(checkpoint)
    (checkpoint / "metrics.json").write_text(json.dumps({"data": {"feature_settings": WINDOWS}}))
    examples = dev_examples(dev_v2)
    na_scores = sorted(a.na_score for a in Predictor(checkpoint, "torch").answer_examples(examples))
    (checkpoint / "metrics.json").write_text(json.dumps({"na_threshold": na_scores[len(na_scores) // 2],
                                                         "data": {"feature_settings": WINDOWS}}))
    regular = [fx.FakeTrial(70.0, 20 * M, 9.0, params=fx.params_for(0), checkpoint=str(checkpoint))]
    study = fx.write_study(directory, fx.HAND_FLASH[:3], regular, fx.HAND_BASELINE, objectives=fx.OBJECTIVES_3D)
    out = tmp_path_factory.mktemp("export") / "student"
    export_trial(study, 0, out, int8=True)
    return out


def metadata(path: Path) -> dict[str, object]:
    import onnx

    return {p.key: json.loads(p.value) for p in onnx.load(str(path)).metadata_props if p.key != "onnx.infer"}


def predict_lines(folder: Path, examples, args: list[str], monkeypatch, capsys) -> list[dict]:
    lines = "".join(json.dumps({"id": e.id, "question": e.question, "context": e.context}) + "\n" for e in examples)
    monkeypatch.setattr(sys, "stdin", io.StringIO(lines))
    assert main(["predict", "--model", str(folder), *args]) == 0
    return [json.loads(x) for x in capsys.readouterr().out.splitlines()]


def answers_without_torch(folder: Path, examples, int8: bool = False) -> list[dict]:
    lines = "".join(json.dumps({"id": e.id, "question": e.question, "context": e.context}) + "\n" for e in examples)
    run = subprocess.run([sys.executable, "-c", NO_TORCH, str(folder / "answer.py"), str(folder),
                          "int8" if int8 else "float"], input=lines, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    return [json.loads(x) for x in run.stdout.splitlines()]


def assert_same_answers(ours: list[dict], theirs: list[dict]) -> None:
    assert [a["id"] for a in ours] == [b["id"] for b in theirs]
    for a, b in zip(ours, theirs):
        assert set(a) == set(ANSWER_FIELDS)
        assert (a["text"], a["no_answer"], a["best_span"], a["threshold"]) == (
            b["text"], b["no_answer"], b["best_span"], b["threshold"]), (a, b)
        assert a["na_score"] == pytest.approx(b["na_score"], abs=1e-4) and a["score"] == pytest.approx(b["score"], abs=1e-4)


def test_answers_without_torch_equal_predicts(export, dev_v2, monkeypatch, capsys):
    examples = dev_examples(dev_v2)
    ours = answers_without_torch(export, examples)
    assert {a["no_answer"] for a in ours} == {True, False}  # both outcomes of the recorded threshold
    assert all(a["best_span"] and a["best_span"] in e.context for a, e in zip(ours, examples))
    for runtime in ("onnx", "torch"):
        assert_same_answers(ours, predict_lines(export, examples, ["--runtime", runtime], monkeypatch, capsys))


def test_int8_answers_without_torch_equal_predicts(export, dev_v2, monkeypatch, capsys):
    """One question per predict call: int8 activations are quantized with the range of the whole batch,
    so a question's scores move a little with the other questions' windows batched beside it."""
    examples = dev_examples(dev_v2)
    assert_same_answers(answers_without_torch(export, examples, int8=True),
                        [line for e in examples for line in predict_lines(export, [e], ["--int8"], monkeypatch, capsys)])


def test_command_line_prints_one_json_line(export, dev_v2):
    example = dev_examples(dev_v2)[0]
    run = subprocess.run([sys.executable, str(export / "answer.py"), "--question", example.question,
                          "--context", example.context], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    assert json.loads(run.stdout) == onnx_answer.answer(export, example.question, example.context)
    empty = subprocess.run([sys.executable, str(export / "answer.py"), str(export), "--question", " ",
                            "--context", example.context], capture_output=True, text=True, timeout=300)
    assert empty.returncode == 2 and "the question is empty" in empty.stderr


def test_the_onnx_files_carry_the_answer_settings(export):
    recorded = json.loads((export / "metrics.json").read_text())["na_threshold"]
    expected = {"answer_format_version": 1, "na_threshold": recorded, **WINDOWS, "n_best": 20, "max_answer_length": 30,
                "input_names": ["input_ids", "attention_mask", "token_type_ids"]}
    assert metadata(export / "model.onnx") == expected
    assert metadata(export / "model.int8.onnx") == expected
    assert (export / "answer.py").read_bytes() == Path(onnx_answer.__file__).read_bytes()
    card = (export / "README.md").read_text()
    assert "`answer.py` answers from `model.onnx` with onnxruntime" in card and "python student/answer.py" in card


def test_a_file_without_settings_is_refused(export, tmp_path):
    import onnx

    bare = tmp_path / "bare"
    bare.mkdir()
    model = onnx.load(str(export / "model.onnx"))
    del model.metadata_props[:]
    onnx.save(model, str(bare / "model.onnx"))
    (bare / "tokenizer.json").write_bytes((export / "tokenizer.json").read_bytes())
    with pytest.raises(onnx_answer.AnswerError, match="no answer settings"):
        onnx_answer.answer(bare, "who ?", "someone .")


@pytest.mark.parametrize("windows", [FeatureSettings(96, 48, 32), FeatureSettings(64, 16, 8)],
                         ids=["export", "short-questions"])
def test_windows_are_the_feature_builders(export, dev_v2, windows):
    """The windows of 400 dev questions (with questions cut at 8 tokens in the second case) are
    build_features' windows: ids, token types and context offsets."""
    import numpy as np

    from paretodistill.data.features import build_features
    from paretodistill.models.loading import load_tokenizer

    examples = list(load_squad(dev_v2).examples)[::30]
    features = build_features(examples, load_tokenizer(export), windows)
    settings = onnx_answer.AnswerSettings(0.0, windows.max_seq_length, windows.doc_stride, windows.max_query_length,
                                          20, 30, ("input_ids",))
    tokenizer = onnx_answer.WindowTokenizer(export / "tokenizer.json", settings)
    ours = [w for e in examples for w in tokenizer.windows(e.question, e.context)]
    assert len(ours) == len(features) > len(examples)
    for index, window in enumerate(ours):
        row = features.row(index)
        assert window.input_ids == features.input_ids[row].tolist()
        assert window.type_ids == features.token_type_ids[row].tolist()
        assert np.array_equal(window.offsets, features.offsets[row])


def test_context_offsets_lose_surrounding_whitespace():
    """As data/features.py: a SentencePiece "▁word" span starts at its word; a whitespace token spans nothing."""
    context = "the  river 1066"
    sequence_ids = [None, 0, None, 1, 1, 1, 1, None]
    offsets = [(0, 0), (0, 3), (0, 0), (0, 3), (3, 4), (4, 10), (10, 15), (0, 0)]
    assert onnx_answer.context_offsets(context, sequence_ids, offsets) == [
        (-1, -1), (-1, -1), (-1, -1), (0, 3), (-1, -1), (5, 10), (11, 15), (-1, -1)]


def test_a_model_without_token_types_exports_and_is_timed_with_two_inputs(tmp_path):
    import torch
    from transformers import DistilBertConfig, DistilBertForQuestionAnswering

    from paretodistill.hardware.latency import measure_latency

    folder = tmp_path / "distilbert"
    tokenizer = fx.tiny_tokenizer(folder)
    torch.manual_seed(0)
    model = DistilBertForQuestionAnswering(DistilBertConfig(vocab_size=len(tokenizer), dim=32, n_layers=2, n_heads=2,
                                                            hidden_dim=64, max_position_embeddings=128)).eval()
    model.save_pretrained(folder)
    (folder / "metrics.json").write_text(json.dumps({"na_threshold": 0.25, "data": {"feature_settings": {
        "max_seq_length": 32, "doc_stride": 8, "max_query_length": 16}}}))
    check = export_checked_onnx(folder, folder / "model.onnx")
    assert check["inputs"] == ["input_ids", "attention_mask"] and check["max_abs_diff"] <= 1e-4
    import onnxruntime

    session = onnxruntime.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input_ids", "attention_mask"]
    assert metadata(folder / "model.onnx")["input_names"] == ["input_ids", "attention_mask"]

    context = fx.TINY_CONTEXTS["Thames"] + " " + fx.TINY_CONTEXTS["Hastings"]
    questions = [question(str(i), q, context) for i, q in enumerate(fx.TINY_QUESTIONS)]
    predicted = [a.to_dict() for a in Predictor(folder, "onnx").answer_examples(questions)]
    answerer = onnx_answer.OnnxAnswerer(folder)
    assert answerer.threshold == 0.25
    assert_same_answers([answerer.answer(q.question, q.context, q.id) for q in questions], predicted)

    for runtime in ("torch", "onnx"):
        timed = measure_latency(model, sequence_length=16, warmup=1, repeats=2, runtime=runtime, threads=1)
        assert timed["median_ms"] > 0
