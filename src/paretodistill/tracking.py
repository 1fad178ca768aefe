"""MLflow runs, for users who follow their work there (``distill --mlflow-uri``, ``search.mlflow_uri``).

One module opens the store and writes runs for both callers: ``paretodistill distill`` (one run)
and the search (``search.tracking``: a run for the search, one nested run per trial). A run gets
its parameters, its final metrics, every learning-curve point as ``curve/<metric>`` at its
training step (logged while training runs), tags, and files as artifacts. MLflow is imported only
when a URI is given. Opening the store is checked (one line, exit 2); after that, logging is a
copy for viewing: an error is a warning and never stops the work it watches.

**Folders.** MLflow 3 refuses its file store (``file:./mlruns``, or a plain folder) unless
``MLFLOW_ALLOW_FILE_STORE=true`` is set, and recommends a database instead. So a folder URI
becomes ``sqlite:///<folder>/mlflow.db`` with its artifacts in ``<folder>/mlartifacts``, and a
line says so; nothing in the environment is changed. A user who set the variable gets the file
store as asked; a folder that already holds a file store (MLflow 2's) is refused without it, with
the fix named. A database URI keeps its artifacts beside the database file rather than in
MLflow's default ``./mlruns`` under whatever folder the command ran in.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import unquote, urlparse

from paretodistill.errors import ConfigError
from paretodistill.redaction import redact_text, redact_url

DATABASE_FILE = "mlflow.db"
ARTIFACTS_DIR = "mlartifacts"  # the name MLflow's own server gives its artifact folder
CURVE_PREFIX = "curve/"
FILE_STORE_SWITCH = "MLFLOW_ALLOW_FILE_STORE"


def numbers(values: dict | None, prefix: str = "") -> dict[str, float]:
    """The finite numbers of ``values`` (MLflow metrics are numbers), keys prefixed."""
    return {f"{prefix}{k}": float(v) for k, v in (values or {}).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


# ---------------------------------------------------------------- the store a URI names
@dataclass(frozen=True)
class Store:
    """What MLflow is given for a user's URI: the tracking URI, where a new experiment keeps its
    artifacts (None: the server decides), and the line saying a folder became a database."""

    uri: str
    artifacts: str | None = None
    note: str | None = None


def _file_store_allowed() -> bool:
    """MLflow's own reading of MLFLOW_ALLOW_FILE_STORE (MLflow 2 has no such switch: allowed)."""
    from mlflow import environment_variables

    switch = getattr(environment_variables, FILE_STORE_SWITCH, None)
    return switch is None or bool(switch.get())


def _folder_of(uri: str) -> Path | None:
    """The folder a ``file:`` URI or a plain path names; None for any other scheme."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "":
        return Path(uri)
    return None


def resolve_store(uri: str, setting: str) -> Store:
    """The store MLflow 3 accepts for ``uri`` (see the module docstring)."""
    folder = _folder_of(uri)
    if folder is None:
        if uri.startswith("sqlite:///") and len(uri) > len("sqlite:///"):
            database = Path(unquote(uri[len("sqlite:///"):].split("?")[0]))
            return Store(uri, (database.resolve().parent / ARTIFACTS_DIR).as_uri())
        return Store(uri)
    if _file_store_allowed():
        return Store(uri)
    if any(folder.glob("*/meta.yaml")):
        raise ConfigError(f"{setting}: {uri} holds an MLflow file store, which MLflow 3 opens only with "
                          f"{FILE_STORE_SWITCH}=true: set it, or give a new folder or a sqlite:///PATH/{DATABASE_FILE} URI")
    database = folder.resolve() / DATABASE_FILE
    folder.mkdir(parents=True, exist_ok=True)
    return Store(f"sqlite:///{database}", (folder.resolve() / ARTIFACTS_DIR).as_uri(),
                 f"MLflow: {uri} is logged to the database {folder / DATABASE_FILE} (MLflow 3 keeps the file store behind "
                 f"{FILE_STORE_SWITCH}); view it with: mlflow ui --backend-store-uri sqlite:///{folder / DATABASE_FILE}")


# ---------------------------------------------------------------- an experiment and its runs
class MlflowStore:
    """One experiment of one MLflow store, opened and checked (``setting``: how the user named the
    URI, for the one-line error)."""

    def __init__(self, uri: str, experiment: str, *, setting: str, log: Callable[[str], None] = print):
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise ConfigError(f"{setting} needs MLflow: pip install 'paretodistill[mlflow]'") from None
        self.uri, self.log = uri, log
        store = resolve_store(uri, setting)
        try:
            self.client = MlflowClient(tracking_uri=store.uri)
            found = self.client.get_experiment_by_name(experiment)
            self.experiment_id = found.experiment_id if found else self.client.create_experiment(
                experiment, artifact_location=store.artifacts)
        except Exception as error:  # noqa: BLE001 -- any store MLflow refuses or cannot reach
            message = redact_text(" ".join(str(error).split()), uri)[:400]  # MLflow's message quotes the URI again
            raise ConfigError(f"{setting}: MLflow cannot use {redact_url(uri)}: {message}") from None
        if store.note:
            log(store.note)

    def warn(self, what: str, error: BaseException) -> None:
        self.log(f"warning: MLflow {what} failed: {redact_text(' '.join(str(error).split()), self.uri)[:400]}")

    def start_run(self, name: str, tags: dict[str, str] | None = None, parent: "MlflowRun | None" = None) -> "MlflowRun | None":
        """A new run (nested under ``parent``: MLflow's parent-run tag); None, with a warning, when MLflow fails."""
        from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

        tags = {**(tags or {}), **({MLFLOW_PARENT_RUN_ID: parent.run_id} if parent is not None else {})}
        try:
            return MlflowRun(self, self.client.create_run(self.experiment_id, run_name=name, tags=tags).info.run_id)
        except Exception as error:  # noqa: BLE001 -- tracking is a copy; the work goes on
            self.warn(f"run {name}", error)
            return None

    def latest_run(self, name: str) -> "MlflowRun | None":
        """The most recent run called ``name`` in the experiment; None when there is none (or MLflow fails)."""
        try:
            found = self.client.search_runs([self.experiment_id], filter_string=f"attributes.run_name = '{name}'",
                                            order_by=["attributes.start_time DESC"], max_results=1)
        except Exception as error:  # noqa: BLE001
            self.warn(f"search for run {name}", error)
            return None
        return MlflowRun(self, found[0].info.run_id) if found else None


class MlflowRun:
    """One run; every call is a copy for viewing, so an MLflow error is a warning, never raised."""

    def __init__(self, store: MlflowStore, run_id: str):
        self.store, self.run_id = store, run_id
        self.curve_steps: set[int] = set()  # the curve points logged already (live, then the rest at the end)

    def _safely(self, what: str, action: Callable[[], Any]) -> None:
        try:
            action()
        except Exception as error:  # noqa: BLE001
            self.store.warn(f"logging ({what}) of run {self.run_id}", error)

    def _metrics(self, values: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(key, value, now, step) for key, value in values.items()]
        self._safely("metrics", lambda: self.store.client.log_batch(self.run_id, metrics=metrics))

    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        values = [Param(str(k), json.dumps(v) if isinstance(v, (dict, list)) else str(v)[:6000]) for k, v in params.items()]
        self._safely("parameters", lambda: self.store.client.log_batch(self.run_id, params=values))

    def log_metrics(self, metrics: dict | None, prefix: str = "") -> None:
        """Final figures (step 0): the finite numbers of ``metrics``."""
        if values := numbers(metrics, prefix):
            self._metrics(values, 0)

    def log_curve_point(self, point: dict) -> None:
        """One learning-curve point as ``curve/<key>`` at its ``step`` (once per step)."""
        step = int(point.get("step", 0))
        if step in self.curve_steps:
            return
        self.curve_steps.add(step)
        if values := {k: v for k, v in numbers(point, CURVE_PREFIX).items() if k != f"{CURVE_PREFIX}step"}:
            self._metrics(values, step)

    def log_outcome(self, metrics: dict | None, test_metrics: dict | None, curve) -> None:
        """A finished trial's figures: its metrics, its test metrics as ``test_<name>``, and the
        curve points not logged while it ran."""
        self.log_metrics(metrics)
        self.log_metrics(test_metrics, "test_")
        for point in curve or ():
            self.log_curve_point(point)

    def set_tags(self, tags: dict[str, Any]) -> None:
        from mlflow.entities import RunTag

        values = [RunTag(str(k), str(v)[:5000]) for k, v in tags.items()]
        self._safely("tags", lambda: self.store.client.log_batch(self.run_id, tags=values))

    def log_file(self, path: str | Path, folder: str | None = None) -> None:
        self._safely(f"artifact {Path(path).name}", lambda: self.store.client.log_artifact(self.run_id, str(path), folder))

    def log_json(self, values: Any, name: str) -> None:
        self._safely(f"artifact {name}", lambda: self.store.client.log_dict(self.run_id, values, name))

    def log_text(self, text: str, name: str) -> None:
        self._safely(f"artifact {name}", lambda: self.store.client.log_text(self.run_id, text, name))

    def finish(self, status: str) -> None:
        """End the run: FINISHED, FAILED or KILLED."""
        self._safely("its end", lambda: self.store.client.set_terminated(self.run_id, status))
