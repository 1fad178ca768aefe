"""int8 variants: a dynamically quantized copy of a student's ONNX file, measured beside the float one.

Dynamic int8 quantization (weights stored as int8, activations quantized on the fly) is the step
that most often halves CPU latency and quarters the file; what it costs in accuracy differs per
model, so a variant is only offered with its own test exact/F1 and batch-1 latency, measured the
same way as the float file's (same runtime, data, threshold, inputs), never assumed.
"""

from __future__ import annotations

from pathlib import Path

from paretodistill.data.squad import SquadData
from paretodistill.errors import ConfigError
from paretodistill.evaluation.inference import score_answers
from paretodistill.export.predict import Predictor
from paretodistill.export.runtime import INT8_ONNX_FILE, ONNX_FILE
from paretodistill.hardware.latency import measure_onnx_file_latency

VARIANTS = {"float32": (ONNX_FILE, False), "int8": (INT8_ONNX_FILE, True)}


def quantize_int8(onnx_path: str | Path, int8_path: str | Path) -> Path:
    """``onnxruntime.quantization.quantize_dynamic`` with int8 weights (the CPU-friendly default)."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError:
        raise ConfigError("int8 quantization needs onnxruntime: pip install 'paretodistill[onnx]'") from None
    quantize_dynamic(str(onnx_path), str(int8_path), weight_type=QuantType.QInt8)
    return Path(int8_path)


def timing_settings(latency: dict | None, threads: int | None = None) -> dict:
    """The search's latency settings that a batch-1 timing takes (sequence_length, warmup, repeats,
    threads), without those left unset (the timing's defaults apply); ``threads`` replaces the thread count."""
    settings = {k: v for k, v in (latency or {}).items()
                if k in ("sequence_length", "warmup", "repeats", "threads") and v is not None}
    return {**settings, "threads": threads} if threads else settings


def measure_variants(model_dir: str | Path, test: SquadData | None, threshold: float, vocab_size: int,
                     latency: dict | None = None, batch_size: int = 32, trust_remote_code: bool = False) -> dict[str, dict]:
    """Per variant (float32, int8): file, size, test exact/F1 at ``threshold`` (if ``test``) and latency.

    ``latency`` takes the search's latency settings (sequence_length, warmup, repeats, threads);
    the batch is always 1, the serving case. ``trust_remote_code`` reaches the tokenizer's loading.
    """
    settings = timing_settings(latency)
    folder = Path(model_dir)
    results = {}
    for name, (file_name, int8) in VARIANTS.items():
        path = folder / file_name
        if not path.exists():
            continue
        row: dict = {"file": file_name, "size_mb": path.stat().st_size / 1e6}
        if test is not None:
            predictor = Predictor(folder, "onnx", int8=int8, threshold=threshold, batch_size=batch_size,
                                  trust_remote_code=trust_remote_code)
            scored = score_answers(test, predictor.span_answers(list(test.examples)), threshold)
            row.update({k: scored.metrics[k] for k in ("exact", "f1", "HasAns_f1", "NoAns_f1") if k in scored.metrics})
            row["questions"] = len(test.examples)
        measured = measure_onnx_file_latency(path, vocab_size, batch_size=1, dtype=name, **settings)
        row["latency_ms"] = measured["median_ms"]
        row["latency"] = {k: measured[k] for k in ("median_ms", "p10_ms", "p90_ms", "sequence_length", "threads", "device")}
        results[name] = row
    return results

