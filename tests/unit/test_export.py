"""Export: the copied checkpoint loads with the Auto classes and gives identical logits; the model card
carries the measured figures; ONNX matches PyTorch; clear errors for what cannot be exported."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/report_fixtures.py
import report_fixtures as fx  # noqa: E402
from paretodistill.export.students import ExportError, export_trial  # noqa: E402
from paretodistill.outputs import OutputRefused  # noqa: E402

M = 1_000_000


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    """Regular trial 0: a plain BERT checkpoint (absolute path); 1: a pruned student (path relative
    to the study directory); 2: failed without a checkpoint."""
    directory = tmp_path_factory.mktemp("study")
    plain = fx.tiny_checkpoint(directory / "trials" / "regular-0" / "checkpoint", metrics={"na_threshold": -1.5})
    fx.tiny_checkpoint(directory / "trials" / "regular-1" / "checkpoint", pruned=True, seed=3)
    (plain / ".state").mkdir()  # training state must not be shipped
    regular = [
        fx.FakeTrial(70.0, 20 * M, 9.0, params=fx.params_for(0), test_exact=68.0, checkpoint=str(plain)),
        fx.FakeTrial(65.0, 10 * M, 5.0, params=fx.params_for(1), test_exact=66.0, checkpoint="trials/regular-1/checkpoint"),
        fx.FakeTrial(state="FAIL", failure_kind="out_of_memory", failure_reason="out of memory at step 3"),
    ]
    return fx.write_study(directory, fx.HAND_FLASH[:3], regular, fx.HAND_BASELINE, objectives=fx.OBJECTIVES_3D)


def logits(model) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(5, model.config.vocab_size, (2, 11), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 7:] = 0
    with torch.inference_mode():
        out = model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids))
    return torch.stack([out.start_logits, out.end_logits])


def test_plain_export_loads_and_matches(study, tmp_path):
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    result = export_trial(study, 0, tmp_path / "out")
    out = Path(result["out"])
    shipped = {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "metrics.json",
               "README.md", "export.json"}
    assert shipped <= set(result["files"])
    assert ".state" not in result["files"]
    source = AutoModelForQuestionAnswering.from_pretrained(study / "trials" / "regular-0" / "checkpoint").eval()
    exported = AutoModelForQuestionAnswering.from_pretrained(out).eval()
    assert torch.equal(logits(source), logits(exported))
    assert AutoTokenizer.from_pretrained(out)("the river thames")["input_ids"][0] == 2  # [CLS]

    card = (out / "README.md").read_text()
    assert "| exact | 70.00 | 68.00 |" in card and "| f1 | 73.00 | 71.00 |" in card
    assert "- parameters: 20,000,000" in card and "- latency: 9.00 ms" in card
    assert "- no-answer threshold: -1.50" in card  # from the checkpoint's metrics.json
    assert "runs/teacher-minilm" in card and "validation: 1 article (D)" in card and "seed: 13" in card
    assert "| num_layers |" in card and "baseline student: exact 64.00 (validation), 22,000,000 parameters" in card
    assert 'from_pretrained("out")' in card and "trust_remote_code" not in card  # the folder's name, not its path
    info = json.loads((out / "export.json").read_text())
    assert (info["stage"], info["trial"], info["category"], info["test"]["exact"]) == ("regular", 0, "frontier", 68.0)


def test_pruned_export_ships_its_code(study, tmp_path):
    from transformers import AutoModelForQuestionAnswering

    result = export_trial(study, 1, tmp_path / "pruned")
    out = Path(result["out"])
    assert "pruned_bert.py" in result["files"] and "auto_map" in json.loads((out / "config.json").read_text())
    source = AutoModelForQuestionAnswering.from_pretrained(study / "trials" / "regular-1" / "checkpoint",
                                                           trust_remote_code=True).eval()
    exported = AutoModelForQuestionAnswering.from_pretrained(out, trust_remote_code=True).eval()
    assert exported.config.heads_per_layer == [2]
    assert torch.equal(logits(source), logits(exported))
    card = (out / "README.md").read_text()
    assert "trust_remote_code=True" in card and "| exact | 65.00 | 66.00 |" in card


def test_onnx_export_matches_pytorch(study, tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    result = export_trial(study, 1, tmp_path / "onnx", onnx=True)
    assert "model.onnx" in result["files"]
    check = result["onnx"]
    assert check["max_abs_diff"] <= 1e-4 and check["checked_shape"] == [3, 40]
    assert "## ONNX" in (Path(result["out"]) / "README.md").read_text()


def test_onnx_missing_is_a_clear_error(study, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed
    with pytest.raises(ExportError, match=r"pip install 'paretodistill\[onnx\]'"):
        export_trial(study, 0, tmp_path / "x", onnx=True)


def test_what_cannot_be_exported(study, tmp_path):
    with pytest.raises(ExportError, match="has no checkpoint.*out of memory at step 3"):
        export_trial(study, 2, tmp_path / "a")
    with pytest.raises(ExportError, match="no trial 7 in the regular stage"):
        export_trial(study, 7, tmp_path / "a")
    with pytest.raises(ExportError, match="has no checkpoint"):
        export_trial(study, 0, tmp_path / "a", stage="flash")
    export_trial(study, 0, tmp_path / "earlier")
    (tmp_path / "earlier" / "stale.txt").write_text("x")
    with pytest.raises(OutputRefused, match="--force"):
        export_trial(study, 0, tmp_path / "earlier")
    assert "README.md" in export_trial(study, 0, tmp_path / "earlier", overwrite=True)["files"]
    assert not (tmp_path / "earlier" / "stale.txt").exists()  # the earlier export was replaced as a whole
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "keep.txt").write_text("x")
    with pytest.raises(OutputRefused, match="not an export"):  # not an earlier export: never deleted, even with --force
        export_trial(study, 0, tmp_path / "busy", overwrite=True)
    assert (tmp_path / "busy" / "keep.txt").read_text() == "x"


def test_export_command(study, tmp_path, capsys):
    from paretodistill.cli import main

    assert main(["export", "--study", str(study), "--trial", "0", "--out", str(tmp_path / "cli")]) == 0
    assert "exported regular trial 0" in capsys.readouterr().out
    assert main(["export", "--study", str(study), "--trial", "2", "--out", str(tmp_path / "cli2")]) == 2
    assert "has no checkpoint" in capsys.readouterr().err


def test_the_card_front_matter_is_what_the_hub_reads_with_the_trials_stored_figures(study, tmp_path):
    """Parsed back by huggingface_hub: licence (not recorded with this teacher: other, said so), base model,
    datasets, and a model-index whose every figure is the trial's stored validation or test metric."""
    from huggingface_hub import ModelCard

    from paretodistill.report.frontier import load_study_dir

    out = Path(export_trial(study, 0, tmp_path / "out")["out"])
    card = ModelCard.load(out / "README.md")
    data = card.data
    assert (data.license, data.license_name) == ("other", "not-recorded") and "Licence: not recorded" in card.text
    assert data.base_model == "runs/teacher-minilm" and data.datasets == ["squad_v2"]
    assert (data.library_name, data.pipeline_tag) == ("transformers", "question-answering")
    assert "distillation" in data.tags and data.model_name == "study-regular-0"
    record = next(r for r in load_study_dir(study).stages["regular"] if r.number == 0)
    stored = {"validation": record.metrics, "test": record.test_metrics}
    figures = {(r.dataset_split, r.metric_type): r.metric_value for r in data.eval_results}
    expected = {(part, key): float(metrics[key]) for part, metrics in stored.items()
                for key in ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1") if key in metrics}
    assert figures == expected and ("test", "exact") in figures and figures["test", "exact"] == 68.0
    assert {r.dataset_type for r in data.eval_results} == {"squad_v2"}
    assert {r.task_type for r in data.eval_results} == {"question-answering"}


def test_a_licence_recorded_with_the_teacher_is_the_exports(tmp_path):
    from paretodistill.export.card_metadata import dataset_id, recorded_license
    from paretodistill.recipes.shipped_teacher import shipped_teacher_dir

    assert recorded_license(shipped_teacher_dir()) == {"license": "apache-2.0"}
    assert recorded_license(tmp_path) == {} and recorded_license(None) == {}
    assert dataset_id("../shared/data/squad2/dev-v2.0.json") == ("squad_v2", "SQuAD 2.0")
    assert dataset_id("train-v1.1.explorer-rebuilt.json.gz")[0] == "squad"
    assert dataset_id("squad_v2:validation")[0] == "squad_v2" and dataset_id("my-qa.json")[0] == "my-qa.json"


def test_the_shipped_teachers_card_has_the_same_front_matter_with_its_own_figures():
    """teachers/minilm-l6-squad2/README.md is what recipes.shipped_teacher writes from its metrics.json today, and
    the hub reads its licence (from the packaged MiniLM's card), base model and figures from it."""
    from huggingface_hub import ModelCard

    from paretodistill.recipes.shipped_teacher import model_card, shipped_teacher_dir

    folder = shipped_teacher_dir()
    metrics = json.loads((folder / "metrics.json").read_text())
    text = (folder / "README.md").read_text()
    assert text == model_card(metrics)
    data = ModelCard(text).data
    assert (data.license, data.base_model, data.datasets) == ("apache-2.0", "sentence-transformers/all-MiniLM-L6-v2",
                                                              ["squad_v2", "squad"])
    figures = {(r.dataset_split, r.metric_type): r.metric_value for r in data.eval_results}
    assert figures["test", "f1"] == metrics["test"]["f1"] and figures["validation", "exact"] == metrics["validation"]["exact"]
    assert len(figures) == 12 and "distillation" not in data.tags
