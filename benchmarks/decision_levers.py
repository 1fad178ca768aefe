"""The no-answer decision levers at equal compute, and shorter windows as a latency lever.

The students are limited by the decision whether to answer, not by span finding (docs/results.md,
the distillation ablation). Two modes, one student: the ablation's 3 x 12 (``benchmarks/configs/ablation.toml``)
at 38,400 training windows (2,400 steps of 16, 10 % warm-up) on the default split.

* **levers** (default): the default recipe, ``+ no_answer_weight`` (``distillation.no_answer_weight``:
  no-answer windows weigh more in the hard and soft losses), ``+ margin_weight``
  (``distillation.margin_weight``: the teacher's null-score margin as a target) and both; every variant
  sees the same windows. Each run is ``run_trial`` scored on validation and, at the threshold chosen
  there, on the test articles. The table: test F1 and HasAns F1 at that threshold, test NoAns exact,
  the validation no-answer AUC (threshold-free), validation span F1 and the training seconds.
* **windows** (``--max-seq-length 256,192``): the default variant's trained student (``--windows-seed``)
  deployed with shorter windows and a stride scaled alike (128 of 384: a third), its threshold chosen
  again on validation at that length: test F1 against batch-1 latency at that length (the config's
  ``[latency]`` settings, ``--threads``), beside the trained length. ``--student FOLDER`` does the same
  for any trained trial folder (a search's frontier trial), and runs no lever.

Resumable: a run whose folder holds ``metrics.json`` is not run again; ``--table`` prints what has finished.

    python benchmarks/decision_levers.py --out $PARETODISTILL_CACHE/decision-levers --workers 2 --seeds 1,2
    python benchmarks/decision_levers.py --out $PARETODISTILL_CACHE/decision-levers --max-seq-length 256,192 --threads 1
    python benchmarks/decision_levers.py --out $PARETODISTILL_CACHE/windows-best --student STUDY/trials/regular-N \\
        --max-seq-length 192,128 --threads 1   # the windows lever on any trained student, e.g. a search's
    python benchmarks/decision_levers.py --out $PARETODISTILL_CACHE/levers-smoke --preset smoke --seeds 1 --set training.max_steps=4 \\
        --max-seq-length 96                      # the whole thing in a minute, on a tiny random teacher
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
try:
    import paretodistill  # noqa: F401
except ImportError:  # running from a checkout without installing
    sys.path.insert(0, str(REPO / "src"))

from ablation import run_one, slug  # noqa: E402  (benchmarks/ is the script's folder: on sys.path)

ABLATION_CONFIG = REPO / "benchmarks" / "configs" / "ablation.toml"
SMOKE_DATA = REPO.parent / "shared" / "data" / "squad2" / "dev-v2.0.json"
BUDGET = ["training.max_steps=2400", "training.warmup_steps=240"]  # 38,400 windows at batch 16
DEFAULT = "default recipe"


def variants(no_answer_weight: float, margin_weight: float) -> dict[str, list[str]]:
    """The four arms, each a list of ``--set`` overrides on the common ground."""
    weight, margin = f"distillation.no_answer_weight={no_answer_weight}", f"distillation.margin_weight={margin_weight}"
    return {
        DEFAULT: [],
        f"+ no_answer_weight {no_answer_weight:g}": [weight],
        f"+ margin_weight {margin_weight:g}": [margin],
        f"+ both ({no_answer_weight:g}, {margin_weight:g})": [weight, margin],
    }


def base_values(preset: str | None, config: str, cache_dir: str | None) -> tuple[dict, list[str]]:
    """(config values, the budget's overrides): the ablation's config at 38,400 windows, or the smoke preset as it is."""
    from paretodistill.config import load_config
    from paretodistill.distill.presets import smoke_values

    if preset == "smoke":
        return smoke_values(str(SMOKE_DATA), cache_dir=cache_dir), []
    return load_config(config).to_dict(), BUDGET


def levers_table(out: Path, names: list[str], seeds: list[int]) -> str:
    """Markdown: one row per variant, means over the seeds that finished (spread: max - min of test F1)."""
    header = ("| variant | seeds | test F1 (spread) | F1 over floor | test HasAns F1 | test NoAns exact | "
              "no-answer AUC (val) | span F1 (val) | val F1 | train s |")
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for name in names:
        records = [json.loads(p.read_text()) for seed in seeds
                   if (p := out / slug(name) / f"seed-{seed}" / "metrics.json").exists()]
        if not records:
            continue
        tests = [r["test"] for r in records]
        f1s = [t["f1"] for t in tests]
        floor = statistics.fmean(100.0 * t["NoAns_total"] / t["total"] for t in tests)

        def mean(key: str, rows=records) -> float:
            return statistics.fmean(row[key] for row in rows)

        lines.append(
            f"| {name} | {len(records)} | {statistics.fmean(f1s):.2f} ({max(f1s) - min(f1s):.2f}) | "
            f"{statistics.fmean(f1s) - floor:+.2f} | {mean('HasAns_f1', tests):.2f} | {mean('NoAns_exact', tests):.2f} | "
            f"{mean('no_answer_auc'):.3f} | {mean('span_f1'):.2f} | {mean('f1'):.2f} | {mean('train_seconds'):.0f} |"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------- the windows lever
def window_row(folder: Path, length: int, threads: int | None) -> dict:
    """The trained student of ``folder`` deployed with ``length``-token windows: its test figures at
    the threshold chosen on validation at that length, and its batch-1 latency at that length."""
    import torch

    from paretodistill.config import ExperimentConfig, FeatureSettings, build_section
    from paretodistill.data.prepare import prepare_data
    from paretodistill.distill.run import configured_latency
    from paretodistill.evaluation.inference import evaluate_model, predict_logits, score_answers
    from paretodistill.evaluation.postprocess import extract_answers
    from paretodistill.evaluation.signals import no_answer_auc
    from paretodistill.hardware.device import supports_fast_bf16
    from paretodistill.models.loading import load_qa_model, load_tokenizer

    record = json.loads((folder / "metrics.json").read_text())
    config = build_section(ExperimentConfig, record["config"])
    trained = config.data.features
    features = FeatureSettings(length, max(1, round(trained.doc_stride * length / trained.max_seq_length)),
                               min(trained.max_query_length, length // 2))
    # validation and test at the new length; a single training question, which is not used
    data_settings = dataclasses.replace(config.data, features=features, max_train_questions=1, extra_train_files=(),
                                        split_train_repeats=1, synthetic_unanswerable_fraction=0.0,
                                        hard_unanswerable_fraction=0.0, use_split_train=True)
    if threads:
        torch.set_num_threads(threads)
    checkpoint = folder / record.get("checkpoint", "checkpoint")
    tokenizer, model = load_tokenizer(checkpoint), load_qa_model(checkpoint).eval()
    data = prepare_data(data_settings, tokenizer, config.cache_dir, log=lambda _: None)
    bf16 = supports_fast_bf16(torch.device("cpu"))
    answers = extract_answers(data.validation.examples, data.validation_features,
                              *predict_logits(model, data.validation_features, config.training.eval_batch_size, bf16))
    validation = score_answers(data.validation, answers, threshold=None)
    test = evaluate_model(model, data.test, data.test_features, config.training.eval_batch_size, bf16,
                          threshold=validation.threshold).metrics
    timing = dataclasses.replace(config.latency, enabled=True, sequence_length=length, threads=threads or config.latency.threads)
    latency = configured_latency(model, dataclasses.replace(config, latency=timing))
    return {"max_seq_length": length, "doc_stride": features.doc_stride, "test_windows": len(data.test_features),
            "test_questions": len(data.test.examples),
            "test_f1": test["f1"], "test_HasAns_f1": test["HasAns_f1"], "test_NoAns_exact": test["NoAns_exact"],
            "no_answer_auc": no_answer_auc(data.validation, answers), "threshold": validation.threshold,
            "latency_ms": latency["median_ms"], "latency": latency}


def windows_table(rows: list[dict]) -> str:
    """Markdown: one row per window length, F1 and latency against the trained length (the first row).

    Shorter windows cut a long context into more of them: ``ms per question`` is the batch-1 latency
    times the test windows per test question, what a question costs when its windows run one by one."""
    reference = rows[0]
    lines = ["| windows (stride) | test windows | test F1 | F1 change | test HasAns F1 | test NoAns exact | "
             "no-answer AUC (val) | latency ms (batch 1) | latency / trained length | ms per question |",
             "|" + "---|" * 10]
    for row in rows:
        per_question = row["latency_ms"] * row["test_windows"] / row["test_questions"]
        lines.append(
            f"| {row['max_seq_length']} ({row['doc_stride']}) | {row['test_windows']} | {row['test_f1']:.2f} | "
            f"{row['test_f1'] - reference['test_f1']:+.2f} | {row['test_HasAns_f1']:.2f} | {row['test_NoAns_exact']:.2f} | "
            f"{row['no_answer_auc']:.3f} | {row['latency_ms']:.2f} | {row['latency_ms'] / reference['latency_ms']:.2f} | "
            f"{per_question:.2f} |"
        )
    return "\n".join(lines)


def windows_mode(folder: Path, rows_file: Path, lengths: list[int], threads: int | None) -> str:
    """The student trained in ``folder`` at its own length and at each shorter one; rows kept in ``rows_file``."""
    if not (folder / "metrics.json").exists():
        raise SystemExit(f"{folder}: no metrics.json: not a finished run (run the levers first, or name a trial folder)")
    trained = json.loads((folder / "metrics.json").read_text())["config"]["data"]["features"]["max_seq_length"]
    longer = [length for length in lengths if length >= trained]
    if longer:
        raise SystemExit(f"--max-seq-length {longer}: not shorter than the {trained} tokens the student was trained on")
    rows = [window_row(folder, length, threads) for length in [trained, *lengths]]
    rows_file.parent.mkdir(parents=True, exist_ok=True)
    rows_file.write_text(json.dumps(rows, indent=1) + "\n")
    return windows_table(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="one folder per variant and seed (resumable)")
    parser.add_argument("--config", default=str(ABLATION_CONFIG))
    parser.add_argument("--preset", choices=("smoke",), help="smoke: the smoke preset's tiny teacher and data instead")
    parser.add_argument("--seeds", default="1,2")
    parser.add_argument("--workers", type=int, default=1, help="runs at once (cores are shared between them)")
    parser.add_argument("--no-answer-weight", type=float, default=2.0)
    parser.add_argument("--margin-weight", type=float, default=0.1)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="applied to every variant")
    parser.add_argument("--max-seq-length", help="windows mode: comma-separated shorter window lengths, e.g. 256,192")
    parser.add_argument("--windows-seed", type=int, help="windows mode: the default variant's seed (default: the first)")
    parser.add_argument("--student", help="windows mode on this trained trial folder (its metrics.json and checkpoint), "
                                          "e.g. a search's frontier trial, instead of the default variant; no lever runs")
    parser.add_argument("--threads", type=int, help="threads per run (default: the cores / workers); windows mode: latency threads")
    parser.add_argument("--table", action="store_true", help="only print the table of what has finished")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    arms = variants(args.no_answer_weight, args.margin_weight)
    names, out = list(arms), Path(args.out)
    out = Path(args.out)
    if args.student:
        if not args.max_seq_length:
            raise SystemExit("--student: give the shorter lengths with --max-seq-length, e.g. 192,128")
        lengths = [int(x) for x in args.max_seq_length.split(",")]
        windows = windows_mode(Path(args.student), out / "windows-student.json", lengths, args.threads)
        (out / "windows-student.md").write_text(windows + "\n")
        print(windows)
        return 0
    if not args.table:
        base, budget = base_values(args.preset, args.config, os.environ.get("PARETODISTILL_CACHE"))
        runs = [(name, seed) for seed in seeds for name in names
                if not (out / slug(name) / f"seed-{seed}" / "metrics.json").exists()]
        threads = args.threads or max(1, (os.cpu_count() or 1) // args.workers)
        print(f"{len(runs)} run(s) to do, {args.workers} at once, {threads} thread(s) each", flush=True)
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            futures = [pool.submit(run_one, base, [*budget, *args.set, *arms[name]], seed,
                                   str(out / slug(name) / f"seed-{seed}"), threads) for name, seed in runs]
            for future in futures:
                print(future.result(), flush=True)
    table = levers_table(out, names, seeds)
    (out / "decision_levers.md").parent.mkdir(parents=True, exist_ok=True)
    (out / "decision_levers.md").write_text(table + "\n")
    print(table)
    if args.max_seq_length and not args.table:
        lengths = [int(x) for x in args.max_seq_length.split(",")]
        seed = args.windows_seed or seeds[0]
        windows = windows_mode(out / slug(names[0]) / f"seed-{seed}", out / f"windows-seed-{seed}.json", lengths, args.threads)
        (out / "windows.md").write_text(windows + "\n")
        print(windows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
