"""What early stopping would have saved on a study's real learning curves, and what it would have lost.

Replays :mod:`paretodistill.search.early_stop` on the completed trials of one stage, from a study
(``--table URL --study NAME``) or a table file (``--table FILE.json``, from ``sampler_replay.py --export``):

    python benchmarks/early_stop_replay.py --table sqlite:///runs/search-cpu/study.db --study cpu-regular
    python benchmarks/early_stop_replay.py --table table.json --safety 2 --floor 1 --min-curves 5 --top-k 8

The trials are replayed one after another in the order of their numbers (a search with several
workers finished them in about that order). Each trial's curve points before its last step are shown
to the rule with what had finished before it and was not stopped: those trials' objective values
and curves. The objectives other than the learning one (``--metric``, default the first) are taken
as known from the start: right for ``num_parameters``; for ``latency_ms`` it assumes latency is
measured before training, which a trial does not do today.

The curve figure is ``best_<metric>`` when the curves record it (``best_exact``: exact at the best
no-answer threshold, at least the exact the final scoring reports for the same weights, so the
figure errs towards keeping a trial), else ``<metric>``; ``--curve-key`` chooses another.

Saved: a stopped trial's training seconds times the fraction of its steps not run, and the steps
themselves. The seconds are the training loop's process CPU time (``train_cpu_seconds``) when every
completed trial recorded it, else its wall time (``train_seconds``); the report names the clock.
Steps are the figure to quote when only wall time is recorded and the trials shared their cores with
other runs (their seconds then measure the load as much as the trial). The evaluation passes a stopped trial would have
run after that point are saved as well but not counted, so both are lower bounds. Lost: the front
trials that were stopped, the hypervolume of the kept trials' front in % of the whole stage's (the
reference point ``sampler_replay.py`` uses), and with ``--top-k K`` whether the K flash candidates
(``stages.select_candidates``) stay the same.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling benchmark, for its table and hypervolume

from paretodistill.config import DEFAULT_OBJECTIVES  # noqa: E402
from paretodistill.errors import ConfigError  # noqa: E402
from paretodistill.search.early_stop import StopRule, curve_key, decide, default_floor, progress_points  # noqa: E402
from paretodistill.search.objectives import ObjectiveSet  # noqa: E402
from paretodistill.search.results import feasible_trials, frontier, stored_trials  # noqa: E402
from paretodistill.search.stages import stop_evidence  # noqa: E402  (what the search judges a flash trial by)
from sampler_replay import hypervolume, load_source, reference_point  # noqa: E402

__all__ = ["curve_key", "progress_points"]  # the search's own definitions, used here and by the tests


def replay_stopping(trials: list, objectives: ObjectiveSet, metric: str, key: str, rule: StopRule) -> dict:
    """Which completed trials the rule stops, where, and the training seconds and steps that saves."""
    complete = sorted((t for t in stored_trials(trials, objectives) if t.complete), key=lambda t: t.number)
    position = objectives.metric_names.index(metric)
    clock = training_clock(complete)
    kept, stopped, saved, total, saved_steps, total_steps = [], [], 0.0, 0.0, 0.0, 0.0
    for t in complete:
        values = t.objective_values
        known = {m: v for m, v in zip(objectives.metric_names, values) if m != metric}
        seconds = float(t.metrics.get(clock) or 0.0)
        steps = float(t.metrics.get("train_steps") or 0.0)
        total, total_steps = total + seconds, total_steps + steps
        evidence = stop_evidence(kept, objectives, rule, learning=metric, key=key)
        for progress, figure in [point for point in progress_points(t, key) if point[0] < 1.0]:
            decision = decide(objectives, metric, figure, progress, known, evidence.completed, evidence.curves, rule)
            if decision.stop:
                stopped.append({"trial": t, "progress": progress, "figure": figure, "final": values[position],
                                "saved_s": seconds * (1.0 - progress), "reason": decision.reason})
                saved += seconds * (1.0 - progress)
                saved_steps += steps * (1.0 - progress)
                break
        else:
            kept.append(t)
    return {"complete": complete, "kept": kept, "stopped": stopped, "saved_s": saved, "train_s": total,
            "saved_steps": saved_steps, "train_steps": total_steps, "clock": clock}


def training_clock(trials: list) -> str:
    """``train_cpu_seconds`` when every trial recorded it (other runs on the cores do not inflate it), else ``train_seconds``."""
    recorded = [t.metrics for t in trials]
    return "train_cpu_seconds" if recorded and all("train_cpu_seconds" in m for m in recorded) else "train_seconds"


def _share(part: float, whole: float) -> str:
    return f"{100 * part / whole if whole else 0:.1f} %"


def report(outcome: dict, objectives: ObjectiveSet, top_k: int) -> str:
    complete, kept = outcome["complete"], outcome["kept"]
    whole = [t.objective_values for t in feasible_trials(complete, objectives)]
    front_numbers = {t.number for t in frontier(complete, objectives)}
    clock = "CPU" if outcome["clock"] == "train_cpu_seconds" else "wall"
    lines = [f"{len(complete)} completed trials, {len(outcome['stopped'])} stopped early; training "
             f"{outcome['train_s']:.0f} {clock} s in all, {outcome['saved_s']:.0f} s saved "
             f"({_share(outcome['saved_s'], outcome['train_s'])}); "
             f"{outcome['train_steps']:.0f} steps, {outcome['saved_steps']:.0f} saved "
             f"({_share(outcome['saved_steps'], outcome['train_steps'])})."]
    if whole:
        ref = reference_point(whole, objectives)
        kept_points = [t.objective_values for t in feasible_trials(kept, objectives)]
        best = hypervolume(whole, ref, objectives)
        lost = sorted(front_numbers - {t.number for t in kept})
        lines.append(f"Front: {len(front_numbers)} trial(s) {sorted(front_numbers)}; lost {lost or 'none'}; hypervolume "
                     f"kept {100 * hypervolume(kept_points, ref, objectives) / best if best else 100:.1f} %.")
    if top_k:
        from paretodistill.search.stages import select_candidates  # the search's own choice of candidates

        before = [t.number for t in select_candidates(complete, objectives, top_k)]
        after = [t.number for t in select_candidates(kept, objectives, top_k)]
        lines.append(f"Top {top_k} flash candidates: {before} with every trial, {after} with early stopping "
                     f"({'the same' if sorted(before) == sorted(after) else 'different'}).")
    lines += ["", f"| trial | stopped at | curve figure | its final value | on the front | training {clock} s saved |",
              "| --- | --- | --- | --- | --- | --- |"]
    for s in outcome["stopped"]:
        lines.append(f"| {s['trial'].number} | {s['progress']:.0%} | {s['figure']:.4g} | {s['final']:.4g} | "
                     f"{'yes' if s['trial'].number in front_numbers else 'no'} | {s['saved_s']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", required=True, help="storage URL of the study, or a table file (.json)")
    parser.add_argument("--study", help="with a storage URL: the stage's study (e.g. cpu-flash)")
    parser.add_argument("--metric", help="the learning objective (default: the first objective)")
    parser.add_argument("--curve-key", help="the curve's figure for it (default: best_<metric> if recorded, else <metric>)")
    parser.add_argument("--safety", type=float, default=StopRule.safety)
    parser.add_argument("--floor", type=float, help="default: the learning objective's (1 for percentages, 0.01 for the AUC)")
    parser.add_argument("--min-curves", type=int, default=StopRule.min_curves)
    parser.add_argument("--dominated-by", type=int, default=StopRule.dominated_by,
                        help="completed trials that must dominate a trial's optimistic end point (top_k keeps the candidates)")
    parser.add_argument("--top-k", type=int, default=0, help="also compare the top K flash candidates")
    parser.add_argument("--out", help="also write the report here")
    args = parser.parse_args(argv)

    trials, fields = load_source(args.table, args.study)
    objectives = ObjectiveSet.from_search({"objectives": fields.get("objectives") or list(DEFAULT_OBJECTIVES),
                                           "thresholds": fields.get("thresholds") or {}})
    trials = stored_trials(trials, objectives)
    metric = args.metric or objectives.metric_names[0]
    key = args.curve_key or curve_key(trials, metric)
    if not any(progress_points(t, key) for t in trials):
        raise SystemExit(f"no curve of the study records {key!r}: nothing to replay")
    if not any(at < 1.0 for t in trials for at, _ in progress_points(t, key)):
        raise SystemExit("no curve has a point before its trial's end (training.eval_every_steps not below the "
                         "stage's steps?): nothing could have been stopped")
    try:
        floor = args.floor if args.floor is not None else default_floor(metric)
    except ConfigError as error:
        raise SystemExit(f"--floor: {error}") from None
    rule = StopRule(args.safety, floor, args.min_curves, args.dominated_by)
    outcome = replay_stopping(trials, objectives, metric, key, rule)
    text = (f"Early stopping replayed on {args.table} / {fields.get('study')}: objectives "
            f"{objectives.describe_objectives()}, thresholds {objectives.describe_thresholds() or 'none'}; learning "
            f"objective {metric} read from the curves' {key!r}; {rule}.\n\n" + report(outcome, objectives, args.top_k))
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
