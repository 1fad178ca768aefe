"""predict on real SQuAD 2.0 dev questions (two answerable, one not) with a small MiniLM-tokenized
model built here: PyTorch and ONNX Runtime give the same answers, from the command and from answer()."""

from __future__ import annotations

import json
import sys

import pytest

from paretodistill.cli import main
from paretodistill.data.squad import load_squad

pytestmark = pytest.mark.integration

QUESTION_IDS = ("56ddde6b9a695914005b9628", "56ddde6b9a695914005b962b", "5ad39d53604f3c001a3fe8d2")


@pytest.fixture(scope="module")
def student(tmp_path_factory, minilm_tokenizer, one_torch_thread):
    """A 2-layer, 64-wide BERT QA model with the MiniLM tokenizer, saved with model.onnx beside it."""
    pytest.importorskip("onnxruntime")
    import torch
    from transformers import BertConfig, BertForQuestionAnswering

    from paretodistill.export.students import export_checked_onnx

    folder = tmp_path_factory.mktemp("dev") / "student"
    torch.manual_seed(7)
    config = BertConfig(vocab_size=len(minilm_tokenizer), hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=128, pad_token_id=minilm_tokenizer.pad_token_id)
    BertForQuestionAnswering(config).save_pretrained(folder)
    minilm_tokenizer.save_pretrained(folder)
    (folder / "metrics.json").write_text(json.dumps({
        "na_threshold": 0.0,
        "data": {"feature_settings": {"max_seq_length": 96, "doc_stride": 48, "max_query_length": 32}},
    }))
    export_checked_onnx(folder, folder / "model.onnx")
    return folder


def dev_questions(dev_v2):
    by_id = {e.id: e for e in load_squad(dev_v2).examples}
    return [by_id[qid] for qid in QUESTION_IDS]


def test_torch_and_onnx_answer_dev_questions_alike(student, dev_v2, tmp_path, monkeypatch, capsys):
    examples = dev_questions(dev_v2)
    assert [e.is_impossible for e in examples] == [False, False, True]
    lines = "".join(json.dumps({"id": e.id, "question": e.question, "context": e.context}) + "\n" for e in examples)
    results = {}
    for runtime in ("torch", "onnx"):
        monkeypatch.setattr(sys, "stdin", __import__("io").StringIO(lines))
        assert main(["predict", "--model", str(student), "--runtime", runtime]) == 0
        results[runtime] = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [r["id"] for r in results["torch"]] == list(QUESTION_IDS)
    for a, b, example in zip(results["torch"], results["onnx"], examples):
        assert (a["text"], a["no_answer"], a["best_span"]) == (b["text"], b["no_answer"], b["best_span"])
        assert a["na_score"] == pytest.approx(b["na_score"], abs=1e-3)
        assert a["best_span"] and a["best_span"] in example.context
        assert a["no_answer"] == (a["na_score"] > 0.0)


def test_answer_api_on_a_dev_question(student, dev_v2):
    from paretodistill.export.predict import answer

    example = dev_questions(dev_v2)[0]
    torch_answer = answer(student, example.question, example.context)
    onnx_answer = answer(student, example.question, example.context, runtime="onnx")
    assert (torch_answer.text, torch_answer.no_answer) == (onnx_answer.text, onnx_answer.no_answer)
    assert torch_answer.threshold == 0.0
