"""What one trial returns: the seam between the search and the distillation engine.

``run_trial(config, params) -> TrialResult`` (in ``paretodistill.distill.run``) is a plain
function: the search calls it in-process, in a worker process or as a Ray task, and never reaches
inside. A result is either ``ok`` with metrics, or ``failed`` with a reason the optimizer learns
from. It is plain data (JSON-serializable) so it crosses process and machine boundaries.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

# "environment": the machine failed the trial, not its settings (a full disk, an unreadable file:
# an OSError); the search stops rather than spend its budget on trials that cannot succeed.
ENVIRONMENT = "environment"
FAILURE_KINDS = ("out_of_memory", "diverged", "impossible_architecture", "interrupted", ENVIRONMENT, "error")


@dataclass
class TrialResult:
    status: str  # "ok" or "failed"
    params: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)  # validation metrics, size, latency, times
    curve: list[dict] = field(default_factory=list)  # one point per evaluation: step, loss, exact, f1, ...
    checkpoint: str | None = None  # a Hugging Face checkpoint folder, complete when metrics.json is there
    test_metrics: dict[str, float] | None = None  # only when the trial was asked to score test articles
    failure_kind: str | None = None  # one of FAILURE_KINDS
    failure_reason: str | None = None
    failure_step: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"

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
