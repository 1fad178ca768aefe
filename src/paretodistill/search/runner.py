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

import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import threading
import time
import warnings
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from optuna.trial import TrialState

from paretodistill.config import cuda_device_id
from paretodistill.errors import ConfigError, EnvironmentFailure
from paretodistill.progress import format_duration, stage_eta
from paretodistill.search.optuna_adapter import storage_of, trial_id
from paretodistill.search.results import INTERRUPTED, Attr, StoredTrial, counts, frontier, stored_trials
from paretodistill.search.study import (
    mark_interrupted,
    owner_record,
    record_curve_point,
    record_result,
    recover_interrupted,
    requeue,
)
from paretodistill.search.worker import (
    CURVE_POINT,
    PLACEMENT,
    WorkerSpec,
    cpu_count,
    execute_spec,
    failure_payload,
    process_main,
)
from paretodistill.trial import ENVIRONMENT, NODE_LOST, TrialResult

_logger = logging.getLogger("paretodistill.search")


# ---------------------------------------------------------------- backends
class InlineBackend:
    """Trials in the coordinator, one at a time."""

    name = "inline"

    def __init__(self, workers: int = 1):
        self.capacity = 1
        self._done: list[tuple[Any, dict]] = []

    def threads_per_trial(self, at_once: int | None = None) -> int | None:
        return None

    def submit(self, key: Any, spec: WorkerSpec) -> None:
        def on_point(point: dict) -> None:  # told after the trial: it holds the coordinator while it runs
            self._done.append((key, {CURVE_POINT: point}))

        self._done.append((key, execute_spec(spec, on_point=on_point)))

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
        self._running: dict[Any, tuple[Any, Any, WorkerSpec, str | None]] = {}
        self._gpus = list(gpus or [])

    def threads_per_trial(self, at_once: int | None = None) -> int:
        """The cores shared by the trials that run together (``at_once``: fewer than the workers,
        as in a stage of one trial, the baseline's, which then gets every core)."""
        return max(1, cpu_count() // min(self.capacity, max(1, at_once or self.capacity)))

    def _free_gpu(self) -> str | None:
        if not self._gpus:
            return None
        busy = [entry[3] for entry in self._running.values()]
        for gpu in self._gpus:
            if gpu not in busy:
                return gpu
        return self._gpus[len(self._running) % len(self._gpus)]  # more workers than GPUs: share

    def submit(self, key: Any, spec: WorkerSpec) -> None:
        gpu = self._free_gpu()
        if gpu is not None:
            spec = spec.on_gpu(gpu)
        receiver, sender = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=process_main, args=(spec, sender, os.getpid()), name=f"paretodistill-trial-{key}"
        )
        process.start()
        sender.close()
        self._running[key] = (process, receiver, spec, gpu)

    def running(self) -> list[Any]:
        return list(self._running)

    def wait(self, timeout: float) -> list[tuple[Any, dict]]:
        """(key, message) for every message that arrived: a running trial's curve points
        (``{CURVE_POINT: point}``), then its payload when it ended (a failure when it died first)."""
        if not self._running:
            return []
        waitables = {}
        for key, (process, receiver, _, _) in self._running.items():
            waitables[receiver] = key
            waitables[process.sentinel] = key
        ready = multiprocessing.connection.wait(list(waitables), timeout=timeout)
        messages = []
        for key in dict.fromkeys(waitables[r] for r in ready):
            if key in self._running:
                messages += self._read(key)
        return messages

    def _read(self, key: Any) -> list[tuple[Any, dict]]:
        """What trial ``key`` sent; when it ended, its payload last and the trial no longer running."""
        process, receiver, spec, gpu = self._running[key]
        messages, payload, closed = [], None, False
        try:
            while payload is None and receiver.poll():
                message = receiver.recv()
                if CURVE_POINT in message:
                    messages.append((key, message))
                else:
                    payload = message
        except (EOFError, OSError):
            closed = True  # the worker is gone without (more) words
        if payload is None and not closed and process.is_alive():
            return messages  # still training
        del self._running[key]
        process.join(timeout=30)
        receiver.close()
        if payload is None:
            code = process.exitcode
            how = f"was killed by signal {-code}" if code is not None and code < 0 else f"exited with code {code}"
            hint = " (SIGKILL: often the out-of-memory killer)" if code == -signal.SIGKILL else ""
            payload = failure_payload(spec, "error", f"the worker process {how}{hint} before returning a result",
                                      where={"node": None, "devices": gpu})
        return [*messages, (key, payload)]

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


def visible_gpus(device: str = "auto", declared: tuple[str, ...] | list[str] | None = None) -> list[str]:
    """GPU ids to hand out one per worker; none on CPU-only machines (checked without CUDA init).

    ``declared`` (``search.devices``): exactly these, as CUDA_VISIBLE_DEVICES names them (``"cuda:1"``
    is ``"1"``), with no detection: a subset of the machine's GPUs, or GPUs this process cannot see."""
    if device == "cpu":
        return []
    if declared:
        return [cuda_device_id(d) for d in declared]
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g.strip() for g in env.split(",") if g.strip() and g.strip() != "-1"]
    if shutil.which("nvidia-smi") is None:
        return []
    import torch  # only on a machine with nvidia-smi; torch is a dependency

    return [str(i) for i in range(torch.cuda.device_count())]


def make_backend(kind: str, workers: int, *, address: str | None = None, device: str = "auto",
                 ray_options: dict | None = None, devices: tuple[str, ...] | None = None):
    kind = (kind or "local").lower()
    if kind == "local":
        return LocalProcessBackend(workers, gpus=visible_gpus(device, devices))
    if kind == "inline":
        return InlineBackend(workers)
    if kind == "ray":
        from paretodistill.search.ray_backend import RayBackend

        return RayBackend(workers, address=address, **(ray_options or {}))
    raise ConfigError(f"unknown backend {kind!r}; expected local, ray or inline")


# ---------------------------------------------------------------- progress
class Progress:
    """One line per event (works the same on a terminal and in a log file)."""

    def __init__(self, log: Callable[[str], None] = print, listeners: list | None = None):
        self.log = log
        self.durations: dict[str, list[float]] = {}  # per stage: their budgets differ
        self.listeners = list(listeners or [])  # e.g. search.tracking's MLflow tracker (its methods: the events below)

    @staticmethod
    def _short(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3g}"
        return str(value)

    def started(self, stage: str, number: int, params: dict) -> None:
        shown = ", ".join(f"{k}={self._short(v)}" for k, v in params.items())
        self.log(f"[{stage}] trial {number} started: {shown}")
        self._tell("trial_started", stage, number, params)

    def curve_point(self, stage: str, number: int, point: dict) -> None:
        """A running trial's evaluation point (no line: ``trial.log`` has it; a dashboard shows it)."""
        self._tell("curve_point", stage, number, point)

    def search_started(self, config: dict) -> None:
        self._tell("search_started", config)

    def pareto_written(self, path) -> None:
        self._tell("pareto_written", path)

    def search_ended(self) -> None:
        """In a ``finally``: the listeners read how the search ended from the exception in flight."""
        self._tell("search_ended")

    def _tell(self, event: str, *args) -> None:
        for listener in self.listeners:
            if (method := getattr(listener, event, None)) is not None:  # a listener may watch some events only
                method(*args)

    def finished(self, stage: str, frozen, seconds: float, tally: dict, frontier_size: int, n_target: int,
                 objectives) -> None:
        """``objectives``: the stage's own (the flash stage may rank by a signal such as span_f1)."""
        durations = self.durations.setdefault(stage, [])
        durations.append(seconds)
        mean = sum(durations) / len(durations)
        trial = StoredTrial.of(frozen)
        if trial.values is not None:
            what = ", ".join(f"{m} {self._fmt_metric(m, v)}" for m, v in zip(objectives.metric_names, trial.values))
            head = f"ok ({what})"
        elif trial.stopped:
            head = f"stopped early: {(trial.stop_reason or '')[:160]}"
        else:
            failure = trial.failure
            kind, step = (failure.kind, failure.step) if failure else ("error", None)
            reason = ((failure.reason if failure else None) or "").splitlines()[0:1]
            head = f"FAILED {kind}{f' at step {step}' if step is not None else ''}: {reason[0][:120] if reason else ''}"
        self.log(
            f"[{stage}] trial {frozen.number} {head} in {seconds:.1f} s | {tally['finished']}/{n_target} done, "
            f"{tally['running']} running, {tally['failed']} failed"
            f"{f', {stopped} stopped early' if (stopped := tally.get('stopped')) else ''}, "
            f"frontier {frontier_size}, {mean:.1f} s/trial, "
            f"stage ETA {format_duration(stage_eta(mean, n_target - tally['finished'], tally['running']))}"
        )
        self._tell("trial_finished", stage, frozen)

    @staticmethod
    def _fmt_metric(name: str, value: float) -> str:
        if name == "num_parameters":
            return f"{value / 1e6:.2f}M"
        return f"{value:.4g}"


# ---------------------------------------------------------------- stopping
class Termination:
    """Whether SIGTERM stopped the search (``sigterm_as_interrupt`` sets it)."""

    received: bool = False


@contextmanager
def sigterm_as_interrupt() -> Iterator[Termination]:
    """SIGTERM (``kill``, a scheduler's stop, a shutdown) stops the search as Ctrl-C does.

    Its default ends the process on the spot: the running trials stay RUNNING, ``lock.json``
    names a dead holder, nothing is said. Raised as ``KeyboardInterrupt`` in the main thread
    instead, it takes Ctrl-C's path: the trials are marked interrupted, the lock released, one line
    is printed; the caller reads ``received`` for the exit status. A second SIGTERM while the
    search cleans up is ignored, so the clean-up finishes. Outside the main thread (where Python
    cannot take signals) nothing changes.
    """
    termination = Termination()
    if threading.current_thread() is not threading.main_thread():
        yield termination
        return

    def stop(signum, frame) -> None:
        if not termination.received:
            termination.received = True
            raise KeyboardInterrupt("SIGTERM")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield termination
    finally:
        signal.signal(signal.SIGTERM, previous)


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
    make_spec: Callable[[Any], WorkerSpec],
    backend,
    objectives,
    token: str,
    progress: Progress,
    heartbeat_interval: float = 30.0,
    only_enqueued: bool = False,
    exclusive: bool = False,
    stored_path: Callable[[str | None], str | None] = lambda path: path,
    log: Callable[[str], None] = print,
) -> dict:
    """Run trials of ``study`` until ``n_target`` of them have finished (interrupted ones not counted).

    ``only_enqueued``: take only trials waiting in the queue (regular and baseline stages), never
    ask the sampler for new ones. ``exclusive``: this run holds the study's lock (see
    ``study.recover_interrupted``). ``stored_path``: how a trial folder or checkpoint is recorded
    (relative to the study folder). A running trial's curve points come as the backend reads them
    (``worker.CURVE_POINT``): each is stored as the trial's intermediate value and told to the
    progress listeners (MLflow) at once. A trial that failed for its environment (``environment``:
    disk full, files unreadable) stops the search with ``EnvironmentFailure``, recorded as
    interrupted so that it does not count toward the budget. A trial whose cluster node was lost
    (``node_lost``) does not count either, but the search goes on (a lost candidate is queued again).
    Returns the final tally.
    """
    loop = _Loop(study, stage, n_target, distributions, make_spec, backend, objectives, token, progress,
                 only_enqueued, stored_path)
    last_recover = -float("inf")
    with Heartbeats(storage_of(study), heartbeat_interval) as loop.heartbeats:
        try:
            while True:
                now = time.monotonic()
                if now - last_recover >= heartbeat_interval:
                    recovered = recover_interrupted(study, token, log, exclusive=exclusive)
                    if only_enqueued and recovered:  # a candidate is run again, not dropped
                        requeue(study, recovered)
                    last_recover = now
                loop.start_trials()
                if not loop.running:
                    break
                timeout = min(heartbeat_interval, 5.0) if backend.name != "inline" else 0
                for key, message in backend.wait(timeout=timeout):
                    if CURVE_POINT in message:  # the trial still runs
                        loop.report(key, message[CURVE_POINT])
                    else:
                        loop.record(key, message)
        except BaseException:
            _abandon(study, loop.running, backend, "the search was stopped (interrupted or crashed) while the trial ran")
            _abandon_unregistered(study, token, exclusive)
            raise
    return counts(stored_trials(study.get_trials(deepcopy=False)))


class _Loop:
    """What :func:`drive` keeps between its turns: the running trials, and how to start and record one."""

    def __init__(self, study, stage, n_target, distributions, make_spec, backend, objectives, token, progress,
                 only_enqueued, stored_path):
        self.study, self.stage, self.n_target, self.distributions = study, stage, n_target, distributions
        self.make_spec, self.backend, self.objectives, self.token = make_spec, backend, objectives, token
        self.progress, self.only_enqueued, self.stored_path = progress, only_enqueued, stored_path
        self.running: dict[int, tuple[Any, float]] = {}
        self.reported: dict[int, set[int]] = {}  # per running trial: the curve steps reported already
        self.heartbeats: Heartbeats | None = None

    def start_trials(self) -> None:
        """As many new trials as the backend has room for and the budget still needs."""
        trials = stored_trials(self.study.get_trials(deepcopy=False))
        finished = sum(1 for t in trials if t.finished)
        waiting = sum(1 for t in trials if t.state == TrialState.WAITING)
        to_start = min(self.backend.capacity - len(self.running), self.n_target - finished - len(self.running))
        if self.only_enqueued:
            to_start = min(to_start, waiting)
        for _ in range(max(0, to_start)):
            trial = ask(self.study, self.distributions)
            self.running[trial.number] = (trial, time.time())  # at once: a stop from here on marks it interrupted
            trial.set_user_attr(Attr.COORDINATOR, owner_record(self.token))
            spec = self.make_spec(trial)
            trial.set_user_attr(Attr.TRIAL_DIR, self.stored_path(spec.trial_dir))
            self.heartbeats.add(trial)
            self.progress.started(self.stage, trial.number, trial.params)
            self.backend.submit(trial.number, spec)

    def report(self, key: int, point: dict) -> None:
        """A running trial's evaluation point: an intermediate value of its Optuna trial, and the listeners'."""
        if key not in self.running or not isinstance(point.get("step"), int):
            return
        steps = self.reported.setdefault(key, set())
        if point["step"] in steps:
            return
        steps.add(point["step"])
        trial, _ = self.running[key]
        record_curve_point(self.study, trial, point, self.objectives)
        self.progress.curve_point(self.stage, key, point)

    def record(self, key: int, payload: dict) -> None:
        """Tell the study what a worker returned; stop the search where the trial's contract asks."""
        trial, started = self.running[key]  # stays among the running until recorded: see _abandon
        result = TrialResult.from_dict(payload["result"])
        for point in result.curve or []:  # the points it did not report while running (the last; a Ray trial's)
            self.report(key, point)
        self.reported.pop(key, None)
        result.checkpoint = self.stored_path(result.checkpoint)
        environment = result.failure_kind == ENVIRONMENT
        if environment:  # the machine failed, not the configuration: it was never evaluated
            result = TrialResult.failed(result.params, INTERRUPTED, f"interrupted: {result.failure_reason}",
                                        step=result.failure_step, curve=result.curve)
        extra = {Attr.WORKER: payload.get("worker") or {}, Attr.DURATION_S: round(time.time() - started, 3)}
        if payload.get(PLACEMENT):
            extra[Attr.PLACEMENT] = payload[PLACEMENT]
        if payload.get("early_stop"):  # the decision that stopped it (search.early_stop.StopCheck.record)
            extra[Attr.EARLY_STOP] = payload["early_stop"]
        frozen = record_result(self.study, trial, result, self.objectives, extra_attrs=extra)
        del self.running[key]
        self.heartbeats.remove(trial)
        if result.failure_kind == NODE_LOST and self.only_enqueued:  # a candidate is run again, not dropped
            requeue(self.study, [frozen.number])
        all_trials = stored_trials(self.study.get_trials(deepcopy=False), self.objectives)
        self.progress.finished(self.stage, frozen, time.time() - started, counts(all_trials),
                               len(frontier(all_trials, self.objectives)), self.n_target, self.objectives)
        if environment:
            raise EnvironmentFailure(
                f"[{self.stage}] trial {frozen.number} failed for its environment, not its settings: "
                f"{result.failure_reason.removeprefix('interrupted: ')}; the search stopped (the trial does "
                "not count toward the budget): fix that and run the same command again"
            )
        if result.failure_kind == INTERRUPTED:
            # run_trial turns Ctrl-C into an "interrupted" result: stop, as its contract asks
            raise KeyboardInterrupt(f"trial {frozen.number} was interrupted")


class Heartbeats:
    """Heartbeats for the running trials, from a thread of their own.

    An inline trial holds the coordinator for its whole run (and a local one leaves it waiting),
    yet a trial without a recent heartbeat looks dead to any other reader of its database. So a
    thread beats every ``interval / 2`` seconds for every running trial, for exactly as long as
    the coordinating process lives. Storages that keep no heartbeats (in memory) get no thread.
    """

    def __init__(self, storage, interval: float):
        self._storage = storage
        self._period = max(0.05, float(interval) / 2)
        self._ids: set[int] = set()
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._keeps = getattr(storage, "get_heartbeat_interval", lambda: None)() is not None

    def add(self, trial) -> None:
        with self._guard:
            self._ids.add(trial_id(trial))
        self._beat([trial_id(trial)])

    def remove(self, trial) -> None:
        with self._guard:
            self._ids.discard(trial_id(trial))

    def _beat(self, ids) -> None:
        if not self._keeps:
            return
        for identifier in ids:
            try:
                self._storage.record_heartbeat(identifier)
            except Exception as error:  # noqa: BLE001 - a missed beat is retried; the trial's own record decides
                _logger.warning("heartbeat of trial id %d not recorded (%s: %s)", identifier, type(error).__name__, error)

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            with self._guard:
                ids = list(self._ids)
            self._beat(ids)

    def __enter__(self) -> "Heartbeats":
        if self._keeps:
            self._thread = threading.Thread(target=self._run, name="paretodistill-heartbeats", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def _abandon(study, running: dict, backend, reason: str) -> None:
    """On Ctrl-C or an error: stop the workers and mark their trials interrupted (budget not spent).

    Best effort, and every miss is logged: the search is already stopping because of another error,
    which must be the one the user sees. A trial left RUNNING here is recovered by the next run.
    """
    try:
        backend.stop()
    except Exception as error:  # noqa: BLE001
        _logger.warning("stopping the %s workers failed: %s: %s", backend.name, type(error).__name__, error)
    for trial, _ in running.values():
        try:
            trial.set_user_attr(Attr.FAILURE_KIND, INTERRUPTED)
            trial.set_user_attr(Attr.FAILURE_REASON, f"interrupted: {reason}")
            study.tell(trial, state=TrialState.FAIL)
        except Exception as error:  # noqa: BLE001 - the database itself may be what failed
            _logger.warning("trial %d could not be marked interrupted (%s: %s); the next run recovers it",
                            trial.number, type(error).__name__, error)


def _abandon_unregistered(study, token: str, exclusive: bool) -> None:
    """After ``_abandon``: the RUNNING trials a stop caught inside ``ask`` (created in the database,
    not yet among the loop's). With the study's lock every RUNNING trial is this run's; on a shared
    database only those it marked as its own."""
    try:
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            owner = StoredTrial.of(trial).owner_run
            if exclusive or owner == token:
                mark_interrupted(storage_of(study), trial, "the search was stopped while it started the trial")
    except Exception as error:  # noqa: BLE001 - as in _abandon: the stop's own error is the one to show
        _logger.warning("running trials could not be marked interrupted (%s: %s); the next run recovers them",
                        type(error).__name__, error)
