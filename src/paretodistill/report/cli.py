"""The ``report`` and ``export`` subcommands; heavy imports stay inside the functions."""

from __future__ import annotations

import argparse


def cmd_report(args: argparse.Namespace) -> int:
    from paretodistill.report.html import build_report

    out = build_report(args.directory, args.out, args.analysis or (), args.name, args.int8_table)
    print(f"report written to {out} ({out.stat().st_size / 1e6:.1f} MB, self-contained)")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from paretodistill.report.export import export_trial

    result = export_trial(args.directory, args.trial, args.out, stage=args.stage, name=args.name, onnx=args.onnx,
                          overwrite=args.force, atol=args.atol, int8=args.int8, data_file=args.data,
                          trust_remote_code=args.trust_remote_code, threads=args.threads)
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
    report = commands.add_parser("report", help="a self-contained HTML report of a study directory",
                                 epilog="example: paretodistill report runs/search-cpu --out runs/search-cpu/report.html")
    report.add_argument("directory", help="the study directory (study.db, pareto.json)")
    report.add_argument("--out", default="report.html",
                        help="the HTML file to write (default report.html); never the study itself or a file that is not HTML")
    report.add_argument("--name", help="which search, when study.db holds several (default: the only one)")
    report.add_argument("--analysis", action="append",
                        help="an analysis folder or analysis.json to include (repeatable; default: DIR/analysis/*/)")
    report.add_argument("--int8-table", help="int8_table.json of benchmarks/int8_table.py: the frontier students' int8 "
                        "variants beside them (default: DIR-int8/int8_table.json, when there is one)")
    report.set_defaults(run=cmd_report)

    export = commands.add_parser("export", help="copy a trial's checkpoint with a model card (and optionally ONNX)",
                                 epilog="example: paretodistill export runs/search-cpu --trial 3 --out exported/student-3")
    export.add_argument("directory", help="the study directory")
    export.add_argument("--trial", type=int, required=True, help="trial number within the stage")
    export.add_argument("--stage", default="regular", choices=("flash", "regular"), help="the stage --trial numbers")
    export.add_argument("--out", required=True, help="the export folder (never the study or the trial's checkpoint)")
    export.add_argument("--name", help="which search, when study.db holds several")
    export.add_argument("--onnx", action="store_true", help="also write model.onnx, checked against PyTorch")
    export.add_argument("--atol", type=float, default=1e-4, help="ONNX logit tolerance")
    export.add_argument("--int8", action="store_true",
                        help="also write model.int8.onnx (dynamic int8) and measure it against model.onnx (implies --onnx)")
    export.add_argument("--data", help="--int8: the SQuAD file of the split (default: the split's source file)")
    export.add_argument("--threads", type=int,
                        help="--int8: time both ONNX files on this many threads (default: the study's latency settings)")
    export.add_argument("--force", action="store_true",
                        help="replace an earlier export at --out (a folder holding export.json; nothing else is ever deleted)")
    export.add_argument("--trust-remote-code", action="store_true",
                        help="ship and run Python files found in the checkpoint (auto_map); off by default: a pruned "
                        "student gets the installed model code. Only for a checkpoint whose code you have read")
    export.set_defaults(run=cmd_export)
