"""A search's Optuna studies: opening one, recording a trial's result, requeueing interrupted trials.

Where the studies are stored and how stale trials are found: :mod:`search.storage`. The samplers
and how failures teach them: :mod:`search.samplers`. What the stored trials mean:
:mod:`search.results` (whose :class:`~search.results.Attr` names the user attributes written here).
"""

from __future__ import annotations

import datetime
import logging
import math
import warnings
from pathlib import Path
from typing import Any, Callable

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from paretodistill.errors import ConfigError
from paretodistill.search.domain import stage_study_name
from paretodistill.search.early_stop import learning_value
from paretodistill.search.objectives import MetricError, ObjectiveSet
from paretodistill.search.optuna_adapter import rdb_backend, set_intermediate_value, storage_of, study_id, trial_id
from paretodistill.search.results import INTERRUPTED, Attr, StoredTrial
from paretodistill.search.samplers import FailureAwareSampler
from paretodistill.search.storage import heartbeat_stale_ids
from paretodistill.trial import TrialResult

_logger = logging.getLogger("paretodistill.search")


def open_study(
    storage,
    name: str,
    stage: str,
    objectives: ObjectiveSet,
    *,
    sampler: BaseSampler | None = None,
    space: dict | None = None,
    distributions: dict[str, BaseDistribution] | None = None,
    attrs: dict | None = None,
) -> optuna.Study:
    """Create or load ``<name>-<stage>``; refuse to continue a study made with other objectives or space.

    ``space`` (its stored form) is recorded on the study; a FailureAwareSampler is configured with
    ``distributions`` (else the ones ``space`` describes). ``attrs`` (the config, the identity...)
    are recorded when the study is created: they say what it was started with, and a later run
    (which ``search.identity`` has checked) does not overwrite them.
    """
    study_name = stage_study_name(name, stage)
    existing = {s.study_name for s in storage.get_all_studies()}
    study = optuna.create_study(
        storage=storage,
        study_name=study_name,
        directions=objectives.directions,
        sampler=sampler,
        load_if_exists=True,
    )
    if study_name in existing:
        stored = study.user_attrs
        if stored.get("objectives") not in (None, objectives.describe_objectives()):
            raise ConfigError(
                f"study {study_name} in this directory optimizes {stored['objectives']}, not "
                f"{objectives.describe_objectives()}; use a new --study directory"
            )
        if space is not None and stored.get("space") not in (None, space):
            raise ConfigError(
                f"study {study_name} in this directory was run with a different search space; "
                f"use a new --study directory (or restore the space it was started with)"
            )
    study.set_user_attr("objectives", objectives.describe_objectives())
    study.set_user_attr("thresholds", objectives.describe_thresholds())
    study.set_user_attr("stage", stage)
    if space is not None:
        study.set_user_attr("space", space)
    if study_name not in existing:
        for key, value in (attrs or {}).items():
            study.set_user_attr(key, value)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # flagged experimental
            study.set_metric_names(objectives.metric_names)
    except Exception as error:  # noqa: BLE001 - cosmetic (dashboards); never worth failing a search for
        _logger.info("study %s: metric names not recorded (%s: %s)", study_name, type(error).__name__, error)
    if isinstance(sampler, FailureAwareSampler) and (distributions is not None or space is not None):
        if distributions is None:
            distributions = {k: _distribution_from_dict(v) for k, v in space.items()}
        sampler.configure(distributions, objectives)
    return study


def _distribution_from_dict(values: dict) -> BaseDistribution:
    kind = values["type"]
    if kind == "float":
        return FloatDistribution(values["low"], values["high"], log=values.get("log", False), step=values.get("step"))
    if kind == "int":
        return IntDistribution(values["low"], values["high"], log=values.get("log", False), step=values.get("step") or 1)
    if kind == "categorical":
        return CategoricalDistribution(values["choices"])
    return CategoricalDistribution([values["value"]])


# ---------------------------------------------------------------- recording
def owner_record(token: str) -> dict:
    """Which run owns a trial (user attribute ``Attr.COORDINATOR``): its token only (the lock
    file says which process that is)."""
    return {"run": token}


def record_result(study: optuna.Study, trial: optuna.Trial, result: TrialResult, objectives: ObjectiveSet,
                  extra_attrs: dict | None = None) -> FrozenTrial:
    """Store everything the trial returned and tell Optuna; a failed or unusable result is a FAIL
    trial, a stopped one (``stop_reason``) a PRUNED trial, finished but never a candidate."""
    values = None
    metrics = dict(result.metrics or {})
    if result.ok:
        try:
            values = objectives.values(metrics)
        except MetricError as error:
            result = TrialResult.failed(result.params, "error", f"the trial returned no usable objective: {error}",
                                        curve=result.curve)
            result.metrics = metrics
    attrs = {
        Attr.METRICS: metrics,
        Attr.CURVE: list(result.curve or []),
        Attr.CHECKPOINT: result.checkpoint,
        Attr.TEST_METRICS: result.test_metrics,
        Attr.FAILURE_KIND: result.failure_kind,
        Attr.FAILURE_REASON: result.failure_reason,
        Attr.FAILURE_STEP: result.failure_step,
        Attr.STOP_REASON: result.stop_reason,
        # a stopped trial was not judged on its thresholds: its last evaluation is not its end
        Attr.CONSTRAINT_VIOLATION: None if result.stopped else objectives.violations(metrics if values is not None else None),
        **(extra_attrs or {}),
    }
    constraints = objectives.constraints(metrics if values is not None else None)
    try:
        for key, value in attrs.items():
            trial.set_user_attr(key, _jsonable(value))
        if result.stopped:
            return study.tell(trial, state=TrialState.PRUNED)
        for key in objectives.constraint_keys:
            trial.set_constraint(key, constraints[key])
        if values is None:
            return study.tell(trial, state=TrialState.FAIL)
        return study.tell(trial, values)
    except optuna.exceptions.UpdateFinishedTrialError:
        return _finished_elsewhere(study, trial, result, values, constraints, attrs)
    except (ValueError, TypeError, RuntimeError) as error:  # Optuna refused the values: FAIL, with the reason
        reason = f"the result could not be told to the study: {type(error).__name__}: {error}"
        _logger.error("trial %d: %s", trial.number, reason)
        trial.set_user_attr(Attr.FAILURE_KIND, "error")
        trial.set_user_attr(Attr.FAILURE_REASON, reason)
        return study.tell(trial, state=TrialState.FAIL)


def record_curve_point(study: optuna.Study, trial: optuna.Trial, point: dict, objectives: ObjectiveSet) -> None:
    """A running trial's evaluation point as its Optuna intermediate value at the training step
    (the learning objective as the point shows it: ``search.early_stop.learning_value``), so that
    optuna-dashboard draws the curve while the trial trains. The curve itself stays a user
    attribute (``Attr.CURVE``); a value not stored is logged and the trial goes on."""
    value = learning_value(point, objectives)
    if value is None:
        return
    try:
        set_intermediate_value(study, trial, point["step"], value)
    except Exception as error:  # noqa: BLE001 - a view of the curve; the result is what counts
        _logger.warning("trial %d: curve point at step %s not stored as an intermediate value (%s: %s)",
                        trial.number, point.get("step"), type(error).__name__, error)


def _finished_elsewhere(study: optuna.Study, trial: optuna.Trial, result: TrialResult, values, constraints: dict,
                        attrs: dict) -> FrozenTrial:
    """Another process finished the trial while it ran here. Its record is kept when it is a result;
    when it only marked the trial interrupted (it took this run for dead), this run's result lands
    as a new trial with the same parameters: a trial that ran to its end is never thrown away."""
    storage = storage_of(study)
    stored = storage.get_trial(trial_id(trial))
    if not StoredTrial.of(stored).interrupted or result.failure_kind == INTERRUPTED:
        _logger.warning("trial %d was finished by another process; its record is kept", trial.number)
        return stored
    state = TrialState.PRUNED if result.stopped else TrialState.FAIL if values is None else TrialState.COMPLETE
    landed = optuna.trial.create_trial(
        state=state, params=stored.params, distributions=stored.distributions,
        values=values if state == TrialState.COMPLETE else None,
        user_attrs={**stored.user_attrs, **{key: _jsonable(value) for key, value in attrs.items()}},
        constraints=None if result.stopped else constraints or None,
    )
    frozen = storage.get_trial(storage.create_new_trial(study_id(study), template_trial=landed))
    _logger.warning("trial %d was marked interrupted by another process while it ran here; its result is kept "
                    "as trial %d", trial.number, frozen.number)
    return frozen


def _jsonable(value: Any) -> Any:
    """User attributes are JSON in the database: numpy scalars, tuples and paths made plain."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):
        try:
            return value.item()
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def recover_interrupted(study: optuna.Study, token: str, log: Callable[[str], None] = _logger.warning, *,
                        exclusive: bool = False) -> list[int]:
    """Mark RUNNING trials of coordinators that are gone FAIL / interrupted; returns their numbers.

    ``exclusive``: this run holds the lock of the folder the study lives in, or the server's lock on
    the search (PostgreSQL), so no other coordinator can be running it and every RUNNING trial but
    ours was left by one that ended. Otherwise (another shared database) a trial is taken for dead only when its heartbeat is older than
    the storage's grace period; a live coordinator beats for its running trials from a thread of
    its own (``runner.Heartbeats``), however long a trial blocks it, so its trials never are.
    """
    storage = storage_of(study)
    stale_ids = set() if exclusive else heartbeat_stale_ids(study)
    backend = rdb_backend(storage)
    grace = getattr(backend, "grace_period", None) or 2 * (getattr(backend, "heartbeat_interval", None) or 60)
    recovered = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = StoredTrial.of(trial).owner_run
        if owner == token:
            continue  # ours, still running
        # killed between ask() and its first record: no owner, no heartbeat, only its age tells
        orphan = owner is None and trial.datetime_start is not None and (
            (datetime.datetime.now() - trial.datetime_start).total_seconds() > grace
        )
        if exclusive:
            why = "the search that ran it ended while it was running (this run holds the study's lock)"
        elif trial_id(trial) in stale_ids:
            why = "no heartbeat from its coordinating process within the grace period"
        elif orphan:
            why = f"started more than {grace} s ago by a process that never recorded it (killed while asking?)"
        else:
            continue
        if mark_interrupted(storage, trial, why):
            recovered.append(trial.number)
    if recovered:
        log(f"[{study.study_name}] trial(s) {recovered} were left running by a search that is gone: "
            f"marked interrupted; their budget is spent again")
    return recovered


def mark_interrupted(storage, trial: FrozenTrial, why: str) -> bool:
    """Record a RUNNING trial as FAIL / interrupted (``why``); False when it finished meanwhile."""
    try:
        storage.set_trial_user_attr(trial_id(trial), Attr.FAILURE_KIND, INTERRUPTED)
        storage.set_trial_user_attr(trial_id(trial), Attr.FAILURE_REASON, f"interrupted: {why}")
        storage.set_trial_user_attr(trial_id(trial), Attr.FAILURE_STEP, None)
        return bool(storage.set_trial_state_values(trial_id(trial), state=TrialState.FAIL))
    except optuna.exceptions.UpdateFinishedTrialError:
        return False  # finished meanwhile by whoever was running it


def requeue(study: optuna.Study, numbers: list[int]) -> None:
    """Enqueue the interrupted trials ``numbers`` again, with their parameters and queue attributes.

    For the stages that only run their queue (regular, baseline): there no sampler proposes an
    interrupted candidate again, so without this a crash would drop it from the search for good.
    """
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    for number in numbers:
        trial = StoredTrial.of(by_number[number])
        queued_with = {Attr.FLASH_TRIAL: trial.flash_trial, Attr.FLASH_METRICS: trial.flash_metrics,
                       Attr.BASELINE: trial.baseline}  # what the regular and baseline stages enqueue with
        study.enqueue_trial(dict(trial.params), user_attrs={k: v for k, v in queued_with.items() if v is not None})


# ---------------------------------------------------------------- reading a study
def load_stage(storage, name: str, stage: str) -> optuna.Study | None:
    """The study of one stage of the search ``name``, or None when that stage never started."""
    study_name = stage_study_name(name, stage)
    if study_name not in {s.study_name for s in storage.get_all_studies()}:
        return None
    return optuna.load_study(study_name=study_name, storage=storage)

