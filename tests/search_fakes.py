"""Cheap stand-ins for ``paretodistill.distill.run.run_trial``, for the search tests.

Each is a closed-form function of the parameters (no torch, no data), with the real signature and
a real ``TrialResult``, so the search machinery is tested exactly as it runs, in milliseconds.
``exact`` grows with depth and peaks at a learning rate of about 2e-4; ``num_parameters`` is a
closed form of the architecture; a small deterministic "noise" depends on the parameters only.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
import time
from pathlib import Path

from paretodistill.config import with_parameters
from paretodistill.trial import STOPPED, EvaluationPoint, TrialResult

FAIL_FROM_LAYERS = 5  # failing_trial: out of memory from this many layers on


def _noise(params: dict) -> float:
    digest = hashlib.sha256(json.dumps(params, sort_keys=True, default=str).encode()).digest()
    return (digest[0] / 255.0 - 0.5)  # in [-0.5, 0.5]


def synthetic_metrics(config, params: dict) -> dict:
    """Validation metrics of a student, as a smooth function of its settings."""
    c = with_parameters(config, params)  # every parameter must reach the config, as in run_trial
    layers = c.student.num_layers
    heads = c.student.heads_per_layer or 12
    ffn = c.student.intermediate_size or 1536
    lr = c.training.learning_rate
    exact = (
        28.0
        + 7.0 * min(layers, 6)
        - 6.0 * (math.log10(lr) + 3.7) ** 2
        + 3.0 * c.distillation.soft_weight
        - 0.4 * (c.distillation.temperature - 3.0) ** 2
        + 0.3 * heads
        + _noise(params)
    )
    exact = max(0.0, min(100.0, exact))
    num_parameters = 12_000_000 + layers * (4 * 384 * 32 * heads + 2 * 384 * ffn)
    return {
        "exact": exact,
        "f1": min(100.0, exact + 3.0),
        "HasAns_exact": exact - 5.0,
        "HasAns_f1": exact - 2.0,
        "NoAns_exact": exact + 5.0,
        "NoAns_f1": exact + 5.0,
        "num_parameters": float(num_parameters),
        "latency_ms": 1.5 * layers + 0.05 * heads,
        "train_seconds": 0.01,
    }


def fake_trial(config, params, *, trial_dir=None, evaluate_test=False, log=print) -> TrialResult:
    """Always succeeds; writes a tiny checkpoint folder and scores 'test' when asked."""
    started = time.time()
    metrics = synthetic_metrics(config, params)
    log(f"fake trial {params}")
    checkpoint = None
    if trial_dir is not None:
        folder = Path(trial_dir) / "checkpoint"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "metrics.json").write_text(json.dumps(metrics))
        (Path(trial_dir) / "pid.txt").write_text(str(os.getpid()))
        checkpoint = str(folder)
    metrics["started_at"] = started
    metrics["ended_at"] = time.time()
    curve = [
        {"step": step, "loss": 3.0 / step, "exact": metrics["exact"] * step / 3, "f1": metrics["f1"] * step / 3,
         "HasAns_exact": metrics["HasAns_exact"] * step / 3, "NoAns_exact": metrics["NoAns_exact"] * step / 3}
        for step in (1, 2, 3)
    ]
    test = None
    if evaluate_test:
        test = {k: v - 1.0 if k in ("exact", "f1") else v for k, v in metrics.items()}
        test.pop("started_at"), test.pop("ended_at")
    return TrialResult("ok", dict(params), metrics=metrics, curve=curve, checkpoint=checkpoint, test_metrics=test)


LEARNING_STEPS = 4  # learning_trial: evaluation points, one per step


def learning_trial(config, params, *, trial_dir=None, evaluate_test=False, log=print, should_stop=None) -> TrialResult:
    """The fake student learning over LEARNING_STEPS evaluation points (exact rises 0.1 a point to its
    final value), asking ``should_stop`` at each but the last with its parameter count, as run_trial does."""
    result = fake_trial(config, params, trial_dir=trial_dir, evaluate_test=evaluate_test, log=log)
    final, size = result.metrics["exact"], result.metrics["num_parameters"]
    result.metrics["train_steps"] = float(LEARNING_STEPS)
    result.curve = [{"step": s, "exact": final - 0.1 * (LEARNING_STEPS - s)} for s in range(1, LEARNING_STEPS + 1)]
    for point in result.curve[:-1] if should_stop is not None else []:
        reason = should_stop(EvaluationPoint(point["step"], LEARNING_STEPS, dict(point), {"num_parameters": size}))
        if reason:
            metrics = {"exact": point["exact"], "num_parameters": size, "train_steps": float(point["step"])}
            return TrialResult(STOPPED, dict(params), metrics=metrics, curve=result.curve[: point["step"]],
                               stop_reason=reason)
    return result


def paced_learning_trial(config, params, *, trial_dir=None, evaluate_test=False, log=print, should_stop=None) -> TrialResult:
    """learning_trial taking ``FAKE_POINT_SECONDS`` (default 0.5 s) after each evaluation point but
    the last: for watching a curve arrive while the trial runs."""
    pace = float(os.environ.get("FAKE_POINT_SECONDS", "0.5"))

    def then_train_on(point: EvaluationPoint) -> str | None:
        reason = should_stop(point) if should_stop is not None else None
        time.sleep(pace)
        return reason

    return learning_trial(config, params, trial_dir=trial_dir, evaluate_test=evaluate_test, log=log,
                          should_stop=then_train_on)


def failing_trial(config, params, *, trial_dir=None, evaluate_test=False, log=print) -> TrialResult:
    """Runs out of memory (a failed result, as run_trial reports it) from FAIL_FROM_LAYERS layers on."""
    c = with_parameters(config, params)
    if c.student.num_layers >= FAIL_FROM_LAYERS:
        return TrialResult.failed(params, "out_of_memory", f"fake OOM with {c.student.num_layers} layers", step=3)
    return fake_trial(config, params, trial_dir=trial_dir, evaluate_test=evaluate_test, log=log)


def sleepy_trial(config, params, *, trial_dir=None, evaluate_test=False, log=print) -> TrialResult:
    """Takes a while (``FAKE_TRIAL_SECONDS``, default 1 s): for concurrency and kill -9 tests."""
    started = time.time()
    time.sleep(float(os.environ.get("FAKE_TRIAL_SECONDS", "1.0")))
    result = fake_trial(config, params, trial_dir=trial_dir, evaluate_test=evaluate_test, log=log)
    result.metrics["started_at"] = started
    return result


def crashing_trial(config, params, *, trial_dir=None, evaluate_test=False, log=print) -> TrialResult:
    """A bug in the trial function (it raises) or a hard crash of the worker process (os._exit)."""
    c = with_parameters(config, params)
    if c.student.num_layers == 1:
        os._exit(3)
    raise RuntimeError("fake bug in the trial function")


def full_disk_trial(config, params, *, trial_dir=None, evaluate_test=False, log=print) -> TrialResult:
    """The disk is full while the file ``FAKE_FULL_DISK`` names exists (an OSError, as writing a
    checkpoint on a full disk raises); afterwards the fake student."""
    flag = os.environ.get("FAKE_FULL_DISK")
    if flag and Path(flag).exists():
        raise OSError(28, "No space left on device", str(Path(trial_dir or ".") / "checkpoint"))
    return fake_trial(config, params, trial_dir=trial_dir, evaluate_test=evaluate_test, log=log)


def interrupted_trial(config, params, *, trial_dir=None, evaluate_test=False, log=print) -> TrialResult:
    """What run_trial returns when Ctrl-C reaches it mid-trial."""
    return TrialResult.failed(params, "interrupted", "KeyboardInterrupt while training")


def placed_trial(config, params, *, trial_dir=None, evaluate_test=False, log=print) -> TrialResult:
    """sleepy_trial that writes down where it runs, in ``seen.json`` of its trial folder: the GPUs its
    process sees (CUDA_VISIBLE_DEVICES) and, as a Ray task, its node; first when it starts (so that a
    test can kill its node while it sleeps), again with its end time when it ends."""
    node = None
    if "ray" in sys.modules and sys.modules["ray"].is_initialized():
        node = sys.modules["ray"].get_runtime_context().get_node_id()
    seen = {"devices": os.environ.get("CUDA_VISIBLE_DEVICES"), "node": node, "started": time.time()}
    if trial_dir is not None:
        (Path(trial_dir) / "seen.json").write_text(json.dumps(seen))
    result = sleepy_trial(config, params, trial_dir=trial_dir, evaluate_test=evaluate_test, log=log)
    if trial_dir is not None:
        (Path(trial_dir) / "seen.json").write_text(json.dumps({**seen, "ended": time.time()}))
    return result


def node_lost_once_trial(config, params, *, trial_dir=None, evaluate_test=False, log=print) -> TrialResult:
    """The first regular trial comes back ``node_lost`` (as the Ray backend reports a trial whose node
    died; the file ``FAKE_NODE_LOST_FLAG`` marks it done), every other trial is the fake student."""
    flag = Path(os.environ["FAKE_NODE_LOST_FLAG"])
    if Path(trial_dir or ".").name.startswith("regular-") and not flag.exists():
        flag.write_text("lost")
        return TrialResult.failed(params, "node_lost", "the Ray node running it (abc123) was lost (NodeDiedError)")
    return fake_trial(config, params, trial_dir=trial_dir, evaluate_test=evaluate_test, log=log)
