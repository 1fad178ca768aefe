"""The distillation ablation: one lever at a time, same windows seen, 2 seeds, scored on test.

Each variant is a list of ``--set`` overrides on top of ``benchmarks/configs/ablation.toml`` (the 2020
baseline's 3 x 12 architecture seeded from the shipped teacher, the same ``max_steps`` x batch for
every variant). Every run is ``run_trial`` with ``evaluate_test=True``: the no-answer threshold is
chosen on the validation articles and the test articles are scored at it. A run whose folder
holds a ``metrics.json`` is not run again, so the command resumes after a kill; ``--table``
prints the markdown table of whatever has finished (mean over seeds, with the spread).

    python benchmarks/ablation.py --config benchmarks/configs/ablation.toml --out $PARETODISTILL_CACHE/ablation \\
        [--variants hard,soft,...] [--seeds 1,2] [--workers 2] [--set key=value ...] [--table]

Layer-wise variants run the teacher forward at every step, so at equal windows they cost more
time: the table shows each run's training seconds next to its figures.
"""

from __future__ import annotations

import argparse
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

SQUAD1_TRAIN = "../shared/data/squad1/train-v1.1.explorer-rebuilt.json.gz"
SQUAD2_TRAIN10 = "../shared/data/squad2/train-v2.0-first10articles.json"
TEACHER_DATA = [  # the shipped teacher's own training data (its card), at the same sample seed; 20 extra
    # articles rather than its 100, so that the teacher labels about as many windows as a run sees
    f'data.extra_train_files=["{SQUAD2_TRAIN10}", "{SQUAD1_TRAIN}"]', "data.max_extra_articles=20",
    "data.synthetic_unanswerable_fraction=0.5", "data.split_train_repeats=2",
]

VARIANTS: dict[str, list[str]] = {
    "hard only": ["distillation.soft_weight=0.0", "distillation.hard_weight=1.0"],
    "soft only": ["distillation.soft_weight=1.0", "distillation.hard_weight=0.0"],
    "soft + hard": [],
    "+ hidden states": ["distillation.hidden_weight=1.0"],
    "+ attention": ["distillation.attention_weight=1.0"],
    "+ hidden, progressive": ["distillation.hidden_weight=1.0", "distillation.progressive=true"],
    "transfer: teacher's own data": TEACHER_DATA,
    "transfer: unseen articles": [*TEACHER_DATA, "data.unseen_by_teacher=true"],
    "layers 0,1,2 (bottom)": ["student.layer_selection=\"bottom\""],
    "layers 0,2,5 (ends)": ["student.layer_selection=\"ends\""],
    "hard only, layers 0,2,5 (ends)": ["distillation.soft_weight=0.0", "distillation.hard_weight=1.0",
                                       "student.layer_selection=\"ends\""],
    "lr 5e-5": ["training.learning_rate=5e-5"],
    "lr 3e-4": ["training.learning_rate=3e-4"],
    "T 4": ["distillation.temperature=4.0"],
    # what the regular trials of the real search shared (docs/results.md#the-real-search): soft weight 1 with
    # a little hard, T 1, QA-head dropout at the space's top
    "soft 1 + hard 0.4, T 1, QA dropout 0.3": [
        "distillation.soft_weight=1.0", "distillation.hard_weight=0.4", "distillation.temperature=1.0",
        "student.qa_dropout=0.3",
    ],
    # students under the baseline's 17.24M: which pruning still learns at this budget (the real searches'
    # small students stayed at the floor, docs/results.md#the-real-search)
    "FFN 768 (15.47M)": ["student.intermediate_size=768"],
    "9 heads (16.80M)": ["student.heads_per_layer=9"],
    "2 layers (15.47M)": ["student.num_layers=2"],
    # the same cuts keeping the teacher's most important heads and neurons (models/importance.py)
    "FFN 768, importance (15.47M)": ["student.intermediate_size=768", "student.pruning=\"importance\""],
    "9 heads, importance (16.80M)": ["student.heads_per_layer=9", "student.pruning=\"importance\""],
    "6 heads + FFN 768, importance (14.58M)": ["student.heads_per_layer=6", "student.intermediate_size=768",
                                               "student.pruning=\"importance\""],
    # the package's training defaults before the recipe (lr 5e-5, batch 32, no warm-up), at the
    # base config's 4,800 windows (150 steps of 32)
    "old defaults: lr 5e-5, batch 32, no warm-up": [
        "training.learning_rate=5e-5", "training.train_batch_size=32", "training.warmup_steps=0",
        "training.max_steps=150",
    ],
}


def parse_variants(text: str) -> list[str]:
    """Comma-separated variant names; a name that itself holds commas is matched whole, the longest
    known name first ("hard only, layers 0,2,5 (ends)" before "hard only")."""
    pieces, names, start = text.split(","), [], 0
    while start < len(pieces):
        for end in range(len(pieces), start, -1):
            if (candidate := ",".join(pieces[start:end]).strip()) in VARIANTS:
                names.append(candidate)
                start = end
                break
        else:  # unknown: reported by the caller
            names.append(pieces[start].strip())
            start += 1
    return names


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name).strip("-").replace("--", "-")


def run_one(config: str | dict, overrides: list[str], seed: int, trial_dir: str, threads: int) -> str:
    """One run in its own process, scored on validation and test; returns its folder and status.

    ``config``: a TOML file, or config values (the other benchmarks build theirs).
    """
    from paretodistill.config import load_config
    from paretodistill.distill.run import run_trial

    path, base = (None, config) if isinstance(config, dict) else (config, None)
    config = load_config(path, [f"threads={threads}", *overrides, f"training.seed={seed}"], base=base)  # --set threads= wins
    Path(trial_dir).mkdir(parents=True, exist_ok=True)
    with (Path(trial_dir) / "log.txt").open("a") as log:
        result = run_trial(config, {}, trial_dir=trial_dir, evaluate_test=True,
                           log=lambda message: print(message, file=log, flush=True))
    return f"{trial_dir}: {'ok' if result.ok else result.failure_reason}"


def table(out: Path, variants: list[str], seeds: list[int]) -> str:
    """Markdown: one row per variant, mean over the seeds that finished (spread = max - min of test F1)."""
    header = ("| variant | seeds | test exact | test F1 (spread) | F1 over floor | HasAns F1 | NoAns exact | "
              "val F1 | span F1 | no-answer AUC | teacher KL | train s |")
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for name in variants:
        records = [json.loads(p.read_text()) for seed in seeds
                   if (p := out / slug(name) / f"seed-{seed}" / "metrics.json").exists()]
        if not records:
            continue
        tests = [r["test"] for r in records]
        f1s = [t["f1"] for t in tests]
        floor = [100.0 * t["NoAns_total"] / t["total"] for t in tests]

        def mean(values):
            return statistics.fmean(values)

        lines.append(
            f"| {name} | {len(records)} | {mean([t['exact'] for t in tests]):.2f} | {mean(f1s):.2f} "
            f"({max(f1s) - min(f1s):.2f}) | {mean(f1s) - mean(floor):+.2f} | {mean([t['HasAns_f1'] for t in tests]):.2f} | "
            f"{mean([t['NoAns_exact'] for t in tests]):.2f} | {mean([r['f1'] for r in records]):.2f} | "
            f"{mean([r['span_f1'] for r in records]):.2f} | {mean([r['no_answer_auc'] for r in records]):.3f} | "
            f"{mean([r['teacher_kl'] for r in records]):.3f} | {mean([r['train_seconds'] for r in records]):.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "benchmarks" / "configs" / "ablation.toml"))
    parser.add_argument("--out", required=True, help="one folder per variant and seed (resumable)")
    parser.add_argument("--variants", help=f"comma-separated, default all: {', '.join(VARIANTS)}")
    parser.add_argument("--seeds", default="1,2")
    parser.add_argument("--workers", type=int, default=1, help="runs at once (cores are shared between them)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="applied to every variant (e.g. training.max_steps=24 for a dry run)")
    parser.add_argument("--table", action="store_true", help="only print the table of what has finished")
    args = parser.parse_args(argv)
    names = parse_variants(args.variants) if args.variants else list(VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant(s) {unknown}; known: {list(VARIANTS)}")
    seeds = [int(s) for s in args.seeds.split(",")]
    out = Path(args.out)
    if not args.table:
        runs = [(name, seed) for seed in seeds for name in names
                if not (out / slug(name) / f"seed-{seed}" / "metrics.json").exists()]
        threads = max(1, (os.cpu_count() or 1) // args.workers)
        print(f"{len(runs)} run(s) to do, {args.workers} at once, {threads} thread(s) each", flush=True)
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            futures = [pool.submit(run_one, args.config, [*args.set, *VARIANTS[name]], seed,
                                   str(out / slug(name) / f"seed-{seed}"), threads) for name, seed in runs]
            for future in futures:
                print(future.result(), flush=True)
    print(table(out, names, seeds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
