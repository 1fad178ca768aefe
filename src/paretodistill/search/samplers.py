"""The search's samplers, and the study as a sampler sees it.

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
import logging
import math
import random
import warnings
from typing import Any, Callable

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.samplers import BaseSampler
from optuna.trial import FrozenTrial, TrialState

from paretodistill.config import SAMPLERS, SearchSettings
from paretodistill.errors import ConfigError
from paretodistill.search.objectives import ObjectiveSet, nondominated
from paretodistill.search.optuna_adapter import (
    SamplerStudyProxy,
    grid_random_index,
    grid_search_space,
    grid_size,
    storage_of,
    study_id,
    trial_id,
    trials_uncached,
)
from paretodistill.search.results import StoredTrial, is_interrupted

_logger = logging.getLogger("paretodistill.search")

_CONSTRAINT_PREFIX = "constraints"


def _gp(seed: int | None, n_startup_trials: int, gp_after: int, gp_window: int) -> BaseSampler:
    return optuna.samplers.GPSampler(seed=seed, n_startup_trials=n_startup_trials)


def _tpe(seed: int | None, n_startup_trials: int, gp_after: int, gp_window: int) -> BaseSampler:
    return tpe_sampler(seed, n_startup_trials)


def _tpe_then_gp(seed: int | None, n_startup_trials: int, gp_after: int, gp_window: int) -> BaseSampler:
    return StagedSampler(_tpe(seed, n_startup_trials, gp_after, gp_window),
                         _gp(seed, n_startup_trials, gp_after, gp_window), gp_after)


def _gp_window(seed: int | None, n_startup_trials: int, gp_after: int, gp_window: int) -> BaseSampler:
    return WindowedSampler(_gp(seed, n_startup_trials, gp_after, gp_window), gp_window)


# ``search.sampler`` -> the wrapped sampler, from (seed, n_startup_trials, gp_after, gp_window)
SAMPLER_FACTORIES: dict[str, Callable[[int | None, int, int, int], BaseSampler]] = {
    "gp": _gp,
    "gp-window": _gp_window,
    "tpe": _tpe,
    "tpe-gp": _tpe_then_gp,
    "nsga2": lambda seed, n_startup_trials, gp_after, gp_window: optuna.samplers.NSGAIISampler(seed=seed),
    "random": lambda seed, n_startup_trials, gp_after, gp_window: optuna.samplers.RandomSampler(seed=seed),
    "grid": lambda seed, n_startup_trials, gp_after, gp_window: GridSearchSampler(seed=seed),
}


def make_sampler(kind: str, seed: int | None, n_startup_trials: int = SearchSettings.n_startup_trials, *,
                 dedupe: bool = True, gp_after: int = SearchSettings.gp_after,
                 gp_window: int = SearchSettings.gp_window) -> "FailureAwareSampler":
    """The configured sampler, wrapped so that failures teach it and repeats are avoided.

    ``gp_after``: for ``tpe-gp``, the finished trials after which GP takes over from TPE.
    ``gp_window``: for ``gp-window``, the most finished trials GP fits (:class:`WindowedSampler`)."""
    kind = (kind or "gp").lower()
    if kind not in SAMPLER_FACTORIES:
        raise ConfigError(f"search.sampler: unknown sampler {kind!r}; expected one of {list(SAMPLERS)}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        inner = SAMPLER_FACTORIES[kind](seed, n_startup_trials, gp_after, gp_window)
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


class ViewingSampler(BaseSampler):
    """A sampler that hands the sampler it wraps (``inner``) its own view of the study in every call."""

    inner: BaseSampler

    def view(self, study):
        raise NotImplementedError

    def sample_independent(self, study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution) -> Any:
        return self.inner.sample_independent(self.view(study), trial, param_name, param_distribution)

    def before_trial(self, study, trial: FrozenTrial) -> None:
        self.inner.before_trial(self.view(study), trial)

    def after_trial(self, study, trial: FrozenTrial, state: TrialState, values) -> None:
        self.inner.after_trial(self.view(study), trial, state, values)

    def reseed_rng(self) -> None:
        self.inner.reseed_rng()


class WindowedSampler(ViewingSampler):
    """Another sampler fitted on a bounded window of the study: its feasible front and its latest trials.

    GPSampler refits its models on every finished trial for every suggestion, and its cost grows
    with them (seconds per suggestion at a few hundred trials on one core): past ``window``
    finished trials the coordinator would spend more time choosing trials than short flash trials
    take. Shown at most ``window`` of them, the model costs what it cost at ``window`` trials, for
    ever. Kept: the feasible non-dominated trials (at most half the window, spread along the first
    objective), which the acquisition measures improvement against, and then the latest trials,
    which hold the failures and the region the search is refining. Up to ``window`` finished trials
    it is the wrapped sampler itself. Running trials are always shown (pending points).
    """

    def __init__(self, inner: BaseSampler, window: int):
        if int(window) < 1:
            raise ConfigError(f"search.gp_window: expected an integer >= 1, got {window!r}")
        self.inner, self.window = inner, int(window)
        self.shown: list[int] = []  # per relative proposal: the finished trials the wrapped sampler was shown

    def view(self, study) -> "WindowStudyView":
        return WindowStudyView(study, self.window)

    def infer_relative_search_space(self, study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return self.inner.infer_relative_search_space(self.view(study), trial)

    def sample_relative(self, study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        view = self.view(study)
        self.shown.append(len(view.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))))
        return self.inner.sample_relative(view, trial, search_space)


class WindowStudyView(SamplerStudyProxy):
    """A study as :class:`WindowedSampler`'s wrapped sampler sees it (see :func:`window_of`)."""

    def __init__(self, study, window: int):
        super().__init__(study)
        self._window = window

    def sampler_trials(self, trials: list[FrozenTrial], use_cache: bool) -> list[FrozenTrial]:
        return window_of(trials, self.directions, self._window)


def window_of(trials: list[FrozenTrial], directions, window: int) -> list[FrozenTrial]:
    """``trials`` with at most ``window`` COMPLETE ones: the feasible front (at most half the window,
    evenly spread along the first objective), then the latest; every other trial kept as it is."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.values is not None]
    if len(complete) <= window:
        return trials
    names = ["minimize" if d == optuna.study.StudyDirection.MINIMIZE else "maximize" for d in directions]
    feasible = [t for t in complete if all(v <= 0 for v in t.constraints.values())]
    front = [feasible[i] for i in nondominated([t.values for t in feasible], names)]  # along the first objective
    room = max(1, window // 2)
    if len(front) > room:
        front = [front[round(i * (len(front) - 1) / max(1, room - 1))] for i in range(room)]
    kept = {t.number for t in front}
    for t in sorted(complete, key=lambda t: t.number, reverse=True):
        if len(kept) >= window:
            break
        kept.add(t.number)
    return [t for t in trials if t.state != TrialState.COMPLETE or t.number in kept]


class FailureAwareSampler(ViewingSampler):
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
    def view(self, study: optuna.Study) -> "SamplerStudyView":
        return SamplerStudyView(study, self._objectives)

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

    # -- dedupe
    def _avoid_repeats(self, study, trial: FrozenTrial, params: dict, space: dict[str, BaseDistribution]) -> dict:
        seen = [
            space_point_key(t.params, space)
            for t in trials_uncached(study)
            if t.number != trial.number and not is_interrupted(t) and t.params
        ]
        seen_set = set(seen)
        key = space_point_key(params, space)
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
            if space_point_key(candidate, space) not in seen_set:
                self.perturbed.append(trial.number)
                _logger.info("trial %d: the sampler repeated an earlier configuration; moved it to %s", trial.number, candidate)
                return candidate
        _logger.warning(
            "trial %d: every nearby configuration has been tried (exhausted discrete space?); repeating one", trial.number
        )
        return params


class GridSearchSampler(BaseSampler):
    """Optuna's GridSampler, for a search: every point of a discrete space once, in a seeded order.

    Two changes for our runner: a point whose trial was interrupted is run again (Optuna counts
    any finished trial as visited), and the search stops at its ``n_trials`` rather than through
    ``study.stop()``, which only works inside ``study.optimize``. Past the grid's size points repeat.
    The grid comes from the configured space (:meth:`set_space`), so every parameter must be
    categorical, a stepped int or float, or fixed. It wraps a GridSampler built then (the grid
    is not known when the sampler is made), which assigns the points and reads them back.
    """

    def __init__(self, seed: int | None = None):
        self._seed = seed
        self._grid: optuna.samplers.GridSampler | None = None

    def set_space(self, space: dict[str, BaseDistribution]) -> None:
        self._grid = optuna.samplers.GridSampler({name: grid_values(name, d) for name, d in space.items()},
                                                 seed=self._seed)

    def infer_relative_search_space(self, study, trial: FrozenTrial) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(self, study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]) -> dict[str, Any]:
        return {}

    def before_trial(self, study, trial: FrozenTrial) -> None:
        size = 0 if self._grid is None else grid_size(self._grid)
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
            grid_id = grid_random_index(self._grid)
        storage_of(study).set_trial_system_attr(trial_id(trial), "search_space", grid_search_space(self._grid))
        storage_of(study).set_trial_system_attr(trial_id(trial), "grid_id", grid_id)

    def sample_independent(self, study, trial: FrozenTrial, param_name: str, param_distribution: BaseDistribution) -> Any:
        if self._grid is None:
            raise ConfigError("search.sampler = 'grid' needs the search space (FailureAwareSampler.configure)")
        if "grid_id" not in trial.system_attrs:  # the trial object was frozen before before_trial ran
            trial = copy.copy(trial)
            trial.system_attrs = storage_of(study).get_trial_system_attrs(trial_id(trial))
        return self._grid.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial: FrozenTrial, state: TrialState, values) -> None:
        return None  # GridSampler's would stop the study once the grid is run; the runner counts instead

    def reseed_rng(self) -> None:
        if self._grid is not None:
            self._grid.reseed_rng()


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


def space_point_key(params: dict, space: dict[str, BaseDistribution]) -> tuple:
    """A point of the search space as a hashable key: every parameter of ``space``, floats to 10
    significant digits, so that a repeat is found whatever rounding the sampler's float took."""
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


class SamplerStudyView(SamplerStudyProxy):
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
        stored = StoredTrial.of(t)
        if t.state == TrialState.COMPLETE and t.values is not None:
            constraints = objectives.constraints(stored.metrics) if stored.metrics else t.constraints
            result.append(_with_constraints(t, {k: float(constraints.get(k, -1.0)) for k in keys}))
        elif t.state == TrialState.FAIL and not stored.interrupted and t.params and worst is not None:
            penalty_metrics = dict(zip(objectives.metric_names, worst))
            constraints = objectives.constraints(penalty_metrics)
            constraints["failed"] = 1.0
            result.append(_as_penalty(t, worst, {k: float(constraints.get(k, 1.0)) for k in keys}))
        elif t.state == TrialState.PRUNED and (optimistic := optimistic_point(stored, objectives)) is not None:
            # a threshold its last evaluation cannot show counts as unmet, as for any trial
            constraints = objectives.constraints({**stored.metrics, **optimistic})
            result.append(_as_penalty(t, list(optimistic.values()), {k: float(constraints[k]) for k in keys}))
        else:
            # nothing to learn (running, interrupted, or no completed trial to compare with yet): left
            # as Optuna stored it, which samplers skip; kept in the list, as NSGA-II (Optuna 5.1) finds
            # trials by their number's position in it
            result.append(t)
    return result


def optimistic_point(trial: StoredTrial, objectives: ObjectiveSet) -> dict[str, float] | None:
    """The end point a stopped trial was judged by (``search.early_stop``), in objective order."""
    optimistic = trial.optimistic or {}
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

