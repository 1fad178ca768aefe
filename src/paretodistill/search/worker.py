"""Inside a worker: one trial from its spec, in whatever process the backend chose.

A worker gets a :class:`WorkerSpec` (plain data: it crosses process and machine boundaries) and
returns plain data; it never touches the study database. The same code runs inline in the
coordinator, in a spawned local process, and as a Ray task. A flash trial that may be stopped early
carries what it is judged against in its spec (``search.early_stop.StopEvidence``), for the same reason.

While it trains, a trial's evaluation points go to the coordinator as they come (``on_point``: a
local worker sends ``{CURVE_POINT: point}`` down its pipe before its payload), which reports them
as Optuna intermediate values and to MLflow. They are seen through the trial function's
``should_stop`` check, asked at every evaluation point but the last (the last comes with the
result); a trial function that takes no ``should_stop`` reports its curve with its result only.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from paretodistill.config import DEFAULT_TRIAL_FUNCTION, ExperimentConfig, build_section
from paretodistill.search.early_stop import StopCheck, StopEvidence
from paretodistill.trial import ENVIRONMENT, EvaluationPoint, TrialResult

CURVE_POINT = "curve_point"  # a message from a running trial: one evaluation point of its curve
PLACEMENT = "placement"  # a payload's key: where the trial ran (:func:`placement`)


@dataclass(frozen=True)
class WorkerSpec:
    """Everything one trial needs, and nothing of Optuna's."""

    stage: str
    number: int
    params: dict[str, Any]
    config: dict[str, Any]  # the stage's ExperimentConfig as plain data
    trial_dir: str
    evaluate_test: bool = False
    trial_function: str = DEFAULT_TRIAL_FUNCTION
    threads: int | None = None
    sys_path: tuple[str, ...] = ()  # the coordinator's import path, so a test's trial function resolves
    cuda_visible_devices: str | None = None
    early_stop: StopEvidence | None = None  # a flash trial with search.flash.early_stop on

    def on_gpu(self, gpu: str | None) -> "WorkerSpec":
        return dataclasses.replace(self, cuda_visible_devices=gpu)


def load_trial_function(path: str) -> Callable:
    """``"package.module:function"`` -> the function."""
    if ":" not in path:
        raise ValueError(f"trial function {path!r}: expected 'module:function'")
    module_name, attr = path.split(":", 1)
    function = importlib.import_module(module_name)
    for part in attr.split("."):
        function = getattr(function, part)
    return function


def takes_should_stop(function: Callable) -> bool:
    """Whether the trial function accepts ``should_stop`` (a user's need not)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "should_stop" or p.kind == p.VAR_KEYWORD for p in parameters)


def point_hook(check: StopCheck | None, on_point: Callable[[dict], None] | None) -> Callable | None:
    """The ``should_stop`` a trial gets: passes each evaluation point on, then asks ``check`` (if any)."""
    if on_point is None:
        return check

    def should_stop(point: EvaluationPoint) -> str | None:
        try:
            on_point({**point.metrics, "step": point.step})
        except Exception:  # noqa: BLE001 - a point not shown live still comes with the result
            pass
        return check(point) if check is not None else None

    return should_stop


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _set_up_process(spec: WorkerSpec) -> None:
    """A worker process's import path, GPU and thread count, for its one trial."""
    for entry in spec.sys_path:
        if entry not in sys.path:
            sys.path.append(entry)
    if spec.cuda_visible_devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(spec.cuda_visible_devices)
    if spec.threads:  # before torch is imported, so that its thread pools start at this size
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[name] = str(spec.threads)


def execute_spec(spec: WorkerSpec, *, in_worker: bool = False, on_point: Callable[[dict], None] | None = None) -> dict:
    """Run one trial from its spec; never raises. Returns ``{"result": TrialResult dict, "worker": ...}``
(and ``"early_stop"``: the decision that stopped it, when one did).

    ``in_worker``: this process exists for the trial, so its environment (GPU, thread count,
    import path) may be set up for it; in the coordinator itself (inline) nothing is touched.
    ``on_point``: told each evaluation point while the trial trains (see the module docstring).
    """
    started = time.time()
    threads = spec.threads
    if in_worker:
        _set_up_process(spec)
    trial_dir = Path(spec.trial_dir)
    log_file = trial_dir / "trial.log"

    def log(message: str) -> None:
        try:
            with log_file.open("a") as handle:
                handle.write(f"{message}\n")
        except OSError:
            pass  # a full disk must not turn into a crash of the worker: the result still goes back

    params = dict(spec.params)
    check = StopCheck(spec.early_stop, log) if spec.early_stop is not None else None
    try:
        trial_dir.mkdir(parents=True, exist_ok=True)
        function = load_trial_function(spec.trial_function)
        if in_worker and threads and "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(int(threads))
        config = build_section(ExperimentConfig, spec.config)
        hook = point_hook(check, on_point) if check is not None or takes_should_stop(function) else None
        stopping = {"should_stop": hook} if hook is not None else {}  # only then: a user's function may not take it
        result = function(config, params, trial_dir=trial_dir, evaluate_test=spec.evaluate_test, log=log, **stopping)
        if isinstance(result, dict):
            result = TrialResult.from_dict(result)
        if not isinstance(result, TrialResult):
            raise TypeError(f"the trial function returned {type(result).__name__}, not a TrialResult")
    except OSError as error:  # a full disk, an unreadable file: the machine failed, not the settings
        log(traceback.format_exc())
        result = TrialResult.failed(params, ENVIRONMENT, f"{type(error).__name__}: {error}"[:2000])
    except Exception as error:  # noqa: BLE001 - a bug in a trial must not take the search down
        log(traceback.format_exc())
        result = TrialResult.failed(params, "error", f"{type(error).__name__}: {error}"[:2000])
    try:
        result.save(trial_dir / "result.json")
    except (OSError, TypeError) as error:  # a convenience copy: the coordinator gets the result anyway
        log(f"result.json not written: {type(error).__name__}: {error}")
    payload = {
        "result": result.to_dict(),
        "worker": {"seconds": round(time.time() - started, 3)},  # no pid or host: a study keeps them only in its lock
        PLACEMENT: placement(),
    }
    if check is not None and result.stopped and check.record() is not None:
        payload["early_stop"] = check.record()
    return payload


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
    except OSError as error:  # the output stays on the coordinator's terminal: untidy, not wrong
        print(f"worker output not redirected to {trial_dir}/worker.out: {error}", file=sys.stderr)


def process_main(spec: WorkerSpec, conn, parent_pid: int) -> None:
    """The body of a local worker process: run the trial, send the payload back."""
    _die_with_parent(parent_pid)
    _to_file(spec.trial_dir)
    payload = execute_spec(spec, in_worker=True, on_point=lambda point: conn.send({CURVE_POINT: point}))  # the payload last
    try:
        conn.send(payload)
    except (BrokenPipeError, EOFError, OSError):
        pass  # the coordinator is gone or stopped us: nobody is left to tell; it reports the missing result
    finally:
        conn.close()


def failure_payload(spec: WorkerSpec, kind: str, reason: str, where: dict | None = None) -> dict:
    """What a backend returns for a trial whose worker died before answering (``where``: its
    :func:`placement`, as far as the backend knows it)."""
    payload = {"result": TrialResult.failed(spec.params, kind, reason).to_dict(), "worker": {}}
    if where is not None:
        payload[PLACEMENT] = where
    return payload


def placement(node: str | None = None) -> dict:
    """Where this process runs a trial (``results.Attr.PLACEMENT``): the cluster ``node`` a backend
    names (None: the coordinator's machine) and the GPUs it may see, as CUDA_VISIBLE_DEVICES says
    (set by the local backend from its devices, or by Ray from the GPUs it assigned)."""
    return {"node": node, "devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
