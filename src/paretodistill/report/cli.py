"""The ``report`` subcommand; heavy imports stay inside the function."""

from __future__ import annotations

import argparse

from paretodistill.options import add_study, study_folder


def cmd_report(args: argparse.Namespace) -> int:
    from paretodistill.report.html import build_report

    out = build_report(study_folder(args), args.out, args.analysis or (), args.name, args.int8_table)
    print(f"report written to {out} ({out.stat().st_size / 1e6:.1f} MB, self-contained)")
    return 0


def register(commands) -> None:
    report = commands.add_parser("report", help="a self-contained HTML report of a study directory",
                                 epilog="example: paretodistill report --study runs/search-cpu --out runs/search-cpu/report.html")
    add_study(report, "the study folder (study.db, pareto.json)", positional_alias=True)
    report.add_argument("--out", default="report.html",
                        help="the HTML file to write (default report.html); never the study itself or a file that is not HTML")
    report.add_argument("--name", help="which search, when study.db holds several (default: the only one)")
    report.add_argument("--analysis", action="append",
                        help="an analysis folder or analysis.json to include (repeatable; default: DIR/analysis/*/)")
    report.add_argument("--int8-table", help="int8_table.json of benchmarks/int8_table.py: the frontier students' int8 "
                        "variants beside them (default: DIR-int8/int8_table.json, when there is one)")
    report.set_defaults(run=cmd_report)
