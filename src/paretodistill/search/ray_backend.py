"""Trials as Ray tasks: the same coordinator loop, trials anywhere in a Ray cluster.

``paretodistill search --backend ray --address ray://head:10001`` (or ``auto``) joins a running
cluster; without an address a local Ray instance is started with ``num_cpus`` = this machine's
cores. Each trial is one task asking for ``num_cpus`` CPUs and ``num_gpus`` GPUs
(``[search.ray]`` in the config) and runs in a fresh worker process (``max_calls=1``), which gives
its memory back when it ends, as a local worker process does. The coordinator stays the only
writer to the study database; trial folders are written by the workers, so on a multi-machine
cluster the study directory must be on a shared filesystem (or checkpoints will stay on the node
that trained them). Ray is imported only when this backend is used (``pip install
'paretodistill[ray]'``).
"""

from __future__ import annotations

import logging
from typing import Any

from paretodistill.errors import ConfigError
from paretodistill.search.worker import WorkerSpec, cpu_count, execute_spec, failure_payload


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("the ray backend needs Ray: pip install 'paretodistill[ray]' (ray>=2.9)") from None
    return ray


def _ray_trial(spec: WorkerSpec) -> dict:
    return execute_spec(spec, in_worker=True)


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
        self._remote = ray.remote(num_cpus=self.num_cpus, num_gpus=self.num_gpus, max_calls=1)(_ray_trial)
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
                payload = failure_payload(spec, "error", f"the Ray task failed: {type(error).__name__}: {error}"[:2000])
            finished.append((key, payload))
        return finished

    def stop(self) -> None:
        for ref, _ in self._running.values():
            try:
                self._ray.cancel(ref, force=True)
            except Exception as error:  # noqa: BLE001 - the task may have ended meanwhile
                logging.getLogger("paretodistill.search").info("cancelling a Ray task: %s: %s", type(error).__name__, error)
        self._running.clear()

    def close(self) -> None:
        if self._started_here:
            self._ray.shutdown()
