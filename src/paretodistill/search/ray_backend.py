"""Trials as Ray tasks: the same coordinator loop, trials anywhere in a Ray cluster.

``paretodistill search --backend ray --address ray://head:10001`` (or ``auto``) joins a running
cluster; without an address a local Ray instance is started with ``num_cpus`` = this machine's
cores. Each trial is one task asking for ``num_cpus`` CPUs and ``num_gpus`` GPUs
(``[search.ray]`` in the config) and runs in a fresh worker process (``max_calls=1``), which gives
its memory back when it ends, as a local worker process does. Ray sets the task's
CUDA_VISIBLE_DEVICES to the GPUs it assigned, so a trial sees its own GPUs only.

What travels how: the trial's spec (config, parameters, the path of its trial folder) goes to the
task, and its payload (metrics, curve, test metrics, the early-stop decision, where it ran) comes
back, through Ray's object store; the coordinator records the study from the payload alone and
stays the only writer to the study database. Everything the trial reads or writes by path does not
travel: the data files, the teacher, the feature and logit cache, and the trial folder (its
checkpoint, ``trial.log``, ``result.json``) are at the same paths on every node only on a shared
filesystem; elsewhere a checkpoint stays on the node that trained it, at the trial folder's path
there (``Attr.PLACEMENT`` names the node).

A task is never retried (``max_retries=0``): a trial whose node dies under it is recorded as
``node_lost`` (not counted toward the budget, like an interrupted one) and the search goes on on
the nodes left, instead of Ray running it a second time behind the study's back. Ray is imported
only when this backend is used (``pip install 'paretodistill[ray]'``).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from paretodistill.errors import ConfigError
from paretodistill.search.worker import PLACEMENT, WorkerSpec, cpu_count, execute_spec, failure_payload, placement
from paretodistill.trial import NODE_LOST

_logger = logging.getLogger("paretodistill.search")


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("the ray backend needs Ray: pip install 'paretodistill[ray]' (ray>=2.9)") from None
    return ray


def _ray_trial(spec: WorkerSpec) -> dict:
    import ray

    payload = execute_spec(spec, in_worker=True)
    payload[PLACEMENT] = placement(ray.get_runtime_context().get_node_id())
    return payload


def task_failure(ray, error: Exception) -> tuple[str, str, dict | None]:
    """A Ray task that ended without a payload, as (failure kind, one-line reason, placement).

    The node id of a lost node is read from Ray's message (``NodeDiedError`` carries no field for it);
    the message itself, which names the node's address, goes to the log only: a study keeps no host."""
    exceptions = ray.exceptions
    if isinstance(error, (exceptions.NodeDiedError, exceptions.ObjectLostError)):
        found = re.search(r"node ID: ([0-9a-f]+)", str(error))
        node = found.group(1) if found else None
        _logger.warning("a trial's Ray node was lost: %s", error)
        return NODE_LOST, f"the Ray node running it ({node or 'unknown'}) was lost ({type(error).__name__})", {"node": node}
    if isinstance(error, exceptions.OutOfMemoryError):  # Ray's memory monitor killed the worker
        return "out_of_memory", f"Ray killed the worker for memory: {error}"[:2000], None
    return "error", f"the Ray task failed: {type(error).__name__}: {error}"[:2000], None


class RayBackend:
    name = "ray"

    def __init__(self, workers: int = 1, *, address: str | None = None, num_cpus: float | None = None,
                 num_gpus: float = 0, init_kwargs: dict | None = None):
        ray = self._ray = _import_ray()
        self.capacity = max(1, int(workers))
        self._started_here = False
        if not ray.is_initialized():
            kwargs = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
            kwargs.update(init_kwargs or {})
            if address:
                ray.init(address=address, **kwargs)
            else:
                kwargs.setdefault("num_cpus", cpu_count())
                ray.init(**kwargs)
            self._started_here = True
        cluster_cpus = ray.cluster_resources().get("CPU", 1)
        self.num_cpus = float(num_cpus) if num_cpus else max(1.0, float(int(cluster_cpus // self.capacity) or 1))
        self.num_gpus = float(num_gpus or 0)
        self._remote = ray.remote(num_cpus=self.num_cpus, num_gpus=self.num_gpus, max_calls=1, max_retries=0)(_ray_trial)
        self._running: dict[Any, tuple[Any, dict]] = {}

    def threads_per_trial(self, at_once: int | None = None) -> int:
        return max(1, int(self.num_cpus))  # what each Ray task reserved

    def submit(self, key: Any, spec: WorkerSpec) -> None:
        # Ray sets CUDA_VISIBLE_DEVICES for the task from num_gpus; do not override it.
        ref = self._remote.remote(spec.on_gpu(None))
        self._running[key] = (ref, spec)

    def running(self) -> list[Any]:
        return list(self._running)

    def wait(self, timeout: float) -> list[tuple[Any, dict]]:
        if not self._running:
            return []
        ray = self._ray
        by_ref = {ref: key for key, (ref, _) in self._running.items()}
        ready, rest = ray.wait(list(by_ref), num_returns=1, timeout=timeout)
        if ready and rest:  # collect whatever else is done, without waiting
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
            ready += more
        finished = []
        for ref in ready:
            key = by_ref[ref]
            _, spec = self._running.pop(key)
            try:
                payload = ray.get(ref)
            except Exception as error:  # noqa: BLE001 - a dead worker or node: the trial failed
                kind, reason, where = task_failure(ray, error)
                payload = failure_payload(spec, kind, reason, where)
            finished.append((key, payload))
        return finished

    def stop(self) -> None:
        for ref, _ in self._running.values():
            try:
                self._ray.cancel(ref, force=True)
            except Exception as error:  # noqa: BLE001 - the task may have ended meanwhile
                _logger.info("cancelling a Ray task: %s: %s", type(error).__name__, error)
        self._running.clear()

    def close(self) -> None:
        if self._started_here:
            self._ray.shutdown()
