"""The ``analyze`` subcommand; the recipe (and torch) is imported only when it runs, so that
``paretodistill --help`` stays instant."""

from __future__ import annotations

import argparse
import json


def cmd_analyze(args: argparse.Namespace) -> int:
    from paretodistill.recipes.analyze import analyze

    analysis = analyze(
        args.data, model_dir=args.model, predictions_file=args.predictions, part=args.part, split_file=args.split,
        threshold=args.threshold, out_dir=args.out, batch_size=args.eval_batch_size, cache_dir=args.cache_dir,
        examples_per_category=args.examples,
    )
    counts = analysis["counts"]
    summary = {k: counts[k] for k in ("questions", "correct", "errors", *analysis["categories"])}
    print(json.dumps(summary, indent=2))
    if args.out:
        print(f"analysis written to {args.out}/analysis.json and {args.out}/analysis.html")
    return 0


def register(commands) -> None:
    analyze = commands.add_parser(
        "analyze", help="error analysis of a student's answers (four error categories)",
        epilog="example: paretodistill analyze --model runs/search-cpu/trials/regular-0/checkpoint "
               "--data ../shared/data/squad2/dev-v2.0.json --part test --out runs/search-cpu/analysis/regular-0",
    )
    source = analyze.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="a QA checkpoint folder to run")
    source.add_argument("--predictions", help="or an existing predictions.json (question id -> answer, \"\" = none)")
    analyze.add_argument("--data", required=True, help="the SQuAD file the questions come from")
    analyze.add_argument("--part", choices=("all", "train", "validation", "test"), default="all",
                         help="which part of the article split to analyse (default: all, the whole file)")
    analyze.add_argument("--split", help="split.json (default: the model folder's split.json)")
    analyze.add_argument("--threshold", type=float, help="no-answer threshold (default: the model's metrics.json na_threshold)")
    analyze.add_argument("--out", help="folder for analysis.json, analysis.html and the predictions (default: print only)")
    analyze.add_argument("--examples", type=int, default=6, help="examples shown per category (default: 6)")
    analyze.add_argument("--eval-batch-size", type=int, default=64, help="questions per forward pass (default: 64)")
    analyze.add_argument("--cache-dir", help="feature cache (default: $PARETODISTILL_CACHE, else ~/.cache/paretodistill)")
    analyze.set_defaults(run=cmd_analyze)
