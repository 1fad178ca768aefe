"""Running trials: asynchronous workers around one Optuna study.

The coordinator keeps ``workers`` trials running at once and asks the sampler for a new one as
soon as any finishes (no waiting for a whole batch: trials take very different times). Each
finished trial is told to the study at once. Only the coordinator touches the database; a worker
gets a plain spec (config dict, params, trial folder) and returns plain data.

Backends share that loop (:func:`drive`) and differ only in where a trial runs:

* ``local``: one fresh process per trial (spawn), with ``cores // workers`` threads or one GPU
  each. A fresh process gives back all memory after every trial and tells exactly which trial
  died when one is killed (e.g. by the out-of-memory killer); on Linux it also dies with the
  coordinator, so a ``kill -9`` leaves no orphan training.
* ``inline``: in the coordinator itself, one at a time (debugging, fast tests).
* ``ray``: Ray tasks, see :mod:`paretodistill.search.ray_backend`.
"""

from __future__ import annotations

import importlib
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import sys
import time
import traceback
import warnings
from pathlib import Path
from typing import Any, Callable

from paretodistill.trial import TrialResult

DEFAULT_TRIAL_FUNCTION = "paretodistill.distill.run:run_trial"


# ---------------------------------------------------------------- inside a worker
def load_trial_function(path: str) -> Callable:
    """``"package.module:function"`` -> the function."""
    if ":" not in path:
        raise ValueError(f"trial function {path!r}: expected 'module:function'")
    module_name, attr = path.split(":", 1)
    function = importlib.import_module(module_name)
    for part in attr.split("."):
        function = getattr(function, part)
    return function


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def execute_spec(spec: dict, *, in_worker: bool = False) -> dict:
    """Run one trial from its spec; never raises. Returns ``{"result": TrialResult dict, "worker": ...}``.

    ``in_worker``: this process exists for the trial, so its environment (GPU, thread count,
    import path) may be set up for it; in the coordinator itself (inline) nothing is touched.
    """
    started = time.time()
    threads = spec.get("threads")
    if in_worker:
        for entry in spec.get("sys_path") or ():
            if entry not in sys.path:
                sys.path.append(entry)
        if spec.get("cuda_visible_devices") is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = str(spec["cuda_visible_devices"])
        if threads:  # before torch is imported, so that its thread pools start at this size
            for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
                os.environ[name] = str(threads)
    trial_dir = Path(spec["trial_dir"])
    trial_dir.mkdir(parents=True, exist_ok=True)
    log_file = trial_dir / "trial.log"

    def log(message: str) -> None:
        with log_file.open("a") as handle:
            handle.write(f"{message}\n")

    params = dict(spec["params"])
    try:
        from paretodistill.config import ExperimentConfig, build_section

        function = load_trial_function(spec["trial_function"])
        if in_worker and threads and "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(int(threads))
        config = build_section(ExperimentConfig, spec["config"])
        result = function(config, params, trial_dir=trial_dir, evaluate_test=bool(spec.get("evaluate_test")), log=log)
        if isinstance(result, dict):
            result = TrialResult.from_dict(result)
        if not isinstance(result, TrialResult):
            raise TypeError(f"the trial function returned {type(result).__name__}, not a TrialResult")
    except Exception as error:  # noqa: BLE001 - a bug in a trial must not take the search down
        log(traceback.format_exc())
        result = TrialResult.failed(params, "error", f"{type(error).__name__}: {error}"[:2000])
    try:
        result.save(trial_dir / "result.json")
    except (OSError, TypeError):
        pass
    return {
        "result": result.to_dict(),
        "worker": {"pid": os.getpid(), "host": socket.gethostname(), "seconds": round(time.time() - started, 3)},
    }


def _die_with_parent(parent_pid: int) -> None:
    """Linux: get SIGTERM when the coordinator dies, even by SIGKILL (no orphaned training)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _to_file(trial_dir: str) -> None:
    """A worker's stdout / stderr (library progress bars, warnings) go to ``trial_dir/worker.out``,
    keeping the coordinator's one-line-per-event display readable."""
    try:
        Path(trial_dir).mkdir(parents=True, exist_ok=True)
        fd = os.open(Path(trial_dir) / "worker.out", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        sys.stdout.flush(), sys.stderr.flush()
        os.dup2(fd, 1), os.dup2(fd, 2)
        os.close(fd)
    except OSError:
        pass


def _process_main(spec: dict, conn, parent_pid: int) -> None:
    _die_with_parent(parent_pid)
    _to_file(spec["trial_dir"])
    payload = execute_spec(spec, in_worker=True)
    try:
        conn.send(payload)
    except (BrokenPipeError, EOFError, OSError):
        pass
    finally:
        conn.close()


def failure_payload(spec: dict, kind: str, reason: str) -> dict:
    return {"result": TrialResult.failed(spec["params"], kind, reason).to_dict(), "worker": {}}


# ---------------------------------------------------------------- backends
class InlineBackend:
    """Trials in the coordinator, one at a time."""

    name = "inline"

    def __init__(self, workers: int = 1):
        self.capacity = 1
        self._done: list[tuple[Any, dict]] = []

    def threads_per_trial(self) -> int | None:
        return None

    def submit(self, key: Any, spec: dict) -> None:
        self._done.append((key, execute_spec(spec)))

    def wait(self, timeout: float) -> list[tuple[Any, dict]]:
        done, self._done = self._done, []
        return done

    def running(self) -> list[Any]:
        return []

    def stop(self) -> None:
        self._done = []

    def close(self) -> None:
        pass


class LocalProcessBackend:
    """One spawned process per trial, at most ``workers`` at once."""

    name = "local"

    def __init__(self, workers: int = 1, *, gpus: list[str] | None = None):
        self.capacity = max(1, int(workers))
        self._context = multiprocessing.get_context("spawn")
        self._running: dict[Any, tuple[Any, Any, dict, str | None]] = {}
        self._gpus = list(gpus or [])

    def threads_per_trial(self) -> int:
        return max(1, cpu_count() // self.capacity)

    def _free_gpu(self) -> str | None:
        if not self._gpus:
            return None
        busy = [entry[3] for entry in self._running.values()]
        for gpu in self._gpus:
            if gpu not in busy:
                return gpu
        return self._gpus[len(self._running) % len(self._gpus)]  # more workers than GPUs: share

    def submit(self, key: Any, spec: dict) -> None:
        gpu = self._free_gpu()
        spec = {**spec, "cuda_visible_devices": gpu if gpu is not None else spec.get("cuda_visible_devices")}
        receiver, sender = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=_process_main, args=(spec, sender, os.getpid()), name=f"paretodistill-trial-{key}"
        )
        process.start()
        sender.close()
        self._running[key] = (process, receiver, spec, gpu)

    def running(self) -> list[Any]:
        return list(self._running)

    def wait(self, timeout: float) -> list[tuple[Any, dict]]:
        if not self._running:
            return []
        waitables = {}
        for key, (process, receiver, _, _) in self._running.items():
            waitables[receiver] = key
            waitables[process.sentinel] = key
        ready = multiprocessing.connection.wait(list(waitables), timeout=timeout)
        finished = []
        for key in dict.fromkeys(waitables[r] for r in ready):
            if key not in self._running:
                continue
            process, receiver, spec, _ = self._running.pop(key)
            payload = None
            try:
                if receiver.poll():
                    payload = receiver.recv()
            except (EOFError, OSError):
                payload = None
            process.join(timeout=30)
            receiver.close()
            if payload is None:
                code = process.exitcode
                how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
                hint = " (SIGKILL: often the out-of-memory killer)" if code == -signal.SIGKILL else ""
                payload = failure_payload(spec, "error", f"the worker process {how}{hint} before returning a result")
            finished.append((key, payload))
        return finished

    def stop(self) -> None:
        for process, receiver, _, _ in self._running.values():
            if process.is_alive():
                process.terminate()
        for process, receiver, _, _ in self._running.values():
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
            receiver.close()
        self._running.clear()

    def close(self) -> None:
        self.stop()


def visible_gpus(device: str = "auto") -> list[str]:
    """GPU ids to hand out one per worker; none on CPU-only machines (checked without CUDA init)."""
    if device == "cpu":
        return []
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip() and g.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        import torch

        return [str(i) for i in range(torch.cuda.device_count())]
    except Exception:  # noqa: BLE001
        return []


def make_backend(kind: str, workers: int, *, address: str | None = None, device: str = "auto",
                 ray_options: dict | None = None):
    kind = (kind or "local").lower()
    if kind == "local":
        return LocalProcessBackend(workers, gpus=visible_gpus(device))
    if kind == "inline":
        return InlineBackend(workers)
    if kind == "ray":
        from paretodistill.search.ray_backend import RayBackend

        return RayBackend(workers, address=address, **(ray_options or {}))
    from paretodistill.errors import ConfigError

    raise ConfigError(f"unknown backend {kind!r}; expected local, ray or inline")


# ---------------------------------------------------------------- progress
class Progress:
    """One line per event (works the same on a terminal and in a log file)."""

    def __init__(self, objectives, log: Callable[[str], None] = print, listeners: list | None = None):
        self.objectives = objectives
        self.log = log
        self.durations: list[float] = []
        self.listeners = list(listeners or [])  # e.g. search.tracking's MLflow tracker: trial_finished(stage, frozen)

    @staticmethod
    def _short(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3g}"
        return str(value)

    def started(self, stage: str, number: int, params: dict) -> None:
        shown = ", ".join(f"{k}={self._short(v)}" for k, v in params.items())
        self.log(f"[{stage}] trial {number} started: {shown}")

    def finished(self, stage: str, frozen, seconds: float, tally: dict, frontier_size: int, n_target: int) -> None:
        self.durations.append(seconds)
        mean = sum(self.durations) / len(self.durations)
        if frozen.values is not None:
            what = ", ".join(f"{m} {self._fmt_metric(m, v)}" for m, v in zip(self.objectives.metric_names, frozen.values))
            head = f"ok ({what})"
        else:
            kind = frozen.user_attrs.get("failure_kind") or "error"
            step = frozen.user_attrs.get("failure_step")
            reason = (frozen.user_attrs.get("failure_reason") or "").splitlines()[0:1]
            head = f"FAILED {kind}{f' at step {step}' if step is not None else ''}: {reason[0][:120] if reason else ''}"
        self.log(
            f"[{stage}] trial {frozen.number} {head} in {seconds:.1f} s | {tally['finished']}/{n_target} done, "
            f"{tally['running']} running, {tally['failed']} failed, frontier {frontier_size}, {mean:.1f} s/trial"
        )
        for listener in self.listeners:
            listener.trial_finished(stage, frozen)

    @staticmethod
    def _fmt_metric(name: str, value: float) -> str:
        if name == "num_parameters":
            return f"{value / 1e6:.2f}M"
        return f"{value:.4g}"


# ---------------------------------------------------------------- the loop
def ask(study, distributions: dict):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "heartbeat is supposed to be used with Study.optimize": we beat ourselves
        return study.ask(fixed_distributions=distributions)


def drive(
    study,
    *,
    stage: str,
    n_target: int,
    distributions: dict,
    make_spec: Callable[[Any], dict],
    backend,
    objectives,
    token: str,
    progress: Progress,
    heartbeat_interval: float = 30.0,
    only_enqueued: bool = False,
    log: Callable[[str], None] = print,
) -> dict:
    """Run trials of ``study`` until ``n_target`` of them have finished (interrupted ones not counted).

    ``only_enqueued``: take only trials waiting in the queue (regular and baseline stages), never
    ask the sampler for new ones. Returns the final tally.
    """
    from optuna.trial import TrialState

    from paretodistill.search.study import (
        INTERRUPTED,
        counts,
        frontier,
        is_finished,
        owner_record,
        record_result,
        recover_interrupted,
    )

    storage = study._storage
    running: dict[int, tuple[Any, float]] = {}
    last_recover = last_beat = -float("inf")
    try:
        while True:
            now = time.monotonic()
            if now - last_recover >= heartbeat_interval:
                recover_interrupted(study, token, log)
                last_recover = now
            trials = study.get_trials(deepcopy=False)
            finished = sum(1 for t in trials if is_finished(t))
            waiting = sum(1 for t in trials if t.state == TrialState.WAITING)
            to_start = min(backend.capacity - len(running), n_target - finished - len(running))
            if only_enqueued:
                to_start = min(to_start, waiting)
            for _ in range(max(0, to_start)):
                trial = ask(study, distributions)
                trial.set_user_attr("coordinator", owner_record(token))
                spec = make_spec(trial)
                trial.set_user_attr("trial_dir", spec["trial_dir"])
                _beat(storage, trial)
                running[trial.number] = (trial, time.time())
                progress.started(stage, trial.number, trial.params)
                backend.submit(trial.number, spec)
            if not running:
                break
            for key, payload in backend.wait(timeout=min(heartbeat_interval, 5.0) if backend.name != "inline" else 0):
                trial, started = running.pop(key)
                result = TrialResult.from_dict(payload["result"])
                frozen = record_result(
                    study, trial, result, objectives,
                    extra_attrs={"worker": payload.get("worker") or {}, "duration_s": round(time.time() - started, 3)},
                )
                all_trials = study.get_trials(deepcopy=False)
                tally = counts(all_trials)
                progress.finished(stage, frozen, time.time() - started, tally, len(frontier(all_trials, objectives)), n_target)
                if result.failure_kind == INTERRUPTED:
                    # run_trial turns Ctrl-C into an "interrupted" result: stop, as its contract asks
                    raise KeyboardInterrupt(f"trial {frozen.number} was interrupted")
            if running and time.monotonic() - last_beat >= heartbeat_interval / 2:
                for trial, _ in running.values():
                    _beat(storage, trial)
                last_beat = time.monotonic()
    except BaseException:
        _abandon(study, running, backend, "the search was stopped (interrupted or crashed) while the trial ran")
        raise
    return counts(study.get_trials(deepcopy=False))


def _beat(storage, trial) -> None:
    """Record a heartbeat where the storage keeps them (RDBStorage with heartbeat_interval)."""
    if getattr(storage, "get_heartbeat_interval", lambda: None)() is not None:
        storage.record_heartbeat(trial._trial_id)


def _abandon(study, running: dict, backend, reason: str) -> None:
    """On Ctrl-C or an error: stop the workers and mark their trials interrupted (budget not spent)."""
    from optuna.trial import TrialState

    from paretodistill.search.study import INTERRUPTED

    try:
        backend.stop()
    except Exception:  # noqa: BLE001
        pass
    for trial, _ in running.values():
        try:
            trial.set_user_attr("failure_kind", INTERRUPTED)
            trial.set_user_attr("failure_reason", f"interrupted: {reason}")
            study.tell(trial, state=TrialState.FAIL)
        except Exception:  # noqa: BLE001 - the database itself may be what failed
            pass
