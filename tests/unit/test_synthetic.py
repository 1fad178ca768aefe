"""Synthetic unanswerable questions, and the extra-article sample that keeps unanswerable articles."""

from __future__ import annotations

import dataclasses

import pytest

from conftest import qa, write_squad
from paretodistill.data.prepare import _sample_articles
from paretodistill.data.squad import load_squad
from paretodistill.data.synthetic import SYNTHETIC_ID_SUFFIX, synthetic_unanswerables, with_synthetic_unanswerables
from paretodistill.errors import ConfigError

PARAGRAPHS = [
    ("Paris is the capital of France.", [qa("q1", "What is the capital of France?", [("Paris", 0)])]),
    ("Berlin is the capital of Germany.", [qa("q2", "What is the capital of Germany?", [("Berlin", 0)])]),
    ("Paris hosts the Louvre museum.", [qa("q3", "Which museum is in Paris?", [("the Louvre", 12)])]),
]


def load(tmp_path, version="1.1"):
    articles = [{"title": "Capitals", "paragraphs": [
        {"context": c, "qas": [{k: v for k, v in q.items() if version != "1.1" or k != "is_impossible"} for q in qas]}
        for c, qas in PARAGRAPHS]}]
    return load_squad(write_squad(tmp_path / "d.json", articles, version=version))


def test_every_question_gets_another_paragraph_without_its_answer(tmp_path):
    data = load(tmp_path)
    made = {e.id: e for e in synthetic_unanswerables(data, 1.0, seed=0)}
    # q1 ("Paris") may only go to the Berlin paragraph: the Louvre one mentions Paris.
    assert made["q1" + SYNTHETIC_ID_SUFFIX].context == PARAGRAPHS[1][0]
    # q3 ("the Louvre") may go to either other paragraph; q2 ("Berlin") to either as well.
    assert made["q3" + SYNTHETIC_ID_SUFFIX].context in (PARAGRAPHS[0][0], PARAGRAPHS[1][0])
    for example in made.values():
        assert example.is_impossible and example.answers == ()
        original = next(e for e in data.examples if e.id + SYNTHETIC_ID_SUFFIX == example.id)
        assert example.question == original.question and example.context != original.context


def test_fraction_seed_and_fingerprint(tmp_path):
    data = load(tmp_path)
    assert len(synthetic_unanswerables(data, 2 / 3, seed=1)) == 2
    assert synthetic_unanswerables(data, 0.0, seed=1) == []
    assert synthetic_unanswerables(data, 1 / 3, seed=1) == synthetic_unanswerables(data, 1 / 3, seed=1)
    combined = with_synthetic_unanswerables(data, 1.0, seed=1)
    assert len(combined.examples) == 6 and combined.version == "v2.0"
    assert combined.fingerprint != data.fingerprint  # the feature cache must not reuse the plain file's windows
    with pytest.raises(ConfigError, match="synthetic_unanswerable_fraction"):
        synthetic_unanswerables(data, 1.5, seed=1)


def test_article_sample_keeps_every_article_with_unanswerable_questions(tmp_path):
    articles = [{"title": f"T{i}", "paragraphs": [{"context": "alpha beta", "qas": [
        qa(f"a{i}", "Which?", [("beta", 6)])] + ([qa(f"n{i}", "Not?")] if i in (3, 17) else [])}]}
        for i in range(20)]
    data = load_squad(write_squad(tmp_path / "m.json", articles))
    for seed in range(5):
        chosen = _sample_articles(data, 4, seed)
        assert len(chosen) == len(set(chosen)) == 4 and {"T3", "T17"} <= set(chosen)
    assert _sample_articles(data, 1, 0) == ["T3"]


def test_a_transfer_set_the_teacher_never_saw(tmp_path, minilm_tokenizer):
    """``unseen_by_teacher``: the extra articles a teacher recorded as trained on are left out before sampling."""
    from paretodistill.config import DataSettings
    from paretodistill.data.prepare import TRAIN_TITLES_FILE, load_train_titles, prepare_data, save_train_titles

    def articles(prefix, count):
        return [{"title": f"{prefix}{i}", "paragraphs": [{"context": f"word{i} alpha beta", "qas": [
            qa(f"{prefix}q{i}", "Which?", [("beta", len(f'word{i} alpha '))]),
            qa(f"{prefix}n{i}", "Not?")]}]} for i in range(count)]

    split_file = write_squad(tmp_path / "dev.json", articles("D", 10))
    extra_file = write_squad(tmp_path / "extra.json", articles("E", 6))
    settings = DataSettings(split_file=str(split_file), extra_train_files=(str(extra_file),))
    teacher_data = prepare_data(settings, minilm_tokenizer, tmp_path / "cache", log=lambda m: None)
    assert {t for t in teacher_data.train.titles if t.startswith("E")} == {f"E{i}" for i in range(6)}

    teacher_dir = tmp_path / "teacher"
    teacher_dir.mkdir()
    with pytest.raises(ConfigError, match=TRAIN_TITLES_FILE):
        load_train_titles(teacher_dir)
    teacher_data = prepare_data(dataclasses.replace(settings, max_extra_articles=4), minilm_tokenizer,
                                tmp_path / "cache", log=lambda m: None)
    save_train_titles(teacher_data, teacher_dir)
    seen = load_train_titles(teacher_dir)
    student_data = prepare_data(settings, minilm_tokenizer, tmp_path / "cache", log=lambda m: None,
                                exclude_titles=seen)
    student_extra = {t for t in student_data.train.titles if t.startswith("E")}
    assert len(student_extra) == 2 and not student_extra & set(seen)
    assert student_data.summary["teacher_articles_left_out"] == 4
    # The split's own train articles are never left out: only the extra files are a transfer set.
    assert {t for t in student_data.train.titles if t.startswith("D")} == {
        t for t in teacher_data.train.titles if t.startswith("D")}
    with pytest.raises(ConfigError, match="every article"):
        prepare_data(settings, minilm_tokenizer, tmp_path / "cache", log=lambda m: None,
                     exclude_titles=[f"E{i}" for i in range(6)])
