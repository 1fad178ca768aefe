"""One test per private Optuna member the search uses (all through ``search.optuna_adapter``).

When an Optuna upgrade renames or changes one of them, exactly one of these fails and names it.
"""

from __future__ import annotations

import time

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from paretodistill.search import optuna_adapter as adapter
from paretodistill.search.storage import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture
def study(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'study.db'}", heartbeat_interval=1, grace_period=2)
    return optuna.create_study(storage=storage, study_name="s", directions=["maximize", "minimize"])


def test_storage_and_ids(study):
    trial = study.ask({"x": IntDistribution(0, 3)})
    storage = adapter.storage_of(study)
    assert storage.get_study_name_from_id(adapter.study_id(study)) == "s"
    assert storage.get_trial(adapter.trial_id(trial)).number == trial.number
    assert adapter.trial_id(study.get_trials()[0]) == adapter.trial_id(trial)  # a FrozenTrial too


def test_an_intermediate_value_of_a_multi_objective_trial(study):
    trial = study.ask({"x": IntDistribution(0, 3)})
    with pytest.raises(NotImplementedError):  # why the adapter exists: the public report refuses two objectives
        trial.report(1.0, step=1)
    adapter.set_intermediate_value(study, trial, 3, 41.5)
    adapter.set_intermediate_value(study, trial, 7, 44.25)
    study.tell(trial, [44.25, 1.0])
    assert study.trials[0].intermediate_values == {3: 41.5, 7: 44.25}


def test_rdb_backend_is_the_rdb_storage_behind_the_cache(study):
    backend = adapter.rdb_backend(adapter.storage_of(study))
    assert isinstance(backend, optuna.storages.RDBStorage) and backend.grace_period == 2


def test_stale_trial_ids(study):
    trial = study.ask({"x": IntDistribution(0, 3)})
    adapter.storage_of(study).record_heartbeat(adapter.trial_id(trial))
    assert adapter.stale_trial_ids(study) == []
    time.sleep(3.2)  # grace period 2 s, SQLite timestamps with 1 s resolution
    assert adapter.stale_trial_ids(study) == [adapter.trial_id(trial)]


def test_stale_trial_ids_of_a_storage_without_heartbeats():
    in_memory = optuna.create_study()
    with pytest.raises(AttributeError):
        adapter.stale_trial_ids(in_memory)


def test_trials_uncached(study):
    study.add_trial(optuna.trial.create_trial(state=TrialState.COMPLETE, values=[1.0, 2.0]))
    assert [t.number for t in adapter.trials_uncached(study)] == [0]
    assert [t.number for t in adapter.trials_uncached(study, use_cache=True)] == [0]


def test_sampler_study_proxy_is_what_samplers_read(study):
    """Optuna samplers read trials through ``Study._get_trials``; the proxy's rewrite must reach them."""
    for x in (0.1, 0.9):
        study.add_trial(optuna.trial.create_trial(state=TrialState.COMPLETE, values=[x, x],
                                                  params={"x": x}, distributions={"x": FloatDistribution(0, 1)}))

    class Hidden(adapter.SamplerStudyProxy):
        def sampler_trials(self, trials, use_cache):
            return [t for t in trials if t.params["x"] > 0.5]

    proxy = Hidden(study)
    assert [t.number for t in proxy._get_trials(deepcopy=False)] == [1]
    assert [t.number for t in proxy.get_trials(states=(TrialState.COMPLETE,))] == [1]
    assert proxy.directions == study.directions  # everything else is the real study's
    space = optuna.search_space.IntersectionSearchSpace().calculate(proxy)
    assert set(space) == {"x"}


def test_contains():
    assert adapter.contains(IntDistribution(1, 6), 3)
    assert not adapter.contains(IntDistribution(1, 6), 9)
    assert adapter.contains(CategoricalDistribution([16, 32]), 32)
    assert not adapter.contains(CategoricalDistribution([16, 32]), 24)  # not a choice: no error, just False


def test_grid_sampler_internals():
    sampler = optuna.samplers.GridSampler({"a": [1, 2, 3], "b": [0.5]}, seed=0)
    assert adapter.grid_size(sampler) == 3
    assert set(adapter.grid_search_space(sampler)) == {"a", "b"}
    assert all(0 <= adapter.grid_random_index(sampler) < 3 for _ in range(20))
    assert adapter.grid_size(object.__new__(optuna.samplers.GridSampler)) == 0  # not configured yet


def test_hypervolume():
    points = np.array([[1.0, 2.0], [2.0, 1.0]])
    assert adapter.hypervolume(points, np.array([3.0, 3.0])) == pytest.approx(3.0)
