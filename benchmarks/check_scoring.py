"""Check that paretodistill's SQuAD scorer gives the official script's numbers on the real dev set.

Builds several kinds of prediction files for the full SQuAD 2.0 dev set (all empty, perfect,
mixed right/wrong/partial/empty, partial coverage), each without and with no-answer probability
files (seeded random, and correlated with answerability), scores them with the vendored official
script (tests/reference/evaluate_v2_official.py, run as a subprocess) and with
``paretodistill.evaluation.squad_metric.evaluate_files``, and prints a markdown table.
Exits with status 1 if any key or value differs or a hand-worked check fails.

    PYTHONPATH=src python benchmarks/check_scoring.py [--data ../shared/data/squad2/dev-v2.0.json]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import io
import json
import os
import random
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OFFICIAL = REPO / "tests" / "reference" / "evaluate_v2_official.py"
DEFAULT_DATA = REPO / ".." / "shared" / "data" / "squad2" / "dev-v2.0.json"

try:
    from paretodistill.evaluation.squad_metric import evaluate_files, per_question_scores
except ImportError:  # running from a checkout without installing
    sys.path.insert(0, str(REPO / "src"))
    from paretodistill.evaluation.squad_metric import evaluate_files, per_question_scores


def questions(articles: list[dict]) -> list[tuple[str, list[str], str]]:
    """(id, gold texts, context) per question in dataset order; no gold texts = unanswerable."""
    out = []
    for article in articles:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                out.append((qa["id"], [a["text"] for a in qa["answers"]], paragraph["context"]))
    return out


def random_span(rng: random.Random, text: str, max_tokens: int = 6) -> str:
    toks = text.split()
    i = rng.randrange(len(toks))
    return " ".join(toks[i : i + rng.randint(1, max_tokens)])


def mixed_prediction(rng: random.Random, golds: list[str], context: str) -> str:
    """Right, right-but-differently-written, partial overlap, wrong or empty, by a seeded draw."""
    r = rng.random()
    if not golds:  # unanswerable
        if r < 0.5:
            return ""
        if r < 0.9:
            return random_span(rng, context)
        return rng.choice(["the", ".", "An"])  # non-empty strings that normalise to ""
    gold = rng.choice(golds)
    toks = gold.split()
    if r < 0.30:
        return gold
    if r < 0.40:
        return "The " + gold.upper() + "."
    if r < 0.60 and len(toks) > 1:  # cut from the gold answer
        return " ".join(toks[1:]) if rng.random() < 0.5 else " ".join(toks[:-1])
    if r < 0.70:  # gold plus a few context words: partial precision
        start = context.find(gold)
        if start >= 0:
            extra = context[start + len(gold) :].split()[: rng.randint(1, 4)]
            return " ".join([gold, *extra])
    if r < 0.85:
        return random_span(rng, context)
    return ""


def build_predictions(qs, kind: str, seed: int) -> dict[str, str]:
    rng = random.Random(f"{kind}-{seed}")
    if kind == "empty":
        return {qid: "" for qid, _, _ in qs}
    if kind == "perfect":
        return {qid: (golds[0] if golds else "") for qid, golds, _ in qs}
    mixed = {qid: mixed_prediction(rng, golds, ctx) for qid, golds, ctx in qs}
    if kind == "mixed":
        mixed["not-a-dev-question-1"] = "extra prediction"  # unknown ids are ignored
        return mixed
    if kind == "partial":  # about 70 % of the questions predicted
        return {qid: text for qid, text in mixed.items() if rng.random() < 0.7}
    raise ValueError(kind)


def build_na_probs(qs, preds: dict[str, str], kind: str, seed: int) -> dict[str, float]:
    rng = random.Random(f"na-{kind}-{seed}")
    golds = {qid: g for qid, g, _ in qs}
    out = {}
    for qid in preds:
        if kind == "random":
            p = round(rng.random(), 2)  # two decimals: many ties
        else:  # correlated: unanswerable questions (and empty predictions) get high probabilities
            no_answer = not golds.get(qid) or not preds[qid]
            p = round(rng.uniform(0.4, 1.0) if no_answer else rng.uniform(0.0, 0.7), 3)
        out[qid] = p
    items = list(out.items())
    rng.shuffle(items)  # file order decides ties in the official best-threshold scan
    return dict(items)


def run_official(data: Path, pred: Path, na: Path | None, thresh: float, out: Path):
    cmd = [sys.executable, str(OFFICIAL), str(data), str(pred), "--out-file", str(out)]
    if na is not None:
        cmd += ["--na-prob-file", str(na)]
    if thresh != 1.0:
        cmd += ["--na-prob-thresh", repr(thresh)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["?"])[-1]
        return None, last
    return json.loads(out.read_text()), None


def load_official_module():
    spec = importlib.util.spec_from_file_location("evaluate_v2_official", OFFICIAL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def per_question_equal(official_mod, articles, preds, na_probs, thresh) -> bool:
    """Same (exact, f1) per question, value and type, as the official functions give.

    Totals can hide a one-ulp difference in a single question; this cannot.
    """
    with contextlib.redirect_stdout(io.StringIO()):  # "Missing prediction for ..." lines
        exact_raw, f1_raw = official_mod.get_raw_scores(articles, preds)
    has_ans = official_mod.make_qid_to_has_ans(articles)
    na = na_probs if na_probs is not None else {k: 0.0 for k in preds}
    exact = official_mod.apply_no_ans_threshold(exact_raw, na, has_ans, thresh)
    f1 = official_mod.apply_no_ans_threshold(f1_raw, na, has_ans, thresh)
    theirs = {qid: (exact[qid], f1[qid]) for qid in exact}
    ours = per_question_scores(articles, preds, na_probs, thresh)
    return list(ours) == list(theirs) and all(
        ours[k] == theirs[k] and [type(v) for v in ours[k]] == [type(v) for v in theirs[k]]
        for k in theirs
    )


def compare(ours: dict, official: dict) -> tuple[bool, float]:
    equal = list(ours) == list(official) and all(ours[k] == official[k] for k in official)
    diffs = [abs(ours[k] - official[k]) for k in official if k in ours]
    return equal, max(diffs) if diffs else float("nan")


def fmt(x) -> str:
    return "-" if x is None else f"{x:.4f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="SQuAD 2.0 dev JSON")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    data_path = args.data.resolve()
    raw = data_path.read_bytes()
    articles = json.loads(raw)["data"]
    qs = questions(articles)
    n_no = sum(1 for _, g, _ in qs if not g)
    ok = True

    print("## SQuAD scoring: paretodistill port vs. official evaluate-v2.0.py\n")
    print(f"Reproduce: `PYTHONPATH=src {shlex.join(['python', 'benchmarks/check_scoring.py', *sys.argv[1:]])}`\n")
    print(
        f"Dataset: `{os.path.relpath(data_path, REPO)}` (sha256 {hashlib.sha256(raw).hexdigest()[:16]}..., "
        f"{len(qs)} questions, {len(qs) - n_no} answerable, {n_no} unanswerable); "
        f"seed {args.seed}; Python {sys.version.split()[0]}.\n"
    )
    print(
        "'keys equal' means same keys in the same order and every value identical (==, not a "
        "tolerance). For *partial* the official script crashes (KeyError in the HasAns/NoAns "
        "breakdown after printing 'Missing prediction for ...'), so the port is compared with the "
        "official script run on the dev set restricted to the predicted questions.\n"
    )
    print("| kind | na-prob | thresh | official run on | keys equal | max abs diff | per-question equal "
          "| exact | f1 | best_f1 | official s | port s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    official_mod = load_official_module()

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cases = [(k, na, 1.0) for k in ("empty", "perfect", "mixed", "partial") for na in (None, "random", "correlated")]
        cases.append(("mixed", "random", 0.5))
        cases.append(("mixed", "correlated", 0.6))
        for i, (kind, na_kind, thresh) in enumerate(cases):
            preds = build_predictions(qs, kind, args.seed)
            pred_file = tmp / f"pred-{kind}.json"
            pred_file.write_text(json.dumps(preds))
            na_file = na_probs = None
            if na_kind:
                na_probs = build_na_probs(qs, preds, na_kind, args.seed)
                na_file = tmp / f"na-{kind}-{na_kind}.json"
                na_file.write_text(json.dumps(na_probs))

            ref_data, ran_on = data_path, "full dev set"
            if kind == "partial":
                official, err = run_official(data_path, pred_file, na_file, thresh, tmp / f"crash{i}.json")
                if official is not None or "KeyError" not in (err or ""):
                    print(f"\nUNEXPECTED: official script did not fail on partial predictions: {err}")
                    ok = False
                filtered = [
                    {**a, "paragraphs": [{**p, "qas": [q for q in p["qas"] if q["id"] in preds]} for p in a["paragraphs"]]}
                    for a in articles
                ]
                ref_data = tmp / "dev-filtered.json"
                ref_data.write_text(json.dumps({"version": "v2.0", "data": filtered}))
                ran_on = "predicted subset (full: KeyError)"

            t0 = time.perf_counter()
            official, err = run_official(ref_data, pred_file, na_file, thresh, tmp / f"official{i}.json")
            t_official = time.perf_counter() - t0
            t0 = time.perf_counter()
            result = evaluate_files(data_path, pred_file, na_file, thresh)
            t_port = time.perf_counter() - t0
            ours = result.metrics
            if official is None:
                print(f"| {kind} | {na_kind or 'no'} | {thresh} | official failed: {err} | False | - | - | - | - | - | - | - |")
                ok = False
                continue
            equal, max_diff = compare(ours, official)
            per_q = per_question_equal(official_mod, articles, preds, na_probs, thresh)
            ok &= equal and per_q
            if kind == "partial" and not result.missing_ids:
                ok = False
            results[(kind, na_kind, thresh)] = ours
            print(
                f"| {kind} | {na_kind or 'no'} | {thresh} | {ran_on} | {equal} | {max_diff:.3g} | "
                f"{per_q} | {fmt(ours['exact'])} | {fmt(ours['f1'])} | {fmt(ours.get('best_f1'))} | "
                f"{t_official:.2f} | {t_port:.2f} |"
            )

    print("\nHand-worked checks on the full dev set:\n")
    no_frac = 100 * n_no / len(qs)
    empty = results.get(("empty", None, 1.0), {})
    perfect = results.get(("perfect", None, 1.0), {})
    checks = [
        (f"all-empty: exact == f1 == 100*{n_no}/{len(qs)} = {no_frac:.6f}",
         empty.get("exact") == empty.get("f1") == no_frac),
        ("all-empty: HasAns_exact == HasAns_f1 == 0, NoAns_exact == 100",
         empty.get("HasAns_exact") == empty.get("HasAns_f1") == 0 and empty.get("NoAns_exact") == 100),
        ("perfect: exact == f1 == 100 (HasAns and NoAns too)",
         all(perfect.get(k) == 100 for k in ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1"))),
        (f"totals: total == {len(qs)}, HasAns_total == {len(qs) - n_no}, NoAns_total == {n_no}",
         (perfect.get("total"), perfect.get("HasAns_total"), perfect.get("NoAns_total")) == (len(qs), len(qs) - n_no, n_no)),
    ]
    for text, passed in checks:
        print(f"- {'PASS' if passed else 'FAIL'}: {text}")
        ok &= bool(passed)
    print(f"\nOverall: {'all equal' if ok else 'MISMATCH'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
