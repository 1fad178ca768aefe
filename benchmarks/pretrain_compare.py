"""Task-agnostic then task-specific distillation against task-specific alone, at equal total CPU time.

Three arms per seed, one student (the config's ``[student]``; by default the ablation's 3 x 12):

* ``pretrain + distill``: ``pretrain-distill`` on the SQuAD 1.1 paragraphs (``--pretrain-steps``,
  ``--head-steps``), then ``distill`` from that folder for the config's steps;
* ``pretrain without soft MLM + distill``: the same with ``pretrain.soft_weight=0`` and no head fit
  (the soft-MLM ablation: this teacher's last layer keeps little lexical information);
* ``distill only, equal time``: ``distill`` from the teacher's layers for as many steps as the first
  arm's total time (pretraining plus follow-up training) buys at the follow-up's measured seconds per step.
  Time is the runs' CPU time (``pretrain_cpu_seconds``, ``train_cpu_seconds``), which a run sharing
  its cores with others does not inflate; runs recorded before CPU time was are compared on wall time,
  and the table says which clock each row used.

Every figure is the test articles at the threshold chosen on validation. Resumable: a finished run
(``pretrain.json``, ``metrics.json``) is not run again.

    python benchmarks/pretrain_compare.py --out $PARETODISTILL_CACHE/pretrain-compare --seeds 1,2 --workers 2
    python benchmarks/pretrain_compare.py --out $PARETODISTILL_CACHE/pretrain-compare --table
"""

from __future__ import annotations

import argparse
import contextlib
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

PRETRAINED = "pretrain + distill"
NO_SOFT_MLM = "pretrain without soft MLM + distill"
EQUAL_TIME = "distill only, equal time"
ARMS = {PRETRAINED: "pretrained", NO_SOFT_MLM: "pretrained-no-soft-mlm", EQUAL_TIME: "distill-only"}
NO_SOFT_MLM_SETTINGS = ["pretrain.soft_weight=0.0", "pretrain.head_steps=0"]


def pretrain_one(config_path: str, overrides: list[str], out_dir: str) -> str:
    """One ``pretrain-distill`` run in its own process; returns its folder."""
    from paretodistill.config import load_config
    from paretodistill.recipes.pretrain_distill import pretrain_distill

    Path(out_dir).mkdir(parents=True, exist_ok=True)
    with (Path(out_dir) / "log.txt").open("a") as log:
        pretrain_distill(load_config(config_path, overrides), out_dir, log=lambda m: print(m, file=log, flush=True))
    return out_dir


def distill_one(config_path: str, overrides: list[str], out_dir: str) -> str:
    """One ``distill`` run (scored on test too) in its own process; returns its folder and status."""
    from paretodistill.config import load_config
    from paretodistill.distill.run import run_trial

    Path(out_dir).mkdir(parents=True, exist_ok=True)
    with (Path(out_dir) / "log.txt").open("a") as log:
        result = run_trial(load_config(config_path, overrides), {}, trial_dir=out_dir, evaluate_test=True,
                           log=lambda m: print(m, file=log, flush=True))
    return f"{out_dir}: {'ok' if result.ok else result.failure_reason}"


def default_text(config_path: str) -> list[str]:
    """The CLI's default text (the SQuAD 1.1 paragraphs) when the config names none."""
    from paretodistill.config import load_config
    from paretodistill.recipes.cli import DEFAULT_TEXT_FILES

    if load_config(config_path).pretrain.text_files:
        return []
    return ["pretrain.text_files=[" + ", ".join(f'"{REPO / path}"' for path in DEFAULT_TEXT_FILES) + "]"]


def equal_time_steps(pretrain_seconds: float, follow_train_seconds: float, follow_steps: int) -> int:
    """Steps of task-specific training that take the pretrained arm's whole time, at its follow-up's pace."""
    return max(1, round((pretrain_seconds + follow_train_seconds) / (follow_train_seconds / follow_steps)))


def arm_seconds(pretrained: dict | None, metrics: dict) -> tuple[float, float, str]:
    """(pretraining, follow-up training) seconds of one arm and which clock: CPU time when both runs
    recorded it (runs that shared the cores with others are then still compared fairly), else wall time."""
    pretrain_cpu = 0.0 if pretrained is None else pretrained.get("pretrain_cpu_seconds")
    if pretrain_cpu is not None and metrics.get("train_cpu_seconds") is not None:
        return pretrain_cpu, metrics["train_cpu_seconds"], "CPU"
    return (0.0 if pretrained is None else pretrained["pretrain_seconds"]), metrics["train_seconds"], "wall"


def _json(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def _run_all(pool, jobs: list) -> None:
    """Run ``(function, *args)`` jobs in the pool, or one after another here when there is none."""
    if pool is None:
        for function, *arguments in jobs:
            print(function(*arguments), flush=True)
        return
    for future in [pool.submit(*job) for job in jobs]:
        print(future.result(), flush=True)


def run(args, seeds: list[int]) -> None:
    out = Path(args.out)
    threads = max(1, (os.cpu_count() or 1) // args.workers)
    common = [f"threads={threads}", *([f"data.split_file=\"{args.data}\""] if args.data else []), *args.set]  # --set wins
    pretrain_common = [*default_text(args.config), *common, f"pretrain.training.max_steps={args.pretrain_steps}",
                       f"pretrain.head_steps={args.head_steps}"]
    # one worker: runs in this process (a forked pool child of a process that already ran torch can hang)
    with ProcessPoolExecutor(max_workers=args.workers) if args.workers > 1 else contextlib.nullcontext() as pool:
        _run_all(pool, [
            (pretrain_one, args.config, [*pretrain_common, f"pretrain.training.seed={seed}", *extra],
             str(out / ARMS[arm] / f"seed-{seed}" / "pretrain"))
            for seed in seeds for arm, extra in ((PRETRAINED, []), (NO_SOFT_MLM, NO_SOFT_MLM_SETTINGS))
            if not (out / ARMS[arm] / f"seed-{seed}" / "pretrain" / "pretrain.json").exists()])
        _run_all(pool, [
            (distill_one, args.config, [*common, f"training.seed={seed}",
                                        f"student.init_from=\"{out / ARMS[arm] / f'seed-{seed}' / 'pretrain'}\""],
             str(out / ARMS[arm] / f"seed-{seed}" / "distill"))
            for seed in seeds for arm in (PRETRAINED, NO_SOFT_MLM)
            if not (out / ARMS[arm] / f"seed-{seed}" / "distill" / "metrics.json").exists()])
        jobs = []
        for seed in seeds:
            if (out / ARMS[EQUAL_TIME] / f"seed-{seed}" / "metrics.json").exists():
                continue
            pretrained = _json(out / ARMS[PRETRAINED] / f"seed-{seed}" / "pretrain" / "pretrain.json")
            follow = _json(out / ARMS[PRETRAINED] / f"seed-{seed}" / "distill" / "metrics.json")
            if not pretrained or not follow or "train_seconds" not in follow:
                print(f"seed {seed}: the pretrained arm did not finish; no equal-time run", flush=True)
                continue
            steps = equal_time_steps(*arm_seconds(pretrained, follow)[:2], follow["training"]["steps"])
            jobs.append((distill_one, args.config, [*common, f"training.seed={seed}", f"training.max_steps={steps}"],
                         str(out / ARMS[EQUAL_TIME] / f"seed-{seed}")))
        _run_all(pool, jobs)


def table(out: Path, seeds: list[int]) -> str:
    """Markdown: one row per arm, mean over the seeds that finished."""
    lines = ["| arm | seeds | seconds (pretrain + distill) | steps | test exact | test F1 (spread) | HasAns F1 | "
             "NoAns exact | val F1 |", "|---|---|---|---|---|---|---|---|---|"]
    for arm, folder in ARMS.items():
        rows = []
        for seed in seeds:
            base = out / folder / f"seed-{seed}"
            metrics = _json(base / "metrics.json") if arm == EQUAL_TIME else _json(base / "distill" / "metrics.json")
            if not metrics or "test" not in metrics:
                continue
            pretrained = None if arm == EQUAL_TIME else _json(base / "pretrain" / "pretrain.json")
            rows.append((arm_seconds(pretrained, metrics), metrics))
        if not rows:
            continue
        mean = statistics.fmean
        f1s = [m["test"]["f1"] for _, m in rows]
        clocks = "/".join(sorted({clock for (_, _, clock), _ in rows}))
        lines.append(
            f"| {arm} | {len(rows)} | {mean([p for (p, _, _), _ in rows]):.0f} + {mean([t for (_, t, _), _ in rows]):.0f}"
            f" ({clocks})"
            f" | {mean([m['training']['steps'] for _, m in rows]):.0f} | {mean([m['test']['exact'] for _, m in rows]):.2f}"
            f" | {mean(f1s):.2f} ({max(f1s) - min(f1s):.2f}) | {mean([m['test']['HasAns_f1'] for _, m in rows]):.2f}"
            f" | {mean([m['test']['NoAns_exact'] for _, m in rows]):.2f} | {mean([m['f1'] for _, m in rows]):.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "benchmarks" / "configs" / "ablation.toml"))
    parser.add_argument("--out", required=True, help="one folder per arm and seed (resumable)")
    parser.add_argument("--data", help="SQuAD 2.0 file to split (default: the config's data.split_file)")
    parser.add_argument("--seeds", default="1,2")
    parser.add_argument("--workers", type=int, default=2, help="runs at once (cores are shared between them)")
    parser.add_argument("--pretrain-steps", type=int, default=200, help="pretrain-distill steps (of 32 sequences)")
    parser.add_argument("--head-steps", type=int, default=50, help="steps fitting the teacher's MLM head")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="applied to every run (e.g. student.num_layers=2, training.max_steps=24)")
    parser.add_argument("--table", action="store_true", help="only print the table of what has finished")
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    if not args.table:
        run(args, seeds)
    print(table(Path(args.out), seeds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
