"""Precision choice: bf16 only where the hardware computes it natively, fp16 with a scaler on GPUs with
fp16 tensor cores but no native bf16 (T4, V100), fp32 otherwise; decided with the capability functions
monkeypatched, so it is tested without a GPU."""

from __future__ import annotations

import pytest
import torch

from paretodistill.hardware import device as device_module
from paretodistill.hardware.device import supports_fast_bf16, training_precision

CUDA = torch.device("cuda")
CPU = torch.device("cpu")


def fake_gpu(monkeypatch, native_bf16: bool, capability: tuple[int, int]):
    calls = []

    def is_bf16_supported(including_emulation: bool = True):
        calls.append(including_emulation)
        return native_bf16 or including_emulation  # emulated bf16 is "supported" on every recent GPU

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", is_bf16_supported)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    return calls


@pytest.mark.parametrize("name, native, capability, expected", [
    ("A100", True, (8, 0), "bf16"),
    ("H100", True, (9, 0), "bf16"),
    ("T4", False, (7, 5), "fp16"),
    ("V100", False, (7, 0), "fp16"),
    ("P100", False, (6, 0), "fp32"),
])
def test_gpu_precision(monkeypatch, name, native, capability, expected):
    calls = fake_gpu(monkeypatch, native, capability)
    assert training_precision(CUDA) == expected, name
    assert supports_fast_bf16(CUDA) is native
    assert calls and not any(calls)  # always asked without emulation
    assert training_precision(CUDA, reduced=False) == "fp32"


def test_older_torch_without_the_argument(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    assert training_precision(CUDA) == "fp16"


@pytest.mark.parametrize("flags, expected", [({"avx512_bf16", "avx2"}, "bf16"), ({"amx_bf16"}, "bf16"), ({"avx2"}, "fp32")])
def test_cpu_precision(monkeypatch, flags, expected):
    monkeypatch.setattr(device_module, "_cpu_flags", lambda: frozenset(flags))
    assert training_precision(CPU) == expected
    assert training_precision(CPU, reduced=False) == "fp32"


def test_compute_setup_sets_threads_and_asks_for_fp32_when_told(monkeypatch):
    monkeypatch.setattr(device_module, "_cpu_flags", lambda: frozenset({"avx512_bf16"}))
    previous = torch.get_num_threads()
    try:
        device, precision = device_module.compute_setup("cpu", threads=1, reduced=True)
        assert device.type == "cpu" and precision == "bf16" and torch.get_num_threads() == 1
        assert device_module.compute_setup("cpu", threads=None, reduced=False)[1] == "fp32"
        assert torch.get_num_threads() == 1  # no threads given: left as they were
    finally:
        torch.set_num_threads(previous)
