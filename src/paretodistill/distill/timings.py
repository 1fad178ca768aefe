"""What ``paretodistill search --plan`` measures of one trial (``distill.step_timing``), as plain
records the engine re-exports without importing torch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DeviceTiming:
    """What one trial's pieces cost on one device (and, on a CPU, one thread count), in seconds."""

    device: str  # "cpu", "cuda:0"
    name: str  # hardware.device.device_name
    threads: int | None  # the CPU threads it ran on (None: a GPU)
    precision: str  # bf16, fp16 or fp32, as a trial chooses
    step_s: float  # one training step at the student's batch size (the distillation objective, optimizer included)
    eval_window_s: float  # one window of an evaluation pass: the forward pass and its share of scoring
    teacher_window_s: float  # one window of the teacher's logits (the one-off pass before the first trial)
    latency_s: float  # the trial's latency measurement ([latency]; 0 when off)
    setup_s: float  # a trial's start: its process (local workers), the teacher, the cached data, the student


@dataclass(frozen=True)
class TrialTimings:
    """:func:`time_trial`'s answer: the timings, and the window counts of the configured data."""

    timings: tuple[DeviceTiming, ...]
    train_windows: int
    validation_windows: int
    test_windows: int
    teacher_logits_cached: bool  # the teacher's logits of these windows are in the cache already
