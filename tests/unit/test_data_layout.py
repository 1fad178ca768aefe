"""Data as users hold it: their own validation and test files beside (or instead of) the article
split, the one-line refusals of layouts that cannot work, and a split file's run kept as it was."""

from __future__ import annotations

import json

import pytest

from conftest import article, qa, write_squad
from paretodistill.config import DataSettings
from paretodistill.data.layout import split_shares
from paretodistill.data.prepare import select_parts
from paretodistill.data.splits import ArticleSplit, split_by_article
from paretodistill.data.squad import load_squad
from paretodistill.distill.engine import data_fingerprints
from paretodistill.errors import ConfigError

CONTEXT = "alpha beta gamma"


def squad_file(path, titles, questions_per_article=2):
    """Articles of the given titles: one answerable question, the others unanswerable."""
    articles = [article(title, CONTEXT, [qa(f"{title}-{n}", "Which?", [("beta", 6)] if n == 0 else None)
                                         for n in range(questions_per_article)]) for title in titles]
    return str(write_squad(path, articles))


@pytest.fixture
def files(tmp_path):
    return {
        "split": squad_file(tmp_path / "split.json", [f"S{i}" for i in range(10)]),
        "train": squad_file(tmp_path / "train.json", ["T1", "T2", "T3"]),
        "validation": squad_file(tmp_path / "validation.json", ["V1", "V2"], 3),
        "test": squad_file(tmp_path / "test.json", ["X1"], 4),
    }


def test_a_split_file_alone_is_split_as_it_always_was(files):
    parts = select_parts(DataSettings(split_file=files["split"]), log=lambda _: None)
    assert parts.split == split_by_article(load_squad(files["split"]), seed=13)
    assert "files" not in parts.split.to_dict()  # split.json records what it always did
    assert (len(parts.train.examples), len(parts.validation.examples), len(parts.test.examples)) == (12, 4, 4)


def test_own_validation_and_test_files_are_those_parts_and_train_files_train(files):
    settings = DataSettings(extra_train_files=(files["train"],), validation_files=(files["validation"],),
                            test_files=(files["test"],))
    parts = select_parts(settings, log=lambda _: None)
    assert parts.train.titles == ["T1", "T2", "T3"] and len(parts.train.examples) == 6
    assert parts.validation.titles == ["V1", "V2"] and len(parts.validation.examples) == 6
    assert parts.test.titles == ["X1"] and len(parts.test.examples) == 4
    assert sum(e.is_impossible for e in parts.test.examples) == 3
    assert parts.split.files == {"validation": (files["validation"],), "test": (files["test"],)}
    assert ArticleSplit.from_dict(parts.split.to_dict()) == parts.split  # split.json round-trips


def test_a_split_file_gives_its_articles_to_the_parts_not_given(files):
    only_test = select_parts(DataSettings(split_file=files["split"], test_files=(files["test"],)), log=lambda _: None)
    assert only_test.split.fractions == pytest.approx({"train": 0.75, "validation": 0.25, "test": 0.0})
    assert (len(only_test.split.train), len(only_test.split.validation)) == (8, 2)  # 10 articles, 3 : 1
    assert only_test.test.titles == ["X1"]
    both = select_parts(DataSettings(split_file=files["split"], validation_files=(files["validation"],),
                                     test_files=(files["test"],)), log=lambda _: None)
    assert len(both.split.train) == 10 and set(both.train.titles) == set(both.split.train)  # every article trains


def test_a_selected_file_part_points_at_its_file(files):
    parts = select_parts(DataSettings(split_file=files["split"], test_files=(files["test"],)), log=lambda _: None)
    with pytest.raises(ConfigError, match=r"the test part .* given as .*test.json; read that file"):
        parts.split.select(load_squad(files["split"]), "test")


@pytest.mark.parametrize("settings, message", [
    (lambda f: DataSettings(extra_train_files=(f["train"],)), r"^no validation or test data: give --data FILE .* "
                                                               r"or --validation FILE and --test FILE$"),
    (lambda f: DataSettings(extra_train_files=(f["train"],), validation_files=(f["validation"],)),
     r"^no test data: give --data FILE to split by article, or --test FILE$"),
    (lambda f: DataSettings(validation_files=(f["validation"],), test_files=(f["test"],)), r"^no training data: give --train FILE"),
    (lambda f: DataSettings(split_file=f["split"], validation_files=(f["validation"],), test_files=(f["test"],),
                            use_split_train=False), r"^no training data: with validation and test files given"),
    (lambda f: DataSettings(split_file=f["split"], fractions=(0.0, 0.0, 1.0), test_files=(f["test"],)),
     r"give the split file's articles to no part that is not given as files \(test\)"),
    (lambda f: DataSettings(extra_train_files=(f["validation"],), validation_files=(f["validation"],), test_files=(f["test"],)),
     r"^article 'V1' \(and 1 more\) is in both the training data .* and the validation data .*: an article must be in one part only"),
    (lambda f: DataSettings(split_file=f["split"], test_files=(f["split"],)),
     r"is in both the training data .* and the test data"),
])
def test_impossible_layouts_are_one_line(files, settings, message):
    with pytest.raises(ConfigError, match=message) as error:
        select_parts(settings(files), log=lambda _: None)
    assert "\n" not in str(error.value)


def test_a_title_in_two_files_of_one_part_is_refused(files, tmp_path):
    again = squad_file(tmp_path / "validation-2.json", ["V2", "V3"])
    settings = DataSettings(extra_train_files=(files["train"],), validation_files=(files["validation"],), test_files=(again,))
    with pytest.raises(ConfigError, match=r"article 'V2' is in both the validation data"):
        select_parts(settings, log=lambda _: None)
    settings = DataSettings(extra_train_files=(files["train"],), validation_files=(files["validation"], again),
                            test_files=(files["test"],))
    with pytest.raises(ConfigError, match=r"^validation files: article title 'V2' is in both .*validation.json and .*validation-2.json$"):
        select_parts(settings, log=lambda _: None)


def test_shares_without_given_parts_are_the_fractions_unchanged():
    assert split_shares((0.6, 0.2, 0.2), {}) == {"train": 0.6, "validation": 0.2, "test": 0.2}
    assert split_shares((0.6, 0.2, 0.2), {"validation": ()}) == pytest.approx({"train": 0.75, "validation": 0.0, "test": 0.25})


def test_the_study_knows_a_split_file_by_the_same_keys_and_own_parts_beside_them(files):
    plain = data_fingerprints(DataSettings(split_file=files["split"]))
    assert sorted(plain) == ["extra_train_files", "split_file"]  # what an existing study recorded
    own = data_fingerprints(DataSettings(extra_train_files=(files["train"],), validation_files=(files["validation"],),
                                         test_files=(files["test"],)))
    assert sorted(own) == ["extra_train_files", "test_files", "validation_files"]
    assert own["test_files"] == [load_squad(files["test"]).fingerprint]


def test_a_split_file_study_keeps_its_identity_and_own_parts_change_it(files):
    """The identity of a study of one split file names no part files (it opens as the study it was);
    one with its own test file knows that file by content, in ``inputs``, not by where it lies."""
    from paretodistill.config import load_config
    from paretodistill.distill.engine import Inputs
    from paretodistill.search.identity import differences, study_identity
    from paretodistill.search.plan import plan_search

    space = {"learning_rate": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True}}

    def identity(data: dict) -> dict:
        config = load_config(base={"data": data, "search": {"space": space, "baseline": None}})
        plan = plan_search(config, config.search, log=lambda _: None)
        return study_identity(config, plan, Inputs(data_fingerprints(config.data), None))

    plain = identity({"split_file": files["split"]})
    assert "validation_files" not in json.dumps(plain) and "test_files" not in json.dumps(plain)
    own = identity({"split_file": files["split"], "test_files": [files["test"]]})
    assert differences(plain, own) == [f"inputs.data.test_files: null -> {json.dumps([load_squad(files['test']).fingerprint])[:57]}..."]


def test_the_part_flags_reach_the_config_and_distill_test_keeps_its_old_meaning():
    from paretodistill.cli import build_parser
    from paretodistill.distill.cli import part_overrides

    parser = build_parser()
    bare = parser.parse_args(["distill", "--out", "o", "--test"])
    assert bare.test == [""] and dict(part_overrides(bare))["data.test_files"] is None  # score the split's test part
    given = parser.parse_args(["distill", "--out", "o", "--test", "t.json", "--validation", "v.json", "--validation", "w.json"])
    assert dict(part_overrides(given)) == {"data.split_file": None, "data.extra_train_files": None,
                                           "data.validation_files": ["v.json", "w.json"], "data.test_files": ["t.json"]}
    search = parser.parse_args(["search", "--study", "s", "--train", "a.json", "--test", "t.json"])
    assert dict(part_overrides(search))["data.extra_train_files"] == ["a.json"]


def test_a_teacher_without_test_data_is_one_line_and_status_2(files, tmp_path, capsys):
    from paretodistill.cli import main

    assert main(["teacher", "--out", str(tmp_path / "t"), "--train", files["train"], "--validation", files["validation"]]) == 2
    error = capsys.readouterr().err.strip()
    assert error.endswith("no test data: give --data FILE to split by article, or --test FILE") and "\n" not in error
    assert not (tmp_path / "t").exists()


def test_pretraining_text_leaves_out_own_validation_and_test_articles(files, tmp_path):
    from paretodistill.data.unlabeled import unlabeled_paragraphs

    text = write_squad(tmp_path / "text.json", [article("V1", "held out by its title", [qa("t1", "Which?", [("held", 0)])]),
                                                article("Free", "free text to learn from", [qa("t2", "Which?", [("free", 0)])])])
    chosen = unlabeled_paragraphs([str(text)], [files["validation"], files["test"]])
    assert chosen.left_out_articles == ("V1",) and chosen.train == ("free text to learn from",)


def test_a_recorded_part_is_read_back_from_its_files_or_its_split_file(files, tmp_path):
    """What ``export --int8`` scores: the test part as the run had it, from split.json alone."""
    from paretodistill.data.splits import read_part

    parts = select_parts(DataSettings(split_file=files["split"], test_files=(files["test"],)), log=lambda _: None)
    parts.split.save(tmp_path / "recorded.json")  # as split.json beside a checkpoint
    recorded = ArticleSplit.load(tmp_path / "recorded.json")
    assert [e.id for e in read_part(recorded, "test").examples] == [e.id for e in parts.test.examples]
    assert [e.id for e in read_part(recorded, "validation").examples] == [e.id for e in parts.validation.examples]


def test_the_report_names_the_parts_given_as_files(files):
    from paretodistill.report.frontier import describe_split

    parts = select_parts(DataSettings(split_file=files["split"], test_files=(files["test"],)), log=lambda _: None)
    lines = describe_split(parts.split.to_dict())
    assert f"test files: {files['test']}" in lines and "test: 1 article (X1)" in lines
    assert not any(line.startswith("validation files") for line in lines)
