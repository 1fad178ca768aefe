"""export --int8: model.int8.onnx beside model.onnx, both measured (test exact/F1 on the split's test
part at the recorded threshold, batch-1 latency) into export.json and the model card; predict --int8 runs it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/report_fixtures.py
import report_fixtures as fx  # noqa: E402

pytest.importorskip("onnxruntime")

from paretodistill.cli import main  # noqa: E402
from paretodistill.export.students import export_trial  # noqa: E402

M = 1_000_000


@pytest.fixture(scope="module")
def study(tmp_path_factory, one_torch_thread) -> tuple[Path, Path]:
    """A study whose regular trial 0 kept a checkpoint with split.json over a 4-article file."""
    directory = tmp_path_factory.mktemp("int8")
    data_file, split = fx.tiny_squad_with_split(directory / "data.json")
    checkpoint = fx.tiny_checkpoint(directory / "trials" / "regular-0" / "checkpoint", seed=2,
                                    metrics={"na_threshold": 0.5})
    split.save(checkpoint / "split.json")
    regular = [fx.FakeTrial(70.0, 20 * M, 9.0, params=fx.params_for(0), test_exact=68.0, checkpoint=str(checkpoint))]
    return fx.write_study(directory, fx.HAND_FLASH[:3], regular, fx.HAND_BASELINE, objectives=fx.OBJECTIVES_3D), data_file


def test_int8_variant_is_written_and_measured(study, tmp_path, monkeypatch):
    import paretodistill.recipes.evaluate as evaluate_recipe

    directory, data_file = study
    result = export_trial(directory, 0, tmp_path / "out", int8=True)
    out = Path(result["out"])
    assert {"model.onnx", "model.int8.onnx"} <= set(result["files"])
    variants = result["variants"]
    assert list(variants) == ["float32", "int8"]
    assert variants["int8"]["size_mb"] < variants["float32"]["size_mb"]
    for row in variants.values():
        assert row["questions"] == 4 and 0 <= row["exact"] <= 100 and row["latency_ms"] > 0
        assert row["latency"]["sequence_length"] == 384 and row["latency"]["threads"] == 2  # the study's settings

    # The float ONNX figures are the PyTorch checkpoint's own test figures at the recorded threshold.
    monkeypatch.setattr(evaluate_recipe, "supports_fast_bf16", lambda device: False)
    reference = evaluate_recipe.evaluate_checkpoint(str(out), str(data_file), part="test", log=lambda m: None,
                                                    cache_dir=str(tmp_path / "cache"))
    assert reference["na_threshold"] == 0.5
    assert (variants["float32"]["exact"], variants["float32"]["f1"]) == (reference["exact"], reference["f1"])

    card = (out / "README.md").read_text()
    assert "## int8 variant" in card and "| int8 | `model.int8.onnx` |" in card
    assert "4 questions of the split's test part at the recorded no-answer threshold 0.50" in card
    assert "paretodistill predict --model" in card
    assert json.loads((out / "export.json").read_text())["variants"]["int8"]["exact"] == variants["int8"]["exact"]


def test_predict_runs_the_int8_file(study, tmp_path, capsys):
    directory, _ = study
    assert main(["export", "--study", str(directory), "--trial", "0", "--out", str(tmp_path / "e"), "--int8"]) == 0
    printed = capsys.readouterr().out
    assert "int8: model.int8.onnx" in printed and "float32: model.onnx" in printed
    assert main(["predict", "--model", str(tmp_path / "e"), "--int8", "--question", "which year ?",
                 "--context", fx.TINY_CONTEXTS["Hastings"]]) == 0
    captured = capsys.readouterr()
    assert "model.int8.onnx" in captured.err and json.loads(captured.out)["threshold"] == 0.5


def test_int8_without_the_data_file_still_times_it(study, tmp_path):
    directory, _ = study
    checkpoint = directory / "trials" / "regular-0" / "checkpoint"
    split = json.loads((checkpoint / "split.json").read_text())
    moved = tmp_path / "ckpt"
    import shutil

    shutil.copytree(checkpoint, moved)
    (moved / "split.json").write_text(json.dumps({**split, "source": str(tmp_path / "gone.json")}))
    regular = [fx.FakeTrial(70.0, 20 * M, 9.0, params=fx.params_for(0), checkpoint=str(moved))]
    other = fx.write_study(tmp_path / "study", fx.HAND_FLASH[:3], regular, fx.HAND_BASELINE, objectives=fx.OBJECTIVES_3D)
    result = export_trial(other, 0, tmp_path / "out", int8=True)
    assert "exact" not in result["variants"]["int8"] and result["variants"]["int8"]["latency_ms"] > 0
    assert any("gone.json is not here" in w and "--data" in w for w in result["warnings"])
