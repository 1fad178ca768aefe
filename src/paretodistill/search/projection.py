"""How long a search will take, and on what: ``paretodistill search --plan``.

The 2020 experiment chose its hardware before its search: one baseline epoch timed on a T4 and on
a V100. ``--plan`` does the same for any config: a few steps of the study's baseline student (the
config's own student when there is no baseline) are timed on each device here
(``distill.engine.time_trial``), and the stages' budgets turn them into a projected wall clock.

For a device with timings (seconds) ``setup`` (a trial's start), ``step`` (one training step),
``eval`` (one window of an evaluation pass), ``latency`` (the latency measurement) and ``teacher``
(one window of the teacher's logits), and a stage of ``n`` trials of ``S`` steps, ``E``
validation passes over ``V`` windows and, when the stage scores the test part, one pass over
``T`` test windows::

    trial(stage)    = setup + S * step + (E * V + [test] * T) * eval + latency
    wall(stage, N)  = ceil(n / N) * trial(stage)          # N workers, trials of a stage alike
    teacher_logits  = (train windows + V) * teacher       # once, before the first trial (0 when cached)
    total(N)        = teacher_logits + wall(flash, N) + wall(regular, N) + wall(baseline, N)
    device_hours(N) = total(N) * (N on a GPU, one each; 1 on the CPU, whose cores the workers share) / 3600

On the CPU each trial's timings are those at the threads it will get: ``cores // min(N, n)``
(``training.threads`` when set), as the local backend shares the cores. The teacher's pass runs
on every core. The projection is written to ``STUDY/projection.json``; ``paretodistill status``
sets it beside the wall clock the stages took.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from optuna.trial import FrozenTrial

from paretodistill.config import ExperimentConfig, build_section, with_parameters
from paretodistill.distill.engine import DeviceTiming, TrialTimings, check_data, check_inputs
from paretodistill.errors import ConfigError
from paretodistill.progress import format_duration
from paretodistill.search.domain import BASELINE, FLASH, REGULAR
from paretodistill.search.plan import Baseline, SearchPlan, apply_budget, command_line_settings, plan_search
from paretodistill.search.preflight import check_metrics_computable
from paretodistill.search.worker import cpu_count

PROJECTION_FILE = "projection.json"
WARMUP_STEPS = 2  # timed steps that are not counted: the allocator's and the kernels' first calls
CONFIG_STUDENT = Baseline("config", {})  # the student timed when the search has no baseline


@dataclass(frozen=True)
class StageShape:
    """What each trial of one stage does."""

    name: str
    trials: int
    steps: int
    evaluations: int  # validation passes (curve points)
    test: bool  # one pass over the test windows too


@dataclass(frozen=True)
class DeviceProjection:
    """One device's row of the table."""

    device: str
    name: str
    precision: str
    step_s: float  # at a flash trial's threads
    trial_s: dict[str, float]  # seconds per trial, by stage
    stage_wall_s: dict[str, float]
    teacher_logits_s: float
    total_s: float
    device_hours: float


@dataclass(frozen=True)
class Projection:
    workers: int
    student: str  # the baseline's name, or "config"
    stages: tuple[StageShape, ...]
    devices: tuple[DeviceProjection, ...]
    windows: dict[str, int]
    teacher_logits_cached: bool
    timings: tuple[DeviceTiming, ...]
    measured: dict[str, Any]  # when, at what load, with how many timed steps

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def table(self) -> str:
        """The table ``--plan`` prints."""
        stages = [s.name for s in self.stages]
        header = ["device", "s/step", *[f"{s} trial" for s in stages], "teacher logits",
                  f"total, {self.workers} worker{'s' if self.workers > 1 else ''}", "device-hours"]
        rows = [[f"{d.name} ({d.precision})", f"{d.step_s:.3f}", *[format_duration(d.trial_s[s]) for s in stages],
                 format_duration(d.teacher_logits_s) + (" (cached)" if self.teacher_logits_cached else ""),
                 format_duration(d.total_s), f"{d.device_hours:.2f}"] for d in self.devices]
        widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
        return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in [header, *rows])


# ---------------------------------------------------------------- the arithmetic
def trial_seconds(timing: DeviceTiming, stage: StageShape, windows: dict[str, int]) -> float:
    """``trial(stage)`` of the module docstring."""
    passes = stage.evaluations * windows["validation"] + (windows["test"] if stage.test else 0)
    return timing.setup_s + stage.steps * timing.step_s + passes * timing.eval_window_s + timing.latency_s


def trial_threads(at_once: int, cores: int, fixed: int | None = None) -> int:
    """The CPU threads of a trial while ``at_once`` trials share ``cores`` (the local backend's rule)."""
    return fixed or max(1, cores // max(1, at_once))


def project_search(timings: TrialTimings, stages: tuple[StageShape, ...], workers: int, cores: int, *,
                   fixed_threads: int | None = None, student: str = "config", measured: dict | None = None) -> Projection:
    """The projection of the module docstring, one row per device timed."""
    windows = {"train": timings.train_windows, "validation": timings.validation_windows, "test": timings.test_windows}
    devices = []
    for device in dict.fromkeys(t.device for t in timings.timings):
        mine = [t for t in timings.timings if t.device == device]
        on_gpu = mine[0].threads is None

        def at(threads: int, mine=mine, on_gpu=on_gpu) -> DeviceTiming:
            return mine[0] if on_gpu else min(mine, key=lambda t: (abs(t.threads - threads), -t.threads))

        trial, wall = {}, {}
        for stage in stages:
            timing = at(trial_threads(min(workers, stage.trials), cores, fixed_threads))
            trial[stage.name] = trial_seconds(timing, stage, windows)
            wall[stage.name] = math.ceil(stage.trials / workers) * trial[stage.name]
        teacher = (windows["train"] + windows["validation"]) * at(cores).teacher_window_s
        total = (0.0 if timings.teacher_logits_cached else teacher) + sum(wall.values())
        flash = at(trial_threads(min(workers, stages[0].trials), cores, fixed_threads)) if stages else mine[0]
        devices.append(DeviceProjection(device, mine[0].name, mine[0].precision, flash.step_s, trial, wall, teacher,
                                        total, total * (workers if on_gpu else 1) / 3600))
    return Projection(workers, student, tuple(stages), tuple(devices), windows, timings.teacher_logits_cached,
                      tuple(timings.timings), dict(measured or {}))


# ---------------------------------------------------------------- the stages of a search
def stage_shapes(config: ExperimentConfig, plan: SearchPlan, params: dict, train_windows: int) -> tuple[StageShape, ...]:
    """Each stage's trials, steps and evaluation passes, with its budget and ``params`` (the timed student) applied."""
    from paretodistill.distill.engine import training_schedule

    settings = plan.settings

    def shape(name: str, trials: int, budget: dict, where: str, test: bool) -> StageShape:
        stage_config = with_parameters(build_section(ExperimentConfig, apply_budget(config.to_dict(), budget, where)), params)
        return StageShape(name, trials, *training_schedule(stage_config, train_windows), test)

    shapes = [shape(FLASH, settings.flash.n_trials, plan.flash_budget, "search.flash.budget", settings.flash.evaluate_test)]
    if settings.regular.top_k > 0:
        shapes.append(shape(REGULAR, min(settings.regular.top_k, settings.flash.n_trials), plan.regular_budget,
                            "search.regular.budget", True))
    if plan.baseline is not None:
        shapes.append(shape(BASELINE, 1, plan.regular_budget, "search.regular.budget", True))
    return tuple(s for s in shapes if s.trials > 0)


def plan_projection(config: ExperimentConfig, study_dir: str | Path | None = None, *, workers: int | None = None,
                    backend: str | None = None, n_trials: int | None = None, steps: int = 5,
                    log: Callable[[str], None] = print) -> Projection:
    """Check the search as ``run_search`` does, time its student, project it; print the table and
    write ``STUDY/projection.json`` when ``study_dir`` is given. No trial runs."""
    from paretodistill.distill.engine import time_trial

    if steps < 1:
        raise ConfigError(f"--plan-steps: expected an integer >= 1, got {steps}")
    settings = command_line_settings(config.search, workers=workers, backend=backend, n_trials=n_trials)
    data = check_data(config)
    check_metrics_computable(config, data.validation)
    inputs = check_inputs(config, data)
    plan = plan_search(config, settings, log, teacher_folder=inputs.students_folder)
    student = plan.baseline or CONFIG_STUDENT
    at_once = 1 if settings.backend == "inline" else settings.workers
    cores = cpu_count()
    sizes = (settings.flash.n_trials, settings.regular.top_k, 1)
    threads = sorted({trial_threads(min(at_once, n), cores, config.threads) for n in sizes if n > 0} | {cores})
    log(f"timing {steps} steps (after {WARMUP_STEPS}) of the {student.name} student on each device"
        f"{f', on {threads} CPU threads' if len(threads) > 1 else ''}")
    timings = time_trial(config, student.params, threads=threads, steps=steps, warmup=WARMUP_STEPS,
                         spawn=settings.backend == "local", log=log)
    measured = {"date": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "load_average": [round(x, 2) for x in os.getloadavg()],
                "steps": steps, "warmup_steps": WARMUP_STEPS, "cores": cores, "backend": settings.backend,
                "device_setting": config.device}
    projection = project_search(timings, stage_shapes(config, plan, student.params, timings.train_windows), at_once,
                                cores, fixed_threads=config.threads, student=student.name, measured=measured)
    log(projection.table())
    if study_dir is not None:
        path = write_projection(study_dir, projection)
        log(f"wrote {path}; no trial ran (paretodistill status {study_dir} sets it beside what the search takes)")
    return projection


# ---------------------------------------------------------------- the record, and what the search took
def write_projection(study_dir: str | Path, projection: Projection) -> Path:
    path = Path(study_dir) / PROJECTION_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(projection.to_dict(), indent=1) + "\n")
    return path


def read_projection(study_dir: str | Path) -> dict | None:
    """``projection.json``, or None when there is none (or it cannot be read)."""
    try:
        doc = json.loads((Path(study_dir) / PROJECTION_FILE).read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("devices") else None


def actual_seconds(trials: list[FrozenTrial]) -> float | None:
    """The wall clock trials took: the first start to the last end (None before one ended)."""
    starts = [t.datetime_start for t in trials if t.datetime_start and t.datetime_complete]
    ends = [t.datetime_complete for t in trials if t.datetime_start and t.datetime_complete]
    return (max(ends) - min(starts)).total_seconds() if ends else None


def projection_line(projection: dict, stage_trials: dict[str, list[FrozenTrial]]) -> str:
    """Projected against actual wall clock, for ``paretodistill status``: the row of the device the
    trials run on (a GPU when the config's device lets them, else the CPU)."""
    devices = projection["devices"]
    wants_cpu = projection.get("measured", {}).get("device_setting") == "cpu"
    row = next((d for d in devices if d["device"].startswith("cpu") == wants_cpu), devices[-1])
    walls = row["stage_wall_s"]
    parts = []
    for stage, trials in stage_trials.items():
        if stage in walls:
            took = actual_seconds(trials)
            parts.append(f"{stage} {format_duration(walls[stage])}/{format_duration(took) if took is not None else '-'}")
    took = actual_seconds([t for trials in stage_trials.values() for t in trials])
    load = projection.get("measured", {}).get("load_average")
    return (f"projection: trials {format_duration(sum(walls.values()))} projected on {row['name']}, "
            f"{projection['workers']} worker(s), against {format_duration(took) if took is not None else '-'} taken "
            f"(projected/taken: {', '.join(parts)}); teacher logits {format_duration(row['teacher_logits_s'])} projected"
            f"{f'; timed at load {load[0]}' if load else ''}")
