"""The one ONNX exporter and the one ONNX Runtime session factory of paretodistill.

Timing a student in ONNX Runtime (``hardware.latency``, inside a trial) and shipping one
(``export``: model.onnx beside the checkpoint) write and open ONNX files the same way, so a graph
always takes the inputs the model's ``forward`` names, in the order ``models.inputs.input_names``
gives (no token types for DistilBERT), and gives the same two outputs. ``onnx`` and
``onnxruntime`` are optional dependencies (``pip install 'paretodistill[onnx]'``), imported only
when called.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

import torch

from paretodistill.errors import ConfigError
from paretodistill.models.inputs import input_names

ONNX_OUTPUTS = ("start_logits", "end_logits")
INSTALL = "pip install 'paretodistill[onnx]'"


class _PositionalQA(torch.nn.Module):
    """The model behind positional inputs (``names``, in that order), returning plain tensors: what the exporter traces."""

    def __init__(self, model: torch.nn.Module, names: tuple[str, ...]):
        super().__init__()
        self.model = model
        self.names = tuple(names)

    def forward(self, *inputs):
        outputs = self.model(**dict(zip(self.names, inputs)))
        return outputs.start_logits, outputs.end_logits


def export_onnx(model: torch.nn.Module, path: str | Path, inputs: Mapping[str, torch.Tensor], dynamic: bool = False,
                opset: int = 17) -> tuple[str, ...]:
    """Write ``model`` to ``path`` as ONNX, traced on ``inputs``; returns the graph's input names.

    The graph takes the inputs of ``inputs`` that the model's ``forward`` names (``input_names``).
    ``dynamic`` makes the batch and sequence axes dynamic (a shipped file answers any shape);
    otherwise the graph is fixed at the traced shape (a timing). The TorchScript exporter
    (``dynamo=False``: no onnxscript dependency) is tried first, then the dynamo one.
    """
    try:
        import onnx  # noqa: F401  (the exporter needs it; fail with a clear message if missing)
    except ImportError:
        raise ConfigError(f"writing ONNX needs the onnx package: {INSTALL}") from None
    names = input_names(model)
    args = tuple(inputs[name] for name in names)
    axes = {name: {0: "batch", 1: "sequence"} for name in (*names, *ONNX_OUTPUTS)} if dynamic else None
    wrapper = _PositionalQA(model, names).eval()
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shapes: the check of an export is its caller's
        try:
            torch.onnx.export(wrapper, args, str(path), input_names=list(names), output_names=list(ONNX_OUTPUTS),
                              opset_version=opset, dynamic_axes=axes, dynamo=False)
        except Exception as legacy_error:  # the legacy exporter is deprecated; try the new one
            try:
                torch.onnx.export(wrapper, args, str(path), input_names=list(names), output_names=list(ONNX_OUTPUTS),
                                  dynamic_axes=axes, dynamo=True)
            except Exception:
                raise legacy_error from None
    return names


def onnx_session(path: str | Path, threads: int | None = None, cuda: bool = False):
    """An ONNX Runtime session of the file at ``path``, on the CPU unless ``cuda`` (and the CUDA provider is there).

    ``threads``: intra-op threads (CPU timings depend on it); None leaves ONNX Runtime's default.
    """
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError(f"running ONNX needs the onnxruntime package: {INSTALL}") from None
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    providers = ["CPUExecutionProvider"]
    if cuda and "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        providers.insert(0, "CUDAExecutionProvider")
    return onnxruntime.InferenceSession(str(path), options, providers=providers)
