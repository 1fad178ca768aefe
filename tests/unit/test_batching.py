"""Length-bucketed batches: every window once per epoch, replayable order, little padding."""

from __future__ import annotations

import numpy as np

from paretodistill.data.features import Features
from paretodistill.training.batching import collate, evaluation_batches, training_batches


def test_each_window_once_per_epoch_and_order_is_replayable():
    lengths = np.random.default_rng(0).integers(20, 384, size=1000)
    batches = training_batches(lengths, 32, seed=1, epoch=0)
    assert sorted(np.concatenate(batches).tolist()) == list(range(1000))
    again = training_batches(lengths, 32, seed=1, epoch=0)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))
    other_epoch = training_batches(lengths, 32, seed=1, epoch=1)
    assert not all(np.array_equal(a, b) for a, b in zip(batches, other_epoch))


def test_bucketing_cuts_padding_against_random_batches():
    lengths = np.random.default_rng(0).integers(20, 384, size=4096)

    def padded_tokens(batches):
        return sum(len(b) * lengths[b].max() for b in batches)

    bucketed = padded_tokens(training_batches(lengths, 32, seed=1, epoch=0))
    order = np.random.default_rng(1).permutation(4096)
    random = padded_tokens([order[i : i + 32] for i in range(0, 4096, 32)])
    assert bucketed < 0.7 * random
    assert padded_tokens(evaluation_batches(lengths, 32)) < 1.05 * lengths.sum()


def test_collate_pads_to_a_multiple_of_eight_with_a_mask():
    ids = np.arange(1, 14, dtype=np.int32)  # windows of 3 and 10 tokens
    features = Features(
        input_ids=ids, token_type_ids=np.ones(13, np.int8), offsets=np.zeros((13, 2), np.int32),
        row_starts=np.array([0, 3, 13]), start_positions=np.array([1, 0], np.int32),
        end_positions=np.array([2, 0], np.int32), example_index=np.array([0, 1], np.int32),
    )
    batch = collate(features, np.array([1, 0]))
    assert tuple(batch.input_ids.shape) == (2, 16)
    assert batch.input_ids[1, :3].tolist() == [1, 2, 3] and batch.input_ids[1, 3:].sum() == 0
    assert batch.attention_mask.sum(dim=1).tolist() == [10, 3]
    assert batch.start_positions.tolist() == [0, 1] and batch.indices.tolist() == [1, 0]
