"""What a study's trials mean: one typed stored trial, and one classification of them.

Optuna keeps what a trial returned as user attributes (JSON under string keys). Those keys are
named once here (:class:`Attr`; :func:`search.study.record_result` writes them) and read once,
when a :class:`StoredTrial` is built from Optuna's ``FrozenTrial``. Everything that judges trials
(``pareto.json``, ``paretodistill status``, the choice of regular candidates, the report) reads
StoredTrials and asks :func:`classify`, so they cannot disagree about what a trial is.

**Interrupted trials are not finished.** A trial whose run was interrupted (Ctrl-C, a crash, a
machine that failed: ``failure_kind = "interrupted"``, or a cluster node lost under it:
``"node_lost"``) was never evaluated; the search runs its share of the budget again. So it counts
neither toward the budget, nor as a failure of its configuration, nor as a finished trial when the
stage whose frontier is the result is chosen.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from optuna.trial import FrozenTrial, TrialState

from paretodistill.search.objectives import (
    MetricError,
    ObjectiveSet,
    Threshold,
    nondominated,
    nondominated_ranks,
)
from paretodistill.trial import NODE_LOST


class Attr:
    """The user attributes a trial carries in the database (:func:`search.study.record_result`
    and the runner write them; :meth:`StoredTrial.of` reads them)."""

    METRICS = "metrics"  # validation metrics, as the trial returned them
    TEST_METRICS = "test_metrics"
    CURVE = "curve"  # evaluation points during training
    CHECKPOINT = "checkpoint"
    TRIAL_DIR = "trial_dir"
    FAILURE_KIND = "failure_kind"
    FAILURE_REASON = "failure_reason"
    FAILURE_STEP = "failure_step"
    STOP_REASON = "stop_reason"  # a flash trial stopped early
    EARLY_STOP = "early_stop"  # the decision that stopped it (its step, its optimistic end point)
    CONSTRAINT_VIOLATION = "constraint_violation"
    COORDINATOR = "coordinator"  # which run owns the trial (:func:`search.study.owner_record`)
    WORKER = "worker"
    # where the trial ran: {"node": the Ray node id (None: the coordinator's machine), "devices": the
    # CUDA_VISIBLE_DEVICES its process saw (None: not set)}; no host name, as no pid (they stay in the lock)
    PLACEMENT = "placement"
    DURATION_S = "duration_s"
    FLASH_TRIAL = "flash_trial"  # a regular trial's flash trial
    FLASH_METRICS = "flash_metrics"
    BASELINE = "baseline"  # the baseline's name, on the baseline trial
    # on the flash *study*, not a trial: the teacher timed as the students are
    # ({"latency": measure_latency's figures, "num_parameters": n}; ``distill.engine.teacher_latency``)
    TEACHER_LATENCY = "teacher_latency"


INTERRUPTED = "interrupted"  # the failure kind of a trial whose run ended before it did
NOT_EVALUATED_KINDS = (INTERRUPTED, NODE_LOST)  # failures of the run, not of the settings: not finished

# the classes of :func:`classify`
FRONTIER = "frontier"
DOMINATED = "dominated"
BELOW_THRESHOLD = "below_threshold"
FAILED = "failed"
INTERRUPTED_CLASS = "interrupted"
UNFINISHED = "unfinished"
FINISHED_CLASSES = (FRONTIER, DOMINATED, BELOW_THRESHOLD, FAILED)


@dataclass(frozen=True)
class Failure:
    """Why a trial has no usable result; ``step``: the training step it failed at, if known."""

    kind: str
    reason: str | None = None
    step: int | None = None


@dataclass(frozen=True)
class StoredTrial:
    """One trial as the search stored it, typed: built once from Optuna's trial (:meth:`of`)."""

    number: int
    state: TrialState
    params: dict[str, Any]
    stage: str | None = None
    values: tuple[float, ...] | None = None  # Optuna's objective values (COMPLETE trials only)
    objective_values: tuple[float, ...] | None = None  # recomputed from the metrics where possible
    metrics: dict[str, Any] = field(default_factory=dict)
    test_metrics: dict[str, Any] | None = None
    curve: tuple[dict, ...] = ()
    checkpoint: str | None = None
    trial_dir: str | None = None
    failure: Failure | None = None
    stop_reason: str | None = None
    stop_step: int | None = None
    optimistic: dict[str, Any] | None = None  # the end point a stopped trial was judged by
    constraints: dict[str, float] = field(default_factory=dict)  # Optuna's, <= 0 feasible
    distributions: dict[str, Any] = field(default_factory=dict)
    owner_run: str | None = None
    flash_trial: int | None = None
    flash_metrics: dict[str, Any] | None = None
    baseline: str | None = None
    duration_s: float | None = None
    placement: dict[str, Any] | None = None  # Attr.PLACEMENT

    @classmethod
    def of(cls, trial: FrozenTrial, objectives: ObjectiveSet | None = None, stage: str | None = None) -> "StoredTrial":
        """The typed trial; ``objectives`` recompute its objective values from its metrics."""
        attrs = trial.user_attrs
        metrics = attrs.get(Attr.METRICS)
        metrics = dict(metrics) if isinstance(metrics, dict) else {}
        values = tuple(trial.values) if trial.values is not None else None
        kind = attrs.get(Attr.FAILURE_KIND)
        early_stop = attrs.get(Attr.EARLY_STOP) or {}
        return cls(
            number=trial.number,
            state=trial.state,
            params=dict(trial.params),
            stage=stage,
            values=values,
            objective_values=values if objectives is None else recomputed_values(metrics, values, objectives),
            metrics=metrics,
            test_metrics=attrs.get(Attr.TEST_METRICS),
            curve=tuple(attrs.get(Attr.CURVE) or ()),
            checkpoint=attrs.get(Attr.CHECKPOINT),
            trial_dir=attrs.get(Attr.TRIAL_DIR),
            failure=Failure(kind, attrs.get(Attr.FAILURE_REASON), attrs.get(Attr.FAILURE_STEP)) if kind else None,
            stop_reason=attrs.get(Attr.STOP_REASON),
            stop_step=early_stop.get("step"),
            optimistic=early_stop.get("optimistic"),
            constraints=_constraints(trial),
            distributions=dict(trial.distributions),
            owner_run=(attrs.get(Attr.COORDINATOR) or {}).get("run"),
            flash_trial=attrs.get(Attr.FLASH_TRIAL),
            flash_metrics=attrs.get(Attr.FLASH_METRICS),
            baseline=attrs.get(Attr.BASELINE),
            duration_s=attrs.get(Attr.DURATION_S),
            placement=attrs.get(Attr.PLACEMENT),
        )

    @property
    def interrupted(self) -> bool:
        """FAIL because its run ended first or its node was lost: never evaluated, run again (see the
        module docstring)."""
        return self.state == TrialState.FAIL and self.failure is not None and self.failure.kind in NOT_EVALUATED_KINDS

    @property
    def finished(self) -> bool:
        """Counts toward the budget: COMPLETE, PRUNED (stopped early), or FAIL but not interrupted."""
        return self.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
            self.state == TrialState.FAIL and not self.interrupted)

    @property
    def complete(self) -> bool:
        return self.state == TrialState.COMPLETE

    @property
    def stopped(self) -> bool:
        return self.state == TrialState.PRUNED


def stored_trials(trials: Iterable[FrozenTrial | StoredTrial], objectives: ObjectiveSet | None = None,
                  stage: str | None = None) -> list[StoredTrial]:
    """Optuna's trials typed (:meth:`StoredTrial.of`); trials typed already are kept as they are."""
    return [t if isinstance(t, StoredTrial) else StoredTrial.of(t, objectives, stage) for t in trials]


def is_interrupted(trial: FrozenTrial) -> bool:
    """For code that holds Optuna's trial (samplers, recovery): :attr:`StoredTrial.interrupted`."""
    return StoredTrial.of(trial).interrupted


def is_finished(trial: FrozenTrial) -> bool:
    """For code that holds Optuna's trial: :attr:`StoredTrial.finished`."""
    return StoredTrial.of(trial).finished


def recomputed_values(metrics: Mapping[str, Any], values: Sequence[float] | None,
                      objectives: ObjectiveSet) -> tuple[float, ...] | None:
    """The objective values, recomputed from the metrics where possible, else Optuna's (metrics
    stored without an objective: older trials); None when neither has them."""
    try:
        return tuple(objectives.values(dict(metrics)))
    except MetricError:
        pass
    if values is not None and len(values) == len(objectives.objectives):
        return tuple(values)
    return None


def _constraints(trial: FrozenTrial) -> dict[str, float]:
    """Optuna 5 keyed constraints (``FrozenTrial.constraints``) or the older list in system attrs."""
    keyed = getattr(trial, "constraints", None)
    if isinstance(keyed, dict) and keyed:
        return {str(k): float(v) for k, v in keyed.items()}
    listed = trial.system_attrs.get("constraints")
    if isinstance(listed, (list, tuple)):
        return {f"constraint {i}": float(v) for i, v in enumerate(listed)}
    return {}


# ---------------------------------------------------------------- counts
def counts(trials: Iterable[StoredTrial]) -> dict:
    """Complete / stopped (early) / failed / interrupted / running / waiting, and failures by kind."""
    result = {"complete": 0, "stopped": 0, "failed": 0, "interrupted": 0, "running": 0, "waiting": 0,
              "failed_kinds": {}}
    for t in trials:
        if t.state == TrialState.COMPLETE:
            result["complete"] += 1
        elif t.state == TrialState.PRUNED:
            result["stopped"] += 1
        elif t.interrupted:
            result["interrupted"] += 1
        elif t.state == TrialState.FAIL:
            result["failed"] += 1
            kind = t.failure.kind if t.failure else "error"
            result["failed_kinds"][kind] = result["failed_kinds"].get(kind, 0) + 1
        elif t.state == TrialState.RUNNING:
            result["running"] += 1
        elif t.state == TrialState.WAITING:
            result["waiting"] += 1
    result["finished"] = result["complete"] + result["stopped"] + result["failed"]
    return result


# ---------------------------------------------------------------- classification
@dataclass(frozen=True)
class Verdict:
    """A trial's class, the thresholds it misses (readable), and for a failed one, why."""

    category: str
    violations: tuple[str, ...] = ()
    failure: Failure | None = None


def threshold_miss(threshold: Threshold, value: float | None) -> str | None:
    """None when ``value`` meets ``threshold``, else the reason shown next to the trial."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return f"{threshold.metric} not measured"
    if threshold.violation(value) > 0:
        return f"{threshold.metric} {value:g} {'<' if threshold.operator == '>=' else '>'} {threshold.value:g}"
    return None


def _measured(t: StoredTrial, objectives: ObjectiveSet) -> dict[str, Any]:
    """The trial's metrics, with its objective values for the objectives its metrics lack."""
    known = dict(zip(objectives.metric_names, t.objective_values or ()))
    return {**known, **{k: v for k, v in t.metrics.items() if v is not None}}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _verdict_before_dominance(t: StoredTrial, objectives: ObjectiveSet) -> Verdict | None:
    """The class of a trial that is not feasible; None for a feasible one (frontier or dominated).

    A stored Optuna constraint the objectives here do not define (the search knew a rule these
    thresholds do not) still counts: a trial is feasible only when nothing says it is not."""
    if t.state in (TrialState.RUNNING, TrialState.WAITING):
        return Verdict(UNFINISHED)
    if t.interrupted:
        return Verdict(INTERRUPTED_CLASS, failure=t.failure)
    if t.state == TrialState.PRUNED and t.failure is None:
        kind = "stopped_early" if t.stop_reason else "pruned"
        return Verdict(FAILED, failure=Failure(kind, t.stop_reason, t.stop_step))
    if t.state != TrialState.COMPLETE or t.failure is not None:
        return Verdict(FAILED, failure=t.failure or Failure("error"))
    if t.objective_values is None:
        missing = [m for m in objectives.metric_names if _number(t.metrics.get(m)) is None]
        return Verdict(FAILED, failure=Failure("no_value", f"no value for {', '.join(missing)}"))
    measured = _measured(t, objectives)
    misses = [reason for bound in objectives.thresholds
              if (reason := threshold_miss(bound, _number(measured.get(bound.metric))))]
    known = set(objectives.constraint_keys)
    misses += [f"constraint {k} violated" for k, v in t.constraints.items() if k not in known and v > 0]
    return Verdict(BELOW_THRESHOLD, tuple(misses)) if misses else None


def classify(trials: Sequence[StoredTrial], objectives: ObjectiveSet) -> dict[int, Verdict]:
    """Each trial of ONE stage in exactly one class, by number.

    ``unfinished`` (running or waiting) and ``interrupted`` trials are not finished (see the
    module docstring); a finished trial is ``failed`` (FAIL, stopped early, or no value for an
    objective), ``below_threshold`` (a threshold missed: not a usable student, however small),
    ``frontier`` (feasible and not dominated by a feasible trial) or ``dominated``. Equal
    objective vectors do not dominate each other: duplicates of a frontier point are all on it.
    """
    return {t.number: verdict for t, verdict in zip(trials, verdicts_of(trials, objectives))}


def verdicts_of(trials: Sequence[StoredTrial], objectives: ObjectiveSet) -> list[Verdict]:
    """:func:`classify`'s verdicts in the trials' order (for trials not numbered by one study)."""
    if not trials:  # a stage that never ran has no trials and no objectives
        return []
    verdicts = [_verdict_before_dominance(t, objectives) for t in trials]
    feasible = [i for i, v in enumerate(verdicts) if v is None]
    front = {feasible[k] for k in nondominated([trials[i].objective_values for i in feasible], objectives.directions)}
    return [v if v is not None else Verdict(FRONTIER if i in front else DOMINATED) for i, v in enumerate(verdicts)]


def common_failure(trials: Sequence[StoredTrial], objectives: ObjectiveSet) -> tuple[int, Failure] | None:
    """(how many, the failure) when every finished trial of ONE stage failed, all for one reason
    (kind and first line of the reason, numbers aside: an out-of-memory at another size is the same
    one); None when a trial has a result, was stopped early, or failed otherwise. Such a stage
    says what is wrong with the search's settings, and the next stage would repeat it."""
    trials = list(trials)
    finished = [v for v in verdicts_of(trials, objectives) if v.category in FINISHED_CLASSES]
    if not finished or any(v.category != FAILED or v.failure is None or v.failure.kind in STOPPED_KINDS
                           for v in finished):
        return None
    signatures = {_failure_signature(v.failure) for v in finished}
    return (len(finished), finished[0].failure) if len(signatures) == 1 else None


STOPPED_KINDS = ("stopped_early", "pruned")  # the failures :func:`classify` gives stopped trials


def _failure_signature(failure: Failure) -> tuple[str, str]:
    first_line = ((failure.reason or "").splitlines() or [""])[0]
    return failure.kind, re.sub(r"[0-9]+(\.[0-9]+)?", "#", first_line)


def feasible_trials(trials: Iterable[StoredTrial], objectives: ObjectiveSet) -> list[StoredTrial]:
    """The trials :func:`classify` puts on the frontier or below it (order kept)."""
    trials = list(trials)
    return [t for t, v in zip(trials, verdicts_of(trials, objectives)) if v.category in (FRONTIER, DOMINATED)]


def finished_count(trials: Iterable[StoredTrial], objectives: ObjectiveSet) -> int:
    """The trials :func:`classify` counts as finished."""
    return sum(v.category in FINISHED_CLASSES for v in verdicts_of(list(trials), objectives))


def ranked(trials: Sequence[StoredTrial], objectives: ObjectiveSet) -> list[tuple[int, StoredTrial]]:
    """(non-domination rank, trial), best first; ties within a rank by the first objective."""
    trials = [t for t in trials if t.objective_values is not None]
    if not trials:
        return []
    ranks = nondominated_ranks([t.objective_values for t in trials], objectives.directions)
    first = objectives.objectives[0]
    order = sorted(range(len(trials)),
                   key=lambda i: (ranks[i], -first.sign * trials[i].objective_values[0], trials[i].number))
    return [(ranks[i], trials[i]) for i in order]


def frontier(trials: Iterable[StoredTrial], objectives: ObjectiveSet) -> list[StoredTrial]:
    """The feasible Pareto front (:func:`classify`'s ``frontier``), best first objective first (the
    order of :func:`ranked`'s rank 0, without ranking the rest: the coordinator asks after every trial)."""
    trials = list(trials)
    front = [t for t, v in zip(trials, verdicts_of(trials, objectives)) if v.category == FRONTIER]
    first = objectives.objectives[0]
    return sorted(front, key=lambda t: (-first.sign * t.objective_values[0], t.number))
