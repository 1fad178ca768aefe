"""The training loop shared by teacher fine-tuning and distillation.

Reads top to bottom: AdamW (every searched setting reaches it), linear warm-up then linear decay,
length-bucketed batches, bf16 autocast where the hardware computes in bf16, gradient clipping,
evaluation after each epoch (and every N steps if asked) recorded as a learning curve, and a
resumable training state written atomically every few minutes so a killed run loses little.
The loss is a function of (model outputs, batch): the loop knows nothing of teachers. A caller's
``should_stop(step, total_steps, point)`` may end training at an evaluation point (a search
stopping a hopeless trial); it knows nothing of searches either.
"""

from __future__ import annotations

import math
import os
import pickle
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from transformers import get_linear_schedule_with_warmup

from paretodistill.config import TrainSettings
from paretodistill.data.features import Features
from paretodistill.hardware.device import autocast_context
from paretodistill.models.inputs import select_inputs
from paretodistill.progress import format_duration, remaining_seconds
from paretodistill.training.batching import Batch, collate, training_batches

LossFunction = Callable[[object, Batch], torch.Tensor]
Evaluator = Callable[[torch.nn.Module], dict[str, float]]
StopAt = Callable[[int, int, dict], "str | None"]  # (step, total steps, curve point) -> a reason to stop, or None

STATE_FILE = "train_state.pt"


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite: the run cannot produce a usable model."""

    def __init__(self, step: int, loss: float):
        super().__init__(f"loss became {loss} at step {step}")
        self.step = step
        self.loss = loss


@dataclass
class TrainResult:
    steps: int
    epochs: float
    train_seconds: float
    examples_seen: int
    tokens_seen: int
    # This process's CPU time while training (all its threads): the cost that other runs sharing the
    # cores do not inflate, which comparisons at equal compute need.
    train_cpu_seconds: float = 0.0
    curve: list[dict] = field(default_factory=list)
    stop_reason: str | None = None  # should_stop ended training early (steps and epochs are then those run)

    @property
    def examples_per_second(self) -> float:
        return self.examples_seen / self.train_seconds if self.train_seconds else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "examples_per_second": self.examples_per_second}


def build_optimizer(model: torch.nn.Module, settings: TrainSettings) -> torch.optim.AdamW:
    """AdamW with the searched lr, betas, epsilon and weight decay; no decay on biases and LayerNorms."""
    decay, no_decay = [], []
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        (no_decay if parameter.ndim < 2 or "LayerNorm" in name else decay).append(parameter)
    return torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": settings.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=settings.learning_rate,
        betas=(settings.beta1, settings.beta2),
        eps=settings.epsilon,
        fused=next(model.parameters()).device.type in ("cpu", "cuda"),  # one kernel over all tensors
    )


def total_steps(num_features: int, settings: TrainSettings) -> int:
    """The run's optimizer steps: from ``max_windows`` when set, else ``max_steps``, else ``epochs``."""
    if (steps := settings.budget_steps()) is not None:
        return steps
    return max(1, math.ceil(settings.epochs * math.ceil(num_features / settings.train_batch_size)))


def evaluation_count(steps: int, per_epoch: int, every: int | None) -> int:
    """How many curve points (validation passes) a run of ``steps`` makes: one at each epoch end,
    every ``every`` steps, and at the last step, each step counted once (as :func:`train` evaluates)."""
    points = set(range(per_epoch, steps + 1, per_epoch)) | {steps}
    if every:
        points |= set(range(every, steps + 1, every))
    return len(points)


def warmup_steps(total: int, settings: TrainSettings) -> int:
    """``settings.warmup_steps`` when set, else ``warmup_ratio`` of the run's ``total`` steps."""
    if settings.warmup_steps is not None:
        return settings.warmup_steps
    return round(settings.warmup_ratio * total)


def train(
    model: torch.nn.Module,
    features: Features,
    loss_function: LossFunction,
    settings: TrainSettings,
    *,
    use_bf16: bool = False,
    precision: str | None = None,
    evaluator: Evaluator | None = None,
    state_dir: str | Path | None = None,
    should_stop: StopAt | None = None,
    log: Callable[[str], None] = print,
) -> TrainResult:
    """Train ``model`` in place; resumes from ``state_dir`` when a state from the same run is there.

    ``precision`` ("bf16", "fp16", "fp32"; default from ``use_bf16``) is the autocast dtype; fp16
    scales the loss with a GradScaler, since fp16 gradients underflow without it. ``should_stop``
    is asked after every curve point but the last; a reason it returns ends training there.
    """
    device = next(model.parameters()).device
    precision = precision or ("bf16" if use_bf16 else "fp32")
    scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None
    torch.manual_seed(settings.seed)
    optimizer = build_optimizer(model, settings)
    steps = total_steps(len(features), settings)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup_steps(steps, settings), steps)
    per_epoch = math.ceil(len(features) / settings.train_batch_size)
    lengths = np.asarray(features.lengths)

    result = TrainResult(steps=steps, epochs=steps / per_epoch, train_seconds=0.0, examples_seen=0, tokens_seen=0)
    start_step = 0
    state_path = Path(state_dir) / STATE_FILE if state_dir else None
    if state_path is not None and state_path.exists():
        start_step = _load_state(state_path, model, optimizer, scheduler, result, settings)
        log(f"resumed at step {start_step}/{steps}")

    model.train()
    epoch_batches: dict[int, list[np.ndarray]] = {}
    running_loss, running_count = 0.0, 0
    last_state_time = time.monotonic()
    started = _clock_start(result)
    for step in range(start_step, steps):
        epoch, position = divmod(step, per_epoch)
        if epoch not in epoch_batches:
            epoch_batches = {epoch: training_batches(lengths, settings.train_batch_size, settings.seed, epoch)}
        batch = collate(features, epoch_batches[epoch][position]).to(device)

        with autocast_context(device, precision):
            outputs = model(**select_inputs(model, batch.model_inputs()))
            loss = loss_function(outputs, batch)
        loss_value = float(loss.detach())
        if not math.isfinite(loss_value):
            raise TrainingDiverged(step, loss_value)
        if scaler is None:
            loss.backward()
        else:
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)  # clip the true gradients
        if settings.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
        if scaler is None:
            optimizer.step()
        else:
            scaler.step(optimizer)  # skips the step when the scaled gradients overflowed
            scaler.update()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)

        running_loss += loss_value
        running_count += 1
        result.examples_seen += len(batch.indices)
        result.tokens_seen += int(batch.attention_mask.sum())
        done = step + 1
        if done % settings.log_every_steps == 0:
            elapsed = time.perf_counter() - started[0]
            log(
                f"step {done}/{steps} epoch {done / per_epoch:.2f} loss {running_loss / running_count:.4f} "
                f"{result.examples_seen / elapsed:.1f} examples/s, "
                f"ETA {format_duration(remaining_seconds(elapsed, done, steps - done))}"
            )
        end_of_epoch = done % per_epoch == 0 or done == steps
        periodic = settings.eval_every_steps and done % settings.eval_every_steps == 0
        if end_of_epoch or periodic:
            _clock_stop(result, started)
            point = {"step": done, "epoch": round(done / per_epoch, 4), "loss": running_loss / max(running_count, 1)}
            running_loss, running_count = 0.0, 0
            if evaluator is not None:
                point.update(evaluator(model))
                model.train()
            result.curve.append(point)
            log(f"curve point {point}")
            started = _clock_start(result)  # evaluation time is not training time
            reason = should_stop(done, steps, point) if should_stop is not None and done < steps else None
            if reason:
                result.steps, result.epochs, result.stop_reason = done, done / per_epoch, reason
                log(f"stopped at step {done}/{steps}: {reason}")
                break
        if state_path is not None and (
            time.monotonic() - last_state_time > settings.state_every_seconds and done < steps
        ):
            _clock_stop(result, started)
            _save_state(state_path, done, model, optimizer, scheduler, result, settings)
            last_state_time = time.monotonic()

    _clock_stop(result, started)
    if state_path is not None and state_path.exists():
        state_path.unlink()  # the finished model is saved by the caller; the state is no longer needed
    return result


def _clock_start(result: TrainResult) -> tuple[float, float]:
    """Wall and CPU clocks set back by the training time already counted (a resumed or evaluated run)."""
    return time.perf_counter() - result.train_seconds, time.process_time() - result.train_cpu_seconds


def _clock_stop(result: TrainResult, started: tuple[float, float]) -> None:
    result.train_seconds = time.perf_counter() - started[0]
    result.train_cpu_seconds = time.process_time() - started[1]


def _save_state(path: Path, step: int, model, optimizer, scheduler, result: TrainResult, settings) -> None:
    """Write the resumable state to a temporary file and rename it, so a kill never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    torch.save(
        {
            "step": step,
            "settings": asdict(settings),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "result": asdict(result),
            "torch_rng": torch.get_rng_state(),
        },
        temporary,
    )
    os.replace(temporary, path)


def _load_state(path: Path, model, optimizer, scheduler, result: TrainResult, settings) -> int:
    # weights_only: a state file is data; a planted or tampered one must not run code when loaded.
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        reason = str(error).splitlines()[0]
        raise RuntimeError(f"{path} is not a training state paretodistill wrote ({reason}); "
                           "remove it to start afresh") from None
    if state["settings"] != asdict(settings):
        raise RuntimeError(f"{path} was written by a run with other settings; remove it to start afresh")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    for key, value in state["result"].items():
        setattr(result, key, value)
    torch.set_rng_state(state["torch_rng"])
    return int(state["step"])
