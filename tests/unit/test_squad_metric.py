"""Tests for paretodistill.evaluation.squad_metric, the port of the official SQuAD 2.0 scorer.

Expected numbers are worked out by hand in the comments; the last group runs the vendored
official script (tests/reference/evaluate_v2_official.py) and requires bit-identical output.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from paretodistill.errors import DataFormatError
from paretodistill.evaluation.squad_metric import (
    EvaluationResult,
    compute_exact,
    compute_f1,
    evaluate,
    evaluate_files,
    normalize_answer,
    per_question_scores,
)

OFFICIAL = Path(__file__).resolve().parents[1] / "reference" / "evaluate_v2_official.py"
# sha256 of the official text below the vendoring header (10,547 characters).
# The official script is not committed (see tests/reference/README.md): its checks run where a copy is present.
needs_official = pytest.mark.skipif(not OFFICIAL.exists(), reason=f"official script not present at {OFFICIAL}")
OFFICIAL_BODY_SHA256 = "710840ce2c2c61716334c056777032f24660b83eb9869a451036e6a24d8103c4"

BASE_KEYS = ["exact", "f1", "total"]
SPLIT_KEYS = ["HasAns_exact", "HasAns_f1", "HasAns_total", "NoAns_exact", "NoAns_f1", "NoAns_total"]
BEST_KEYS = ["best_exact", "best_exact_thresh", "best_f1", "best_f1_thresh"]


def qa(qid: str, *answers: str) -> dict:
    """A SQuAD 2.0 question; no answers means unanswerable."""
    return {
        "id": qid,
        "question": f"question {qid}?",
        "answers": [{"text": a, "answer_start": 0} for a in answers],
        "is_impossible": not answers,
    }


def dataset(*qas: dict) -> list[dict]:
    return [{"title": "T", "paragraphs": [{"context": "some context", "qas": list(qas)}]}]


# Five questions used by several tests: three answerable, two unanswerable.
ARTICLES = dataset(
    qa("q1", "Denver Broncos", "Broncos", "the Denver Broncos"),
    qa("q2", "the big red dog"),
    qa("q3", "1990"),
    qa("q4"),
    qa("q5"),
)
PREDS = {
    "q1": "Broncos",  # exact 1 (second gold), f1 1
    "q2": "red dog barked",  # exact 0, f1 2/3 (see test_f1_partial_overlap)
    "q3": "1991",  # exact 0, f1 0
    "q4": "",  # unanswerable, abstains: exact 1, f1 1
    "q5": "nothing here",  # unanswerable, answers: exact 0, f1 0
}


# ---------------------------------------------------------------------------------------------
# normalisation and per-answer scores
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("The Cat", "cat"),  # case + article
        ("An apple, a day!", "apple day"),  # a/an removed, punctuation removed
        ("  Hello\t\nWorld  ", "hello world"),  # whitespace collapsed
        ("Ant and Anthem", "ant and anthem"),  # articles only as whole words
        ("The-End", "theend"),  # punctuation goes before articles: "the" is no word any more
        ("rock 'n' roll", "rock n roll"),
        ("the a an", ""),
        ("Éclair", "éclair"),  # unicode lower-cased, kept
    ],
)
def test_normalize_answer(raw: str, normalized: str) -> None:
    assert normalize_answer(raw) == normalized


def test_compute_exact() -> None:
    assert compute_exact("The Big Dog", "big dog.") == 1
    assert compute_exact("big dog", "big dogs") == 0
    assert compute_exact("", "") == 1
    assert compute_exact("", "the") == 1  # "the" normalises to ""
    assert compute_exact("1990", "") == 0


def test_f1_partial_overlap() -> None:
    # gold tokens [big, red, dog] ("the" dropped), pred tokens [red, dog, barked]
    # common = 2 -> precision 2/3, recall 2/3 -> f1 = 2*(4/9)/(4/3) = 2/3
    assert compute_f1("the big red dog", "red dog barked") == pytest.approx(2 / 3, abs=1e-15)
    # gold [big, red, dog], pred [dog]: p = 1, r = 1/3 -> f1 = (2/3)/(4/3) = 0.5
    assert compute_f1("big red dog", "the dog") == pytest.approx(0.5, abs=1e-15)
    # repeated tokens count with multiplicity: gold {dog:2, cat:1}, pred {dog:3}
    # common = 2 -> p = 2/3, r = 2/3 -> 2/3
    assert compute_f1("dog dog cat", "dog dog dog") == pytest.approx(2 / 3, abs=1e-15)
    assert compute_f1("big red dog", "Big, red DOG!") == 1.0


def test_f1_uses_the_official_float_expression() -> None:
    # gold 5 tokens, pred 1 shared token: p = 1.0, r = 0.2, official (2*p*r)/(p+r) = 0.4/1.2
    # = 0.33333333333333337 in binary floating point, one ulp above 2*1/(1+5) = 1/3.
    # Only the official expression gives the official last digit.
    got = compute_f1("one two three four five", "one")
    assert got == 0.33333333333333337
    assert got != 1 / 3


def test_f1_empty_and_disjoint() -> None:
    assert compute_f1("", "") == 1  # both no-answer
    assert compute_f1("", "something") == 0
    assert compute_f1("something", "") == 0
    assert compute_f1("the", "") == 1  # gold normalises to no-answer
    r = compute_f1("cat", "dog")
    assert r == 0 and isinstance(r, int)  # official returns the int 0 here


# ---------------------------------------------------------------------------------------------
# evaluate(): totals, splits, missing and extra predictions
# ---------------------------------------------------------------------------------------------


def test_evaluate_hand_worked() -> None:
    result = evaluate(ARTICLES, PREDS)
    assert isinstance(result, EvaluationResult)
    m = result.metrics
    assert list(m) == BASE_KEYS + SPLIT_KEYS
    # exact: q1 1, q2 0, q3 0, q4 1, q5 0 -> 2/5 = 40 %
    assert m["exact"] == pytest.approx(40.0)
    # f1: 1 + 2/3 + 0 + 1 + 0 = 8/3 -> (8/3)/5 = 53.333 %
    assert m["f1"] == pytest.approx(100 * (8 / 3) / 5)
    assert m["total"] == 5
    # HasAns (q1, q2, q3): exact 1/3, f1 (1 + 2/3)/3 = 5/9
    assert m["HasAns_exact"] == pytest.approx(100 / 3)
    assert m["HasAns_f1"] == pytest.approx(500 / 9)
    assert m["HasAns_total"] == 3
    # NoAns (q4, q5): q4 right, q5 wrong -> 50 / 50
    assert m["NoAns_exact"] == pytest.approx(50.0)
    assert m["NoAns_f1"] == pytest.approx(50.0)
    assert m["NoAns_total"] == 2
    assert result.missing_ids == [] and result.extra_ids == []


def test_max_over_gold_answers() -> None:
    articles = dataset(qa("a", "Denver Broncos", "Broncos"))
    # "the Broncos" matches the second gold exactly
    assert evaluate(articles, {"a": "the Broncos"}).metrics["exact"] == 100.0
    # "Denver": gold 1 -> p 1, r 1/2 -> f1 2/3; gold 2 -> 0; max = 2/3, exact 0
    m = evaluate(articles, {"a": "Denver"}).metrics
    assert m["exact"] == 0.0
    assert m["f1"] == pytest.approx(200 / 3)


def test_unanswerable_scoring() -> None:
    articles = dataset(qa("n"))
    assert evaluate(articles, {"n": ""}).metrics["exact"] == 100.0
    assert evaluate(articles, {"n": "an answer"}).metrics["f1"] == 0.0
    # official quirk kept: a prediction that normalises to "" counts as abstaining
    assert evaluate(articles, {"n": "The."}).metrics["exact"] == 100.0


def test_gold_that_normalises_to_empty_is_ignored() -> None:
    # answers ["the"] make the question answerable (HasAns), but the only correct
    # prediction is then "" because "the" normalises to nothing.
    articles = dataset(qa("x", "the"))
    m = evaluate(articles, {"x": ""}).metrics
    assert m["HasAns_exact"] == 100.0 and "NoAns_total" not in m


def test_missing_predictions_are_reported_and_excluded() -> None:
    preds = {k: v for k, v in PREDS.items() if k not in ("q3", "q5")}
    preds["zzz"] = "unknown question"
    result = evaluate(ARTICLES, preds)
    assert result.missing_ids == ["q3", "q5"]  # dataset order
    assert result.extra_ids == ["zzz"]
    m = result.metrics
    # remaining q1 (1, 1), q2 (0, 2/3), q4 (1, 1)
    assert m["total"] == 3
    assert m["exact"] == pytest.approx(200 / 3)
    assert m["f1"] == pytest.approx(100 * (8 / 3) / 3)
    assert (m["HasAns_total"], m["NoAns_total"]) == (2, 1)
    assert m["HasAns_exact"] == pytest.approx(50.0)
    assert m["NoAns_exact"] == 100.0


def test_extra_predictions_do_not_change_numbers() -> None:
    base = evaluate(ARTICLES, PREDS).metrics
    assert evaluate(ARTICLES, {**PREDS, "other": "x"}).metrics == base


def test_no_matching_prediction_is_an_error() -> None:
    # the official script divides by zero here
    with pytest.raises(DataFormatError, match="no prediction matches"):
        evaluate(ARTICLES, {"nope": "x"})


def test_squad_v11_input_is_all_answerable() -> None:
    articles = [
        {
            "title": "v1",
            "paragraphs": [
                {
                    "context": "ctx",
                    "qas": [  # SQuAD 1.1: no is_impossible field
                        {"id": "a", "question": "?", "answers": [{"text": "Paris", "answer_start": 0}]},
                        {"id": "b", "question": "?", "answers": [{"text": "42", "answer_start": 0}]},
                    ],
                }
            ],
        }
    ]
    m = evaluate(articles, {"a": "paris", "b": ""}).metrics
    # a right, b abstains on an answerable question -> 50 %
    assert list(m) == BASE_KEYS + ["HasAns_exact", "HasAns_f1", "HasAns_total"]
    assert m["exact"] == 50.0 and m["HasAns_total"] == 2


def test_is_impossible_is_not_read() -> None:
    # as in the official script, only the answers list decides answerability
    q = qa("a", "Paris")
    q["is_impossible"] = True
    m = evaluate(dataset(q), {"a": "Paris"}).metrics
    assert m["HasAns_total"] == 1 and "NoAns_total" not in m


# ---------------------------------------------------------------------------------------------
# no-answer probabilities: threshold and best threshold
# ---------------------------------------------------------------------------------------------

NA_PROBS = {"q1": 0.9, "q2": 0.2, "q3": 0.8, "q4": 0.1, "q5": 0.95}


def test_na_prob_threshold_applied() -> None:
    m = evaluate(ARTICLES, PREDS, NA_PROBS, na_prob_thresh=0.5).metrics
    # above 0.5 -> scored as "": q1 (answerable) -> 0, q3 -> 0, q5 (unanswerable) -> 1
    # exact: 0 + 0 + 0 + 1 + 1 = 2 -> 40 %; f1: 0 + 2/3 + 0 + 1 + 1 = 8/3 -> 53.33 %
    assert m["exact"] == pytest.approx(40.0)
    assert m["f1"] == pytest.approx(100 * (8 / 3) / 5)
    assert m["NoAns_exact"] == 100.0
    assert m["HasAns_exact"] == 0.0


def test_default_threshold_keeps_predictions() -> None:
    # default 1.0: no probability exceeds it, so numbers equal the no-na-prob run
    with_na = evaluate(ARTICLES, PREDS, NA_PROBS).metrics
    without = evaluate(ARTICLES, PREDS).metrics
    assert {k: with_na[k] for k in without} == without
    assert list(with_na) == BASE_KEYS + SPLIT_KEYS + BEST_KEYS
    assert not any(k in without for k in BEST_KEYS)


def test_best_thresholds_hand_worked() -> None:
    m = evaluate(ARTICLES, PREDS, NA_PROBS).metrics
    # Start: everybody abstains -> the 2 unanswerable right, score 2, thresh 0.0.
    # Walk by na prob: q4 (0.1), q2 (0.2), q3 (0.8), q1 (0.9), q5 (0.95).
    # exact: q4 abstains anyway +0 -> 2; q2 +0; q3 +0; q1 +1 -> 3 (best, 0.9); q5 answers -1 -> 2
    assert m["best_exact"] == pytest.approx(60.0)
    assert m["best_exact_thresh"] == 0.9
    # f1: q4 +0 -> 2; q2 +2/3 -> 8/3 (best, 0.2); q3 +0 -> 8/3 (tie: threshold stays 0.2);
    # q1 +1 -> 11/3 (best, 0.9); q5 -1 -> 8/3. best_f1 = (11/3)/5 = 73.33 %
    assert m["best_f1"] == pytest.approx(100 * (11 / 3) / 5)
    assert m["best_f1_thresh"] == 0.9


def test_best_threshold_never_improving_stays_zero() -> None:
    # everything wrong: the initial "all abstain" score is best, threshold 0.0
    m = evaluate(ARTICLES, {k: "wrong" for k in PREDS}, NA_PROBS).metrics
    assert m["best_exact"] == pytest.approx(40.0)  # 2 unanswerable / 5
    assert m["best_exact_thresh"] == 0.0


def test_best_threshold_ties_depend_on_file_order() -> None:
    # qa answerable and right (+1), qb unanswerable but answered (-1); both na prob 0.5.
    articles = dataset(qa("qa", "yes"), qa("qb"))
    preds = {"qa": "yes", "qb": "wrong"}
    # order qa, qb: start 1 (qb abstaining); qa +1 -> 2 > 1, best 2 at 0.5; qb -1 -> 1.
    # best_exact = 2/2 = 100 % at 0.5, although thresholding at 0.5 (abstain if > 0.5)
    # abstains on neither question and scores 50 %: the official scan splits ties.
    m = evaluate(articles, preds, {"qa": 0.5, "qb": 0.5}).metrics
    assert (m["best_exact"], m["best_exact_thresh"]) == (100.0, 0.5)
    # order qb, qa: qb -1 -> 0; qa +1 -> 1, not > 1, so no update: 50 % at 0.0
    m = evaluate(articles, preds, {"qb": 0.5, "qa": 0.5}).metrics
    assert (m["best_exact"], m["best_exact_thresh"]) == (50.0, 0.0)


def test_best_threshold_non_empty_prediction_that_normalises_to_empty() -> None:
    # official quirk: "the" on an unanswerable question scores exact 1, yet the threshold
    # scan treats it as an answer (-1): start 1, then -1 -> 0; best stays 1/1 at 0.0
    m = evaluate(dataset(qa("n")), {"n": "the"}, {"n": 0.3}).metrics
    assert m["exact"] == 100.0
    assert (m["best_exact"], m["best_exact_thresh"]) == (100.0, 0.0)


def test_missing_na_prob_is_an_error() -> None:
    with pytest.raises(DataFormatError, match="q5"):
        evaluate(ARTICLES, PREDS, {k: v for k, v in NA_PROBS.items() if k != "q5"})


def test_per_question_scores() -> None:
    scores = per_question_scores(ARTICLES, PREDS, NA_PROBS, na_prob_thresh=0.5)
    assert scores["q1"] == (0.0, 0.0)  # 0.9 > 0.5: answerable question abstained
    assert scores["q2"] == (0, pytest.approx(2 / 3))
    assert scores["q5"] == (1.0, 1.0)  # 0.95 > 0.5: unanswerable question abstained
    m = evaluate(ARTICLES, PREDS, NA_PROBS, na_prob_thresh=0.5).metrics
    assert 100 * sum(f for _, f in scores.values()) / len(scores) == pytest.approx(m["f1"])
    assert list(per_question_scores(ARTICLES, {"q2": "x", "q1": "y"})) == ["q1", "q2"]


# ---------------------------------------------------------------------------------------------
# evaluate_files
# ---------------------------------------------------------------------------------------------


def write_json(path: Path, obj: object) -> Path:
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as f:
            json.dump(obj, f)
    else:
        path.write_text(json.dumps(obj), encoding="utf-8")
    return path


def test_evaluate_files_plain_and_gzip(tmp_path: Path) -> None:
    data = write_json(tmp_path / "data.json.gz", {"version": "v2.0", "data": ARTICLES})
    pred = write_json(tmp_path / "pred.json", PREDS)
    na = write_json(tmp_path / "na.json.gz", NA_PROBS)
    assert evaluate_files(data, pred).metrics == evaluate(ARTICLES, PREDS).metrics
    got = evaluate_files(data, pred, na, na_prob_thresh=0.5).metrics
    assert got == evaluate(ARTICLES, PREDS, NA_PROBS, 0.5).metrics


@pytest.mark.parametrize(
    ("name", "content", "which", "message"),
    [
        ("bad.json", "{not json", "data", "not valid JSON"),
        ("nodata.json", json.dumps({"version": "v2.0"}), "data", "no top-level 'data'"),
        ("noid.json", json.dumps({"data": [{"paragraphs": [{"qas": [{"answers": []}]}]}]}), "data", "no string 'id'"),
        ("list.json", json.dumps(["a"]), "pred", "JSON object"),
        ("intpred.json", json.dumps({"q1": 3}), "pred", "'q1' must be a string"),
        ("strna.json", json.dumps({"q1": "0.5"}), "na", "must be a number"),
        ("boolna.json", json.dumps({"q1": True}), "na", "must be a number"),
        ("partialna.json", json.dumps({"q1": 0.5}), "na", "missing for 4"),
    ],
)
def test_evaluate_files_errors(tmp_path: Path, name: str, content: str, which: str, message: str) -> None:
    bad = tmp_path / name
    bad.write_text(content, encoding="utf-8")
    paths = {
        "data": write_json(tmp_path / "data.json", {"data": ARTICLES}),
        "pred": write_json(tmp_path / "pred.json", PREDS),
        "na": None,
    }
    paths[which] = bad
    with pytest.raises(DataFormatError, match=message) as info:
        evaluate_files(paths["data"], paths["pred"], paths["na"])
    assert name in str(info.value)  # the message names the offending file


def test_evaluate_files_missing_file(tmp_path: Path) -> None:
    pred = write_json(tmp_path / "pred.json", PREDS)
    with pytest.raises(DataFormatError, match="cannot read dataset file .*absent.json"):
        evaluate_files(tmp_path / "absent.json", pred)


# ---------------------------------------------------------------------------------------------
# equivalence with the vendored official script
# ---------------------------------------------------------------------------------------------


@needs_official
def test_vendored_official_script_is_unmodified() -> None:
    text = OFFICIAL.read_text(encoding="utf-8")
    body = text[text.index('"""Official evaluation script for SQuAD version 2.0.') :]
    assert hashlib.sha256(body.encode("utf-8")).hexdigest() == OFFICIAL_BODY_SHA256


def load_official_module():
    spec = importlib.util.spec_from_file_location("evaluate_v2_official", OFFICIAL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_official
def test_answer_functions_match_official_module() -> None:
    official = load_official_module()
    rng = random.Random(3)
    pieces = WORDS + ["", " ", "The", "AN", "a.", "--", "\u00e9t\u00e9", "\t", "\u00abthe\u00bb", "x\u2014an\u2014y"]
    for _ in range(3000):
        gold = " ".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        pred = " ".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        assert normalize_answer(pred) == official.normalize_answer(pred)
        assert compute_exact(gold, pred) == official.compute_exact(gold, pred)
        ours, theirs = compute_f1(gold, pred), official.compute_f1(gold, pred)
        assert ours == theirs and type(ours) is type(theirs), (gold, pred)


def run_official(tmp_path: Path, data: Path, pred: Path, na: Path | None = None, thresh: float | None = None):
    out = tmp_path / f"official-{len(list(tmp_path.iterdir()))}.json"
    cmd = [sys.executable, str(OFFICIAL), str(data), str(pred), "--out-file", str(out)]
    if na is not None:
        cmd += ["--na-prob-file", str(na)]
    if thresh is not None:
        cmd += ["--na-prob-thresh", repr(thresh)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        return proc
    return json.loads(out.read_text())


WORDS = (
    "the a an river city north empire king war 1066 Paris red blue green seven "
    "council church, bridge. museum (tower) dog's year-long Brönte über 42 1,000 and of"
).split()


def synthetic(seed: int = 7, n_paragraphs: int = 12):
    """A random SQuAD 2.0 dataset plus predictions hitting every scoring path."""
    rng = random.Random(seed)
    articles, preds, na = [], {}, {}
    qid = 0
    for p in range(n_paragraphs):
        context = " ".join(rng.choice(WORDS) for _ in range(40))
        toks = context.split()
        qas = []
        for _ in range(6):
            qid += 1
            key = f"s{qid:04d}"
            if rng.random() < 0.4:
                qas.append(qa(key))
                gold = []
            else:
                golds = []
                for _ in range(rng.randint(1, 3)):
                    i = rng.randrange(len(toks))
                    golds.append(" ".join(toks[i : i + rng.randint(1, 5)]))
                qas.append(qa(key, *golds))
                gold = golds
            kind = rng.randrange(7)
            if kind == 0 and gold:
                preds[key] = gold[0]
            elif kind == 1 and gold:
                preds[key] = "The " + gold[-1].upper() + "!"
            elif kind == 2:
                i = rng.randrange(len(toks))
                preds[key] = " ".join(toks[i : i + rng.randint(1, 6)])
            elif kind == 3:
                preds[key] = ""
            elif kind == 4:
                preds[key] = rng.choice(["the", ".", "a an"])  # normalises to ""
            else:
                preds[key] = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 4)))
            na[key] = round(rng.random(), 1)  # one decimal: many ties
        articles.append({"title": f"A{p // 4}", "paragraphs": [{"context": context, "qas": qas}]})
    preds["not-a-question"] = "extra"
    na["not-a-question"] = 0.5
    # shuffle the na file's key order so ties are broken by something other than dataset order
    items = list(na.items())
    rng.shuffle(items)
    return articles, preds, dict(items)


@needs_official
@pytest.mark.parametrize("seed", [7, 8])
def test_matches_official_script_bit_for_bit(tmp_path: Path, seed: int) -> None:
    articles, preds, na = synthetic(seed)
    data = write_json(tmp_path / "data.json", {"version": "v2.0", "data": articles})
    pred = write_json(tmp_path / "pred.json", preds)
    na_file = write_json(tmp_path / "na.json", na)
    for na_arg, thresh in [(None, None), (na_file, None), (na_file, 0.5), (None, -1.0)]:
        official = run_official(tmp_path, data, pred, na_arg, thresh)
        assert isinstance(official, dict), official.stderr
        ours = evaluate_files(data, pred, na_arg, 1.0 if thresh is None else thresh).metrics
        assert list(ours) == list(official), (na_arg, thresh)
        for key in official:
            assert ours[key] == official[key], (key, na_arg, thresh)  # exact, not approx
    # the synthetic data really exercises partial credit and both splits
    m = evaluate(articles, preds, na).metrics
    assert 0 < m["HasAns_f1"] < 100 and 0 < m["NoAns_exact"] < 100
    assert m["f1"] != m["exact"]


@needs_official
def test_missing_predictions_official_crashes_port_matches_filtered(tmp_path: Path) -> None:
    articles, preds, na = synthetic(9)
    kept = {k: v for i, (k, v) in enumerate(preds.items()) if i % 3}
    data = write_json(tmp_path / "data.json", {"data": articles})
    pred = write_json(tmp_path / "pred.json", kept)
    na_file = write_json(tmp_path / "na.json", na)
    # The official script prints "Missing prediction for ..." and then dies with KeyError in the
    # HasAns/NoAns breakdown: it never outputs numbers for partial predictions.
    crashed = run_official(tmp_path, data, pred, na_file)
    assert not isinstance(crashed, dict)
    assert "KeyError" in crashed.stderr and "Missing prediction for" in crashed.stdout

    ours = evaluate_files(data, pred, na_file)
    all_ids = [q["id"] for a in articles for p in a["paragraphs"] for q in p["qas"]]
    assert ours.missing_ids == [k for k in all_ids if k not in kept]
    assert len(ours.missing_ids) > 10
    # Defined behaviour: identical to the official script on the dataset restricted to the
    # questions that have a prediction.
    missing = set(ours.missing_ids)
    filtered = [
        {**a, "paragraphs": [{**p, "qas": [q for q in p["qas"] if q["id"] not in missing]} for p in a["paragraphs"]]}
        for a in articles
    ]
    data_f = write_json(tmp_path / "filtered.json", {"data": filtered})
    official = run_official(tmp_path, data_f, pred, na_file)
    assert isinstance(official, dict), official.stderr
    assert ours.metrics == official and list(ours.metrics) == list(official)
