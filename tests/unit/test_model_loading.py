"""models.loading refuses, in one line, what transformers would load wrongly or end in a traceback: a
QA head drawn at random, weights a safe load refuses, and a config.json that is not a JSON object."""

from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/report_fixtures.py
import report_fixtures as fx  # noqa: E402
from paretodistill.cli import main  # noqa: E402
from paretodistill.errors import ModelMismatchError  # noqa: E402
from paretodistill.models.loading import check_trained_head, load_qa_model, read_config_json  # noqa: E402


def test_check_trained_head_names_the_missing_head_weights():
    check_trained_head({"missing_keys": set()}, "m")
    check_trained_head({"missing_keys": {"bert.pooler.dense.weight"}}, "m")  # not the head: fine
    with pytest.raises(ModelMismatchError, match=r"m: no trained question-answering head \(qa_outputs.bias, "
                                                 r"qa_outputs.weight missing\)"):
        check_trained_head({"missing_keys": {"qa_outputs.weight", "qa_outputs.bias"}}, "m")


def test_a_bare_encoder_loads_for_training_and_is_refused_for_answering(tmp_path):
    from transformers import BertForQuestionAnswering

    folder = fx.tiny_checkpoint(tmp_path / "bare")
    BertForQuestionAnswering.from_pretrained(folder).bert.save_pretrained(folder)
    assert load_qa_model(folder) is not None  # a student's QA head starts fresh: allowed
    with pytest.raises(ModelMismatchError, match="no trained question-answering head"):
        load_qa_model(folder, trained_head=True)
    load_qa_model(fx.tiny_checkpoint(tmp_path / "qa"), trained_head=True)  # a QA checkpoint: fine


class _Planted:
    def __reduce__(self):
        return (print, ("planted code ran",))


@pytest.mark.parametrize("weights, message", [
    ("pickle", "its pytorch_model.bin is refused: loading takes only tensors from a pickle, for safety"),
    ("junk.safetensors", "unreadable model.safetensors"),
])
def test_weights_a_safe_load_refuses_are_one_line(tmp_path, capsys, weights, message):
    folder = fx.tiny_checkpoint(tmp_path / "m")
    (folder / "model.safetensors").unlink()
    if weights == "pickle":
        (folder / "pytorch_model.bin").write_bytes(pickle.dumps(_Planted(), protocol=2))
    else:
        (folder / "model.safetensors").write_bytes(b"junk")
    assert main(["predict", "--model", str(folder), "--question", "q ?", "--context", "paris"]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and "Traceback" not in captured.err and "planted code ran" not in captured.out


@pytest.mark.parametrize("content, message", [
    (b"[]", "expected a JSON object of settings, got a list"),
    (b'{"model_type": "bert", "name": "caf\xe9"}', "not UTF-8 text"),
    (b"[" * 200_000 + b"]" * 200_000, "JSON nested too deeply to read"),
    (b'{"model_type": ', "malformed JSON"),
])
def test_a_malformed_config_json_is_one_line(tmp_path, capsys, content, message):
    folder = fx.tiny_checkpoint(tmp_path / "m")
    (folder / "config.json").write_bytes(content)
    with pytest.raises(ModelMismatchError, match=message):
        read_config_json(folder)
    for argv in (["predict", "--model", str(folder), "--question", "q ?", "--context", "paris"],
                 ["distill", "--teacher", str(folder), "--data", str(tmp_path / "no.json"), "--out", str(tmp_path / "o")]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err
        last = err.strip().splitlines()[-1]
        assert last.startswith("paretodistill ") and message in last and str(folder / "config.json") in last


def test_read_config_json_gives_the_settings(tmp_path):
    folder = fx.tiny_checkpoint(tmp_path / "m")
    assert read_config_json(folder) == json.loads((folder / "config.json").read_text())
    with pytest.raises(ModelMismatchError, match="teacher T: no readable config.json"):
        read_config_json(tmp_path / "nowhere", "teacher T")
