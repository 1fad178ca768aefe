"""Length-aware batches of ragged features.

Padding every window to ``max_seq_length`` wastes most of the compute on SQuAD (the median window
is far shorter). Training batches here group windows of similar length: indices are shuffled,
cut into pools of ``pool_batches`` batches, sorted by length inside each pool, and the resulting
batches shuffled again. The order is a pure function of (seed, epoch), so a resumed run replays it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from paretodistill.data.features import Features

PAD_MULTIPLE = 8


def training_batches(
    lengths: np.ndarray, batch_size: int, seed: int, epoch: int, pool_batches: int = 64
) -> list[np.ndarray]:
    """The batches of one epoch as index arrays; deterministic in (seed, epoch)."""
    rng = np.random.default_rng([seed, epoch])
    order = rng.permutation(len(lengths))
    pool = batch_size * pool_batches
    batches = []
    for first in range(0, len(order), pool):
        chunk = order[first : first + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def evaluation_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Batches sorted by length (no shuffling needed) so evaluation pads as little as possible."""
    order = np.argsort(lengths, kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


@dataclass
class Batch:
    indices: np.ndarray  # feature indices, to look up cached teacher logits or positions
    input_ids: torch.Tensor
    token_type_ids: torch.Tensor
    attention_mask: torch.Tensor
    start_positions: torch.Tensor
    end_positions: torch.Tensor
    context_mask: torch.Tensor | None = None  # 1 on context tokens (where an answer may start or end)

    def to(self, device: torch.device) -> "Batch":
        moved = {
            name: value.to(device, non_blocking=True)
            for name, value in vars(self).items()
            if isinstance(value, torch.Tensor)
        }
        return Batch(indices=self.indices, **moved)

    def model_inputs(self) -> dict[str, torch.Tensor]:
        return {
            "input_ids": self.input_ids,
            "token_type_ids": self.token_type_ids,
            "attention_mask": self.attention_mask,
        }


def collate(features: Features, indices: np.ndarray, pad_token_id: int = 0) -> Batch:
    """Pad the chosen windows to the batch's longest (rounded up to a multiple of 8)."""
    lengths = features.lengths[indices]
    width = int(-(-int(lengths.max()) // PAD_MULTIPLE) * PAD_MULTIPLE)
    input_ids = np.full((len(indices), width), pad_token_id, dtype=np.int64)
    token_type_ids = np.zeros((len(indices), width), dtype=np.int64)
    attention_mask = np.zeros((len(indices), width), dtype=np.int64)
    context_mask = np.zeros((len(indices), width), dtype=np.int64)
    for row, feature in enumerate(indices):
        span = features.row(int(feature))
        length = span.stop - span.start
        input_ids[row, :length] = features.input_ids[span]
        token_type_ids[row, :length] = features.token_type_ids[span]
        attention_mask[row, :length] = 1
        context_mask[row, :length] = np.asarray(features.offsets[span])[:, 0] >= 0
    return Batch(
        indices=np.asarray(indices),
        input_ids=torch.from_numpy(input_ids),
        token_type_ids=torch.from_numpy(token_type_ids),
        attention_mask=torch.from_numpy(attention_mask),
        start_positions=torch.from_numpy(features.start_positions[indices].astype(np.int64)),
        end_positions=torch.from_numpy(features.end_positions[indices].astype(np.int64)),
        context_mask=torch.from_numpy(context_mask),
    )
