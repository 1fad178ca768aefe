"""What every sampler ``search.sampler`` may name must do, checked for each of them.

The kinds come from the code (``samplers.SAMPLER_FACTORIES``, which must match the config's
``SAMPLERS``), so a new sampler is held to the same contract without touching this file: its
points lie inside the space, a seed reproduces them, a failed configuration is not proposed
again, two objectives with a threshold (constraints) work, and a study reloaded from its database
continues without repeating a point. Spaces and budgets are tiny: each test takes seconds.
"""

from __future__ import annotations

import warnings

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from paretodistill.config import SAMPLERS
from paretodistill.search.objectives import ObjectiveSet
from paretodistill.search.optuna_adapter import contains
from paretodistill.search.results import stored_trials
from paretodistill.search.samplers import SAMPLER_FACTORIES, make_sampler, space_point_key
from paretodistill.search.storage import open_storage
from paretodistill.search.study import open_study, record_result
from paretodistill.trial import TrialResult

optuna.logging.set_verbosity(optuna.logging.WARNING)
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # Optuna's experimental/heartbeat notes

KINDS = sorted(SAMPLER_FACTORIES)
SPACE = {  # discrete, so that the grid sampler takes it too: 4 x 3 x 5 = 60 points
    "layers": IntDistribution(1, 4),
    "width": CategoricalDistribution([16, 32, 64]),
    "dropout": FloatDistribution(0.0, 1.0, step=0.25),
}
MULTI = ObjectiveSet.parse(["exact:maximize", "num_parameters:minimize"], {"exact": 50})
SINGLE = ObjectiveSet.parse(["exact:maximize"], {})
STARTUP, GP_AFTER = 2, 3  # so that GP (and TPE's model) propose within a few trials


def _metrics(params: dict) -> dict:
    """A made-up student: deeper and wider is more accurate and bigger; dropout costs a little."""
    exact = 30 + 8 * params["layers"] + params["width"] / 4 - 10 * params["dropout"]
    return {"exact": exact, "num_parameters": params["layers"] * params["width"] * 1000.0}


def _study(storage, kind: str, objectives: ObjectiveSet, seed: int = 0, name: str = "s") -> optuna.Study:
    sampler = make_sampler(kind, seed, STARTUP, gp_after=GP_AFTER)
    return open_study(storage, name, "flash", objectives, sampler=sampler, distributions=SPACE)


def _run(study: optuna.Study, objectives: ObjectiveSet, n: int, fails=lambda params: False) -> list[dict]:
    """``n`` trials told as the search tells them; ``fails(params)``: that trial runs out of memory."""
    proposed = []
    for _ in range(n):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trial = study.ask(SPACE)
        params = dict(trial.params)
        proposed.append(params)
        result = (TrialResult.failed(params, "out_of_memory", "synthetic") if fails(params)
                  else TrialResult("ok", params, metrics=_metrics(params)))
        record_result(study, trial, result, objectives)
    return proposed


@pytest.fixture
def storage(tmp_path):
    return open_storage(f"sqlite:///{tmp_path / 'study.db'}")


def test_every_configurable_sampler_is_checked():
    assert set(KINDS) == set(SAMPLERS)


@pytest.mark.parametrize("kind", KINDS)
def test_proposes_points_inside_the_space(storage, kind):
    for params in _run(_study(storage, kind, MULTI), MULTI, 5):
        assert set(params) == set(SPACE)
        assert all(contains(SPACE[name], value) for name, value in params.items()), params


@pytest.mark.parametrize("kind", KINDS)
def test_a_seed_reproduces_the_points(tmp_path, kind):
    runs = []
    for copy in ("a", "b"):
        storage = open_storage(f"sqlite:///{tmp_path / f'{copy}.db'}")
        runs.append(_run(_study(storage, kind, MULTI, seed=7), MULTI, 4))
    assert runs[0] == runs[1]


@pytest.mark.parametrize("kind", KINDS)
def test_a_failed_configuration_is_not_proposed_again(storage, kind):
    """The first point fails; FailureAwareSampler shows it to the sampler as a bad point and moves any repeat."""
    first = {}

    def fails(params):
        first.setdefault("params", params)
        return params == first["params"]

    study = _study(storage, kind, MULTI)
    proposed = _run(study, MULTI, 6, fails)
    later = [space_point_key(p, SPACE) for p in proposed[1:]]
    assert space_point_key(first["params"], SPACE) not in later
    assert len(set(later)) == len(later)  # nor any other point twice
    trials = stored_trials(study.get_trials(deepcopy=False))
    assert trials[0].failure is not None and trials[0].failure.kind == "out_of_memory"


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("objectives", [MULTI, SINGLE], ids=["two-objectives-threshold", "one-objective"])
def test_objectives_and_constraints(storage, kind, objectives):
    study = _study(storage, kind, objectives)
    _run(study, objectives, 4, fails=lambda params: params["width"] == 64)
    for t in study.get_trials(deepcopy=False):
        assert set(t.constraints) == set(objectives.constraint_keys)  # every told trial carries them all
        if t.values is not None:
            assert len(t.values) == len(objectives.objectives)


@pytest.mark.parametrize("kind", KINDS)
def test_a_reloaded_study_continues_without_repeats(tmp_path, kind):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    before = _run(_study(open_storage(url), kind, MULTI, seed=1), MULTI, 3)
    reloaded = _study(open_storage(url), kind, MULTI, seed=2)  # a new process: a new sampler, the same study
    after = _run(reloaded, MULTI, 3)
    keys = [space_point_key(p, SPACE) for p in before + after]
    assert len(set(keys)) == len(keys)
    assert len(reloaded.get_trials(deepcopy=False)) == 6
