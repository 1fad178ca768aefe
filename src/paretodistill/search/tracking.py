"""Optional MLflow logging of a search as it runs, for users who follow runs in MLflow.

Experiment = the study's name. One run per invocation of the search (``search``): the resolved
config it started with (``config.json``, secrets redacted) and ``pareto.json`` each time it is
written; one nested run per trial (``<stage>-<number>``), opened when the trial starts: its
parameters, every learning-curve point as ``curve/<metric>`` at its training step while the trial
trains (the coordinator logs what the worker reports; a Ray trial's points come with its
result), then its final metrics (validation, ``test_``-prefixed test figures) and tags naming the
study, the stage, the trial number, its state and, for a failure, its kind and reason (a flash
trial stopped early: its reason; its run ends KILLED). Enabled by ``[search] mlflow_uri = "..."``
or ``--mlflow-uri`` (stores: :mod:`paretodistill.tracking`). The study database stays the
record: tracking is a copy for viewing, so a tracking error is logged and never stops a search.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

from paretodistill.search.results import Failure, StoredTrial
from paretodistill.tracking import MlflowRun, MlflowStore

SETTING = "search.mlflow_uri"
CONFIG_ARTIFACT = "config.json"
SEARCH_RUN = "search"


class MlflowTracker:
    """A search's MLflow runs: one for the search, one nested run per trial (see the module docstring)."""

    def __init__(self, uri: str, study_name: str, log: Callable[[str], None] = print):
        self.study_name = study_name
        self.store = MlflowStore(uri, study_name, setting=SETTING, log=log)
        self.search: MlflowRun | None = None
        self.trials: dict[tuple[str, int], MlflowRun] = {}

    def _search_run(self) -> MlflowRun | None:
        if self.search is None:
            self.search = self.store.start_run(SEARCH_RUN, {"study": self.study_name})
        return self.search

    def search_started(self, config: dict) -> None:
        """The config the search runs with (already redacted), as an artifact of the search's run."""
        if (run := self._search_run()) is not None:
            run.log_json(config, CONFIG_ARTIFACT)

    def pareto_written(self, path: Path) -> None:
        if (run := self._search_run()) is not None:
            run.log_file(path)

    def search_ended(self) -> None:
        """Close the runs still open: FINISHED when the search returned, KILLED when it was stopped, else FAILED."""
        error = sys.exc_info()[0]
        status = "FINISHED" if error is None else "KILLED" if issubclass(error, KeyboardInterrupt) else "FAILED"
        for run in self.trials.values():
            run.finish("KILLED")  # a trial the stop caught: it never reported a result
        self.trials.clear()
        if self.search is not None:
            self.search.finish(status)

    def trial_started(self, stage: str, number: int, params: dict) -> None:
        tags = {"study": self.study_name, "stage": stage, "trial": str(number), "state": "RUNNING"}
        run = self.store.start_run(f"{stage}-{number}", tags, parent=self._search_run())
        if run is not None:
            run.log_params(params)
            self.trials[(stage, number)] = run

    def curve_point(self, stage: str, number: int, point: dict) -> None:
        if (run := self.trials.get((stage, number))) is not None:
            run.log_curve_point(point)

    def trial_finished(self, stage: str, frozen) -> None:
        run = self.trials.pop((stage, frozen.number), None)
        if run is None:  # started elsewhere (or its run could not be opened): one run with everything
            self.trial_started(stage, frozen.number, dict(frozen.params))
            run = self.trials.pop((stage, frozen.number), None)
        if run is None:
            return
        trial = StoredTrial.of(frozen)
        failure = trial.failure or Failure("")
        tags = {"state": frozen.state.name, **{key: value for key, value in (
            ("failure_kind", failure.kind), ("failure_reason", failure.reason), ("stop_reason", trial.stop_reason)) if value}}
        run.set_tags(tags)
        run.log_outcome(trial.metrics, trial.test_metrics, trial.curve)  # with the curve points not seen live
        stopped = frozen.state.name == "PRUNED"  # stopped early (search.early_stop): ended on purpose, not failed
        run.finish("FINISHED" if frozen.values is not None else "KILLED" if stopped else "FAILED")


EXPORT_FILES = ("README.md", "export.json")  # the model card and the data it is written from (export.model_card)


def open_export_store(uri: str, study_name: str, log: Callable[[str], None] = print) -> MlflowStore:
    """The study's experiment, for ``paretodistill export --mlflow-uri`` (opened before exporting:
    a URI MLflow cannot use is one line, and no export is spent)."""
    return MlflowStore(uri, study_name, setting="--mlflow-uri", log=log)


def log_export(store: MlflowStore, info: dict, folder: Path) -> None:
    """An exported student as a run ``export-<stage>-<trial>`` nested under the study's latest
    search run: its parameters, its validation and test figures, its model card and export.json."""
    run = store.start_run(f"export-{info['stage']}-{info['trial']}",
                          {"study": str(info.get("study")), "stage": str(info["stage"]), "trial": str(info["trial"]),
                           "export": folder.name}, parent=store.latest_run(SEARCH_RUN))
    if run is None:
        return
    run.log_params(info.get("params") or {})
    run.log_outcome(info.get("validation"), info.get("test"), ())
    for name in EXPORT_FILES:
        if (folder / name).is_file():
            run.log_file(folder / name)
    run.finish("FINISHED")


def trackers(uri: str | None, study_name: str, log: Callable[[str], None] = print) -> list:
    """The trackers ``search.mlflow_uri`` asks for (none, or MLflow)."""
    return [MlflowTracker(uri, study_name, log)] if uri else []
