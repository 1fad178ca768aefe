"""Optional MLflow logging of every finished trial, for users who follow runs in MLflow.

One MLflow run per trial (experiment = the study's name): the parameters, the final metrics
(validation, ``test_``-prefixed test figures), the learning curve as stepped metrics
(``curve/<metric>``), and tags naming the study, the stage, the trial number, its state and, for
a failure, its kind and reason (a flash trial stopped early: its reason; its run ends KILLED).
Enabled by ``[search] mlflow_uri = "..."`` or ``--mlflow-uri``; MLflow (``pip install
'paretodistill[mlflow]'``) is imported only then. The study database stays the record: tracking
is a copy for viewing, so a tracking error is logged and never stops a search.
"""

from __future__ import annotations

import math
from typing import Callable

from paretodistill.errors import ConfigError
from paretodistill.search.redaction import redact_text, redact_url
from paretodistill.search.results import Failure, StoredTrial

SETTING = "mlflow_uri"


def _numbers(values: dict | None, prefix: str = "") -> dict[str, float]:
    return {f"{prefix}{k}": float(v) for k, v in (values or {}).items()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}


class MlflowTracker:
    """Logs each finished trial of one study as an MLflow run."""

    def __init__(self, uri: str, study_name: str, log: Callable[[str], None] = print):
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise ConfigError(f"search.{SETTING} needs MLflow: pip install 'paretodistill[mlflow]'") from None
        self.study_name = study_name
        self.log = log
        self.uri = uri
        try:
            self.client = MlflowClient(tracking_uri=uri)
            found = self.client.get_experiment_by_name(study_name)
            self.experiment_id = found.experiment_id if found else self.client.create_experiment(study_name)
        except Exception as error:  # noqa: BLE001 -- a store MLflow refuses (e.g. file: without MLFLOW_ALLOW_FILE_STORE)
            message = redact_text(" ".join(str(error).split()), uri)[:400]  # MLflow's message quotes the URI again
            raise ConfigError(f"search.{SETTING}: MLflow cannot use {redact_url(uri)}: {message}") from None

    def trial_finished(self, stage: str, frozen) -> None:
        try:
            self._log_trial(stage, frozen)
        except Exception as error:  # noqa: BLE001 -- tracking is a copy; the search goes on
            self.log(f"warning: MLflow logging of {stage} trial {frozen.number} failed: {redact_text(str(error), self.uri)}")

    def _log_trial(self, stage: str, frozen) -> None:
        from mlflow.entities import Metric, Param, RunTag

        trial = StoredTrial.of(frozen)
        tags = {"study": self.study_name, "stage": stage, "trial": str(frozen.number), "state": frozen.state.name}
        failure = trial.failure or Failure("")
        for key, value in (("failure_kind", failure.kind), ("failure_reason", failure.reason),
                           ("stop_reason", trial.stop_reason)):
            if value:
                tags[key] = str(value)[:5000]
        run = self.client.create_run(self.experiment_id, run_name=f"{stage}-{frozen.number}", tags=tags)
        run_id = run.info.run_id
        metrics = [Metric(k, v, 0, 0) for k, v in {**_numbers(trial.metrics),
                                                   **_numbers(trial.test_metrics, "test_")}.items()]
        for point in trial.curve:
            step = int(point.get("step", 0))
            metrics += [Metric(f"curve/{k}", v, 0, step) for k, v in _numbers(point).items() if k != "step"]
        params = [Param(k, str(v)) for k, v in frozen.params.items()]
        self.client.log_batch(run_id, metrics=metrics, params=params, tags=[RunTag(k, v) for k, v in tags.items()])
        stopped = frozen.state.name == "PRUNED"  # stopped early (search.early_stop): ended on purpose, not failed
        self.client.set_terminated(run_id, "FINISHED" if frozen.values is not None else "KILLED" if stopped else "FAILED")


def trackers(uri: str | None, study_name: str, log: Callable[[str], None] = print) -> list:
    """The trackers ``search.mlflow_uri`` asks for (none, or MLflow)."""
    return [MlflowTracker(uri, study_name, log)] if uri else []
