"""How many trials does each sampler need? Replay GP, TPE and random sampling against a table.

The table is an Optuna study of real trial results over a discretized space: ideally every grid
point (benchmarks/configs/table-grid.toml runs all 128 with the "grid" sampler), else a random subset. Each
replayed trial asks the sampler (wrapped exactly as the search wraps it: failures teach it,
repeats are moved), looks the proposal up in the table and tells the sampler that point's result,
failures included. A proposal the table lacks is answered by the nearest table point in the
distributions' own scales (the output says how many were: none on a complete table). Same budget
and seeds for every sampler; the score is the hypervolume of the feasible front found so far,
relative to the front of the whole table, with a fixed reference point (the table's worst
feasible values, pushed out by 1 % of the range).

    python benchmarks/sampler_replay.py --table sqlite:///runs/table-grid/study.db --study table-grid-flash
    python benchmarks/sampler_replay.py --table table-grid.json                # a table file (--export)
    python benchmarks/sampler_replay.py --synthetic --budget 30 --seeds 2        # dry run

Prints a markdown table: hypervolume (%) after N trials, mean over seeds, and the trials needed
to reach 90 % of the table's hypervolume (median over all seeds; one that never got there counts as
more than the budget), the failed trials hit and the proposals the wrapper moved because they repeated
an earlier trial (on a small grid that is most of TPE's proposals after its startup trials: what it
then runs is a random neighbour of the point it proposed).

With a baseline, also AutoDistill's measure: the trials needed until 3 students better than the
baseline have been found (``--better-count``; median over seeds, counted the same way). Better means
feasible and strictly better on every objective; a student found twice (two proposals answered by
the same nearest table point) counts once. The baseline is ``--baseline exact=52.63,num_parameters=17.24e6``,
else the metrics of the search's ``<name>-baseline`` study when the table's storage has one (or the
table file carries them). That student ran the regular budget: a flash table's students are
compared with a better-trained reference, so the count is a strict one.

``--export FILE.json`` writes the table as a small file anyone can replay
(:mod:`paretodistill.search.table_file`: parameters, values, constraints, metrics, curves, failures;
no weights), and ``--table FILE.json`` replays one. ``tpe-multivariate`` names the search's TPE,
which is multivariate already (``study.make_sampler``); ``tpe-univariate`` is Optuna's TPE with one
model per parameter (replay only); ``tpe-gp`` is TPE until ``--gp-after`` trials have finished, then GP;
``nsga2-N`` is NSGA-II with a population of N (replay only: the search's keeps Optuna's 50, which is one
random generation within these budgets); ``gp-window-N`` is the search's ``gp-window`` with ``search.gp_window = N``
(GP fitted on at most N finished trials: the feasible front and the latest).
"""

from __future__ import annotations

import argparse
import copy
import itertools
import math
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from paretodistill.config import DEFAULT_OBJECTIVES, SearchSettings
from paretodistill.errors import ConfigError, StudyError
from paretodistill.search import optuna_adapter
from paretodistill.search.objectives import MetricError, ObjectiveSet, better_in_every, hypervolume_2d
from paretodistill.search.results import StoredTrial
from paretodistill.search.samplers import (
    FailureAwareSampler,
    SamplerStudyView,
    grid_values,
    make_sampler,
    space_point_key,
    tpe_sampler,
)
from paretodistill.search.storage import open_checked_storage
from paretodistill.search.study import record_result
from paretodistill.search.table_file import is_table_file, read_table, stored_baseline, study_fields, table_of, write_table
from paretodistill.trial import TrialResult

optuna.logging.set_verbosity(optuna.logging.ERROR)

# Replay names for the search's samplers: the search's "tpe" is multivariate (with a constant liar) already.
SAMPLER_ALIASES = {"tpe-multivariate": "tpe"}


def replay_sampler(kind: str, seed: int, startup: int, gp_after: int) -> FailureAwareSampler:
    """A search sampler by name, or ``tpe-univariate`` (replay only: Optuna's TPE with one model per
    parameter, the comparison for the search's multivariate one), wrapped as the search wraps them."""
    if kind == "tpe-univariate":
        return FailureAwareSampler(tpe_sampler(seed, startup, multivariate=False), seed=seed)
    if kind.startswith("gp-window-"):  # gp-window-24: GP fitted on at most 24 finished trials (search.gp_window)
        return make_sampler("gp-window", seed, startup, gp_window=_suffix_number(kind, 1))
    if kind.startswith("nsga2-"):  # nsga2-8: NSGA-II with a population of 8 (the search's has Optuna's 50)
        return FailureAwareSampler(optuna.samplers.NSGAIISampler(seed=seed, population_size=_population(kind)),
                                   seed=seed)
    return make_sampler(SAMPLER_ALIASES.get(kind, kind), seed, startup, gp_after=gp_after)


def _population(kind: str) -> int:
    try:
        size = int(kind.split("-", 1)[1])
    except ValueError:
        size = 0
    if size < 2:
        raise ConfigError(f"sampler {kind!r}: nsga2-N needs a population N of at least 2, e.g. nsga2-8")
    return size


def _suffix_number(kind: str, least: int) -> int:
    try:
        number = int(kind.rsplit("-", 1)[1])
    except ValueError:
        number = 0
    if number < least:
        raise ConfigError(f"sampler {kind!r}: expected a number of at least {least} at its end, e.g. gp-window-24")
    return number


# ---------------------------------------------------------------- the table
def _numeric(choices) -> bool:
    """Two or more numbers (not booleans): choices with an order a sampler could use."""
    return len(choices) > 1 and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in choices)


class Table:
    """Results by grid point, with nearest-point lookup in normalized parameter space."""

    def __init__(self, trials: list, distributions: dict, objectives: ObjectiveSet):
        self.distributions = distributions
        self.names = sorted(distributions)
        self.objectives = objectives
        self.rows = []  # (unit coordinates, params, TrialResult)
        for t in (StoredTrial.of(t) for t in trials):
            if t.state not in (TrialState.COMPLETE, TrialState.FAIL) or t.interrupted:
                continue
            if set(t.params) != set(distributions):
                continue
            if t.state == TrialState.COMPLETE:
                metrics = dict(t.metrics or dict(zip(objectives.metric_names, t.values)))
                result = TrialResult("ok", dict(t.params), metrics=metrics)
            else:
                failure = t.failure
                result = TrialResult.failed(dict(t.params), failure.kind if failure else "error",
                                            (failure.reason if failure else None) or "failed in the table")
            self.rows.append((self._unit(t.params), dict(t.params), result))
        if not self.rows:
            raise SystemExit("the table has no finished trials with the table's parameters")
        self.exact = {space_point_key(params, distributions): result for _, params, result in self.rows}

    def grid_size(self) -> int | None:
        """Points of the whole discretized space (None when a parameter is continuous)."""
        try:
            return math.prod(len(grid_values(name, d)) for name, d in self.distributions.items())
        except ConfigError:
            return None

    def _unit(self, params: dict) -> tuple:
        """Coordinates in [0, 1]: numbers (numeric choices by their rank) scaled to their range; other choices as labels."""
        coords = []
        for name in self.names:
            d, v = self.distributions[name], params[name]
            if isinstance(d, CategoricalDistribution):
                if _numeric(d.choices) and v in d.choices:
                    ranks = sorted(d.choices)
                    coords.append(("n", ranks.index(v) / (len(ranks) - 1)))
                else:
                    coords.append(("c", d.choices.index(v) if v in d.choices else -1))
            else:
                low, high = (math.log(d.low), math.log(d.high)) if d.log else (d.low, d.high)
                x = math.log(v) if d.log else v
                coords.append(("n", (x - low) / (high - low) if high > low else 0.0))
        return tuple(coords)

    def lookup(self, params: dict) -> tuple[TrialResult, bool]:
        """The table's result for these parameters, and whether the table holds exactly this point.

        A missing point gets the nearest one's result (squared distance in unit coordinates, a
        different label counting 1; ties go to the earlier trial)."""
        hit = self.exact.get(space_point_key(params, self.distributions))
        if hit is not None:
            return hit, True
        target = self._unit(params)

        def distance(row) -> float:
            return sum((0.0 if a[1] == b[1] else 1.0) if a[0] == "c" else (a[1] - b[1]) ** 2
                       for a, b in zip(row[0], target))

        return min(self.rows, key=distance)[2], False

    def feasible_points(self) -> list[list[float]]:
        return [self.objectives.values(r.metrics) for _, _, r in self.rows if r.ok and self.objectives.feasible(r.metrics)]


def as_ordinal(distributions: dict, log_uneven: bool = False) -> dict:
    """Evenly spaced numeric choices as stepped int / float ranges: the same grid, but ordered.

    A user declares layers, heads or a learning rate as numbers, and GP and TPE can then use that
    more layers (say) tends to mean more accuracy; as categorical labels they cannot.
    ``log_uneven``: unevenly spaced positive choices (embedding widths 64, 128, 384) as a log-scaled
    range too. That is no longer the grid: a proposal between its points gets the nearest one's result
    (in log scale), and the output counts those.
    """
    result = {}
    for name, d in distributions.items():
        choices = getattr(d, "choices", None)
        if choices and _numeric(choices):
            values = sorted(choices)
            integers = all(isinstance(c, int) for c in values)
            steps = {round(b - a, 12) for a, b in zip(values, values[1:])}
            if len(steps) == 1:
                step = steps.pop()
                if integers:
                    result[name] = IntDistribution(values[0], values[-1], step=int(step))
                else:
                    result[name] = FloatDistribution(float(values[0]), float(values[-1]), step=step)
                continue
            if log_uneven and values[0] > 0:
                result[name] = (IntDistribution(values[0], values[-1], log=True) if integers
                                else FloatDistribution(float(values[0]), float(values[-1]), log=True))
                continue
        result[name] = d
    return result


def reference_point(points: list[list[float]], objectives: ObjectiveSet) -> list[float]:
    ref = []
    for i, o in enumerate(objectives.objectives):
        column = [p[i] for p in points]
        span = (max(column) - min(column)) or 1.0
        ref.append(min(column) - 0.01 * span if o.direction == "maximize" else max(column) + 0.01 * span)
    return ref


def hypervolume(points: list[list[float]], ref: list[float], objectives: ObjectiveSet) -> float:
    if not points:
        return 0.0
    if len(ref) == 2:
        return hypervolume_2d(points, ref, objectives.directions)
    import numpy as np

    signs = np.array([-1.0 if d == "maximize" else 1.0 for d in objectives.directions])
    loss = np.array(points) * signs
    inside = np.all(loss < np.array(ref) * signs, axis=1)
    return optuna_adapter.hypervolume(loss[inside], np.array(ref) * signs) if inside.any() else 0.0


# ---------------------------------------------------------------- an experiment: milder failure values
class _MedianFailureView(SamplerStudyView):
    """The search's view of the study, except that a failed trial carries the median objective values of
    the completed ones instead of the worst (its violated ``failed`` constraint is unchanged)."""

    def sampler_trials(self, stored, use_cache: bool):
        trials = super().sampler_trials(stored, use_cache)
        failed = {t.number for t in stored if t.state == TrialState.FAIL}
        complete = [t for t in trials if t.number not in failed and t.state == TrialState.COMPLETE]
        if not complete:
            return trials
        median = [statistics.median(t.values[i] for t in complete) for i in range(len(complete[0].values))]
        result = []
        for t in trials:
            if t.number in failed and t.state == TrialState.COMPLETE:
                t = copy.copy(t)
                t.values = list(median)
            result.append(t)
        return result


class _MedianFailureSampler(FailureAwareSampler):
    def view(self, study):
        return _MedianFailureView(study, self._objectives)


# ---------------------------------------------------------------- replay
def replay(table: Table, sampler_kind: str, seed: int, budget: int, startup: int, ref: list[float],
           failure_values: str = "worst", baseline: list[float] | None = None, gp_after: int = 20) -> dict:
    """One sampler, one seed: the hypervolume after each trial and, with a ``baseline`` point, the
    trial counts at which each new student better than it was found (``better_at``)."""
    objectives = table.objectives
    study = optuna.create_study(directions=objectives.directions)
    study.sampler = replay_sampler(sampler_kind, seed, startup, gp_after)
    if failure_values == "median":
        study.sampler = _MedianFailureSampler(study.sampler.inner, seed=seed)
    study.sampler.configure(table.distributions, objectives)
    curve, feasible, failures, misses = [], [], 0, 0
    better_at, better_found = [], set()
    started = time.perf_counter()
    for number in range(1, budget + 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trial = study.ask(table.distributions)
        result, exact = table.lookup(trial.params)
        misses += not exact
        record_result(study, trial, TrialResult(result.status, dict(trial.params), metrics=dict(result.metrics),
                                                failure_kind=result.failure_kind, failure_reason=result.failure_reason),
                      objectives)
        if result.ok and objectives.feasible(result.metrics):
            point = objectives.values(result.metrics)
            feasible.append(point)
            student = space_point_key(result.params, table.distributions)
            if baseline is not None and student not in better_found and better_in_every(point, baseline, objectives.directions):
                better_found.add(student)
                better_at.append(number)
        failures += not result.ok
        curve.append(hypervolume(feasible, ref, objectives))
    return {"curve": curve, "failures": failures, "misses": misses, "better_at": better_at,
            "moved": len(study.sampler.perturbed), "seconds": time.perf_counter() - started}


# ---------------------------------------------------------------- a synthetic table (dry runs)
def synthetic_table(storage: str | None = None, name: str = "synthetic-flash") -> optuna.Study:
    """A grid of made-up flash results: exact grows with depth and heads, peaks at lr ~2e-4,
    size is a closed form, and the biggest students run out of memory."""
    distributions = {
        "num_layers": IntDistribution(1, 8),
        "heads_per_layer": CategoricalDistribution([2, 4, 6, 8, 10, 12]),
        "learning_rate": FloatDistribution(1e-5, 1e-3, log=True),
        "temperature": CategoricalDistribution([1.0, 2.0, 4.0, 8.0]),
    }
    lrs = [1e-5 * (100 ** (i / 7)) for i in range(8)]
    study = optuna.create_study(storage=storage, study_name=name, directions=["maximize", "minimize"],
                                load_if_exists=False)
    study.set_user_attr("objectives", ["exact:maximize", "num_parameters:minimize"])
    study.set_user_attr("thresholds", {"exact": ">= 40"})
    trials = []
    for layers, heads, lr, temperature in itertools.product(range(1, 9), [2, 4, 6, 8, 10, 12], lrs, [1.0, 2.0, 4.0, 8.0]):
        params = {"num_layers": layers, "heads_per_layer": heads, "learning_rate": lr, "temperature": temperature}
        wobble = math.sin(layers * 12.9898 + heads * 78.233 + lr * 1e4 + temperature) * 0.8
        exact = (20 + 6.5 * min(layers, 6) + 1.2 * heads - 7 * (math.log10(lr) + 3.7) ** 2
                 - 0.3 * (temperature - 3) ** 2 + wobble)
        size = 12e6 + layers * (4 * 384 * 32 * heads + 2 * 384 * 1536)
        if layers >= 7 and heads >= 10:
            trials.append(optuna.trial.create_trial(
                params=params, distributions=distributions, state=TrialState.FAIL,
                user_attrs={"failure_kind": "out_of_memory", "failure_reason": "synthetic"}))
        else:
            metrics = {"exact": max(0.0, exact), "num_parameters": size}
            trials.append(optuna.trial.create_trial(
                params=params, distributions=distributions, values=[metrics["exact"], size],
                user_attrs={"metrics": metrics}))
    study.add_trials(trials)
    return study


def load_source(table: str, study_name: str | None) -> tuple[list, dict]:
    """The table's trials and its fields (objectives, thresholds, baseline metrics): from a table file,
    or from the study ``study_name`` in the storage ``table`` (the baseline from its ``<name>-baseline``)."""
    if is_table_file(table):
        return read_table(table)
    if not study_name:
        raise SystemExit("--study NAME is needed with a storage URL")
    try:
        storage = open_checked_storage(table, read_only=True)
    except StudyError as error:
        raise SystemExit(f"--table: {error}") from None
    names = [s.study_name for s in storage.get_all_studies()]
    if study_name not in names:
        raise SystemExit(f"--study: no study {study_name!r} in {table} (it has: {', '.join(names) or 'none'})")
    study = optuna.load_study(study_name=study_name, storage=storage)
    return study.get_trials(deepcopy=False), study_fields(study, stored_baseline(optuna_adapter.storage_of(study), study_name))


def build_table(trials: list, fields: dict, objectives_arg: str | None, thresholds_arg: str | None,
                ordinal: bool = False, log_uneven: bool = False) -> Table:
    """The lookup table, with the objectives and thresholds the table was searched with unless overridden."""
    objectives = ObjectiveSet.from_search({
        "objectives": objectives_arg.split(",") if objectives_arg else fields.get("objectives") or list(DEFAULT_OBJECTIVES),
        "thresholds": _thresholds(thresholds_arg) if thresholds_arg is not None else fields.get("thresholds") or {},
    })
    distributions = {}
    for t in trials:
        if t.state == TrialState.COMPLETE:
            distributions = dict(t.distributions)
            break
    return Table(trials, as_ordinal(distributions, log_uneven) if ordinal else distributions, objectives)


def baseline_point(text: str | None, fields: dict, objectives: ObjectiveSet) -> tuple[list[float] | None, str]:
    """The baseline as objective values, and where it came from; (None, why) when there is none."""
    if text:
        metrics = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            metric, _, value = part.partition("=")
            try:
                metrics[metric.strip()] = float(value)
            except ValueError:
                raise SystemExit(f"--baseline: {part!r} is not metric=number") from None
        where = "--baseline"
    elif fields.get("baseline"):
        metrics, where = fields["baseline"], f"the baseline study of {fields.get('study')}"
    else:
        return None, "no baseline (--baseline, or a <name>-baseline study beside the table)"
    try:
        return objectives.values(metrics), where
    except MetricError as error:
        raise SystemExit(f"baseline from {where}: {error}") from None


def _thresholds(text: str) -> dict:
    """``exact>=50,latency_ms<=20`` -> {"exact": ">= 50", ...}."""
    result = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        op = ">=" if ">=" in part else "<="
        metric, value = part.split(op)
        result[metric.strip()] = f"{op} {value.strip()}"
    return result


# ---------------------------------------------------------------- report
def _space_words(ordinal: bool, log_uneven: bool) -> str:
    if not ordinal:
        return "as the table stored it"
    return "with evenly spaced numbers as ordered ranges" + (" and uneven ones as log-scaled ranges" if log_uneven else "")


def trials_needed(reached: list[float], runs: int, budget: int) -> str:
    """The median over seeds of the trials a seed needed; a seed that never got there counts as more than the budget."""
    median = statistics.median(reached)
    got = sum(n <= budget for n in reached)
    return f"{median:g} ({got}/{runs} seeds)" if median <= budget else f"> {budget} ({got}/{runs} seeds)"


def markdown(results: dict, budget: int, best: float, checkpoints: list[int], better_count: int | None = None) -> str:
    """``better_count``: also the trials needed to find that many students better than the baseline."""
    better_head = f" trials to {better_count} better than baseline |" if better_count else ""
    head = ("| sampler | " + " | ".join(f"HV @ {n}" for n in checkpoints) + " | trials to 90 % |" + better_head
            + " failed trials | repeats moved | s / trial |")
    lines = [head, "|" + " --- |" * (len(checkpoints) + 5 + bool(better_count))]
    for kind, runs in results.items():
        cells = []
        for n in checkpoints:
            values = [100 * r["curve"][n - 1] / best for r in runs]
            spread = f" ± {statistics.stdev(values):.1f}" if len(values) > 1 else ""
            cells.append(f"{statistics.mean(values):.1f}{spread}")
        reached = [next((i + 1 for i, hv in enumerate(r["curve"]) if hv >= 0.9 * best), math.inf) for r in runs]
        needed = [trials_needed(reached, len(runs), budget)]
        if better_count:
            found = [r["better_at"][better_count - 1] if len(r["better_at"]) >= better_count else math.inf for r in runs]
            needed.append(trials_needed(found, len(runs), budget))
        fails = statistics.mean(r["failures"] for r in runs)
        moved = statistics.mean(r["moved"] for r in runs)
        per_trial = statistics.mean(r["seconds"] / budget for r in runs)
        lines.append(f"| {kind} | " + " | ".join(cells + needed) + f" | {fails:.1f} | {moved:.1f} | {per_trial:.2f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", help="storage URL of the table study (sqlite:///runs/table/study.db) or a table file (.json)")
    parser.add_argument("--study", help="with a storage URL: the name of the table study (e.g. table-flash)")
    parser.add_argument("--synthetic", action="store_true", help="build a synthetic table (dry run)")
    parser.add_argument("--table-out", help="with --synthetic: also store the table at this storage URL")
    parser.add_argument("--samplers", default="gp,tpe,random")
    parser.add_argument("--budget", type=int, default=40, help="trials per replay")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--startup", type=int, default=SearchSettings.n_startup_trials,
                        help="random trials before GP / TPE model the results (default: the search's)")
    parser.add_argument("--gp-after", type=int, default=20, help="sampler tpe-gp: finished trials after which GP takes over")
    parser.add_argument("--objectives", help="override, e.g. exact:maximize,num_parameters:minimize")
    parser.add_argument("--thresholds", help="override, e.g. exact>=50 (default: the table study's)")
    parser.add_argument("--ordinal", action="store_true",
                        help="show the samplers evenly spaced numeric choices as stepped int / float ranges")
    parser.add_argument("--log-uneven", action="store_true",
                        help="with --ordinal: unevenly spaced positive numbers (64, 128, 384) as log-scaled ranges; "
                             "proposals between table points get the nearest one's result")
    parser.add_argument("--failure-values", choices=["worst", "median"], default="worst",
                        help="what a failed trial shows the sampler: the search's worst values (default) or, as an "
                             "experiment, the median of the completed trials' values")
    parser.add_argument("--baseline", help="the baseline student's objectives, e.g. exact=52.63,num_parameters=17.24e6 "
                                           "(default: the search's <name>-baseline study, when there is one)")
    parser.add_argument("--better-count", type=int, default=3,
                        help="how many students better than the baseline a sampler has to find (default 3)")
    parser.add_argument("--export", help="also write the table as a table file (JSON, no weights) here")
    parser.add_argument("--out", help="also write the markdown here")
    parser.add_argument("--plot", help="also write a plotly HTML of hypervolume against trial count here")
    args = parser.parse_args(argv)

    if args.log_uneven and not args.ordinal:
        parser.error("--log-uneven goes with --ordinal")
    if args.synthetic:
        study = synthetic_table(args.table_out)
        trials, fields = study.get_trials(deepcopy=False), study_fields(study)
        table = build_table(trials, fields, args.objectives, args.thresholds, ordinal=args.ordinal,
                            log_uneven=args.log_uneven)
        source = f"synthetic table ({len(table.rows)} points)" + (f", stored at {args.table_out}" if args.table_out else "")
    else:
        if not args.table:
            parser.error("give --table URL --study NAME, --table FILE.json, or --synthetic")
        trials, fields = load_source(args.table, args.study)
        table = build_table(trials, fields, args.objectives, args.thresholds, ordinal=args.ordinal,
                            log_uneven=args.log_uneven)
        grid = table.grid_size()
        source = f"{args.table} / {fields.get('study')} ({len(table.rows)} points" + (f" of a {grid}-point grid)" if grid else ")")
    if args.export:
        write_table(args.export, table_of(trials, fields))
        print(f"table written to {args.export}", file=sys.stderr)
    baseline, baseline_source = baseline_point(args.baseline, fields, table.objectives)
    points = table.feasible_points()
    if not points:
        raise SystemExit("no feasible point in the table: nothing to measure")
    ref = reference_point(points, table.objectives)
    best = hypervolume(points, ref, table.objectives)
    results = {}
    for kind in [k.strip() for k in args.samplers.split(",") if k.strip()]:
        results[kind] = []
        for seed in range(args.seeds):
            run = replay(table, kind, seed, args.budget, args.startup, ref, failure_values=args.failure_values,
                         baseline=baseline, gp_after=args.gp_after)
            results[kind].append(run)
            print(f"{kind} seed {seed}: HV {100 * run['curve'][-1] / best:.1f} % after {args.budget}, "
                  f"{run['failures']} failed, {run['misses']} answered by a nearest point, {run['seconds']:.1f} s",
                  file=sys.stderr, flush=True)
    checkpoints = sorted({n for n in (10, 20, 30, 40, 50, 75, 100, args.budget) if n <= args.budget})
    misses = sum(r["misses"] for runs in results.values() for r in runs)
    asked = sum(len(r["curve"]) for runs in results.values() for r in runs)
    text = (
        f"Sampler replay on {source}; objectives {table.objectives.describe_objectives()}, thresholds "
        f"{table.objectives.describe_thresholds() or 'none'}; budget {args.budget}, {args.seeds} seed(s), "
        f"{args.startup} startup trials" + (f", GP after {args.gp_after} in tpe-gp" if "tpe-gp" in results else "")
        + f"; hypervolume in % of the whole table's (reference {[f'{r:.4g}' for r in ref]}); "
        f"{misses} of {asked} proposals were not in the table and got the nearest point's result; "
        f"space {_space_words(args.ordinal, args.log_uneven)}; "
        f"failed trials shown with the {args.failure_values} values; baseline "
        + (f"{[f'{v:.4g}' for v in baseline]} from {baseline_source}, a better student: feasible and strictly better "
           f"on every objective ({sum(better_in_every(p, baseline, table.objectives.directions) for p in points)} "
           "in the table)" if baseline else baseline_source)
        + ".\n\n" + markdown(results, args.budget, best, checkpoints, args.better_count if baseline else None)
    )
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    if args.plot:
        write_plot(results, best, args.plot, title=f"Sampler replay: {source}")
    return 0


def write_plot(results: dict, best: float, path: str, title: str) -> None:
    """Mean hypervolume (% of the table's) against trial count, with the seeds' min-max band."""
    import plotly.graph_objects as go

    figure = go.Figure()
    for kind, runs in results.items():
        n = len(runs[0]["curve"])
        x = list(range(1, n + 1))
        per_step = [[100 * r["curve"][i] / best for r in runs] for i in range(n)]
        figure.add_trace(go.Scatter(x=x + x[::-1], y=[max(v) for v in per_step] + [min(v) for v in per_step][::-1],
                                    fill="toself", opacity=0.15, line={"width": 0}, showlegend=False, hoverinfo="skip",
                                    name=kind, legendgroup=kind))
        figure.add_trace(go.Scatter(x=x, y=[statistics.mean(v) for v in per_step], mode="lines", name=kind,
                                    legendgroup=kind))
    figure.add_hline(y=90, line_dash="dot", annotation_text="90 %")
    figure.update_layout(title=title, xaxis_title="trials", yaxis_title="hypervolume (% of the whole table)",
                         template="plotly_white")
    figure.write_html(path, include_plotlyjs=True)


if __name__ == "__main__":
    if "OMP_NUM_THREADS" not in os.environ:
        # GP's models are tiny: one thread is fastest, and many threads on busy cores made a proposal 12 s instead of 0.7
        import torch

        torch.set_num_threads(1)
    sys.exit(main())
