"""Article-disjoint splits: deterministic, seeded, complete, and refusing the wrong file."""

from __future__ import annotations

import pytest

from conftest import article, qa, write_squad
from paretodistill.data.splits import ArticleSplit, split_by_article
from paretodistill.data.squad import load_squad
from paretodistill.errors import ConfigError


def make_data(tmp_path, n_articles=10, name="d.json"):
    articles = [article(f"T{i}", "alpha beta gamma", [qa(f"a{i}", "Which?", [("beta", 6)]), qa(f"b{i}", "Not?")])
                for i in range(n_articles)]
    return load_squad(write_squad(tmp_path / name, articles))


def test_split_is_disjoint_complete_and_sized(tmp_path):
    data = make_data(tmp_path)
    split = split_by_article(data, seed=3)
    parts = [set(split.train), set(split.validation), set(split.test)]
    assert (len(parts[0]), len(parts[1]), len(parts[2])) == (6, 2, 2)
    assert parts[0] | parts[1] | parts[2] == set(data.titles)
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])


def test_split_is_deterministic_and_depends_on_seed(tmp_path):
    data = make_data(tmp_path)
    assert split_by_article(data, seed=3) == split_by_article(data, seed=3)
    orders = {split_by_article(data, seed=s).test for s in range(6)}
    assert len(orders) > 1


def test_questions_of_one_article_stay_together(tmp_path):
    data = make_data(tmp_path)
    split = split_by_article(data, seed=1)
    test_ids = {e.id for e in split.select(data, "test").examples}
    for title in split.test:
        index = title[1:]
        assert {f"a{index}", f"b{index}"} <= test_ids


def test_save_and_load_round_trip(tmp_path):
    data = make_data(tmp_path)
    split = split_by_article(data, seed=5)
    split.save(tmp_path / "split.json")
    assert ArticleSplit.load(tmp_path / "split.json") == split


def test_select_refuses_another_file(tmp_path):
    split = split_by_article(make_data(tmp_path), seed=5)
    other = make_data(tmp_path, n_articles=11, name="other.json")
    with pytest.raises(ConfigError, match="the split was made from"):
        split.select(other, "train")


@pytest.mark.parametrize(
    "fractions, message",
    [
        ({"train": 0.5, "validation": 0.5}, "must name exactly"),
        ({"train": 0.8, "validation": 0.3, "test": 0.2}, "sum to 1"),
        ({"train": 1.2, "validation": -0.1, "test": -0.1}, "non-negative"),
    ],
)
def test_bad_fractions(tmp_path, fractions, message):
    with pytest.raises(ConfigError, match=message):
        split_by_article(make_data(tmp_path), fractions, seed=1)


def test_too_few_articles_for_a_train_part(tmp_path):
    with pytest.raises(ConfigError, match="too few for a train part"):
        split_by_article(make_data(tmp_path, n_articles=2), seed=1)
