"""Package a trained teacher for the repository: bf16 weights, re-scored, with its model card.

    python scripts/package_teacher.py $PARETODISTILL_CACHE/teacher-minilm-v4 teachers/minilm-l6-squad2 \\
        [--data ../shared/data/squad2/dev-v2.0.json] [--command "the paretodistill teacher command"]

The card's command defaults to the one recorded in docs/results.md for the shipped teacher.
"""

from __future__ import annotations

import argparse
import sys

from paretodistill.recipes.shipped_teacher import package_teacher

RUN4_COMMAND = """paretodistill teacher --data ../shared/data/squad2/dev-v2.0.json \\
  --train ../shared/data/squad2/train-v2.0-first10articles.json \\
  --train ../shared/data/squad1/train-v1.1.explorer-rebuilt.json.gz \\
  --max-extra-articles 100 --synthetic-unanswerable-fraction 0.5 --split-train-repeats 2 \\
  --epochs 1 --batch-size 32 --lr 1e-4 --warmup-steps 150 --eval-every-steps 500 --threads 2 \\
  --out $PARETODISTILL_CACHE/teacher-minilm-v4"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trained", help="a folder `paretodistill teacher` wrote")
    parser.add_argument("out", help="the folder to write (replaced)")
    parser.add_argument("--data", default="../shared/data/squad2/dev-v2.0.json", help="the split's SQuAD file")
    parser.add_argument("--command", default=RUN4_COMMAND, help="the command that trained it, for the card")
    parser.add_argument("--cache-dir", help="feature cache (default $PARETODISTILL_CACHE)")
    args = parser.parse_args(argv)
    package_teacher(args.trained, args.out, args.command, args.data, args.cache_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
