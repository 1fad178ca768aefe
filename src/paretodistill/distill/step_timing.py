"""A few steps of one trial, timed piece by piece on each device: what ``search --plan`` projects from.

A search's wall clock is its trials' training steps, evaluation passes, latency measurements and
start-ups, plus the teacher's one-off pass over the windows. Each piece is timed here through the
trial's own code (``distill.run``'s build steps, the distillation objective, the training loop,
``predict_logits`` and the scoring) on the configured data's real windows, briefly: ``warmup``
steps that are not counted (the allocator, the kernels' first calls), then ``steps`` that are.
The teacher's logits of the trained windows are computed here too (that pass is the teacher's
timing), so the cache of the search is left as it was.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from paretodistill.config import ExperimentConfig, with_parameters
from paretodistill.data.features import default_cache_dir
from paretodistill.distill import run
from paretodistill.distill.objective import DistillationObjective, check_distill_settings, needs_teacher_forward
from paretodistill.distill.pretrained_student import start_from_pretrained
from paretodistill.distill.teacher_cache import STORED_DTYPE, TeacherLogits, cache_key, weights_fingerprint
from paretodistill.distill.timings import DeviceTiming, TrialTimings
from paretodistill.evaluation.inference import predict_logits, score_answers
from paretodistill.evaluation.postprocess import extract_answers
from paretodistill.hardware.device import device_model, device_name, training_precision, visible_devices
from paretodistill.models.student import resolve_teacher
from paretodistill.training.loop import evaluation_count, total_steps, train

EVAL_WINDOWS = 64  # validation windows of the timed forward pass (fewer when the part has fewer)


def training_schedule(config: ExperimentConfig, train_windows: int) -> tuple[int, int]:
    """The training steps of a trial of ``config`` on ``train_windows`` windows, and its validation passes."""
    training = config.training
    steps = total_steps(train_windows, training)
    return steps, evaluation_count(steps, math.ceil(train_windows / training.train_batch_size), training.eval_every_steps)


def time_trial(config: ExperimentConfig, params: dict, *, threads: Sequence[int | None] = (None,), steps: int = 5,
               warmup: int = 2, spawn: bool = False, log: Callable[[str], None] = print) -> TrialTimings:
    """Time a trial of ``params`` on every device here: each CUDA device, then the CPU at each of ``threads``.

    ``spawn``: the trials start in fresh processes (the local backend), whose imports are timed too.
    """
    config = with_parameters(config, params)
    check_distill_settings(config.distillation)
    start_up = import_seconds() if spawn else 0.0
    timings, data, kinds = [], None, set()
    for device in visible_devices():
        if device_model(device) in kinds:  # one of each kind of GPU
            continue
        kinds.add(device_model(device))
        for count in (threads if device.type == "cpu" else (None,)):
            timing, data = _time_on(config, device, count, steps, warmup, log)
            timings.append(dataclasses.replace(timing, setup_s=timing.setup_s + start_up))
    return TrialTimings(tuple(timings), len(data.train_features), len(data.validation_features),
                        len(data.test_features), _logits_cached(config, data))


def import_seconds() -> float:
    """What a fresh worker process spends before its trial: the interpreter and the trial's imports."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import paretodistill.distill.run"], check=True,
                   env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)})
    return time.perf_counter() - started


def _time_on(config: ExperimentConfig, device: torch.device, threads: int | None, steps: int, warmup: int,
             log: Callable[[str], None]):
    """One device's timing (and the prepared data, for its window counts); this process's threads are restored."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        precision = training_precision(device, config.training.bf16)
        started = time.perf_counter()
        teachers, data, student = _build(config, device, log)
        setup = time.perf_counter() - started
        batch = config.training.train_batch_size
        windows = data.train_features.take(np.random.default_rng(0).choice(
            len(data.train_features), batch * (warmup + steps), replace=len(data.train_features) < batch * (warmup + steps)))
        def label(features):
            return predict_logits(teachers.teacher, features, config.training.eval_batch_size, precision == "bf16")

        label(windows.take(np.arange(min(len(windows), config.training.eval_batch_size))))  # first calls: not counted
        teacher_s, logits = _timed(lambda: label(windows))
        step = _step_seconds(config, student, teachers.teacher, windows, logits, precision, steps, warmup)
        eval_window = _eval_window_seconds(config, student, data, precision == "bf16")
        latency = _timed(lambda: run.configured_latency(student, config))[0] if config.latency.enabled else 0.0
        cpu_threads = torch.get_num_threads() if device.type == "cpu" else None
        timing = DeviceTiming(str(device), device_model(device), cpu_threads, precision, step, eval_window,
                              teacher_s / len(windows), latency, setup)
        log(f"timed on {device_name(device)}: {step:.3f} s/step, {eval_window * 1000:.1f} ms per evaluated window")
        return timing, data
    finally:
        torch.set_num_threads(previous)
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()


def _build(config: ExperimentConfig, device: torch.device, log: Callable[[str], None]):
    """The teacher, the (cached) data and the student, as a trial's build step makes them."""
    teachers = run.load_teachers(config, device, log)
    architecture, pretrained = run.check_architecture(config, teachers)
    data = run.training_data(config, teachers.tokenizer, teachers.path, log)
    student = run.build_seeded_student(config, teachers, architecture, data, log)
    if pretrained is not None:
        start_from_pretrained(student, config.student.init_from)
    return teachers, data, student.to(device)


def _step_seconds(config: ExperimentConfig, student, teacher, windows, logits, precision: str, steps: int,
                  warmup: int) -> float:
    """Seconds per training step of the training loop, after ``warmup`` uncounted steps."""
    cached = TeacherLogits(logits[0].astype(STORED_DTYPE), logits[1].astype(STORED_DTYPE), np.asarray(windows.row_starts))
    objective = DistillationObjective(student, config.distillation, cached,
                                      teacher=teacher if needs_teacher_forward(config.distillation) else None,
                                      steps_per_epoch=warmup + steps)
    quiet = dataclasses.replace(config.training, eval_every_steps=None, log_every_steps=10**9, max_windows=None)
    try:
        if warmup:
            train(objective.model, windows, objective, dataclasses.replace(quiet, max_steps=warmup), precision=precision,
                  log=lambda _: None)
        timed = train(objective.model, windows, objective, dataclasses.replace(quiet, max_steps=steps), precision=precision,
                      log=lambda _: None)
    finally:
        objective.finish()
    return timed.train_seconds / steps


def _eval_window_seconds(config: ExperimentConfig, student, data, bf16: bool) -> float:
    """One validation window's share of an evaluation pass: the student's forward pass (timed on up
    to ``EVAL_WINDOWS`` windows) and the answer extraction and scoring (timed on the whole part,
    over random logits of its shape: their cost depends on the windows, not the values)."""
    features = data.validation_features
    sample = features.take(np.arange(min(len(features), EVAL_WINDOWS)))
    forward, _ = _timed(lambda: predict_logits(student, sample, config.training.eval_batch_size, bf16))
    rng = np.random.default_rng(0)
    start, end = (rng.standard_normal(features.num_tokens()).astype(np.float32) for _ in range(2))
    scoring, _ = _timed(lambda: score_answers(data.validation, extract_answers(data.validation.examples, features,
                                                                                  start, end), threshold=0.0))
    return forward / len(sample) + scoring / len(features)


def _timed(function):
    started = time.perf_counter()
    value = function()
    return time.perf_counter() - started, value


def _logits_cached(config: ExperimentConfig, data) -> bool:
    """Whether the teacher's logits of the training and validation windows are in the cache (either precision)."""
    weights = weights_fingerprint(resolve_teacher(config.teacher.path))
    root = Path(config.cache_dir) if config.cache_dir else default_cache_dir()
    return all(any((root / "teacher_logits" / cache_key(weights, features, precision) / "done").exists()
                   for precision in ("bf16", "fp32"))
               for features in (data.train_features, data.validation_features))
