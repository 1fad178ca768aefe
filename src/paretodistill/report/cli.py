"""The ``report``, ``analyze`` and ``export`` subcommands; heavy imports stay inside the functions."""

from __future__ import annotations

import argparse
import json


def cmd_report(args: argparse.Namespace) -> int:
    from paretodistill.report.html import build_report

    out = build_report(args.directory, args.out, args.analysis or (), args.name)
    print(f"report written to {out} ({out.stat().st_size / 1e6:.1f} MB, self-contained)")
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from paretodistill.report.analysis import analyze

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


def cmd_export(args: argparse.Namespace) -> int:
    from paretodistill.report.export import export_trial

    result = export_trial(args.directory, args.trial, args.out, stage=args.stage, name=args.name, onnx=args.onnx,
                          overwrite=args.force, atol=args.atol, int8=args.int8, data_file=args.data)
    print(f"exported {result['stage']} trial {result['trial']} to {result['out']}: {', '.join(result['files'])}")
    if result.get("onnx"):
        print(f"ONNX logits match PyTorch within {result['onnx']['max_abs_diff']:.2e}")
    for name, row in (result.get("variants") or {}).items():
        print(f"{name}: {row['file']} {row['size_mb']:.1f} MB, test exact {row.get('exact', '-')}, "
              f"f1 {row.get('f1', '-')}, {row['latency_ms']:.2f} ms (batch 1)")
    for warning in result.get("warnings", []):
        print(f"WARNING: {warning}")
    return 0


def register(commands) -> None:
    report = commands.add_parser("report", help="a self-contained HTML report of a study directory")
    report.add_argument("directory", help="the study directory (study.db, pareto.json)")
    report.add_argument("--out", default="report.html", help="the HTML file to write (default report.html)")
    report.add_argument("--name", help="which search, when study.db holds several")
    report.add_argument("--analysis", action="append",
                        help="an analysis folder or analysis.json to include (repeatable; default: DIR/analysis/*/)")
    report.set_defaults(run=cmd_report)

    analyze = commands.add_parser("analyze", help="error analysis of a student's answers (four error categories)")
    source = analyze.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="a QA checkpoint folder to run")
    source.add_argument("--predictions", help="or an existing predictions.json (question id -> answer, \"\" = none)")
    analyze.add_argument("--data", required=True, help="the SQuAD file the questions come from")
    analyze.add_argument("--part", choices=("all", "train", "validation", "test"), default="all")
    analyze.add_argument("--split", help="split.json (default: the model folder's split.json)")
    analyze.add_argument("--threshold", type=float, help="no-answer threshold (default: the model's metrics.json na_threshold)")
    analyze.add_argument("--out", help="folder for analysis.json, analysis.html and the predictions")
    analyze.add_argument("--examples", type=int, default=6, help="examples shown per category")
    analyze.add_argument("--eval-batch-size", type=int, default=64)
    analyze.add_argument("--cache-dir")
    analyze.set_defaults(run=cmd_analyze)

    export = commands.add_parser("export", help="copy a trial's checkpoint with a model card (and optionally ONNX)")
    export.add_argument("directory", help="the study directory")
    export.add_argument("--trial", type=int, required=True, help="trial number within the stage")
    export.add_argument("--stage", default="regular", choices=("flash", "regular"))
    export.add_argument("--out", required=True)
    export.add_argument("--name", help="which search, when study.db holds several")
    export.add_argument("--onnx", action="store_true", help="also write model.onnx, checked against PyTorch")
    export.add_argument("--atol", type=float, default=1e-4, help="ONNX logit tolerance")
    export.add_argument("--int8", action="store_true",
                        help="also write model.int8.onnx (dynamic int8) and measure it against model.onnx (implies --onnx)")
    export.add_argument("--data", help="--int8: the SQuAD file of the split (default: the split's source file)")
    export.add_argument("--force", action="store_true", help="replace a non-empty --out folder")
    export.set_defaults(run=cmd_export)
