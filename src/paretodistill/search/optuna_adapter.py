"""Every use of an Optuna member that is not public API, in one place.

The search needs a few things Optuna keeps private: the storage and ids behind a study and a
trial (to write attributes of a trial the coordinator did not ``ask`` for, to record
heartbeats, and to report a learning curve's points as intermediate values, which
``Trial.report`` refuses in a multi-objective study), the stale-trial check of ``RDBStorage``, the uncached trial list samplers read, the
grid of ``GridSampler``, and a distribution's membership test. An Optuna upgrade that changes
one of them breaks here, and ``tests/unit/test_optuna_adapter.py`` has one test per function, so
it breaks in one visible place. ``pyproject.toml`` caps Optuna below its next major version.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial


# ---------------------------------------------------------------- studies, trials, storages
def storage_of(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage a study reads and writes."""
    return study._storage


def study_id(study: optuna.Study) -> int:
    """The storage's id of a study (what storage methods take)."""
    return study._study_id


def trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    """The storage's id of a trial (not its number: numbers restart in every study)."""
    return trial._trial_id


def set_intermediate_value(study: optuna.Study, trial: optuna.Trial, step: int, value: float) -> None:
    """``trial.report(value, step)`` for any study: Optuna's ``Trial.report`` refuses multi-objective
    studies (NotImplementedError), its storage does not, and dashboards show what it stores."""
    storage_of(study).set_trial_intermediate_value(trial_id(trial), int(step), float(value))


def rdb_backend(storage: optuna.storages.BaseStorage) -> Any:
    """The RDBStorage behind Optuna's caching wrapper (or the storage itself)."""
    return getattr(storage, "_backend", storage)


def stale_trial_ids(study: optuna.Study) -> list[int]:
    """Ids of RUNNING trials whose heartbeat is older than the storage's grace period.

    Raises ``AttributeError`` for a storage that keeps no heartbeats (e.g. in memory).
    """
    return list(storage_of(study)._get_stale_trial_ids(study_id(study)))


def trials_uncached(study: optuna.Study, *, use_cache: bool = False) -> list[FrozenTrial]:
    """The study's trials as samplers read them (``Study._get_trials``), without the trial cache by default."""
    return study._get_trials(deepcopy=False, states=None, use_cache=use_cache)


class SamplerStudyProxy:
    """A study as a sampler sees it, with the trials replaced by :meth:`sampler_trials`.

    Optuna's samplers read trials through the private ``Study._get_trials``; this class is the one
    place that implements it. Everything else (storage, directions, ids) is the real study's.
    """

    def __init__(self, study: optuna.Study):
        self._study = study

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)

    def sampler_trials(self, trials: list[FrozenTrial], use_cache: bool) -> list[FrozenTrial]:
        """The trials the sampler learns from; subclasses rewrite them (default: unchanged)."""
        return trials

    @property
    def trials(self) -> list[FrozenTrial]:
        return self._get_trials(deepcopy=True)

    def get_trials(self, deepcopy: bool = True, states=None) -> list[FrozenTrial]:
        return self._get_trials(deepcopy=deepcopy, states=states)

    def _get_trials(self, deepcopy: bool = True, states=None, use_cache: bool = False) -> list[FrozenTrial]:
        trials = self.sampler_trials(trials_uncached(self._study, use_cache=use_cache), use_cache)
        if states is not None:
            trials = [t for t in trials if t.state in states]
        return trials


# ---------------------------------------------------------------- distributions and the grid sampler
def contains(distribution: BaseDistribution, value: Any) -> bool:
    """Whether ``value`` is one of the distribution's values (Optuna's own membership test)."""
    try:
        return bool(distribution._contains(distribution.to_internal_repr(value)))
    except (ValueError, TypeError):
        return False


def grid_size(sampler: optuna.samplers.GridSampler) -> int:
    """How many grid points a configured GridSampler has (0 before ``__init__`` ran)."""
    return len(getattr(sampler, "_all_grids", []) or [])


def grid_search_space(sampler: optuna.samplers.GridSampler) -> dict:
    """The grid as GridSampler stores it on each trial (system attribute ``search_space``)."""
    return sampler._search_space


def grid_random_index(sampler: optuna.samplers.GridSampler) -> int:
    """A grid point drawn with the sampler's own seeded generator (for repeats past the grid's end)."""
    return int(sampler._rng.rng.randint(grid_size(sampler)))


# ---------------------------------------------------------------- hypervolume beyond two objectives
def hypervolume(loss_points, reference) -> float:
    """Optuna's exact hypervolume of minimization points (numpy arrays) against ``reference``."""
    from optuna._hypervolume import compute_hypervolume

    return float(compute_hypervolume(loss_points, reference))


__all__ = [
    "SamplerStudyProxy", "contains", "grid_random_index", "grid_search_space", "grid_size", "hypervolume",
    "rdb_backend", "set_intermediate_value", "stale_trial_ids", "storage_of", "study_id", "trial_id", "trials_uncached",
]
