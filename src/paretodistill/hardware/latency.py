"""Inference latency of a QA model, measured the way it would be served.

Latency is one of the objectives the search trades accuracy against, so it must be measured
consistently: a fixed input shape (random token ids, full attention mask, batch of 1 by default),
warm-up calls first (allocator, kernel selection, caches), then many timed calls, reporting the
median and the spread rather than a mean that one hiccup can skew. Each figure carries the device
name, dtype, runtime and shape it was taken with, since timings only compare like with like.

Runtimes:
* ``torch``: eager PyTorch under ``inference_mode``. Where the hardware computes bf16 natively
  (``supports_fast_bf16``) a bf16 *copy* of the model is timed: real bf16 weights, as deployed,
  not autocast, which would time the casts too. The caller's model is never modified.
* ``onnx``: the float32 model exported with ``torch.onnx`` and timed in onnxruntime (CPU or CUDA
  provider), both through ``hardware.onnx``. Needs ``pip install onnx onnxruntime``; imported only when used.
"""

from __future__ import annotations

import copy
import statistics
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from paretodistill.errors import ConfigError
from paretodistill.hardware.device import device_name, supports_fast_bf16
from paretodistill.hardware.onnx import export_onnx, onnx_session
from paretodistill.models.inputs import select_inputs

RUNTIMES = ("torch", "onnx")


def check_runtime(runtime: str) -> None:
    """Refuse an unknown runtime, or ``onnx`` without its packages, before any time is spent training."""
    if runtime not in RUNTIMES:
        raise ConfigError(f"latency runtime {runtime!r} is not one of {RUNTIMES}")
    if runtime == "onnx":
        import importlib.util

        missing = [name for name in ("onnx", "onnxruntime") if importlib.util.find_spec(name) is None]
        if missing:
            raise ConfigError(
                f"latency runtime 'onnx' needs {' and '.join(missing)}: pip install 'paretodistill[onnx]'"
            )


def _vocab_size(model: torch.nn.Module) -> int:
    return int(getattr(model.config, "vocab_size", 30522))


def _token_types(model: torch.nn.Module) -> int:
    return int(getattr(model.config, "type_vocab_size", 2) or 1)


def _random_inputs(vocab: int, batch_size: int, sequence_length: int, device, types: int = 2) -> dict[str, torch.Tensor]:
    """Seeded random token ids below the vocabulary size; a question/context split of token types
    where the model has two (RoBERTa has one: all zeros, as its tokenizer gives)."""
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(0, vocab, (batch_size, sequence_length), generator=generator)
    token_type_ids = torch.zeros_like(input_ids)
    if types > 1:
        token_type_ids[:, sequence_length // 4 :] = 1
    attention_mask = torch.ones_like(input_ids)
    return {
        "input_ids": input_ids.to(device),
        "token_type_ids": token_type_ids.to(device),
        "attention_mask": attention_mask.to(device),
    }


@contextmanager
def _threads(threads: int | None):
    """Temporarily use ``threads`` intra-op threads (CPU timings depend on it)."""
    if not threads:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _summary(times_ms: list[float]) -> dict:
    values = np.asarray(times_ms)
    p10, p25, p75, p90 = np.percentile(values, [10, 25, 75, 90])
    return {
        "median_ms": float(np.median(values)),
        "p10_ms": float(p10),
        "p90_ms": float(p90),
        "iqr_ms": float(p75 - p25),
        "mean_ms": float(values.mean()),
        "std_ms": float(statistics.pstdev(times_ms)) if len(times_ms) > 1 else 0.0,
        "min_ms": float(values.min()),
    }


def _time_calls(call, warmup: int, repeats: int, synchronize) -> list[float]:
    for _ in range(warmup):
        call()
    synchronize()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        synchronize()
        times.append((time.perf_counter() - started) * 1000.0)
    return times


def measure_latency(
    model: torch.nn.Module,
    batch_size: int = 1,
    sequence_length: int = 384,
    warmup: int = 5,
    repeats: int = 30,
    runtime: str = "torch",
    threads: int | None = None,
) -> dict:
    """Time ``repeats`` forward passes after ``warmup`` ones; return the median, spread and setting.

    Keys: median_ms, p10_ms, p90_ms, iqr_ms, mean_ms, std_ms, min_ms, repeats, warmup, runtime,
    dtype, device, batch_size, sequence_length, threads.
    """
    check_runtime(runtime)
    if batch_size < 1 or sequence_length < 1 or repeats < 1 or warmup < 0:
        raise ConfigError(
            f"latency needs batch_size, sequence_length, repeats >= 1 and warmup >= 0; got "
            f"{batch_size}, {sequence_length}, {repeats}, {warmup}"
        )
    max_positions = getattr(model.config, "max_position_embeddings", None)
    if max_positions is not None and sequence_length > max_positions:
        raise ConfigError(f"sequence_length {sequence_length} exceeds the model's {max_positions} positions")
    device = next(model.parameters()).device
    with _threads(threads):
        if runtime == "onnx":
            times, dtype, name = _onnx_times(model, batch_size, sequence_length, warmup, repeats, device)
        else:
            times, dtype, name = _torch_times(model, batch_size, sequence_length, warmup, repeats, device)
        used_threads = torch.get_num_threads()
    return {
        **_summary(times),
        "repeats": repeats,
        "warmup": warmup,
        "runtime": runtime,
        "dtype": dtype,
        "device": name,
        "batch_size": batch_size,
        "sequence_length": sequence_length,
        "threads": used_threads if device.type == "cpu" else None,
    }


def _torch_times(model, batch_size, sequence_length, warmup, repeats, device):
    dtype = torch.bfloat16 if supports_fast_bf16(device) else torch.float32
    timed = copy.deepcopy(model).to(dtype=dtype).eval()
    inputs = select_inputs(model, _random_inputs(_vocab_size(model), batch_size, sequence_length, device, _token_types(model)))
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def call():
        with torch.inference_mode():
            timed(**inputs)

    times = _time_calls(call, warmup, repeats, synchronize)
    return times, str(dtype).removeprefix("torch."), device_name(device)


def _onnx_times(model, batch_size, sequence_length, warmup, repeats, device):
    """The float32 model exported at the timed shape (``hardware.onnx``), timed in ONNX Runtime."""
    exported = copy.deepcopy(model).float().cpu().eval()
    inputs = select_inputs(model, _random_inputs(_vocab_size(model), batch_size, sequence_length, torch.device("cpu"),
                                                 _token_types(model)))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.onnx"
        export_onnx(exported, path, inputs)
        del exported
        session = _session(path, device)
    feed = {name: value.numpy() for name, value in inputs.items()}
    return _time_onnx_session(session, feed, warmup, repeats, device)


def _session(path: Path, device: torch.device):
    """A session on ``device`` with PyTorch's thread count on the CPU, so both runtimes time on the same threads."""
    return onnx_session(path, threads=torch.get_num_threads() if device.type == "cpu" else None, cuda=device.type == "cuda")


def _time_onnx_session(session, feed: dict, warmup: int, repeats: int, device, dtype: str = "float32"):
    times = _time_calls(lambda: session.run(None, feed), warmup, repeats, lambda: None)
    provider = session.get_providers()[0]
    name = device_name(device) if provider != "CPUExecutionProvider" else device_name(torch.device("cpu"))
    return times, dtype, f"{name} [onnxruntime {provider}]"


def measure_onnx_file_latency(
    path: str | Path, vocab_size: int, batch_size: int = 1, sequence_length: int = 384, warmup: int = 5,
    repeats: int = 30, threads: int | None = None, dtype: str = "float32",
) -> dict:
    """``measure_latency`` for an ONNX file as shipped (a float or an int8 export), on the CPU.

    Same inputs, warm-up and summary as the search's figures, so float and int8 compare like with like.
    """
    check_runtime("onnx")
    cpu = torch.device("cpu")
    inputs = _random_inputs(vocab_size, batch_size, sequence_length, cpu, types=1)  # any family: type 0 only
    with _threads(threads):
        session = _session(Path(path), cpu)
        wanted = {i.name for i in session.get_inputs()}
        feed = {name: value.numpy() for name, value in inputs.items() if name in wanted}
        times, dtype, name = _time_onnx_session(session, feed, warmup, repeats, cpu, dtype)
        used_threads = torch.get_num_threads()
    return {**_summary(times), "repeats": repeats, "warmup": warmup, "runtime": "onnx", "dtype": dtype,
            "device": name, "batch_size": batch_size, "sequence_length": sequence_length, "threads": used_threads}
