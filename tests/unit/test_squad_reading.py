"""Reading SQuAD files: the happy paths and every bad input giving an error that names the problem."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import pytest

from conftest import article, qa, write_squad
from paretodistill.data.squad import combine, load_squad
from paretodistill.errors import DataFormatError

CONTEXT = "The Normans were a people in Normandy, France."


def good_articles():
    return [
        article("Normans", CONTEXT, [qa("q1", "Who were the Normans?", [("a people", 17)]), qa("q2", "When?")]),
        article("Other", "Paris is the capital.", [qa("q3", "What is Paris?", [("the capital", 9)])]),
    ]


def test_reads_v2_examples_in_file_order(tmp_path):
    data = load_squad(write_squad(tmp_path / "d.json", good_articles()))
    assert [e.id for e in data.examples] == ["q1", "q2", "q3"]
    assert data.examples[0].answers[0].text == "a people" and data.examples[0].answers[0].start == 17
    assert data.examples[1].is_impossible and data.examples[1].answers == ()
    assert data.titles == ["Normans", "Other"] and data.version == "v2.0"
    assert len(data.fingerprint) == 64


def test_reads_gzip_and_plain_identically(tmp_path):
    plain = write_squad(tmp_path / "d.json", good_articles())
    packed = tmp_path / "d.json.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert load_squad(plain).examples == load_squad(packed).examples


def test_reads_v11_without_is_impossible(tmp_path):
    articles = [article("A", CONTEXT, [{"id": "x", "question": "Who?", "answers": [{"text": "Normans", "answer_start": 4}]}])]
    data = load_squad(write_squad(tmp_path / "v1.json", articles, version="1.1"))
    assert data.version == "1.1" and not data.examples[0].is_impossible


def test_select_titles_keeps_order_and_refuses_unknown(tmp_path):
    data = load_squad(write_squad(tmp_path / "d.json", good_articles()))
    assert [e.id for e in data.select_titles({"Other"}).examples] == ["q3"]
    with pytest.raises(DataFormatError, match="no article titled"):
        data.select_titles({"Missing"})


@pytest.mark.parametrize(
    "content, message",
    [
        ("", "the file is empty"),
        ('{"version": "v2.0", "data": [', "malformed JSON at line 1"),
        ('{"version": "v3", "data": []}', "unsupported SQuAD version field 'v3'"),
        ('{"data": []}', "holds no articles"),  # no version: inferred from the questions
        ('{"version": "v2.0", "data": []}', "holds no articles"),
        ('[1, 2]', "no top-level 'data' list"),
        ('{"version": "v2.0", "data": [{"title": "A"}]}', "article 'A': no 'paragraphs' field"),
        ('{"version": "v2.0", "data": [{"title": "A", "paragraphs": []}]}', "holds no questions"),
    ],
)
def test_malformed_files_name_the_problem(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(DataFormatError, match=message) as error:
        load_squad(path)
    assert str(path) in str(error.value)


def test_answer_offset_mismatch_names_question_ids(tmp_path):
    articles = good_articles()
    articles[0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = 18  # one character off
    articles[1]["paragraphs"][0]["qas"][0]["answers"][0]["text"] = "the capitol"
    with pytest.raises(DataFormatError, match=r"answer_start does not point .* 2 question\(s\): q1, q3"):
        load_squad(write_squad(tmp_path / "d.json", articles))


def test_is_impossible_disagreeing_with_answers_names_ids(tmp_path):
    articles = good_articles()
    articles[0]["paragraphs"][0]["qas"][0]["is_impossible"] = True  # but it has an answer
    articles[0]["paragraphs"][0]["qas"][1]["is_impossible"] = False  # but it has none
    with pytest.raises(DataFormatError, match=r"is_impossible disagrees .* 2 question\(s\): q1, q2"):
        load_squad(write_squad(tmp_path / "d.json", articles))


def test_v11_question_without_answers_is_an_error(tmp_path):
    articles = [article("A", CONTEXT, [{"id": "x", "question": "Who?", "answers": []}])]
    with pytest.raises(DataFormatError, match="is_impossible disagrees"):
        load_squad(write_squad(tmp_path / "v1.json", articles, version="1.1"))


def test_duplicate_ids_are_an_error(tmp_path):
    articles = good_articles()
    articles[1]["paragraphs"][0]["qas"][0]["id"] = "q1"
    with pytest.raises(DataFormatError, match="duplicate question ids: q1"):
        load_squad(write_squad(tmp_path / "d.json", articles))


def test_long_id_lists_are_shortened(tmp_path):
    qas = [qa(f"id{i}", "Who?", [("Normans", 0)]) for i in range(15)]  # all offsets wrong (4 is right)
    with pytest.raises(DataFormatError, match=r"15 question\(s\): id0, .*id9 and 5 more"):
        load_squad(write_squad(tmp_path / "d.json", [article("A", CONTEXT, qas)]))


def test_missing_file_and_corrupt_gzip(tmp_path):
    with pytest.raises(DataFormatError, match="no such file"):
        load_squad(tmp_path / "absent.json")
    broken = tmp_path / "broken.json.gz"
    broken.write_bytes(b"\x1f\x8b" + b"not really gzip")
    with pytest.raises(DataFormatError, match="not a readable gzip file"):
        load_squad(broken)


def test_hub_id_without_datasets_package_says_how_to_install(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_datasets(name, *args, **kwargs):
        if name == "datasets":
            raise ImportError("no datasets here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_datasets)
    with pytest.raises(DataFormatError, match=r"paretodistill\[hub\]"):
        load_squad("squad_v2")


def test_combine_deduplicates_by_title_first_file_wins(tmp_path):
    first = load_squad(write_squad(tmp_path / "a.json", good_articles()))
    duplicate = [article("Normans", CONTEXT, [qa("z1", "Who?", [("Normans", 4)])]),
                 article("New", "x y z", [qa("z2", "What?", [("y", 2)])])]
    second = load_squad(write_squad(tmp_path / "b.json", duplicate, version="v2.0"))
    combined = combine([first, second])
    assert [e.id for e in combined.examples] == ["q1", "q2", "q3", "z2"]
    assert combined.titles == ["Normans", "Other", "New"]
    assert combined.fingerprint not in (first.fingerprint, second.fingerprint)


@pytest.mark.parametrize("source, expected", [
    ("squad_v2", ("squad_v2", "validation")),
    ("squad_v2:train", ("squad_v2", "train")),
    ("rajpurkar/squad_v2:validation", ("rajpurkar/squad_v2", "validation")),
])
def test_dataset_ids_take_a_split(source, expected):
    from paretodistill.data.squad import parse_dataset_id

    assert parse_dataset_id(source) == expected


@pytest.mark.parametrize("source", ["squad_v2:", ":train", "squad_v2:train:x"])
def test_malformed_dataset_split_is_named(source):
    with pytest.raises(DataFormatError, match="a dataset id takes one split, as in squad_v2:train"):
        load_squad(source)


def test_dataset_id_split_reaches_the_loader(monkeypatch):
    """With a stand-in ``datasets`` module (the hub extra may not be installed): the split asked for is loaded."""
    import sys
    import types

    calls = []
    rows = [{"id": "r1", "title": "T", "context": CONTEXT, "question": "Who?",
             "answers": {"text": ["a people"], "answer_start": [17]}},
            {"id": "r2", "title": "T", "context": CONTEXT, "question": "When?", "answers": {"text": [], "answer_start": []}}]
    fake = types.SimpleNamespace(load_dataset=lambda dataset_id, split: calls.append((dataset_id, split)) or rows)
    monkeypatch.setitem(sys.modules, "datasets", fake)
    data = load_squad("squad_v2:train")
    assert calls == [("squad_v2", "train")]
    assert data.source == "squad_v2[train]" and data.version == "v2.0" and [e.id for e in data.examples] == ["r1", "r2"]
    assert load_squad("squad_v2").source == "squad_v2[validation]"


# --- fields of the wrong type or meaning: one DataFormatError naming the question, never a traceback
def _broken(change) -> list[dict]:
    articles = good_articles()
    change(articles[0], articles[0]["paragraphs"][0]["qas"][0])
    return articles


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a, q: a.update(title=["Nor", "mans"]), r"article 1: the title must be a string, got list \['Nor', 'mans'\]"),
        (lambda a, q: q.update(id=7), r"question id 7 \(article 'Normans'\): the id must be a string, got int"),
        (lambda a, q: q.update(question=None), "question q1: the question must be a string, got NoneType"),
        (lambda a, q: q["answers"][0].update(text="", answer_start=1000), "question q1: an answer has empty text"),
        (lambda a, q: q["answers"][0].update(text=" ", answer_start=3), "question q1: an answer has empty text"),
        (lambda a, q: q["answers"][0].update(text=12), "question q1: an answer text must be a string, got int"),
        (lambda a, q: q["answers"][0].update(answer_start="17"), "question q1: answer_start must be an integer, got str"),
        (lambda a, q: q["answers"][0].update(answer_start=-5), "question q1: answer_start -5 lies outside the context"),
    ],
)
def test_fields_of_the_wrong_kind_name_the_question(tmp_path, change, message):
    with pytest.raises(DataFormatError, match=message):
        load_squad(write_squad(tmp_path / "d.json", _broken(change)))


def test_a_list_title_is_one_line_on_the_command_line(tmp_path, capsys):
    from paretodistill.cli import main

    path = write_squad(tmp_path / "d.json", _broken(lambda a, q: a.update(title=["x"])))
    assert main(["predict", "--model", str(tmp_path), "--data", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the title must be a string" in err and "Traceback" not in err


DEEP = "[" * 200_000 + "]" * 200_000  # json raises RecursionError on it, past any recursion limit


def test_json_nested_too_deeply_is_a_data_format_error(tmp_path):
    (tmp_path / "deep.json").write_text(DEEP)
    with pytest.raises(DataFormatError, match=r"deep.json: JSON nested too deeply to read"):
        load_squad(tmp_path / "deep.json")


def test_a_lone_surrogate_in_a_squad_file_names_the_field(tmp_path):
    path = write_squad(tmp_path / "d.json", good_articles())
    path.write_text(path.read_text().replace("Who were the Normans?", "Who were \\ud800?"))
    with pytest.raises(DataFormatError, match=r"question q1: the question holds a lone surrogate"):
        load_squad(path)


@pytest.mark.parametrize("deep", ["data", "predictions", "na_prob"])
def test_score_and_distill_give_one_line_for_deep_json(tmp_path, capsys, deep):
    import report_fixtures as fx
    from paretodistill.cli import main

    data = write_squad(tmp_path / "d.json", good_articles())
    files = {"data": data, "predictions": tmp_path / "p.json", "na_prob": tmp_path / "na.json"}
    files["predictions"].write_text('{"q1": "a people", "q2": "", "q3": "the capital"}')
    files["na_prob"].write_text('{"q1": 0.1, "q2": 0.9, "q3": 0.2}')
    files[deep] = tmp_path / "deep.json"
    files[deep].write_text(DEEP)
    argv = ["score", str(files["data"]), str(files["predictions"]), "--na-prob-file", str(files["na_prob"])]
    commands = [argv]
    if deep == "data":
        teacher = fx.tiny_checkpoint(tmp_path / "teacher")
        commands.append(["distill", "--teacher", str(teacher), "--data", str(files["data"]), "--out", str(tmp_path / "o")])
    for command in commands:
        assert main(command) == 2
        err = capsys.readouterr().err
        assert "deep.json" in err and "JSON nested too deeply to read" in err and "Traceback" not in err


# ---------------------------------------------------------------- a user's own SQuAD-format file
def test_a_users_own_file_needs_neither_version_nor_is_impossible(tmp_path):
    """Ids and titles of their own, no ``version``, no ``is_impossible``: no answers is unanswerable."""
    own = {"data": [{"title": "Handbook §3", "paragraphs": [{"context": CONTEXT, "qas": [
        {"id": "hb-0001", "question": "Who were the Normans?", "answers": [{"text": "a people", "answer_start": 17}]},
        {"id": "hb-0002", "question": "Who was Bob?", "answers": []},
    ]}]}, {"title": "Handbook §3", "paragraphs": [{"context": "Paris is the capital.", "qas": [
        {"id": "hb-0003", "question": "What is Paris?", "answers": [{"text": "the capital", "answer_start": 9}]}]}]}]}
    path = tmp_path / "own.json"
    path.write_text(json.dumps(own))
    data = load_squad(path)
    assert data.version == "v2.0" and [e.is_impossible for e in data.examples] == [False, True, False]
    assert len(data.select_titles(["Handbook §3"]).examples) == 3  # articles sharing a title stay together
    answerable_only = {"data": [own["data"][1]]}
    path.write_text(json.dumps(answerable_only))
    assert load_squad(path).version == "1.1"


@pytest.mark.parametrize("change, message", [
    (lambda q: q["answers"][0].pop("answer_start"), r"own.json: question q1: an answer: no 'answer_start' field$"),
    (lambda q: q.pop("answers"), r"own.json: question q1: no 'answers' field$"),
    (lambda q: q.pop("id"), r"own.json: a question of article 'Normans': no 'id' field$"),
    (lambda q: q.pop("question"), r"own.json: question q1: no 'question' field$"),
])
def test_missing_fields_name_the_file_and_the_question(tmp_path, change, message):
    articles = good_articles()
    change(articles[0]["paragraphs"][0]["qas"][0])
    with pytest.raises(DataFormatError, match=message):
        load_squad(write_squad(tmp_path / "own.json", articles))


def test_a_dataset_id_is_read_offline_from_a_hugging_face_cache(tmp_path, monkeypatch):
    """``owner/name:split`` through the optional ``datasets``, from a hub cache laid out as the hub
    leaves it (refs/main, snapshots/SHA/...parquet) with the network off. In a fresh interpreter:
    the libraries read these variables when they are imported."""
    datasets = pytest.importorskip("datasets", reason="datasets is not installed (pip install 'paretodistill[hub]')")
    repo = tmp_path / "hub" / "datasets--someone--own_squad"
    sha = "0123456789abcdef0123456789abcdef01234567"
    (repo / "snapshots" / sha / "data").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(sha)
    rows = [{"id": "o1", "title": "Own", "context": CONTEXT, "question": "Who were the Normans?",
             "answers": {"text": ["a people"], "answer_start": [17]}},
            {"id": "o2", "title": "Own", "context": CONTEXT, "question": "Who was Bob?",
             "answers": {"text": [], "answer_start": []}}]
    datasets.Dataset.from_list(rows).to_parquet(str(repo / "snapshots" / sha / "data" / "validation-00000-of-00001.parquet"))
    for name, value in (("HF_HOME", tmp_path / "home"), ("HF_HUB_CACHE", tmp_path / "hub"),
                        ("HF_HUB_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "1")):
        monkeypatch.setenv(name, str(value))
    read = ("import json; from paretodistill.data.squad import load_squad; d = load_squad('someone/own_squad:validation'); "
            "print(json.dumps([d.source, d.version, [[e.id, e.is_impossible, [a.text for a in e.answers]] for e in d.examples]]))\n"
            "try: load_squad('someone/own_squad:train')\nexcept Exception as error: print(error)")
    done = subprocess.run([sys.executable, "-c", read], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    *_, loaded, refused = done.stdout.strip().splitlines()
    assert json.loads(loaded) == ["someone/own_squad[validation]", "v2.0", [["o1", False, ["a people"]], ["o2", True, []]]]
    assert refused.startswith("could not load dataset 'someone/own_squad' split 'train' (its copy in the Hugging Face cache)")
