"""Optuna studies of one search: storage, samplers, how results and failures are recorded.

**Storage.** ``sqlite:///STUDY_DIR/study.db`` unless ``search.storage`` names another database
URL. Only the coordinating process writes to it (workers return their results), so SQLite is
safe for local workers and Ray alike. Every trial is told the moment it finishes, so a crash or
``kill -9`` loses at most the trials that were running. Those stay RUNNING in the database; the
next run marks them FAIL with ``failure_kind = "interrupted"`` (at once when the study lives in
the folder whose lock that run holds, see :mod:`search.lock`; on a shared database after
``grace_period`` seconds without a heartbeat, Optuna's RDBStorage heartbeat) and runs their share
of the budget again. A trial records only the run that owns it (a random token), never a pid or
a host: a copied study carries nothing of the machine it ran on.

**How failures teach the sampler.** A failed trial is stored as an Optuna FAIL trial with
``failure_kind`` / ``failure_reason`` / ``failure_step``, so counts and reports stay honest. But
Optuna's samplers ignore FAIL trials: GPSampler would keep proposing the region that runs out of
memory. So every sampler is wrapped in :class:`FailureAwareSampler`, which shows the wrapped
sampler a *view* of the study in which each failed (not interrupted) trial is a COMPLETE trial with
the worst objective values seen so far and a violated ``failed`` constraint. GPSampler fits its
constraint model to that (its acquisition then multiplies in a low probability of feasibility
around failures), TPE puts it in its "bad" group, NSGA-II ranks it below every feasible trial.
A flash trial stopped early (``search.early_stop``, stored as PRUNED) is shown as a COMPLETE trial
at the optimistic end point it was judged by, which completed trials dominate: GPSampler and NSGA-II
would otherwise ignore it and propose its neighbourhood again. The database itself never contains
these invented values.

**No repeated configurations.** If the sampler proposes exactly the parameters of a trial that
failed, completed or is running (GP often returns the same corner of the box), the wrapper moves
one or more parameters a little (a seeded random step in the distribution's own scale, wider with
each attempt, then uniform draws), until the configuration is new; only a fully exhausted discrete
space lets a repeat through, with a warning. Interrupted trials do not count: their configuration
was never evaluated.

**Running trials.** With several workers the sampler is asked while other trials run. They are
RUNNING in the storage with their parameters already set (``study.ask`` with fixed distributions
suggests all of them at once), and Optuna accounts for them: GPSampler passes them as pending
points to its batch acquisition functions (qLogEHVI / qLogCEHVI), TPE with ``constant_liar`` counts
them among its bad trials so two workers do not get the same point, NSGA-II and random ignore them.
"""

from __future__ import annotations

import copy
import datetime
import logging
import math
import os
import random
import sqlite3
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState
from sqlalchemy.exc import SQLAlchemyError

from paretodistill.config import SAMPLERS, SearchSettings
from paretodistill.errors import ConfigError, StudyError
from paretodistill.search.domain import STAGES, redact_url, stage_study_name
from paretodistill.search.objectives import MetricError, ObjectiveSet, nondominated_ranks
from paretodistill.search.optuna_adapter import (
    SamplerStudyProxy,
    grid_random_index,
    grid_search_space,
    grid_size,
    rdb_backend,
    stale_trial_ids,
    storage_of,
    study_id,
    trial_id,
    trials_uncached,
)
from paretodistill.trial import TrialResult

_logger = logging.getLogger("paretodistill.search")

INTERRUPTED = "interrupted"
_CONSTRAINT_PREFIX = "constraints"


# ---------------------------------------------------------------- storage
class _SqliteConnect:
    """SQLite connections in WAL mode with ``synchronous=NORMAL``; read-only ones for readers.

    A search commits a few dozen small transactions per trial; with SQLite's default rollback
    journal each one waits for an fsync (about 12 ms on a busy disk, most of a fast trial's
    overhead). In WAL mode with NORMAL sync a commit is in the WAL file before it returns, so it
    survives a crash or ``kill -9`` of the process; only a power cut can lose the last commits,
    never corrupt the file. (Keep a study.db on a local disk: WAL needs shared memory.)

    Setting the journal mode writes to the file, so a reader (``status``, the report) opens it
    read-only and sets nothing: a study on a read-only disk or shared read-only can be reported on.
    """

    def __init__(self, path: str, read_only: bool = False):
        self.path = path
        self.read_only = read_only

    def __call__(self):
        if self.read_only:
            uri = Path(self.path).resolve().as_uri()
            try:
                return sqlite3.connect(f"{uri}?mode=ro", uri=True, timeout=60, check_same_thread=False)
            except sqlite3.OperationalError:  # a WAL file no one may write beside: read the file as it is
                return sqlite3.connect(f"{uri}?immutable=1", uri=True, check_same_thread=False)
        connection = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        return connection


def open_storage(url: str, heartbeat_interval: int = 30, grace_period: int = 120, *,
                 read_only: bool = False) -> optuna.storages.RDBStorage:
    """An RDBStorage with heartbeats, so that trials of a dead process can be told apart from slow ones.

    ``read_only``: for readers of a study; an SQLite file is opened without writing to it.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # heartbeat_interval is flagged experimental
        engine_kwargs = None
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            engine_kwargs = {"creator": _SqliteConnect(url[len("sqlite:///"):], read_only)}
        return optuna.storages.RDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=int(heartbeat_interval),
            grace_period=int(grace_period),
            heartbeat_stale_trial_callback=_stale_trial_callback,
        )


def open_checked_storage(url: str, heartbeat_interval: int = 30, grace_period: int = 120, *,
                         read_only: bool = False) -> optuna.storages.RDBStorage:
    """``open_storage``, with a database that cannot be opened, read (or, for a search, written)
    refused as one line (``StudyError``) before anything runs."""
    where = redact_url(url)
    path = Path(url[len("sqlite:///"):]) if url.startswith("sqlite:///") and url != "sqlite:///:memory:" else None
    if path is not None and not read_only and path.exists() and not os.access(path, os.W_OK):
        raise StudyError(f"{path} is read-only: a search writes to its study; copy the folder somewhere "
                         "writable to continue it (status and report read it as it is)")
    if path is not None and read_only and not path.is_file():
        raise StudyError(f"{path}: no study database here")
    try:
        storage = open_storage(url, heartbeat_interval, grace_period, read_only=read_only)
        storage.get_all_studies()
    except (SQLAlchemyError, sqlite3.Error, RuntimeError, ImportError, ValueError) as error:
        reason = " ".join(str(getattr(error, "orig", None) or error).split())[:300]
        raise StudyError(f"{where}: cannot {'read' if read_only else 'open'} the study database "
                         f"({type(error).__name__}: {reason})") from None
    return storage


def _stale_trial_callback(study: optuna.Study, trial: FrozenTrial) -> None:
    """Called when Optuna's own ``fail_stale_trials`` fails a trial (our runner marks them first)."""
    _logger.warning("trial %d of %s had no heartbeat for too long and was marked FAIL", trial.number, study.study_name)


# ---------------------------------------------------------------- samplers
def make_sampler(kind: str, seed: int | None, n_startup_trials: int = SearchSettings.n_startup_trials, *,
                 dedupe: bool = True, gp_after: int = SearchSettings.gp_after) -> "FailureAwareSampler":
    """The configured sampler, wrapped so that failures teach it and repeats are avoided.

    ``gp_after``: for ``tpe-gp``, the finished trials after which GP takes over from TPE."""
    kind = (kind or "gp").lower()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if kind == "gp":
            inner = optuna.samplers.GPSampler(seed=seed, n_startup_trials=n_startup_trials)
        elif kind == "tpe":
            inner = tpe_sampler(seed, n_startup_trials)
        elif kind == "tpe-gp":
            inner = StagedSampler(tpe_sampler(seed, n_startup_trials),
                                  optuna.samplers.GPSampler(seed=seed, n_startup_trials=n_startup_trials), gp_after)
        elif kind == "nsga2":
            inner = optuna.samplers.NSGAIISampler(seed=seed)
        elif kind == "random":
            inner = optuna.samplers.RandomSampler(seed=seed)
        elif kind == "grid":
            inner = GridSearchSampler(seed=seed)
        else:
            raise ConfigError(f"search.sampler: unknown sampler {kind!r}; expected one of {list(SAMPLERS)}")
    return FailureAwareSampler(inner, seed=seed, dedupe=dedupe)


def tpe_sampler(seed: int | None, n_startup_trials: int, multivariate: bool = True) -> optuna.samplers.TPESampler:
    """The search's TPE: multivariate (``multivariate=False`` only for comparisons), with a constant liar so
    parallel workers get different points."""
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup_trials, multivariate=multivariate,
                                      constant_liar=True)


class StagedSampler(BaseSampler):
    """One sampler's proposals until ``switch_after`` trials have finished, another's after.

    For "TPE first, GP later": TPE spreads cheaply over a rough landscape early, GP's model pays
    once there are enough points to fit. Both learn from every trial (they read the same study), so
    the switch loses nothing; finished trials are counted in the study the sampler is shown, where
    failed and stopped trials are complete ones too (:class:`FailureAwareSampler`).
    """

    def __init__(self, first: BaseSampler, then: BaseSampler, switch_after: int):
        if switch_after < 0:
            raise ConfigError(f"search.gp_after: expected an integer >= 0, got {switch_after!r}")
        self.first, self.then, self.switch_after = first, then, int(switch_after)

    def active(self, study) -> BaseSampler:
        finished = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
        return self.first if finished < self.switch_after else self.then

    def infer_relative_search_space(self, study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self.active(study).infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return self.active(study).sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution) -> Any:
        return self.active(study).sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study, trial: FrozenTrial) -> None:
        for sampler in (self.first, self.then):
            sampler.before_trial(study, trial)

    def after_trial(self, study, trial: FrozenTrial, state: TrialState, values) -> None:
        for sampler in (self.first, self.then):
            sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        for sampler in (self.first, self.then):
            sampler.reseed_rng()


class FailureAwareSampler(BaseSampler):
    """Wraps a sampler: failed trials become infeasible worst-case observations; no repeats.

    The search space is fixed per study (``study.ask(fixed_distributions=...)``), so this sampler
    decides all parameters of a trial at once in ``sample_relative``: the wrapped sampler's
    relative proposal over the parameters it models jointly (its own ``infer_relative_search_space``),
    completed by its independent proposals, then checked against earlier configurations.
    """

    def __init__(self, inner: BaseSampler, *, seed: int | None = None, dedupe: bool = True, max_attempts: int = 200):
        self.inner = inner
        self._seed = 0 if seed is None else int(seed)
        self._dedupe = dedupe
        self._max_attempts = max_attempts
        self._objectives: ObjectiveSet | None = None
        self.space: dict[str, BaseDistribution] = {}
        self.perturbed: list[int] = []  # trial numbers whose proposal was moved off a repeat

    def configure(self, space: dict[str, BaseDistribution], objectives: ObjectiveSet) -> None:
        self.space = dict(space)
        self._objectives = objectives
        if isinstance(self.inner, GridSearchSampler):
            self.inner.set_space(self.space)

    # -- the view the wrapped sampler sees
    def view(self, study: optuna.Study) -> "_StudyView":
        return _StudyView(study, self._objectives)

    def infer_relative_search_space(self, study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        if not self.space:  # not configured: behave as the wrapped sampler
            return self.inner.infer_relative_search_space(self.view(study), trial)
        return {name: d for name, d in self.space.items() if not d.single()}

    def sample_relative(self, study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        view = self.view(study)
        if not self.space:
            return self.inner.sample_relative(view, trial, search_space)
        if search_space == {}:
            return {}
        # Only what the wrapped sampler models jointly: a univariate TPE's relative space is empty, and
        # asking its sample_relative anyway would make it multivariate.
        wanted = self.inner.infer_relative_search_space(view, trial)
        relative = {name: d for name, d in search_space.items() if name in wanted}
        params = dict(self.inner.sample_relative(view, trial, relative) or {}) if relative else {}
        params = {k: v for k, v in params.items() if k in search_space}
        for name, distribution in search_space.items():
            if name not in params:
                params[name] = self.inner.sample_independent(view, trial, name, distribution)
        if self._dedupe:
            params = self._avoid_repeats(study, trial, params, search_space)
        return params

    def sample_independent(self, study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution) -> Any:
        return self.inner.sample_independent(self.view(study), trial, param_name, param_distribution)

    def before_trial(self, study, trial: FrozenTrial) -> None:
        self.inner.before_trial(self.view(study), trial)

    def after_trial(self, study, trial: FrozenTrial, state: TrialState, values) -> None:
        self.inner.after_trial(self.view(study), trial, state, values)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()

    # -- dedupe
    def _avoid_repeats(self, study, trial: FrozenTrial, params: dict, space: dict[str, BaseDistribution]) -> dict:
        seen = [
            _param_key(t.params, space)
            for t in trials_uncached(study)
            if t.number != trial.number and not is_interrupted(t) and t.params
        ]
        seen_set = set(seen)
        key = _param_key(params, space)
        if key not in seen_set:
            return params
        rng = random.Random(f"paretodistill/dedupe/{self._seed}/{trial.number}")
        names = list(space)
        candidate = dict(params)
        for attempt in range(self._max_attempts):
            candidate = dict(params)
            if attempt < self._max_attempts // 2:
                scale = 0.05 * (1 + attempt // 5)
                how_many = min(len(names), 1 + attempt // 20)
                for name in rng.sample(names, how_many):
                    candidate[name] = _perturb(space[name], params[name], scale, rng)
            else:  # a wide search: uniform draws of everything
                candidate = {name: _uniform(space[name], rng) for name in names}
            if _param_key(candidate, space) not in seen_set:
                self.perturbed.append(trial.number)
                _logger.info("trial %d: the sampler repeated an earlier configuration; moved it to %s", trial.number, candidate)
                return candidate
        _logger.warning(
            "trial %d: every nearby configuration has been tried (exhausted discrete space?); repeating one", trial.number
        )
        return params


class GridSearchSampler(optuna.samplers.GridSampler):
    """Optuna's GridSampler, for a search: every point of a discrete space once, in a seeded order.

    Two changes for our runner: a point whose trial was interrupted is run again (Optuna counts
    any finished trial as visited), and the search stops at its ``n_trials`` rather than through
    ``study.stop()``, which only works inside ``study.optimize``. Past the grid's size points repeat.
    The grid comes from the configured space (:meth:`set_space`), so every parameter must be
    categorical, a stepped int or float, or fixed.
    """

    def __init__(self, seed: int | None = None):  # GridSampler.__init__ runs in set_space, once the grid is known
        self._seed = seed

    def set_space(self, space: dict[str, BaseDistribution]) -> None:
        super().__init__({name: grid_values(name, d) for name, d in space.items()}, seed=self._seed)

    def before_trial(self, study, trial: FrozenTrial) -> None:
        size = grid_size(self)
        if not size:
            raise ConfigError("search.sampler = 'grid' needs the search space (FailureAwareSampler.configure)")
        if "grid_id" in trial.system_attrs or "fixed_params" in trial.system_attrs:
            return
        taken = {
            t.system_attrs["grid_id"]
            for t in storage_of(study).get_all_trials(study_id(study), deepcopy=False)
            if t.number != trial.number and "grid_id" in t.system_attrs and not is_interrupted(t)
            and (t.state.is_finished() or t.state == TrialState.RUNNING)
        }
        free = [i for i in range(size) if i not in taken]
        if free:
            grid_id = free[0]
        else:
            _logger.warning("trial %d: all %d grid points have been run; repeating one", trial.number, size)
            grid_id = grid_random_index(self)
        storage_of(study).set_trial_system_attr(trial_id(trial), "search_space", grid_search_space(self))
        storage_of(study).set_trial_system_attr(trial_id(trial), "grid_id", grid_id)

    def sample_independent(self, study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution) -> Any:
        if "grid_id" not in trial.system_attrs:  # the trial object was frozen before before_trial ran
            trial = copy.copy(trial)
            trial.system_attrs = storage_of(study).get_trial_system_attrs(trial_id(trial))
        return super().sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial: FrozenTrial, state: TrialState, values) -> None:
        return None


def grid_values(name: str, distribution: BaseDistribution) -> list:
    """The points of one parameter of a grid search; a clear error for a continuous range."""
    if isinstance(distribution, CategoricalDistribution):
        return list(distribution.choices)
    if isinstance(distribution, IntDistribution):
        if distribution.log:
            raise ConfigError(f"search.space.{name}: a log-scale int range has no grid; use a categorical list")
        return list(range(distribution.low, distribution.high + 1, distribution.step))
    if isinstance(distribution, FloatDistribution):
        if distribution.single():
            return [distribution.low]
        if distribution.step is None:
            raise ConfigError(
                f"search.space.{name}: sampler 'grid' needs discrete values; give a step or a categorical list "
                f"instead of the continuous range [{distribution.low}, {distribution.high}]"
            )
        count = int(round((distribution.high - distribution.low) / distribution.step))
        return [float(f"{distribution.low + i * distribution.step:.12g}") for i in range(count + 1)]
    raise ConfigError(f"search.space.{name}: sampler 'grid' cannot enumerate {distribution!r}")


def _param_key(params: dict, space: dict[str, BaseDistribution]) -> tuple:
    key = []
    for name in sorted(space):
        value = params.get(name)
        if isinstance(value, float):
            value = float(f"{value:.10g}")
        key.append((name, value))
    return tuple(key)


def _to_unit(distribution: BaseDistribution, value: float) -> float:
    low, high = distribution.low, distribution.high
    if distribution.log:
        return (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))
    return (value - low) / (high - low)


def _from_unit(distribution: BaseDistribution, unit: float) -> Any:
    unit = min(1.0, max(0.0, unit))
    low, high = distribution.low, distribution.high
    value = math.exp(math.log(low) + unit * (math.log(high) - math.log(low))) if distribution.log else low + unit * (high - low)
    step = getattr(distribution, "step", None)
    if isinstance(distribution, IntDistribution):
        step = step or 1
        value = low + round((value - low) / step) * step
        return int(min(high, max(low, value)))
    if step is not None:
        value = low + round((value - low) / step) * step
    return float(min(high, max(low, value)))


def _perturb(distribution: BaseDistribution, value: Any, scale: float, rng: random.Random) -> Any:
    if isinstance(distribution, CategoricalDistribution):
        others = [c for c in distribution.choices if c != value]
        return rng.choice(others) if others else value
    if isinstance(distribution, IntDistribution):
        step = distribution.step or 1
        moved = _from_unit(distribution, _to_unit(distribution, value) + rng.gauss(0.0, scale))
        if moved == value:  # at least one step, inside the range
            options = [v for v in (value - step, value + step) if distribution.low <= v <= distribution.high]
            moved = rng.choice(options) if options else value
        return moved
    return _from_unit(distribution, _to_unit(distribution, value) + rng.gauss(0.0, scale))


def _uniform(distribution: BaseDistribution, rng: random.Random) -> Any:
    if isinstance(distribution, CategoricalDistribution):
        return rng.choice(list(distribution.choices))
    return _from_unit(distribution, rng.random())


class _StudyView(SamplerStudyProxy):
    """A study as the wrapped sampler sees it: failed trials as infeasible worst-case COMPLETE ones."""

    def __init__(self, study: optuna.Study, objectives: ObjectiveSet | None):
        super().__init__(study)
        self._objectives = objectives

    def sampler_trials(self, trials: list[FrozenTrial], use_cache: bool) -> list[FrozenTrial]:
        return trials if self._objectives is None else sampler_view_of(trials, self._objectives)


def sampler_view_of(trials: list[FrozenTrial], objectives: ObjectiveSet) -> list[FrozenTrial]:
    """The trials a sampler learns from (see the module docstring); pure, for tests and the benchmark."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.values is not None]
    keys = objectives.constraint_keys
    worst = None
    if complete:
        worst = [o.worst(t.values[i] for t in complete) for i, o in enumerate(objectives.objectives)]
    result = []
    for t in trials:
        if t.state == TrialState.COMPLETE and t.values is not None:
            metrics = t.user_attrs.get("metrics")
            constraints = objectives.constraints(metrics) if isinstance(metrics, dict) else t.constraints
            result.append(_with_constraints(t, {k: float(constraints.get(k, -1.0)) for k in keys}))
        elif t.state == TrialState.FAIL and not is_interrupted(t) and t.params and worst is not None:
            penalty_metrics = dict(zip(objectives.metric_names, worst))
            constraints = objectives.constraints(penalty_metrics)
            constraints["failed"] = 1.0
            result.append(_as_penalty(t, worst, {k: float(constraints.get(k, 1.0)) for k in keys}))
        elif t.state == TrialState.PRUNED and (optimistic := _optimistic_point(t, objectives)) is not None:
            # a threshold its last evaluation cannot show counts as unmet, as for any trial
            constraints = objectives.constraints({**(t.user_attrs.get("metrics") or {}), **optimistic})
            result.append(_as_penalty(t, list(optimistic.values()), {k: float(constraints[k]) for k in keys}))
        elif t.state in (TrialState.COMPLETE, TrialState.FAIL):
            # nothing to learn (interrupted, or no completed trial to compare with yet): left as Optuna
            # stored it, which samplers skip; kept in the list, as NSGA-II (Optuna 5.1) finds trials by
            # their number's position in it
            result.append(t)
        else:
            result.append(t)
    return result


def _optimistic_point(t: FrozenTrial, objectives: ObjectiveSet) -> dict[str, float] | None:
    """The end point a stopped trial was judged by (``search.early_stop``), in objective order."""
    optimistic = (t.user_attrs.get("early_stop") or {}).get("optimistic") or {}
    values = {m: optimistic.get(m) for m in objectives.metric_names}
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values.values()):
        return None
    return {m: float(v) for m, v in values.items()}


def _system_attrs_with(t: FrozenTrial, constraints: dict[str, float]) -> dict:
    attrs = {k: v for k, v in t.system_attrs.items() if not k.startswith(_CONSTRAINT_PREFIX)}
    attrs.update({f"{_CONSTRAINT_PREFIX}:{k}": v for k, v in constraints.items()})
    return attrs


def _with_constraints(t: FrozenTrial, constraints: dict[str, float]) -> FrozenTrial:
    if list(t.constraints.items()) == list(constraints.items()):
        return t
    return _copy_trial(t, TrialState.COMPLETE, list(t.values), _system_attrs_with(t, constraints))


def _as_penalty(t: FrozenTrial, values: list[float], constraints: dict[str, float]) -> FrozenTrial:
    return _copy_trial(t, TrialState.COMPLETE, list(values), _system_attrs_with(t, constraints))


def _copy_trial(t: FrozenTrial, state: TrialState, values: list[float], system_attrs: dict) -> FrozenTrial:
    return FrozenTrial(
        number=t.number,
        state=state,
        value=None,
        values=values,
        datetime_start=t.datetime_start,
        datetime_complete=t.datetime_complete or t.datetime_start,
        params=t.params,
        distributions=t.distributions,
        user_attrs=t.user_attrs,
        system_attrs=system_attrs,
        intermediate_values=t.intermediate_values,
        trial_id=trial_id(t),
    )


# ---------------------------------------------------------------- studies
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
    """Which run owns a trial: its token only (the lock file says which process that is)."""
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
        "metrics": metrics,
        "curve": list(result.curve or []),
        "checkpoint": result.checkpoint,
        "test_metrics": result.test_metrics,
        "failure_kind": result.failure_kind,
        "failure_reason": result.failure_reason,
        "failure_step": result.failure_step,
        "stop_reason": result.stop_reason,
        # a stopped trial was not judged on its thresholds: its last evaluation is not its end
        "constraint_violation": None if result.stopped else objectives.violations(metrics if values is not None else None),
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
        # another process finished it meanwhile (it took this run for dead): keep its record, not ours
        _logger.warning("trial %d was finished by another process; its record is kept", trial.number)
        return storage_of(study).get_trial(trial_id(trial))
    except (ValueError, TypeError, RuntimeError) as error:  # Optuna refused the values: FAIL, with the reason
        reason = f"the result could not be told to the study: {type(error).__name__}: {error}"
        _logger.error("trial %d: %s", trial.number, reason)
        trial.set_user_attr("failure_kind", "error")
        trial.set_user_attr("failure_reason", reason)
        return study.tell(trial, state=TrialState.FAIL)


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


def is_interrupted(trial: FrozenTrial) -> bool:
    return trial.state == TrialState.FAIL and trial.user_attrs.get("failure_kind") == INTERRUPTED


def is_finished(trial: FrozenTrial) -> bool:
    """A trial that counts towards the budget: COMPLETE, PRUNED (stopped early), or FAIL for a
    reason other than interruption."""
    return trial.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
        trial.state == TrialState.FAIL and not is_interrupted(trial))


def _stale_trial_ids(study: optuna.Study) -> set[int]:
    """Trials whose heartbeat is too old; empty for a storage that keeps no heartbeats. A storage
    that keeps them but cannot answer is logged: recovery then waits for a run that can read them."""
    if getattr(storage_of(study), "get_heartbeat_interval", lambda: None)() is None:
        return set()
    try:
        return set(stale_trial_ids(study))
    except Exception as error:  # noqa: BLE001 - database errors differ by backend; a later check retries
        _logger.warning("[%s] could not read stale trials (%s: %s); none recovered by heartbeat this time",
                        study.study_name, type(error).__name__, error)
        return set()


def recover_interrupted(study: optuna.Study, token: str, log: Callable[[str], None] = _logger.warning, *,
                        exclusive: bool = False) -> list[int]:
    """Mark RUNNING trials of coordinators that are gone FAIL / interrupted; returns their numbers.

    ``exclusive``: this run holds the lock of the folder the study lives in, so no other
    coordinator can be running it and every RUNNING trial but ours was left by one that ended.
    Otherwise (a shared database) a trial is taken for dead only when its heartbeat is older than
    the storage's grace period; a live coordinator beats for its running trials from a thread of
    its own (``runner.Heartbeats``), however long a trial blocks it, so its trials never are.
    """
    storage = storage_of(study)
    stale_ids = set() if exclusive else _stale_trial_ids(study)
    backend = rdb_backend(storage)
    grace = getattr(backend, "grace_period", None) or 2 * (getattr(backend, "heartbeat_interval", None) or 60)
    recovered = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        owner = trial.user_attrs.get("coordinator") or {}
        if owner.get("run") == token:
            continue  # ours, still running
        # killed between ask() and its first record: no owner, no heartbeat, only its age tells
        orphan = not owner and trial.datetime_start is not None and (
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
        try:
            storage.set_trial_user_attr(trial_id(trial), "failure_kind", INTERRUPTED)
            storage.set_trial_user_attr(trial_id(trial), "failure_reason", f"interrupted: {why}")
            storage.set_trial_user_attr(trial_id(trial), "failure_step", None)
            if storage.set_trial_state_values(trial_id(trial), state=TrialState.FAIL):
                recovered.append(trial.number)
        except optuna.exceptions.UpdateFinishedTrialError:
            continue  # finished meanwhile by whoever was running it
    if recovered:
        log(f"[{study.study_name}] trial(s) {recovered} were left running by a search that is gone: "
            f"marked interrupted; their budget is spent again")
    return recovered


QUEUE_ATTRS = ("flash_trial", "flash_metrics", "baseline")  # what the regular and baseline stages enqueue with


def requeue(study: optuna.Study, numbers: list[int]) -> None:
    """Enqueue the interrupted trials ``numbers`` again, with their parameters and queue attributes.

    For the stages that only run their queue (regular, baseline): there no sampler proposes an
    interrupted candidate again, so without this a crash would drop it from the search for good.
    """
    by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
    for number in numbers:
        trial = by_number[number]
        study.enqueue_trial(dict(trial.params),
                            user_attrs={k: trial.user_attrs[k] for k in QUEUE_ATTRS if k in trial.user_attrs})


def refuse_live_coordinators(storage, name: str, token: str, where: str) -> None:
    """On a shared database: refuse to run a search whose trials another live search is running.

    Another folder's lock cannot be seen from here; a RUNNING trial of another run whose heartbeat
    is within the grace period can (that run's thread beats for as long as it lives).
    """
    existing = {s.study_name for s in storage.get_all_studies()}
    for stage in STAGES:
        if stage_study_name(name, stage) not in existing:
            continue
        study = optuna.load_study(study_name=stage_study_name(name, stage), storage=storage)
        stale = _stale_trial_ids(study)
        for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            run = (trial.user_attrs.get("coordinator") or {}).get("run")
            if run and run != token and trial_id(trial) not in stale:
                raise StudyError(
                    f"search {name!r} on {where} "
                    f"is being run by another search (run {run}: its {stage} trial {trial.number} beats within the "
                    "grace period); wait for it to end, or use another search.name"
                )


# ---------------------------------------------------------------- reading a study
def load_stage(storage, name: str, stage: str) -> optuna.Study | None:
    """The study of one stage of the search ``name``, or None when that stage never started."""
    study_name = stage_study_name(name, stage)
    if study_name not in {s.study_name for s in storage.get_all_studies()}:
        return None
    return optuna.load_study(study_name=study_name, storage=storage)


def counts(trials: Iterable[FrozenTrial]) -> dict:
    """Complete / stopped (early) / failed / interrupted / running / waiting, and failures by kind."""
    result = {"complete": 0, "stopped": 0, "failed": 0, "interrupted": 0, "running": 0, "waiting": 0,
              "failed_kinds": {}}
    for t in trials:
        if t.state == TrialState.COMPLETE:
            result["complete"] += 1
        elif t.state == TrialState.PRUNED:
            result["stopped"] += 1
        elif is_interrupted(t):
            result["interrupted"] += 1
        elif t.state == TrialState.FAIL:
            result["failed"] += 1
            kind = t.user_attrs.get("failure_kind") or "error"
            result["failed_kinds"][kind] = result["failed_kinds"].get(kind, 0) + 1
        elif t.state == TrialState.RUNNING:
            result["running"] += 1
        elif t.state == TrialState.WAITING:
            result["waiting"] += 1
    result["finished"] = result["complete"] + result["stopped"] + result["failed"]
    return result


def feasible_trials(trials: Iterable[FrozenTrial], objectives: ObjectiveSet) -> list[FrozenTrial]:
    return [
        t for t in trials
        if t.state == TrialState.COMPLETE and objectives.feasible(t.user_attrs.get("metrics") or _metrics_of(t, objectives))
    ]


def _metrics_of(t: FrozenTrial, objectives: ObjectiveSet) -> dict:
    return dict(zip(objectives.metric_names, t.values or []))


def objective_values(t: FrozenTrial, objectives: ObjectiveSet) -> list[float]:
    """The trial's objective values, recomputed from its metrics where possible."""
    metrics = t.user_attrs.get("metrics")
    if isinstance(metrics, dict):
        try:
            return objectives.values(metrics)
        except MetricError:
            pass  # metrics stored without an objective (older trials): Optuna's values are the record
    return list(t.values)


def ranked(trials: list[FrozenTrial], objectives: ObjectiveSet) -> list[tuple[int, FrozenTrial]]:
    """(non-domination rank, trial), best first; ties within a rank by the first objective."""
    if not trials:
        return []
    values = [objective_values(t, objectives) for t in trials]
    ranks = nondominated_ranks(values, objectives.directions)
    first = objectives.objectives[0]
    order = sorted(range(len(trials)), key=lambda i: (ranks[i], -first.sign * values[i][0], trials[i].number))
    return [(ranks[i], trials[i]) for i in order]


def frontier(trials: Iterable[FrozenTrial], objectives: ObjectiveSet) -> list[FrozenTrial]:
    """The feasible Pareto front, best first objective first."""
    return [t for rank, t in ranked(feasible_trials(trials, objectives), objectives) if rank == 0]
