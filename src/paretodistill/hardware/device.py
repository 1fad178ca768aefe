"""Which device to run on, and in which precision.

Reduced precision is used only where the hardware computes in it: bf16 where the GPU (or CPU)
has native bf16 units; on a GPU without them (T4, V100) fp16 with a gradient scaler, which their
tensor cores compute natively; otherwise fp32. ``torch.cuda.is_bf16_supported()`` counts
emulation by default, so it is asked with ``including_emulation=False``: emulated bf16 trains
and times slower than fp32 and would put wrong latencies into the search.
"""

from __future__ import annotations

import contextlib
import platform
from functools import lru_cache
from pathlib import Path

import torch


def pick_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


@lru_cache(maxsize=None)
def _cpu_flags() -> frozenset[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


PRECISIONS = ("bf16", "fp16", "fp32")
FP16_TENSOR_CORES = (7, 0)  # Volta and later compute fp16 matmuls natively


def _cuda_native_bf16() -> bool:
    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # a torch without the argument counted only native support
        return bool(torch.cuda.is_bf16_supported())


def supports_fast_bf16(device: torch.device) -> bool:
    """bf16 autocast is only a speed-up where the hardware computes in bf16 natively."""
    if device.type == "cuda":
        return _cuda_native_bf16()
    if device.type == "cpu":
        return bool({"avx512_bf16", "amx_bf16"} & _cpu_flags())
    return False


AUTOCAST_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def autocast_context(device: torch.device, precision: bool | str):
    """Autocast to ``precision`` ("bf16", "fp16"; "fp32" or False: none; True means bf16)."""
    name = "bf16" if precision is True else precision
    if name in AUTOCAST_DTYPES:
        return torch.autocast(device_type=device.type, dtype=AUTOCAST_DTYPES[name])
    return contextlib.nullcontext()


def training_precision(device: torch.device, reduced: bool = True) -> str:
    """``bf16`` where native, else ``fp16`` (with a GradScaler) on a GPU with fp16 tensor cores, else ``fp32``.

    ``reduced=False`` (``training.bf16 = false``) asks for fp32 everywhere.
    """
    if not reduced:
        return "fp32"
    if supports_fast_bf16(device):
        return "bf16"
    if device.type == "cuda" and torch.cuda.get_device_capability(device) >= FP16_TENSOR_CORES:
        return "fp16"
    return "fp32"


def compute_setup(requested: str = "auto", threads: int | None = None, reduced: bool = True) -> tuple[torch.device, str]:
    """What every training or scoring entry point starts with: its CPU threads (when given), its
    device and the precision it trains in (``training_precision``)."""
    if threads:
        torch.set_num_threads(threads)
    device = pick_device(requested)
    return device, training_precision(device, reduced)


def visible_devices() -> list[torch.device]:
    """Every device a trial could run on here: each CUDA device, then the CPU."""
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return [*(torch.device("cuda", i) for i in range(gpus)), torch.device("cpu")]


def device_name(device: torch.device) -> str:
    """A human-readable name recorded with every measured number (a CPU's with the threads in use)."""
    model = device_model(device)
    return model if device.type == "cuda" or model == "cpu" else f"{model} ({torch.get_num_threads()} threads)"


def device_model(device: torch.device) -> str:
    """The device's model name, without the threads in use: one name for every timing of a device."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(':', 1)[1].strip()
    return platform.processor() or "cpu"
