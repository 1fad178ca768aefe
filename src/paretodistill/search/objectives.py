"""What the search optimizes, what it requires, and how a trial's metrics become Optuna numbers.

``objectives = ["exact:maximize", "num_parameters:minimize"]`` are the Optuna objectives (the
validation ``exact`` is never the test one: the test articles are scored only for the final
report). ``thresholds = {exact = 50.0}`` are requirements, not objectives: each becomes an Optuna
constraint (a value <= 0 is feasible, Optuna's convention) so that GPSampler, TPE and NSGA-II model
where the feasible region is instead of merely discarding infeasible trials. A bare number takes its
direction from the objective on that metric (exact is maximized, so ``exact = 50`` means exact >= 50);
a metric that is not an objective needs an explicit ``">= 50"`` or ``"<= 20"``.

Besides the thresholds there is one more constraint, ``failed``: -1 for a trial that produced
metrics, +1 for one that failed (out of memory, diverged, ...). The sampler sees failed trials as
infeasible observations (see :mod:`paretodistill.search.samplers`), which is how it learns to avoid
the region where trials fail.

All metrics a trial returns are stored on it (user attribute ``metrics``); only the objectives and
thresholds are given to the optimizer.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from paretodistill.config import DEFAULT_OBJECTIVES, DEFAULT_THRESHOLDS
from paretodistill.errors import ConfigError

FAILED_CONSTRAINT = "failed"

# What a metric of the distillation trial needs to be a finite, meaningful number: validation
# questions, answerable ones, unanswerable ones, a latency measurement, a pretrain-distill seed. A search checks these
# before its first trial (search/preflight.py), so a metric its data cannot define (no_answer_auc
# on a validation part without unanswerable questions) is one line, not a stage of failed trials.
QUESTIONS, ANSWERABLE, UNANSWERABLE, LATENCY, PRETRAINED = "questions", "answerable", "unanswerable", "latency", "pretrained"
_LATENCY_KEYS = ("latency_ms", "latency_p10_ms", "latency_p90_ms", "latency_iqr_ms", "latency_mean_ms", "latency_std_ms")
METRIC_NEEDS: dict[str, tuple[str, ...]] = {
    # the official SQuAD 2.0 metrics (evaluation/squad_metric.py) and the best no-answer threshold's
    **dict.fromkeys(("exact", "f1", "total", "na_threshold", "best_exact", "best_exact_thresh", "best_f1",
                     "best_f1_thresh"), (QUESTIONS,)),
    **dict.fromkeys(("HasAns_exact", "HasAns_f1", "HasAns_total"), (ANSWERABLE,)),
    **dict.fromkeys(("NoAns_exact", "NoAns_f1", "NoAns_total"), (UNANSWERABLE,)),
    "exact_over_no_answer": (QUESTIONS,),  # exact minus the no-answer rate of the validation questions
    # what the threshold hides (evaluation/signals.py): span_f1 is HasAns F1 (0 without answerable
    # questions), the AUC separates the two kinds, teacher_kl compares every validation window
    "span_f1": (ANSWERABLE,),
    "no_answer_auc": (ANSWERABLE, UNANSWERABLE),
    "teacher_kl": (QUESTIONS,),
    "num_parameters": (),
    **dict.fromkeys(_LATENCY_KEYS, (LATENCY,)),  # [latency] enabled
    **dict.fromkeys(("train_seconds", "train_cpu_seconds", "examples_per_second", "train_steps", "train_epochs",
                     "trial_seconds", "eval_seconds"), ()),
    # only for students seeded from a pretrain-distill checkpoint: what the starting point cost
    **dict.fromkeys(("pretrain_seconds", "pretrain_cpu_seconds"), (PRETRAINED,)),
}
# Metrics a distillation trial reports (others are accepted, these are only used to catch typos early).
KNOWN_METRICS = tuple(METRIC_NEEDS)

_DIRECTIONS = {"maximize": "maximize", "max": "maximize", "minimize": "minimize", "min": "minimize"}


class MetricError(ValueError):
    """A trial's metrics cannot give an objective value (missing or not a finite number)."""


@dataclass(frozen=True)
class Objective:
    metric: str
    direction: str  # "maximize" or "minimize"

    @classmethod
    def parse(cls, text: str) -> "Objective":
        if not isinstance(text, str) or text.count(":") != 1:
            raise ConfigError(f"search.objectives: {text!r} is not 'metric:maximize' or 'metric:minimize'")
        metric, direction = (part.strip() for part in text.split(":"))
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", metric):
            raise ConfigError(f"search.objectives: {metric!r} is not a metric name")
        if direction.lower() not in _DIRECTIONS:
            raise ConfigError(f"search.objectives: direction {direction!r} of {metric} must be maximize or minimize")
        return cls(metric, _DIRECTIONS[direction.lower()])

    def __str__(self) -> str:
        return f"{self.metric}:{self.direction}"

    @property
    def sign(self) -> float:
        """+1 where larger is better."""
        return 1.0 if self.direction == "maximize" else -1.0

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"

    def worst(self, values: Iterable[float]) -> float:
        values = list(values)
        return min(values) if self.direction == "maximize" else max(values)


@dataclass(frozen=True)
class Threshold:
    metric: str
    operator: str  # ">=" or "<="
    value: float

    def __str__(self) -> str:
        return f"{self.metric} {self.operator} {self.value:g}"

    @property
    def key(self) -> str:
        return f"threshold:{self.metric}"

    def constraint(self, metric_value: float) -> float:
        """Optuna constraint value (<= 0 feasible), relative to the threshold so that different
        metrics' violations are comparable (TPE and NSGA-II add them up)."""
        scale = max(abs(self.value), 1e-12)
        if self.operator == ">=":
            return (self.value - metric_value) / scale
        return (metric_value - self.value) / scale

    def violation(self, metric_value: float) -> float:
        """By how much (in the metric's units) the value misses the threshold; 0 when it meets it."""
        gap = self.value - metric_value if self.operator == ">=" else metric_value - self.value
        return max(0.0, gap)


def _metric_value(metrics: dict[str, Any], name: str) -> float:
    if name not in metrics:
        raise MetricError(f"metric {name!r} is missing from the trial's metrics (it has: {sorted(metrics)})")
    value = metrics[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise MetricError(f"metric {name!r} is {value!r}, not a finite number")
    return float(value)


@dataclass(frozen=True)
class ObjectiveSet:
    objectives: tuple[Objective, ...]
    thresholds: tuple[Threshold, ...]

    @classmethod
    def parse(cls, objectives: Sequence[str] | str, thresholds: Any) -> "ObjectiveSet":
        """From the ``objectives`` and ``thresholds`` of the search settings (or a study's attributes)."""
        raw = [objectives] if isinstance(objectives, str) else objectives
        if not isinstance(raw, (list, tuple)) or not raw:
            raise ConfigError("search.objectives: expected a non-empty list like [\"exact:maximize\"]")
        parsed = tuple(Objective.parse(item) for item in raw)
        metrics = [o.metric for o in parsed]
        if len(set(metrics)) != len(metrics):
            raise ConfigError(f"search.objectives: a metric appears twice in {list(raw)}")
        return cls(parsed, _parse_thresholds(thresholds, parsed))

    @classmethod
    def from_search(cls, search: dict, *, thresholds: Any = None) -> "ObjectiveSet":
        """From a ``[search]``-shaped table, as a study stores it (``thresholds`` overrides the table's)."""
        table = search.get("thresholds", DEFAULT_THRESHOLDS) if thresholds is None else thresholds
        return cls.parse(search.get("objectives", list(DEFAULT_OBJECTIVES)), table)

    # ---------------------------------------------------------------- descriptions
    @property
    def directions(self) -> list[str]:
        return [o.direction for o in self.objectives]

    @property
    def metric_names(self) -> list[str]:
        return [o.metric for o in self.objectives]

    def describe_objectives(self) -> list[str]:
        return [str(o) for o in self.objectives]

    def describe_thresholds(self) -> dict[str, str]:
        return {t.metric: f"{t.operator} {t.value:g}" for t in self.thresholds}

    def unknown_metrics(self) -> list[str]:
        names = self.metric_names + [t.metric for t in self.thresholds]
        return [name for name in names if name not in KNOWN_METRICS]

    @property
    def constraint_keys(self) -> list[str]:
        """Every completed trial carries exactly these constraints, in this order (GPSampler needs
        the same number on every trial)."""
        return [t.key for t in self.thresholds] + [FAILED_CONSTRAINT]

    # ---------------------------------------------------------------- numbers
    def values(self, metrics: dict[str, Any]) -> list[float]:
        """Objective values in order; raises MetricError when one is missing or not finite."""
        return [_metric_value(metrics, o.metric) for o in self.objectives]

    def constraints(self, metrics: dict[str, Any] | None) -> dict[str, float]:
        """Constraint values of a trial with ``metrics`` (``None``: a failed trial)."""
        if metrics is None:
            return {**{t.key: 1.0 for t in self.thresholds}, FAILED_CONSTRAINT: 1.0}
        result = {}
        for t in self.thresholds:
            try:
                result[t.key] = t.constraint(_metric_value(metrics, t.metric))
            except MetricError:
                result[t.key] = 1.0  # a threshold that cannot be checked is not met
        result[FAILED_CONSTRAINT] = -1.0
        return result

    def violations(self, metrics: dict[str, Any] | None) -> dict[str, Any]:
        """What the ``constraint_violation`` user attribute holds: feasibility and the misses."""
        if metrics is None:
            return {"feasible": False, "failed": True, "violations": {}}
        misses = {}
        for t in self.thresholds:
            try:
                gap = t.violation(_metric_value(metrics, t.metric))
            except MetricError:
                misses[t.metric] = {"threshold": f"{t.operator} {t.value:g}", "value": None, "by": None}
                continue
            if gap > 0:
                misses[t.metric] = {"threshold": f"{t.operator} {t.value:g}", "value": metrics[t.metric], "by": gap}
        return {"feasible": not misses, "failed": False, "violations": misses}

    def feasible(self, metrics: dict[str, Any] | None) -> bool:
        return metrics is not None and all(v <= 0 for v in self.constraints(metrics).values())


def _parse_thresholds(table: Any, objectives: tuple[Objective, ...]) -> tuple[Threshold, ...]:
    if table is None:
        return ()
    if not isinstance(table, dict):
        raise ConfigError(f"search.thresholds: expected a table like {{exact = 50.0}}, got {table!r}")
    by_metric = {o.metric: o for o in objectives}
    result = []
    for metric, spec in table.items():
        if isinstance(spec, bool):
            raise ConfigError(f"search.thresholds.{metric}: expected a number or '>= X' / '<= X', got {spec!r}")
        if isinstance(spec, (int, float)):
            if metric not in by_metric:
                raise ConfigError(
                    f"search.thresholds.{metric}: {metric} is not an objective, so a bare number is ambiguous; "
                    f"write \">= {spec}\" or \"<= {spec}\""
                )
            operator = ">=" if by_metric[metric].direction == "maximize" else "<="
            value = float(spec)
        elif isinstance(spec, str):
            match = re.fullmatch(r"\s*(>=|<=)\s*([-+0-9.eE]+)\s*", spec)
            if not match:
                raise ConfigError(f"search.thresholds.{metric}: {spec!r} is not '>= X' or '<= X'")
            operator, text = match.groups()
            try:
                value = float(text)
            except ValueError:
                raise ConfigError(f"search.thresholds.{metric}: {text!r} is not a number") from None
        else:
            raise ConfigError(f"search.thresholds.{metric}: expected a number or '>= X' / '<= X', got {spec!r}")
        if not math.isfinite(value):
            raise ConfigError(f"search.thresholds.{metric}: {value} is not finite")
        result.append(Threshold(metric, operator, value))
    return tuple(result)


# ---------------------------------------------------------------- Pareto helpers
def _as_minimization(points: Sequence[Sequence[float]], directions: Sequence[str]) -> list[tuple[float, ...]]:
    signs = [-1.0 if d == "maximize" else 1.0 for d in directions]
    return [tuple(s * v for s, v in zip(signs, p)) for p in points]


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """``a`` dominates ``b`` (both as minimization)."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def dominates_in(a: Sequence[float], b: Sequence[float], directions: Sequence[str]) -> bool:
    """``a`` is at least as good as ``b`` on every objective and better on one (values in objective order)."""
    if len(a) != len(directions) or len(b) != len(directions):
        raise ValueError(f"dominates_in: {len(directions)} objectives, points {list(a)} and {list(b)}")
    x, y = _as_minimization([a, b], directions)
    return dominates(x, y)


def better_in_every(a: Sequence[float], b: Sequence[float], directions: Sequence[str]) -> bool:
    """``a`` is strictly better than ``b`` on every objective: what "better than the baseline" means
    (a student as large as the baseline but more accurate does not count; it only dominates it)."""
    if len(a) != len(directions) or len(b) != len(directions):
        raise ValueError(f"better_in_every: {len(directions)} objectives, points {list(a)} and {list(b)}")
    x, y = _as_minimization([a, b], directions)
    return all(p < q for p, q in zip(x, y))


def nondominated(points: Sequence[Sequence[float]], directions: Sequence[str]) -> list[int]:
    """Indices of the Pareto front (rank 0), in lexicographic order of the points as minimization."""
    values = _as_minimization(points, directions)
    return _first_front(values, sorted(range(len(values)), key=values.__getitem__))


def _first_front(values: Sequence[tuple[float, ...]], order: Sequence[int]) -> list[int]:
    """The non-dominated of ``order`` (indices in lexicographic order of ``values``): whatever dominates a
    point comes before it, and when anything does, a point already on the front does (O(n * front))."""
    front: list[int] = []
    for i in order:
        if not any(dominates(values[j], values[i]) for j in front):
            front.append(i)
    return front


def nondominated_ranks(points: Sequence[Sequence[float]], directions: Sequence[str]) -> list[int]:
    """Non-domination rank of each point (0: the Pareto front, 1: the front once rank 0 is removed...)."""
    values = _as_minimization(points, directions)
    ranks = [-1] * len(values)
    remaining = sorted(range(len(values)), key=values.__getitem__)
    rank = 0
    while remaining:
        front = set(_first_front(values, remaining))
        for i in front:
            ranks[i] = rank
        remaining = [i for i in remaining if i not in front]
        rank += 1
    return ranks


def hypervolume_2d(points: Sequence[Sequence[float]], reference: Sequence[float], directions: Sequence[str]) -> float:
    """Area dominated by ``points`` and bounded by ``reference`` (two objectives, any directions)."""
    if len(directions) != 2:
        raise ValueError("hypervolume_2d needs exactly two objectives")
    ref = _as_minimization([reference], directions)[0]
    pts = sorted(p for p in _as_minimization(points, directions) if p[0] < ref[0] and p[1] < ref[1])
    area, best_second = 0.0, ref[1]
    for first, second in pts:
        if second < best_second:
            area += (ref[0] - first) * (best_second - second)
            best_second = second
    return area
