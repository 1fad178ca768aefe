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
* ``safety`` (2): the rises seen are those of a few trials, and a trial with another learning rate
  or depth can start late and rise for longer than any of them.
* ``floor`` (1 point): a rise smaller than that is within what one flash run differs from the next
  (on a 646-question validation part one question is 0.15 points of exact), so the first curves
  cannot show that a trial is finished learning.
* Points of training are compared as progress (step / the trial's total steps), because the
  learning rate schedule is laid out over the whole run; in a flash stage every trial has the same
  ``max_steps``, so that is the same step.
* Nothing is stopped before ``min_curves`` completed trials have a curve point at or before that
  progress: the margin needs evidence, so the first trials run to the end and calibrate it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from paretodistill.search.objectives import ObjectiveSet, dominates_in


@dataclass(frozen=True)
class StopRule:
    safety: float = 2.0
    floor: float = 1.0
    min_curves: int = 5
    dominated_by: int = 1  # completed trials that must dominate the optimistic point (top_k keeps the candidates)


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
