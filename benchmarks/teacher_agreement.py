"""How much a teacher's soft targets say beyond the gold labels: its agreement with gold, seen and unseen data.

Distillation helps when the teacher's distribution carries information the labels do not. On
windows the teacher was trained on it may have memorized the labels; then its soft targets are
little more than smoothed labels. This prints, for the training windows of a distillation run and
for the validation windows, how often the teacher's most likely start/end token is the gold one
and, at temperature T, the mean probability it gives the gold start, the mean top probability and
the mean entropy of the start distribution. Teacher logits come from (and go into) the cache, so
re-running costs little.

    python benchmarks/teacher_agreement.py --teacher $PARETODISTILL_CACHE/teacher-minilm-v3 --max-train-questions 3000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
try:
    import paretodistill  # noqa: F401
except ImportError:  # running from a checkout without installing
    sys.path.insert(0, str(REPO / "src"))

from paretodistill.config import DataSettings  # noqa: E402
from paretodistill.data.prepare import prepare_data  # noqa: E402
from paretodistill.distill.teacher_cache import cached_teacher_logits  # noqa: E402
from paretodistill.hardware.device import pick_device, supports_fast_bf16  # noqa: E402
from paretodistill.models.loading import load_qa_model, load_tokenizer  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "squad2" / "dev-v2.0.json"


def agreement(logits, features, temperature: float) -> dict:
    """Per-window comparison of the teacher's start/end logits with the gold positions."""
    start, end = np.asarray(logits.start, dtype=np.float64), np.asarray(logits.end, dtype=np.float64)
    rows = np.asarray(features.row_starts)
    start_hits = end_hits = 0
    gold_probability, top_probability, entropy = [], [], []
    for i in range(len(rows) - 1):
        s, e = start[rows[i]:rows[i + 1]], end[rows[i]:rows[i + 1]]
        gold_start, gold_end = int(features.start_positions[i]), int(features.end_positions[i])
        start_hits += int(s.argmax() == gold_start)
        end_hits += int(e.argmax() == gold_end)
        p = np.exp((s - s.max()) / temperature)
        p /= p.sum()
        gold_probability.append(p[gold_start])
        top_probability.append(p.max())
        entropy.append(float(-(p * np.log(p + 1e-30)).sum()))
    n = len(rows) - 1
    return {"windows": n, "start_argmax_is_gold": start_hits / n, "end_argmax_is_gold": end_hits / n,
            "mean_p_gold_start": float(np.mean(gold_probability)), "mean_top_p": float(np.mean(top_probability)),
            "mean_entropy_nats": float(np.mean(entropy))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", required=True, help="teacher QA checkpoint folder")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="SQuAD 2.0 file split by article (seed 13)")
    parser.add_argument("--max-train-questions", type=int, help="the first N training questions, as in the run")
    parser.add_argument("--temperature", type=float, default=2.0)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--cache-dir")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device("auto")
    data = prepare_data(DataSettings(split_file=args.data, max_train_questions=args.max_train_questions),
                        load_tokenizer(args.teacher), args.cache_dir, log=lambda message: None)
    teacher = load_qa_model(args.teacher).to(device).eval()
    print(f"teacher {args.teacher}, T = {args.temperature}, split seed 13 (train / validation articles)")
    print("| windows | count | start argmax = gold | end argmax = gold | mean p(gold start) | mean top p | mean entropy |")
    print("|---|---|---|---|---|---|---|")
    for name, features in (("train", data.train_features), ("validation", data.validation_features)):
        logits = cached_teacher_logits(teacher, features, args.cache_dir, teacher_dir=args.teacher, batch_size=64,
                                       bf16=supports_fast_bf16(device), log=lambda message: None)
        r = agreement(logits, features, args.temperature)
        print(f"| {name} | {r['windows']} | {r['start_argmax_is_gold']:.1%} | {r['end_argmax_is_gold']:.1%} | "
              f"{r['mean_p_gold_start']:.3f} | {r['mean_top_p']:.3f} | {r['mean_entropy_nats']:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
