"""Time left, said the way a person reads it: the ETAs that every stage of a long run prints."""

from __future__ import annotations


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
