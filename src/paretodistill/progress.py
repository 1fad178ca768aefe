"""What a long run prints: the ETAs every stage gives, said the way a person reads them, and no
library reports among them."""

from __future__ import annotations

import os


def remaining_seconds(elapsed: float, steps_done: int, steps_left: int) -> float:
    """Time left at a run's own pace so far."""
    return elapsed / max(steps_done, 1) * steps_left


def stage_eta(mean_seconds: float, remaining: int, running: int) -> float:
    """Seconds until a stage's remaining trials are done, at the mean trial time so far, with the
    slots now busy (plus the one just freed) working in parallel."""
    if remaining <= 0:
        return 0.0
    return mean_seconds * remaining / max(1, min(remaining, running + 1))


def format_duration(seconds: float) -> str:
    """``1 h 05 min``, ``4 min 10 s`` or ``12 s``: an ETA read at a glance."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"

# transformers' per-load reports ("LOAD REPORT", missing/unexpected keys) and weight-loading
# progress bars would drown the main job's own progress lines; a user can still ask for them by
# setting these variables. Set before transformers is imported; worker processes inherit them.
QUIET_LIBRARIES = {"TRANSFORMERS_VERBOSITY": "error", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}


def quiet_libraries() -> None:
    for name, value in QUIET_LIBRARIES.items():
        os.environ.setdefault(name, value)
