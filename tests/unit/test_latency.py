"""Latency measurement: what it reports, that it leaves the model alone, and a large-gap ordering.

No tight timing asserts: timings on a shared machine are noisy. The one ordering checked compares
models whose compute differs about tenfold, and asks only for a 2x gap in the medians.
"""

import importlib.util

import pytest
import torch
from transformers import BertConfig, BertForQuestionAnswering

from paretodistill.errors import ConfigError
from paretodistill.hardware.device import supports_fast_bf16
from paretodistill.hardware.latency import measure_latency

KEYS = {"median_ms", "p10_ms", "p90_ms", "iqr_ms", "mean_ms", "std_ms", "min_ms", "repeats", "warmup",
        "runtime", "dtype", "device", "batch_size", "sequence_length", "threads"}


def tiny(layers: int, hidden: int = 32) -> BertForQuestionAnswering:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=100, hidden_size=hidden, num_attention_heads=4, num_hidden_layers=layers,
                        intermediate_size=4 * hidden, max_position_embeddings=128)
    return BertForQuestionAnswering(config)


def test_result_structure_and_model_left_alone():
    model = tiny(1).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    result = measure_latency(model, batch_size=2, sequence_length=16, warmup=1, repeats=5, threads=1)
    assert set(result) == KEYS
    assert result["min_ms"] <= result["p10_ms"] <= result["median_ms"] <= result["p90_ms"]
    assert result["median_ms"] > 0 and result["repeats"] == 5 and result["runtime"] == "torch"
    assert (result["batch_size"], result["sequence_length"], result["threads"]) == (2, 16, 1)
    expected = "bfloat16" if supports_fast_bf16(torch.device("cpu")) else "float32"
    assert result["dtype"] == expected and result["device"]
    # a bf16 copy was timed: the caller's model keeps its dtype, mode and weights
    assert model.training and next(model.parameters()).dtype == torch.float32
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_more_compute_takes_longer():
    light = measure_latency(tiny(1, hidden=64), sequence_length=128, warmup=2, repeats=9, threads=1)
    heavy = measure_latency(tiny(10, hidden=64), sequence_length=128, warmup=2, repeats=9, threads=1)
    assert heavy["median_ms"] > 2 * light["median_ms"], (light, heavy)


def test_bad_settings_are_config_errors():
    model = tiny(1)
    with pytest.raises(ConfigError, match="runtime"):
        measure_latency(model, runtime="tensorrt")
    with pytest.raises(ConfigError, match="positions"):
        measure_latency(model, sequence_length=512)
    with pytest.raises(ConfigError):
        measure_latency(model, repeats=0)


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is not None, reason="onnxruntime is installed")
def test_onnx_without_onnxruntime_says_how_to_install():
    with pytest.raises(ConfigError, match="pip install"):
        measure_latency(tiny(1), sequence_length=16, runtime="onnx")


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="onnxruntime is not installed")
def test_onnx_runtime_times_the_exported_model():
    result = measure_latency(tiny(1), sequence_length=16, warmup=1, repeats=3, runtime="onnx", threads=1)
    assert set(result) == KEYS
    assert result["runtime"] == "onnx" and result["dtype"] == "float32" and "onnxruntime" in result["device"]
