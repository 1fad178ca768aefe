"""The teacher's start/end logits over the training features, computed once and shared by every trial.

Logit distillation needs only the teacher's outputs, and those do not change from trial to trial:
running the teacher forward at every step of every trial would roughly double the cost of a
trial for nothing. So the teacher runs once, in eval mode, over all training features; its logits
are stored as flat float16 arrays aligned with the features' flat token arrays (the same layout as
``Features.input_ids``) and every trial memory-maps them and gathers the rows of each batch.

The cache key is a hash of the teacher's weights (its weight files, or its tensors when it has no
folder), of the features' identity (token ids, token types and row starts) and of the precision
the teacher ran in, so a retrained teacher or other features never reuse stale logits. Writes go
to a temporary folder that is renamed into place: a killed run leaves no half-written cache; a
damaged cache (files cut short, not aligned with the features) is recomputed, never trusted
(``data/array_cache.py``, which also says why the memory maps are shared by the trials' processes).

float16 keeps three significant digits, far finer than what a softened (T >= 1) distribution
resolves, and halves the file; a bf16 teacher forward has coarser logits than that anyway.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from paretodistill.data.array_cache import DamagedCache, read_arrays, set_aside, write_arrays
from paretodistill.data.features import Features, default_cache_dir
from paretodistill.evaluation.inference import predict_logits

CACHE_FORMAT = 1
STORED_DTYPE = np.float16
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth")


def weights_fingerprint(teacher_dir: str | Path | None = None, model: torch.nn.Module | None = None) -> str:
    """sha256 of a checkpoint folder's config and weight files, or of a model's tensors.

    A folder is hashed by file content (a re-saved identical teacher keeps its cache); an
    in-memory model without a folder is hashed tensor by tensor, in name order.
    """
    digest = hashlib.sha256()
    if teacher_dir is not None:
        folder = Path(teacher_dir)
        files = sorted(p for p in folder.iterdir() if p.suffix in WEIGHT_SUFFIXES or p.name == "config.json")
        if not any(p.suffix in WEIGHT_SUFFIXES for p in files):
            raise FileNotFoundError(f"{folder}: no weight files ({', '.join(WEIGHT_SUFFIXES)}) to fingerprint")
        for path in files:
            digest.update(path.name.encode())
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 22), b""):
                    digest.update(block)
        return digest.hexdigest()
    if model is None:
        raise ValueError("weights_fingerprint needs a teacher folder or a model")
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def features_fingerprint(features: Features) -> str:
    """sha256 of what decides the teacher's outputs and their layout: tokens, token types, row starts."""
    digest = hashlib.sha256()
    for array, dtype in (
        (features.input_ids, np.int32),
        (features.token_type_ids, np.int8),
        (features.row_starts, np.int64),
    ):
        digest.update(np.ascontiguousarray(array, dtype=dtype))  # hashed in place: no copy of a mapped array
    return digest.hexdigest()


@dataclass
class TeacherLogits:
    """Flat teacher start/end logits aligned with the tokens of one ``Features``."""

    start: np.ndarray  # (tokens,) float16, usually a read-only memory map
    end: np.ndarray
    row_starts: np.ndarray  # the features' row starts, to find each window's tokens
    directory: Path | None = None

    def __post_init__(self) -> None:
        tokens = int(self.row_starts[-1])
        if len(self.start) != tokens or len(self.end) != tokens:
            raise ValueError(
                f"teacher logits hold {len(self.start)} tokens but the features have {tokens}: not aligned"
            )

    def gather(self, indices: np.ndarray, width: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(batch, width) float32 start and end logits of the given windows, zero-padded on the right.

        Padded exactly as ``collate`` pads the inputs (window ``i`` in row ``i``, tokens from
        column 0), so the same attention mask masks both student and teacher.
        """
        indices = np.asarray(indices, dtype=np.int64)
        starts = np.asarray(self.row_starts[:-1])[indices]
        lengths = np.asarray(self.row_starts[1:])[indices] - starts
        if len(indices) and int(lengths.max()) > width:
            raise ValueError(f"a window of {int(lengths.max())} tokens does not fit a batch of width {width}")
        rows = np.repeat(np.arange(len(indices)), lengths)
        columns = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        flat = np.repeat(starts, lengths) + columns
        out = []
        for source in (self.start, self.end):
            padded = np.zeros((len(indices), width), dtype=np.float32)
            padded[rows, columns] = source[flat]
            out.append(torch.from_numpy(padded))
        return out[0], out[1]


def cache_key(weights: str, features: Features, precision: str) -> str:
    material = json.dumps(
        {"teacher": weights, "features": features_fingerprint(features), "precision": precision,
         "format": CACHE_FORMAT}
    )
    return hashlib.sha256(material.encode()).hexdigest()[:24]


LOGIT_NAMES = ("start_logits", "end_logits")


def load_teacher_logits(directory: Path, features: Features) -> TeacherLogits | None:
    """The cached logits as memory maps; None when not cached; :class:`DamagedCache` when the files
    cannot be read or are not float16 logits aligned with ``features``."""
    arrays = read_arrays(directory, LOGIT_NAMES)
    if arrays is None:
        return None
    if any(array.dtype != STORED_DTYPE or array.ndim != 1 for array in arrays.values()):
        raise DamagedCache(f"{directory}: the logits are not flat {np.dtype(STORED_DTYPE)} arrays")
    try:
        return TeacherLogits(start=arrays["start_logits"], end=arrays["end_logits"],
                             row_starts=np.asarray(features.row_starts), directory=directory)
    except ValueError as error:  # not aligned with the features
        raise DamagedCache(f"{directory}: {error}") from error


def cached_teacher_logits(
    teacher: torch.nn.Module,
    features: Features,
    cache_dir: str | Path | None = None,
    *,
    teacher_dir: str | Path | None = None,
    batch_size: int = 64,
    bf16: bool = False,
    log: Callable[[str], None] = print,
) -> TeacherLogits:
    """The teacher's logits over ``features``: loaded from the cache, or computed once and cached.

    ``teacher_dir`` (the folder ``teacher`` was loaded from) keys the cache by file content,
    which is cheaper than hashing tensors; without it the model's tensors are hashed. The teacher
    runs in eval mode (``predict_logits``), with bf16 autocast when ``bf16``.
    """
    weights = weights_fingerprint(teacher_dir) if teacher_dir is not None else weights_fingerprint(model=teacher)
    key = cache_key(weights, features, "bf16" if bf16 else "fp32")
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    directory = root / "teacher_logits" / key
    try:
        cached = load_teacher_logits(directory, features)
        if cached is not None:
            log(f"teacher logits from the cache: {directory}")
            return cached
    except DamagedCache as damage:
        log(f"teacher logit cache damaged, recomputing it: {damage}")
        set_aside(directory)

    log(f"running the teacher once over {len(features)} windows ({features.num_tokens()} tokens)")
    start, end = predict_logits(teacher, features, batch_size, bf16)
    description = json.dumps({"teacher": weights, "teacher_dir": str(teacher_dir) if teacher_dir else None,
                              "features": len(features), "tokens": features.num_tokens(), "bf16": bf16,
                              "format": CACHE_FORMAT}, indent=1)
    write_arrays(directory, {"start_logits": start.astype(STORED_DTYPE), "end_logits": end.astype(STORED_DTYPE)},
                 description)
    log(f"teacher logits cached in {directory}")
    return load_teacher_logits(directory, features)
