"""Running a model folder's logits in PyTorch or ONNX Runtime, and what the folder records about itself.

A student folder (a trial's checkpoint or an export) holds the weights and/or ``model.onnx``
(``model.int8.onnx`` for the quantized variant), the tokenizer, and ``metrics.json`` with the
no-answer threshold chosen on validation and the feature lengths it was evaluated with. Answers
are only the model's answers when both are applied, so they are read here, once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from paretodistill.config import FeatureSettings
from paretodistill.data.features import Features
from paretodistill.errors import ConfigError, ModelMismatchError
from paretodistill.evaluation.inference import logits_over_features, predict_logits
from paretodistill.hardware.onnx import ONNX_OUTPUTS, onnx_session
from paretodistill.outputs import WEIGHT_FILES
from paretodistill.training.batching import Batch

RUNTIMES = ("torch", "onnx")
ONNX_FILE = "model.onnx"
INT8_ONNX_FILE = "model.int8.onnx"
ANSWER_SCRIPT = "answer.py"  # export/onnx_answer.py, shipped beside the ONNX files


@dataclass(frozen=True)
class Recorded:
    """What a model folder says about how its answers were measured."""

    na_threshold: float
    threshold_source: str  # the file it came from, or "default (0.0)"
    features: FeatureSettings


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text()) if path.exists() else {}
    except json.JSONDecodeError as error:
        raise ModelMismatchError(f"{path}: malformed JSON ({error.msg})") from None


def recorded_settings(model_dir: str | Path) -> Recorded:
    """The no-answer threshold (metrics.json, else an export's export.json, else 0) and feature lengths."""
    folder = Path(model_dir)
    metrics = _read_json(folder / "metrics.json")
    exported = _read_json(folder / "export.json")
    features = FeatureSettings(**(metrics.get("data") or {}).get("feature_settings", {}))
    for source, values in (("metrics.json", metrics), ("export.json", exported)):
        if isinstance(values.get("na_threshold"), (int, float)):
            return Recorded(float(values["na_threshold"]), source, features)
    return Recorded(0.0, "default (0.0)", features)


def choose_runtime(model_dir: str | Path, runtime: str | None = None, int8: bool = False) -> tuple[str, Path]:
    """The runtime and file to run: torch when the folder has weights, else its ONNX file.

    ``int8`` means the quantized ONNX file, so it implies (and needs) the onnx runtime.
    """
    folder = Path(model_dir)
    if not (folder / "config.json").exists() and not (folder / ONNX_FILE).exists():
        raise ModelMismatchError(f"{folder}: not a model folder (no config.json or {ONNX_FILE})")
    if runtime not in (None, *RUNTIMES):
        raise ConfigError(f"runtime {runtime!r} is not one of {RUNTIMES}")
    if int8:
        if runtime == "torch":
            raise ConfigError("--int8 runs the quantized ONNX file: use it with --runtime onnx")
        path = folder / INT8_ONNX_FILE
        if not path.exists():
            raise ModelMismatchError(f"{folder}: no {INT8_ONNX_FILE}; write one with `paretodistill export --int8`")
        return "onnx", path
    has_weights = any((folder / name).exists() for name in WEIGHT_FILES)
    if runtime is None:
        runtime = "torch" if has_weights or not (folder / ONNX_FILE).exists() else "onnx"
    if runtime == "onnx":
        if not (folder / ONNX_FILE).exists():
            raise ModelMismatchError(f"{folder}: no {ONNX_FILE}; write one with `paretodistill export --onnx`")
        return "onnx", folder / ONNX_FILE
    if not has_weights:
        raise ModelMismatchError(f"{folder}: no PyTorch weights ({' or '.join(WEIGHT_FILES)})")
    return "torch", folder


LogitsFunction = Callable[[Features, int], tuple[np.ndarray, np.ndarray]]


def torch_logits(model_dir: str | Path, device: str = "cpu", trust_remote_code: bool = False) -> LogitsFunction:
    """Logits of the folder's PyTorch model, in float32 (the same numbers ONNX gives, not bf16's).

    ``trust_remote_code``: run Python files the folder ships (only when the user asked; ``models.loading``).
    """
    from paretodistill.hardware.device import pick_device
    from paretodistill.models.loading import load_qa_model

    model = load_qa_model(model_dir, trust_remote_code=trust_remote_code, trained_head=True).to(pick_device(device)).eval()
    return lambda features, batch_size: predict_logits(model, features, batch_size, bf16=False)


def onnx_logits(onnx_path: str | Path, threads: int | None = None) -> LogitsFunction:
    """Logits of an ONNX file (float or int8) in ONNX Runtime on the CPU."""
    session = onnx_session(onnx_path, threads)
    wanted = {i.name for i in session.get_inputs()}

    def forward(batch: Batch) -> tuple[np.ndarray, np.ndarray]:
        feed = {name: value.numpy() for name, value in batch.model_inputs().items() if name in wanted}
        start, end = session.run(list(ONNX_OUTPUTS), feed)
        return start, end

    return lambda features, batch_size: logits_over_features(forward, features, batch_size)


def load_logits(model_dir: str | Path, runtime: str | None = None, int8: bool = False, device: str = "cpu",
                trust_remote_code: bool = False) -> tuple[str, Path, LogitsFunction]:
    """The chosen runtime, the file it runs and its logits function."""
    chosen, path = choose_runtime(model_dir, runtime, int8)
    return chosen, path, (onnx_logits(path) if chosen == "onnx" else torch_logits(path, device, trust_remote_code))
