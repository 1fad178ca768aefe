"""Fine-tune a QA teacher from a pretrained encoder and score it on held-out articles.

The whole workflow in one readable file: prepare data (split by article), load the encoder with
the fast attention path, train on hard targets, pick the no-answer threshold on the validation
articles, report test-article figures at that threshold, and save a Hugging Face checkpoint with
its metrics, curve and split beside it. Re-running the same command resumes a killed run.
"""

from __future__ import annotations

import json
import platform
import shutil
import time
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import ClassVar

import torch

from paretodistill.config import AT_LEAST_ONE, NON_NEGATIVE, TEACHER_TRAINING, Checked, DataSettings, Range, TrainSettings
from paretodistill.data.layout import check_layout
from paretodistill.data.prepare import prepare_data, save_train_titles
from paretodistill.distill.losses import hard_loss
from paretodistill.evaluation.inference import curve_metrics, evaluate_model, no_answer_rate
from paretodistill.hardware.device import compute_setup, device_name
from paretodistill.models.loading import check_tokenizer_fits, load_qa_model, load_tokenizer, resolve_model_path
from paretodistill.training.loop import train


@dataclass(frozen=True)
class TeacherRecipe(Checked):
    base: str = "minilm"
    data: DataSettings = field(default_factory=lambda: DataSettings(split_file=""))
    training: TrainSettings = TEACHER_TRAINING
    device: str = "auto"
    threads: int | None = None
    no_answer_weight: float = 1.0  # the windows whose target is "no answer", weighed apart from the rest

    RULES: ClassVar[dict[str, Range]] = {"threads": AT_LEAST_ONE, "no_answer_weight": NON_NEGATIVE}


def hard_target_loss(outputs, batch, no_answer_weight: float = 1.0) -> torch.Tensor:
    """The teacher's loss: cross-entropy against the gold positions, the no-answer windows weighed apart."""
    return hard_loss(outputs.start_logits, outputs.end_logits, batch.start_positions, batch.end_positions,
                     batch.attention_mask, no_answer_weight)


def fine_tune_teacher(settings: TeacherRecipe, out_dir: str | Path, cache_dir=None, log=print) -> dict:
    """Train, evaluate and save; returns the metrics written to ``out_dir/metrics.json``."""
    check_layout(settings.data)  # no data for a part: one line before the encoder is loaded
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device, precision = compute_setup(settings.device, settings.threads, settings.training.bf16)
    use_bf16 = precision == "bf16"  # evaluation: bf16 where native, else fp32

    tokenizer = load_tokenizer(settings.base)
    data = prepare_data(settings.data, tokenizer, cache_dir, log)
    data.split.save(out_dir / "split.json")
    save_train_titles(data, out_dir)
    log(f"data: {json.dumps(data.summary)}")

    model = load_qa_model(settings.base).to(device)
    check_tokenizer_fits(tokenizer, model, "base encoder")

    def evaluate_validation(model) -> dict:
        scored = evaluate_model(model, data.validation, data.validation_features,
                                settings.training.eval_batch_size, use_bf16, threshold=0.0)
        return curve_metrics(scored.metrics)

    log(f"training on {device_name(device)}, {precision}, {len(data.train_features)} windows")
    result = train(
        model, data.train_features, partial(hard_target_loss, no_answer_weight=settings.no_answer_weight), settings.training,
        precision=precision, evaluator=evaluate_validation, state_dir=out_dir / ".state", log=log,
    )

    log("choosing the no-answer threshold on the validation articles")
    validation = evaluate_model(model, data.validation, data.validation_features,
                                settings.training.eval_batch_size, use_bf16, threshold=None)
    test = evaluate_model(model, data.test, data.test_features,
                          settings.training.eval_batch_size, use_bf16, threshold=validation.threshold)
    test_at_zero = evaluate_model(model, data.test, data.test_features,
                                  settings.training.eval_batch_size, use_bf16, threshold=0.0)
    test.answers.write(out_dir / "test_predictions", validation.threshold)
    no_answer_baseline = no_answer_rate(test.metrics)

    metrics = {
        "test": test.metrics,
        "test_at_threshold_0": test_at_zero.metrics,
        "validation": validation.metrics,
        "na_threshold": validation.threshold,
        "na_threshold_chosen_on": "validation",
        "test_all_no_answer_baseline_f1": no_answer_baseline,
        "test_f1_above_no_answer_baseline": test.metrics["f1"] - no_answer_baseline,
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "training": {**result.to_dict(), "settings": asdict(settings.training), "bf16": use_bf16, "precision": precision,
                     "no_answer_weight": settings.no_answer_weight},
        "base": resolve_model_path(settings.base),
        "data": data.summary,
        "device": device_name(device),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    _save_checkpoint(model, tokenizer, out_dir)
    (out_dir / "curve.json").write_text(json.dumps(result.curve, indent=1))
    # metrics.json is written last: its presence means the checkpoint beside it is complete.
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=1))
    shutil.rmtree(out_dir / ".state", ignore_errors=True)
    log(f"test (threshold {validation.threshold:.3f} from validation): "
        f"{json.dumps(curve_metrics(test.metrics))}; all-no-answer baseline F1 {no_answer_baseline:.2f}")
    log(f"teacher saved to {out_dir}")
    return metrics


def _save_checkpoint(model, tokenizer, out_dir: Path) -> None:
    """Save into a staging folder, then move the files in, so a kill leaves no half-written weights."""
    staging = out_dir / ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    for path in staging.iterdir():
        path.replace(out_dir / path.name)
    staging.rmdir()
