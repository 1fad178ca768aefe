"""Tokenized features: answer token positions, doc-stride windows, the CLS convention and the cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import article, qa, write_squad
from paretodistill.config import FeatureSettings
from paretodistill.data import features as features_module
from paretodistill.data.features import build_features, cached_features
from paretodistill.data.squad import load_squad
from paretodistill.errors import ConfigError

LONG_CONTEXT = " ".join(f"word{i}" for i in range(300)) + " The answer is Zanzibar here."


@pytest.fixture()
def data(tmp_path):
    start = LONG_CONTEXT.index("Zanzibar")
    articles = [
        article("Long", LONG_CONTEXT, [qa("far", "Where is it?", [("Zanzibar", start)]), qa("none", "Why?")]),
        article("Short", "Marie Curie won two Nobel prizes.", [qa("s", "Who won?", [("Marie Curie", 0)])]),
    ]
    return load_squad(write_squad(tmp_path / "d.json", articles))


def span_text(example, features, i):
    offsets = features.offsets[features.row(i)]
    s, e = features.start_positions[i], features.end_positions[i]
    return example.context[offsets[s][0] : offsets[e][1]]


def test_answer_tokens_point_at_the_answer(data, minilm_tokenizer):
    features = build_features(data.examples, minilm_tokenizer, FeatureSettings(384, 128, 64))
    short = [i for i in range(len(features)) if features.example_index[i] == 2]
    assert len(short) == 1
    assert span_text(data.examples[2], features, short[0]) == "Marie Curie"


def test_long_context_gives_overlapping_windows_and_cls_outside(data, minilm_tokenizer):
    settings = FeatureSettings(max_seq_length=128, doc_stride=32, max_query_length=16)
    features = build_features(data.examples, minilm_tokenizer, settings)
    far = [i for i in range(len(features)) if features.example_index[i] == 0]
    assert len(far) > 3  # 300+ words do not fit in one 128-token window
    assert all(features.lengths[i] <= 128 for i in far)
    holding = [i for i in far if features.start_positions[i] != 0]
    assert holding and all(span_text(data.examples[0], features, i) == "Zanzibar" for i in holding)
    assert features.start_positions[far[0]] == 0 and features.end_positions[far[0]] == 0  # answer not in window 1
    # consecutive windows overlap by doc_stride tokens of context
    first, second = features.offsets[features.row(far[0])], features.offsets[features.row(far[1])]
    first_context = [tuple(o) for o in first if o[0] >= 0]
    second_context = [tuple(o) for o in second if o[0] >= 0]
    assert first_context[-32:] == second_context[:32]


def test_unanswerable_points_at_cls_in_every_window(data, minilm_tokenizer):
    features = build_features(data.examples, minilm_tokenizer, FeatureSettings(128, 32, 16))
    none = [i for i in range(len(features)) if features.example_index[i] == 1]
    assert none and all(features.start_positions[i] == 0 == features.end_positions[i] for i in none)


def test_question_offsets_are_marked_outside_context(data, minilm_tokenizer):
    features = build_features(data.examples, minilm_tokenizer, FeatureSettings())
    offsets = features.offsets[features.row(0)]
    types = features.token_type_ids[features.row(0)]
    assert offsets[0].tolist() == [-1, -1]  # CLS
    assert np.all(offsets[types == 0] == -1)  # every question token


def test_max_query_length_truncates_long_questions(tmp_path, minilm_tokenizer):
    question = " ".join(["what"] * 50) + "?"
    articles = [article("A", "Short context here.", [qa("q", question, [("Short", 0)])])]
    data = load_squad(write_squad(tmp_path / "q.json", articles))
    features = build_features(data.examples, minilm_tokenizer, FeatureSettings(128, 32, 10))
    question_tokens = int((features.token_type_ids[features.row(0)] == 0).sum())
    assert question_tokens == 10 + 2  # CLS + 10 question tokens + SEP


@pytest.mark.parametrize("lengths, message", [
    ((64, 32, 60), "must exceed max_query_length"),
    ((128, 100, 64), "doc_stride"),
    ((128, 0, 64), "doc_stride"),
])
def test_impossible_lengths_are_config_errors(data, minilm_tokenizer, lengths, message):
    with pytest.raises(ConfigError, match=message):  # refused when the settings are made
        build_features(data.examples, minilm_tokenizer, FeatureSettings(*lengths))


def test_cache_loads_instead_of_rebuilding(data, minilm_tokenizer, tmp_path, monkeypatch):
    settings = FeatureSettings(128, 32, 16)
    first = cached_features(data.examples, minilm_tokenizer, settings, tmp_path / "cache")
    calls = []
    real_build = features_module.build_features

    def counting_build(*args):
        calls.append(args)
        return real_build(*args)

    monkeypatch.setattr(features_module, "build_features", counting_build)
    second = cached_features(data.examples, minilm_tokenizer, settings, tmp_path / "cache")
    assert calls == []  # nothing was re-tokenized
    assert np.array_equal(first.input_ids, second.input_ids)
    assert np.array_equal(first.start_positions, second.start_positions)
    other = cached_features(data.examples, minilm_tokenizer, FeatureSettings(128, 48, 16), tmp_path / "cache")
    assert len(calls) == 1 and len(other) != len(first)  # other lengths are another key
    assert len(list((tmp_path / "cache" / "features").iterdir())) == 2  # no staging folders left behind


def _mapped_files() -> set[str]:
    """The files this process maps (``/proc/self/maps``, Linux)."""
    return {line.split(None, 5)[5].strip() for line in open("/proc/self/maps") if len(line.split(None, 5)) == 6}


def test_cached_features_are_the_built_arrays_memory_mapped(data, minilm_tokenizer, tmp_path):
    """Built, then read back: exactly the tensors ``build_features`` makes, as read-only maps of the cache files
    (every process reading the key shares them), on the first call as on a hit."""
    settings = FeatureSettings(128, 32, 16)
    built = build_features(data.examples, minilm_tokenizer, settings)
    first = cached_features(data.examples, minilm_tokenizer, settings, tmp_path / "cache")
    second = cached_features(data.examples, minilm_tokenizer, settings, tmp_path / "cache")
    for name in features_module.ARRAY_NAMES:
        for loaded in (first, second):
            array = getattr(loaded, name)
            assert array.dtype == getattr(built, name).dtype and np.array_equal(array, getattr(built, name)), name
            assert isinstance(array, np.memmap) and not array.flags.writeable, name
            assert str(Path(array.filename).resolve()) in _mapped_files(), name
    assert len(second) == len(built) == 20 and second.num_tokens() == built.num_tokens()


def _cut_short(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-40])


def _rewritten_shorter(path: Path) -> None:  # a valid .npy, but not the array the manifest recorded
    np.save(path, np.load(path)[:-1])


def _garbage(path: Path) -> None:
    path.write_bytes(b"not a numpy file at all")


@pytest.mark.parametrize("name, damage", [
    ("input_ids", _cut_short), ("offsets", _garbage), ("row_starts", _rewritten_shorter),
    ("end_positions", Path.unlink), ("example_index", _rewritten_shorter)])
@pytest.mark.parametrize("manifest", [True, False], ids=["manifest", "written-before-the-manifest"])
def test_a_damaged_feature_cache_is_rebuilt_not_trusted(data, minilm_tokenizer, tmp_path, name, damage, manifest):
    settings = FeatureSettings(128, 32, 16)
    built = build_features(data.examples, minilm_tokenizer, settings)
    cached_features(data.examples, minilm_tokenizer, settings, tmp_path)
    [entry] = (tmp_path / "features").iterdir()
    if not manifest:
        (entry / "arrays.json").unlink()
    damage(entry / f"{name}.npy")
    told = []
    again = cached_features(data.examples, minilm_tokenizer, settings, tmp_path, log=told.append)
    assert len(told) == 1 and "feature cache damaged, rebuilding it" in told[0] and entry.name in told[0], told
    for array_name in features_module.ARRAY_NAMES:
        assert np.array_equal(getattr(again, array_name), getattr(built, array_name)), array_name
    assert [p.name for p in (tmp_path / "features").iterdir()] == [entry.name]  # rebuilt in place, nothing left over
    assert np.array_equal(np.load(entry / f"{name}.npy"), getattr(built, name))


def test_a_folder_without_the_done_mark_is_replaced(data, minilm_tokenizer, tmp_path):
    settings = FeatureSettings(128, 32, 16)
    expected = np.array(cached_features(data.examples, minilm_tokenizer, settings, tmp_path).input_ids)
    [entry] = (tmp_path / "features").iterdir()
    (entry / "done").unlink()
    (entry / "input_ids.npy").write_bytes(b"half written")
    again = cached_features(data.examples, minilm_tokenizer, settings, tmp_path, log=pytest.fail)
    assert (entry / "done").exists() and np.array_equal(again.input_ids, expected)
    assert isinstance(again.input_ids, np.memmap)


def test_a_cache_entry_written_before_the_manifest_is_read(data, minilm_tokenizer, tmp_path, monkeypatch):
    settings = FeatureSettings(128, 32, 16)
    first = cached_features(data.examples, minilm_tokenizer, settings, tmp_path)
    [entry] = (tmp_path / "features").iterdir()
    (entry / "arrays.json").unlink()
    monkeypatch.setattr(features_module, "build_features", lambda *args: pytest.fail("rebuilt a sound entry"))
    again = cached_features(data.examples, minilm_tokenizer, settings, tmp_path, log=pytest.fail)
    assert np.array_equal(again.offsets, first.offsets) and np.array_equal(again.row_starts, first.row_starts)


def test_take_repeats_and_subsets(data, minilm_tokenizer):
    features = build_features(data.examples, minilm_tokenizer, FeatureSettings(128, 32, 16))
    taken = features.take(np.array([len(features) - 1, 0, 0]))
    assert len(taken) == 3
    assert np.array_equal(taken.input_ids[taken.row(1)], features.input_ids[features.row(0)])
    assert np.array_equal(taken.input_ids[taken.row(0)], features.input_ids[features.row(len(features) - 1)])
    assert taken.example_index.tolist() == [features.example_index[-1], features.example_index[0], features.example_index[0]]
