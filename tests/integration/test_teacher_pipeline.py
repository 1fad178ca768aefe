"""The whole foundation on a small real slice of the SQuAD 2.0 dev set with the packaged MiniLM.

Tokenize real articles, check the gold spans and an oracle score of 100, then run the `teacher`
command for a few steps and check that `evaluate` on its checkpoint reproduces its test figures.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from paretodistill.cli import main
from paretodistill.config import FeatureSettings
from paretodistill.data.features import cached_features
from paretodistill.data.splits import split_by_article
from paretodistill.data.squad import load_squad
from paretodistill.evaluation.inference import score_answers
from paretodistill.evaluation.postprocess import extract_answers
from paretodistill.evaluation.squad_metric import normalize_answer

pytestmark = pytest.mark.integration


def test_real_dev_set_counts_and_split(dev_v2):
    data = load_squad(dev_v2)
    assert (len(data.articles), len(data.examples)) == (35, 11873)
    assert sum(e.is_impossible for e in data.examples) == 5945
    split = split_by_article(data, seed=13)
    assert (len(split.train), len(split.validation), len(split.test)) == (21, 7, 7)
    parts = [{e.id for e in split.select(data, p).examples} for p in ("train", "validation", "test")]
    assert sum(map(len, parts)) == 11873 and not (parts[0] & parts[1] or parts[1] & parts[2])


def test_real_gold_spans_and_oracle_score(dev_v2, minilm_tokenizer, tmp_path):
    data = load_squad(dev_v2)
    data = data.select_titles(data.titles[:2])
    features = cached_features(data.examples, minilm_tokenizer, FeatureSettings(), tmp_path)
    decoded = [
        normalize_answer(data.examples[x].context[o[s][0] : o[e][1]]) == normalize_answer(data.examples[x].answers[0].text)
        for i in range(len(features))
        for x, s, e, o in [(features.example_index[i], features.start_positions[i], features.end_positions[i],
                            features.offsets[features.row(i)])]
        if s != 0
    ]
    assert len(decoded) > 250 and np.mean(decoded) > 0.99
    start = np.full(features.num_tokens(), -10.0, np.float32)
    end = start.copy()
    for i in range(len(features)):
        row = features.row(i)
        start[row.start + features.start_positions[i]] = 10
        end[row.start + features.end_positions[i]] = 10
    metrics = score_answers(data, extract_answers(data.examples, features, start, end)).metrics
    assert metrics["exact"] == 100.0 and metrics["f1"] == 100.0 and metrics["total"] == len(data.examples)


def test_teacher_command_then_evaluate_reproduces_test_figures(dev_v2, tmp_path, capsys):
    out = tmp_path / "teacher"
    code = main(["teacher", "--data", str(dev_v2), "--out", str(out), "--max-steps", "6", "--batch-size", "8",
                 "--max-eval-articles", "1", "--max-train-questions", "200", "--max-seq-length", "256", "--doc-stride", "96",
                 "--cache-dir", str(tmp_path / "cache"), "--warmup-steps", "0", "--log-every-steps", "3"])
    assert code == 0
    for name in ("metrics.json", "split.json", "curve.json", "config.json", "model.safetensors", "tokenizer.json"):
        assert (out / name).exists(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["na_threshold_chosen_on"] == "validation"
    # six batches of 8, one of which may be the epoch's partial last batch
    assert metrics["training"]["steps"] == 6 and 41 <= metrics["training"]["examples_seen"] <= 48
    assert metrics["test"]["total"] == metrics["data"]["test"]["questions"]
    capsys.readouterr()

    # evaluate reads the split, the lengths and the threshold recorded with the checkpoint
    code = main(["evaluate", "--model", str(out), "--data", str(dev_v2), "--part", "test",
                 "--cache-dir", str(tmp_path / "cache")])
    assert code == 0
    reproduced = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    split = json.loads((out / "split.json").read_text())
    assert len(split["test"]) == 1 and reproduced["split"]["titles"] == split["test"]
    for key in ("exact", "f1", "total", "HasAns_exact", "NoAns_exact", "na_threshold", "best_f1"):
        assert reproduced[key] == metrics["test"][key], key


def test_packaged_teacher_is_bf16_rescored_and_carded(dev_v2, tmp_path, capsys):
    """``package_teacher``: bf16 weights half the size, figures re-measured on them, a card with the licence."""
    from safetensors import safe_open

    from paretodistill.models.loading import load_qa_model
    from paretodistill.recipes.shipped_teacher import package_teacher

    trained = tmp_path / "teacher"
    assert main(["teacher", "--data", str(dev_v2), "--out", str(trained), "--max-steps", "4", "--batch-size", "8",
                 "--max-eval-articles", "1", "--max-train-questions", "100", "--max-seq-length", "256",
                 "--doc-stride", "96", "--cache-dir", str(tmp_path / "cache"), "--warmup-steps", "0"]) == 0
    titles = json.loads((trained / "train_titles.json").read_text())
    assert titles and set(titles) <= set(json.loads((trained / "split.json").read_text())["train"])

    shipped = tmp_path / "shipped"
    metrics = package_teacher(trained, shipped, command="paretodistill teacher ...", data_file=str(dev_v2),
                              cache_dir=tmp_path / "cache", log=lambda m: None)
    with safe_open(shipped / "model.safetensors", "pt") as weights:
        assert {weights.get_tensor(k).dtype for k in weights.keys()} == {torch.bfloat16}
    size = (shipped / "model.safetensors").stat().st_size
    assert 0.45 < size / (trained / "model.safetensors").stat().st_size < 0.55
    recorded = json.loads((shipped / "metrics.json").read_text())
    assert recorded["test"]["total"] == metrics["test"]["total"] == json.loads(
        (trained / "metrics.json").read_text())["test"]["total"]
    assert recorded["na_threshold_chosen_on"] == "validation" and "float32_figures" in recorded
    card = (shipped / "README.md").read_text()
    assert "license: apache-2.0" in card and f"**{recorded['test']['f1']:.2f}**" in card
    assert "Apache License" in (shipped / "LICENSE").read_text()
    assert {p.dtype for p in load_qa_model(shipped).parameters()} == {torch.float32}

    # `evaluate` on the packaged folder reproduces the figures its card states
    capsys.readouterr()
    assert main(["evaluate", "--model", str(shipped), "--data", str(dev_v2), "--part", "test",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    reproduced = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert reproduced["f1"] == recorded["test"]["f1"] and reproduced["exact"] == recorded["test"]["exact"]
