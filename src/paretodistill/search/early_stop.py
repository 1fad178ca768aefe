"""Early stopping on several objectives: stop a flash trial that can no longer reach the front.

Optuna's pruners compare one intermediate value with the other trials' at the same step; none is
defined for a multi-objective study. Here a trial is stopped at an evaluation point only when an
*optimistic* guess of its end point is dominated by completed trials. Its true end point is then
dominated as well (unless it rises by more than the margin), so stopping it does not change the
Pareto front. With ``dominated_by = k`` (the regular stage's ``top_k``) it does not change the flash
candidates either: every trial that dominates a point ranks ahead of it, so a point dominated by k
completed trials is not among the k best.

The optimistic end point:

* the objectives training does not move (``num_parameters``, counted when the student is built;
  ``latency_ms`` if it is measured before training) as they are; when one is not known, the trial
  is kept;
* the objective training moves (the *learning* objective, e.g. exact) at its value now plus a margin
  in its good direction: the largest rise from this point of training to the end among completed
  trials, times ``safety``, and at least ``floor``.

Why so:

* The largest rise, not a mean or a quantile: the costly mistake is stopping a trial that would have
  reached the front (that student is lost); keeping a hopeless one costs only the time not saved.
* ``safety`` (1): the largest rise seen is already the most any completed trial gained from that
  point. Measured on the real curves of two complete tables (docs/results.md#early-stopping, 120 trials): a
  factor of 1 (and 0.75) kept the whole front and the flash candidates on both; 0.5 lost a front
  student on one. A larger factor guards against a trial that starts late and rises for longer than
  any seen (another learning rate or depth); 2 saved a sixth to a half as much on those tables and
  lost nothing either.
* ``floor``: a rise smaller than that is within what one flash run differs from the next, so the
  first curves cannot show that a trial is finished learning. Unset, it follows the metric's scale
  (:func:`default_floor`): 1 point for the percentages (on a 646-question validation part one
  question is 0.15 points of exact), 0.01 for the no-answer AUC (a 0-1 score: a floor of 1 would
  keep every trial). For another metric the floor must be given.
* Points of training are compared as progress (step / the trial's total steps), because the
  learning rate schedule is laid out over the whole run; in a flash stage every trial has the same
  ``max_steps``, so that is the same step.
* Nothing is stopped before ``min_curves`` completed trials have a curve point at or before that
  progress: the margin needs evidence, so the first trials run to the end and calibrate it.

In the search (opt-in: ``early_stop = { safety = 1.0, min_curves = 5 }`` in ``[search.flash]``;
``floor`` defaults to the learning objective's, ``dominated_by`` to ``search.regular.top_k``), flash
trials only:

* The learning objective is the flash stage's first objective; a curve point shows it as
  ``best_<metric>`` when the curves record that (``best_exact`` is at least the exact the final
  scoring reports for the same weights, so it errs towards keeping a trial), else ``<metric>``.
* When a flash trial starts, the coordinator gathers its :class:`StopEvidence` from the study: the
  objective values of the completed feasible flash trials and the curves of all completed ones. It
  is plain data in the trial's worker spec, so the trial is judged the same in this process, a
  local worker process or a Ray task, and no worker reads the study. Trials that complete while it
  runs are not seen (fewer trials to be dominated by; fewer curves for the margin, as in
  ``benchmarks/early_stop_replay.py``, which judges each trial by what finished before it).
* A flash trial is judged only where it is evaluated: ``training.eval_every_steps`` (e.g. in
  ``search.flash.budget``) must be below its steps, or the plan warns that none can be stopped.
* :class:`StopCheck` is what ``run_trial(..., should_stop=)`` calls at each evaluation point but the
  last. A stopped trial is told to Optuna as PRUNED with its reason (``stop_reason``) and curve; it
  counts toward ``flash.n_trials`` and is never a regular candidate (only completed trials are).

Whether it is on is no part of the study's identity (``search.identity``): like the sampler, it
decides which trials finish, not what a finished trial measured.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping, Sequence

from paretodistill.config import EarlyStopSettings
from paretodistill.errors import ConfigError
from paretodistill.search.objectives import ObjectiveSet, dominates_in
from paretodistill.trial import EvaluationPoint

if TYPE_CHECKING:  # a trial's worker imports this module; the typed trial is Optuna's, read by the coordinator
    from paretodistill.search.results import StoredTrial

# Metrics reported in percent (0-100): one flash run differs from the next by about a point.
PERCENT_METRICS = ("exact", "f1", "best_exact", "best_f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1",
                   "span_f1", "exact_over_no_answer")
UNIT_FLOORS = {"no_answer_auc": 0.01}  # 0-1 scores: the flash tables of the real searches were replayed with this


def default_floor(metric: str) -> float:
    """The smallest margin for ``metric`` when ``search.flash.early_stop.floor`` is unset, by its scale."""
    if metric in PERCENT_METRICS:
        return 1.0
    if metric in UNIT_FLOORS:
        return UNIT_FLOORS[metric]
    raise ConfigError(f"search.flash.early_stop.floor: give a floor for {metric!r}, in its units (no default is known for "
                      f"its scale; percentages take 1.0, the no-answer AUC 0.01)")


@dataclass(frozen=True)
class StopRule:
    safety: float = EarlyStopSettings.safety
    floor: float = 1.0  # in the learning objective's units (default_floor(metric) in a search)
    min_curves: int = EarlyStopSettings.min_curves
    dominated_by: int = 1  # completed trials that must dominate the optimistic point (top_k keeps the candidates)

    @classmethod
    def from_settings(cls, settings: EarlyStopSettings, top_k: int, learning: str) -> "StopRule":
        """The rule of ``search.flash.early_stop`` for the learning objective ``learning``; ``floor`` unset: its
        :func:`default_floor`; ``dominated_by`` unset: the regular stage's ``top_k``."""
        dominated_by = settings.dominated_by if settings.dominated_by is not None else max(1, top_k)
        floor = settings.floor if settings.floor is not None else default_floor(learning)
        return cls(settings.safety, floor, settings.min_curves, dominated_by)


@dataclass(frozen=True)
class CompletedCurve:
    """A completed trial's curve of the learning objective: (progress, value) points, and its final value."""

    points: tuple[tuple[float, float], ...]
    final: float

    def value_at(self, progress: float) -> float | None:
        """What the trial showed by ``progress`` (its last point at or before it); None before its first point."""
        seen = [value for at, value in self.points if at <= progress]
        return seen[-1] if seen else None


@dataclass(frozen=True)
class Decision:
    stop: bool
    reason: str
    margin: float | None = None
    optimistic: tuple[float, ...] | None = None  # the end point the trial was judged by, in objective order


def margin_at(progress: float, curves: Sequence[CompletedCurve], sign: float, rule: StopRule) -> float | None:
    """How much the learning objective may still improve from ``progress`` (None: too few curves to tell)."""
    rises = [sign * (curve.final - value) for curve in curves if (value := curve.value_at(progress)) is not None]
    if len(rises) < rule.min_curves:
        return None
    return max(rule.floor, rule.safety * max(rises))


def decide(objectives: ObjectiveSet, learning: str, value: float, progress: float, known: Mapping[str, float],
           completed: Sequence[Sequence[float]], curves: Sequence[CompletedCurve], rule: StopRule = StopRule()) -> Decision:
    """Stop the trial or keep it training.

    ``learning``: the objective whose ``value`` the trial shows now, at ``progress`` in (0, 1];
    ``known``: the other objectives' values; ``completed``: the objective values of the completed
    feasible trials; ``curves``: the completed trials' curves of ``learning``.
    """
    by_metric = {o.metric: o for o in objectives.objectives}
    if learning not in by_metric:
        raise ValueError(f"early stopping: {learning!r} is not one of the objectives {objectives.metric_names}")
    missing = [m for m in objectives.metric_names if m != learning and m not in known]
    if missing:
        return Decision(False, f"kept: {', '.join(missing)} not known before training ends")
    sign = by_metric[learning].sign
    margin = margin_at(progress, curves, sign, rule)
    if margin is None:
        return Decision(False, f"kept: fewer than {rule.min_curves} completed curves to calibrate the margin")
    optimistic = tuple(value + sign * margin if m == learning else float(known[m]) for m in objectives.metric_names)
    dominating = sum(dominates_in(point, optimistic, objectives.directions) for point in completed)
    if dominating < rule.dominated_by:
        return Decision(False, f"kept: {learning} {value:.4g} + {margin:.3g} could still reach the front", margin, optimistic)
    shown = ", ".join(f"{m} {v:.4g}" for m, v in zip(objectives.metric_names, optimistic))
    return Decision(True, f"stopped early at {progress:.0%} of training: even at {shown} ({learning} {value:.4g} "
                          f"+ a margin of {margin:.3g}) it is dominated by {dominating} completed trial(s)",
                    margin, optimistic)


# ---------------------------------------------------------------- curves as trials record them
def curve_key_in(keys: Iterable[str], metric: str) -> str:
    """How curve points with ``keys`` show ``metric``: ``best_<metric>`` (at the best no-answer
    threshold, as the trial's final value is) when they record it, else ``<metric>``."""
    return f"best_{metric}" if f"best_{metric}" in set(keys) else metric


def learning_value(point: Mapping[str, Any], objectives: ObjectiveSet) -> float | None:
    """A curve point's figure of the first objective it records (:func:`curve_key_in`): what the
    trial's Optuna intermediate value at that step is; None when it records none."""
    for metric in objectives.metric_names:
        value = point.get(curve_key_in(point, metric))
        if _number(value):
            return float(value)
    return None


def curve_key(trials: Sequence[StoredTrial], metric: str) -> str:
    """``best_<metric>`` when some trial's curve records it, else ``<metric>``."""
    return curve_key_in({key for t in trials for point in t.curve for key in point}, metric)


def progress_points(trial: StoredTrial, key: str) -> list[tuple[float, float]]:
    """(step / total steps, curve figure) of every curve point of a trial that records ``key``."""
    curve = [p for p in trial.curve if _number(p.get(key))]
    if not curve:
        return []
    total = trial.metrics.get("train_steps") or curve[-1]["step"]
    return [(p["step"] / total, float(p[key])) for p in curve]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# ---------------------------------------------------------------- in a flash trial
@dataclass(frozen=True)
class StopEvidence:
    """What one flash trial is judged against: plain data, so it travels in the trial's worker spec."""

    objectives: ObjectiveSet  # the flash stage's
    learning: str  # the objective training moves (the first)
    curve_key: str  # how a curve point shows it
    rule: StopRule
    completed: tuple[tuple[float, ...], ...]  # objective values of the completed feasible trials
    curves: tuple[CompletedCurve, ...]  # the learning objective's curves of the completed trials

    def judge(self, point: EvaluationPoint) -> Decision:
        value = point.metrics.get(self.curve_key)
        if not _number(value):
            return Decision(False, f"kept: the curve point records no {self.curve_key}")
        return decide(self.objectives, self.learning, float(value), point.progress, point.known,
                      self.completed, self.curves, self.rule)


class StopCheck:
    """``should_stop`` for ``run_trial``: judges each evaluation point, logs the decision, and keeps
    the one that stopped the trial (:meth:`record`, stored on the trial beside its reason)."""

    def __init__(self, evidence: StopEvidence, log: Callable[[str], None] = print):
        self.evidence = evidence
        self.log = log
        self.stopped: tuple[EvaluationPoint, Decision] | None = None

    def __call__(self, point: EvaluationPoint) -> str | None:
        decision = self.evidence.judge(point)
        self.log(f"early stop check at step {point.step}/{point.total_steps}: {decision.reason}")
        if not decision.stop:
            return None
        self.stopped = (point, decision)
        return decision.reason

    def record(self) -> dict | None:
        """The stopping decision as plain data: where, the margin, the optimistic end point, the rule."""
        if self.stopped is None:
            return None
        point, decision = self.stopped
        names = self.evidence.objectives.metric_names
        return {"step": point.step, "progress": round(point.progress, 6), "learning": self.evidence.learning,
                "curve_key": self.evidence.curve_key, "margin": decision.margin,
                "optimistic": dict(zip(names, decision.optimistic or ())), "rule": asdict(self.evidence.rule),
                "completed_trials": len(self.evidence.completed), "curves": len(self.evidence.curves)}
