"""What one trial returns: the seam between the search and the distillation engine.

``run_trial(config, params) -> TrialResult`` (in ``paretodistill.distill.run``) is a plain
function: the search calls it in-process, in a worker process or as a Ray task, and never reaches
inside. A result is ``ok`` with metrics, ``failed`` with a reason the optimizer learns from, or
``stopped``: the caller's ``should_stop`` check ended training early at an evaluation point (the
result keeps the curve and that evaluation's metrics, and says why). It is plain data
(JSON-serializable) so it crosses process and machine boundaries.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

# "environment": the machine failed the trial, not its settings (a full disk, an unreadable file:
# an OSError); the search stops rather than spend its budget on trials that cannot succeed.
ENVIRONMENT = "environment"
# "node_lost": the cluster node running the trial died under it (a Ray backend's); like an interrupted
# trial it was never evaluated, so the search runs its share of the budget again and goes on.
NODE_LOST = "node_lost"
FAILURE_KINDS = ("out_of_memory", "diverged", "impossible_architecture", "interrupted", ENVIRONMENT, NODE_LOST, "error")
STOPPED = "stopped"


@dataclass(frozen=True)
class EvaluationPoint:
    """What a trial shows a ``should_stop`` check at one evaluation point of its training."""

    step: int
    total_steps: int
    metrics: dict[str, float]  # the curve point just recorded: loss, exact, best_exact, span_f1, ...
    known: dict[str, float]  # metrics already final before training ends (num_parameters)

    @property
    def progress(self) -> float:
        return self.step / self.total_steps


# Called at each evaluation point before the last; a reason (text) stops training there, None goes on.
ShouldStop = Callable[[EvaluationPoint], "str | None"]


@dataclass
class TrialResult:
    status: str  # "ok", "failed" or "stopped"
    params: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)  # validation metrics, size, latency, times
    curve: list[dict] = field(default_factory=list)  # one point per evaluation: step, loss, exact, f1, ...
    checkpoint: str | None = None  # a Hugging Face checkpoint folder, complete when metrics.json is there
    test_metrics: dict[str, float] | None = None  # only when the trial was asked to score test articles
    failure_kind: str | None = None  # one of FAILURE_KINDS
    failure_reason: str | None = None
    failure_step: int | None = None
    stop_reason: str | None = None  # why a stopped trial was stopped (the should_stop check's words)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def stopped(self) -> bool:
        return self.status == STOPPED

    @classmethod
    def failed(cls, params: dict, kind: str, reason: str, step: int | None = None, curve=None) -> "TrialResult":
        if kind not in FAILURE_KINDS:
            raise ValueError(f"unknown failure kind {kind!r}")
        return cls("failed", dict(params), curve=list(curve or []), failure_kind=kind,
                   failure_reason=reason, failure_step=step)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrialResult":
        return cls(**values)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=1, default=str))

    @classmethod
    def load(cls, path: str | Path) -> "TrialResult":
        return cls.from_dict(json.loads(Path(path).read_text()))
