"""The int8 table of a finished search: each frontier student's float and int8 ONNX files, measured.

For every frontier student of the study (the report's frontier, ``export.int8.frontier_students``)
this runs ``export --int8`` into ``OUT/<stage>-<trial>/`` and prints one markdown row: layers x
heads, parameters, both file sizes, test exact/F1 of both files (ONNX Runtime, the split's test
part, the recorded no-answer threshold), the search's own PyTorch test figures beside them, and
batch-1 latency of both files and of the checkpoint in PyTorch. The rows also go to ``OUT/int8_table.json``, which
``paretodistill report`` draws beside the frontier. A student already exported with int8 figures
is read back, so a killed run resumes; ``--force`` measures everything again.

    python benchmarks/int8_table.py --study runs/search-cpu [--out runs/search-cpu-int8] \\
        [--data ../shared/data/squad2/dev-v2.0.json] [--threads 1]

``--out`` defaults to ``<study>-int8`` beside the study (export never writes inside it). ``--threads``
(default 1, the one-core serving case) is the latency's thread count; 0 keeps the study's setting.
Latency is only worth reading from an otherwise idle machine: the table records the load average
at the start of the run beside it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
try:
    import paretodistill  # noqa: F401
except ImportError:  # running from a checkout without installing
    sys.path.insert(0, str(REPO / "src"))

from paretodistill.errors import ParetodistillError  # noqa: E402
from paretodistill.export.int8 import build_int8_table, markdown_table  # noqa: E402
from paretodistill.report.int8_table import TABLE_FILE, default_out  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--study", required=True, help="a finished study directory (study.db, pareto.json)")
    parser.add_argument("--out", help="where the exports and int8_table.json go (default: <study>-int8 beside it)")
    parser.add_argument("--data", help="the SQuAD file of the split (default: the split's source file)")
    parser.add_argument("--threads", type=int, default=1, help="latency threads (default 1; 0: the study's setting)")
    parser.add_argument("--name", help="which search, when study.db holds several")
    parser.add_argument("--force", action="store_true", help="export and measure again what an earlier run did")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out = Path(args.out) if args.out else default_out(args.study)
    try:
        table = build_int8_table(args.study, out, data_file=args.data, threads=args.threads or None, name=args.name,
                                 force=args.force, log=lambda message: print(message, file=sys.stderr, flush=True))
    except ParetodistillError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(markdown_table(table))
    print(f"\nrows written to {out / TABLE_FILE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
