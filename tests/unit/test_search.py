"""The search machinery against cheap fake trials: objectives and constraints, how results and
failures are stored, what the sampler learns from failures, dedupe, recovery of interrupted
trials, candidate selection, and a whole flash -> regular -> pareto.json run (in-process)."""

import json
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: search_fakes

import search_fakes  # noqa: E402,F401  (importable here, so the trial_function paths below resolve)
from paretodistill.config import load_config  # noqa: E402
from paretodistill.errors import ConfigError  # noqa: E402
from paretodistill.search.objectives import ObjectiveSet, hypervolume_2d, nondominated, nondominated_ranks  # noqa: E402
from paretodistill.search.results import INTERRUPTED  # noqa: E402
from paretodistill.search.runner import InlineBackend, Progress, drive  # noqa: E402
from paretodistill.search.samplers import FailureAwareSampler, make_sampler, sampler_view_of  # noqa: E402
from paretodistill.search.space import build_space  # noqa: E402
from paretodistill.search.stages import run_search, select_candidates  # noqa: E402
from paretodistill.search.status import study_status  # noqa: E402
from paretodistill.search.storage import open_storage  # noqa: E402
from paretodistill.search.study import open_study, record_result, recover_interrupted  # noqa: E402
from paretodistill.search.worker import WorkerSpec  # noqa: E402
from paretodistill.trial import TrialResult  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)
pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")  # tests call study.ask directly

SPACE = {
    "num_layers": {"type": "int", "low": 1, "high": 8},
    "learning_rate": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True},
    "temperature": {"type": "float", "low": 1.0, "high": 8.0},
}


def _objectives(**search):
    return ObjectiveSet.from_search(search)


# ---------------------------------------------------------------- objectives and thresholds
def test_default_objectives_and_threshold():
    objectives = _objectives()
    assert objectives.describe_objectives() == ["exact:maximize", "num_parameters:minimize"]
    assert objectives.describe_thresholds() == {"exact": ">= 50"}
    assert objectives.constraint_keys == ["threshold:exact", "failed"]
    ok = {"exact": 60.0, "num_parameters": 1e7}
    low = {"exact": 40.0, "num_parameters": 1e7}
    assert objectives.values(ok) == [60.0, 1e7]
    assert objectives.constraints(ok) == {"threshold:exact": pytest.approx(-0.2), "failed": -1.0}
    assert objectives.constraints(low)["threshold:exact"] == pytest.approx(0.2)  # > 0: infeasible
    assert objectives.constraints(None) == {"threshold:exact": 1.0, "failed": 1.0}
    assert objectives.feasible(ok) and not objectives.feasible(low) and not objectives.feasible(None)
    assert objectives.violations(low) == {
        "feasible": False, "failed": False, "violations": {"exact": {"threshold": ">= 50", "value": 40.0, "by": 10.0}}
    }


def test_latency_objective_and_explicit_thresholds():
    objectives = _objectives(
        objectives=["exact:max", "num_parameters:min", "latency_ms:minimize"],
        thresholds={"latency_ms": 20, "f1": ">= 55", "num_parameters": "<= 2e7"},
    )
    assert objectives.directions == ["maximize", "minimize", "minimize"]
    assert objectives.describe_thresholds() == {"latency_ms": "<= 20", "f1": ">= 55", "num_parameters": "<= 2e+07"}
    metrics = {"exact": 50, "f1": 60, "num_parameters": 3e7, "latency_ms": 10}
    assert objectives.violations(metrics)["violations"] == {
        "num_parameters": {"threshold": "<= 2e+07", "value": 3e7, "by": 1e7}
    }


@pytest.mark.parametrize(
    "search, message",
    [
        ({"objectives": []}, "non-empty"),
        ({"objectives": ["exact"]}, "metric:maximize"),
        ({"objectives": ["exact:up"]}, "maximize or minimize"),
        ({"objectives": ["exact:max", "exact:min"]}, "twice"),
        ({"thresholds": {"f1": 50}}, "not an objective"),
        ({"thresholds": {"exact": "> 50"}}, "'>= X' or '<= X'"),
        ({"thresholds": [50]}, "expected a table"),
    ],
)
def test_malformed_objectives(search, message):
    with pytest.raises(ConfigError, match=message):
        _objectives(**search)


def test_pareto_helpers():
    points = [(60, 10), (50, 5), (40, 8), (70, 20), (55, 5)]
    assert nondominated_ranks(points, ["maximize", "minimize"]) == [0, 1, 2, 0, 0]
    # the front alone, in lexicographic order of the minimized points: (-70, 20), (-60, 10), (-55, 5)
    assert nondominated(points, ["maximize", "minimize"]) == [3, 0, 4]
    ties = [(1, 1), (1, 1), (2, 0), (0, 2), (2, 2)]  # equal points do not dominate each other
    assert nondominated(ties, ["minimize", "minimize"]) == [3, 0, 1, 2]
    assert nondominated_ranks(ties, ["minimize", "minimize"]) == [0, 0, 0, 0, 1]
    # minimization of (x, y) with reference (4, 4): boxes of (1, 3) and (2, 1) cover 3 + 2x3 = 9... exactly:
    assert hypervolume_2d([(1, 3), (2, 1)], (4, 4), ["minimize", "minimize"]) == pytest.approx(3 * 1 + 2 * 2)
    assert hypervolume_2d([(60, 10)], (0, 20), ["maximize", "minimize"]) == pytest.approx(60 * 10)


# ---------------------------------------------------------------- recording results
@pytest.fixture
def storage(tmp_path):
    return open_storage(f"sqlite:///{tmp_path / 'study.db'}", heartbeat_interval=1, grace_period=2)


def _study(storage, objectives, sampler="random", name="t", stage="flash", seed=0, startup=5):
    config = load_config(base={"search": {"space": SPACE}})
    space = build_space(config)
    study = open_study(storage, name, stage, objectives, space=space.to_dict())
    study.sampler = make_sampler(sampler, seed, startup)
    study.sampler.configure(space.distributions(), objectives)
    return study, space, config


def test_results_are_stored_with_everything_the_report_needs(storage):
    objectives = _objectives()
    study, space, _ = _study(storage, objectives)
    trial = study.ask(space.distributions())
    result = TrialResult("ok", trial.params, metrics={"exact": 42.0, "f1": 45.0, "num_parameters": 1e7, "latency_ms": 3.0},
                         curve=[{"step": 10, "loss": 1.0, "exact": 42.0}], checkpoint="/x", test_metrics={"exact": 41.0})
    frozen = record_result(study, trial, result, objectives, extra_attrs={"trial_dir": "/t"})
    assert frozen.state == TrialState.COMPLETE and frozen.values == [42.0, 1e7]
    assert frozen.user_attrs["metrics"]["latency_ms"] == 3.0  # stored-only metrics kept
    assert frozen.user_attrs["test_metrics"] == {"exact": 41.0}
    assert frozen.user_attrs["constraint_violation"]["feasible"] is False
    assert frozen.constraints == {"threshold:exact": pytest.approx(8 / 50), "failed": -1.0}

    trial = study.ask(space.distributions())
    failed = TrialResult.failed(trial.params, "out_of_memory", "CUDA out of memory", step=7)
    frozen = record_result(study, trial, failed, objectives)
    assert frozen.state == TrialState.FAIL
    assert (frozen.user_attrs["failure_kind"], frozen.user_attrs["failure_step"]) == ("out_of_memory", 7)
    assert frozen.constraints["failed"] == 1.0

    trial = study.ask(space.distributions())
    frozen = record_result(study, trial, TrialResult("ok", trial.params, metrics={"f1": 3.0}), objectives)
    assert frozen.state == TrialState.FAIL and "exact" in frozen.user_attrs["failure_reason"]

    loaded = optuna.load_study(study_name="t-flash", storage=storage)
    assert loaded.user_attrs["objectives"] == ["exact:maximize", "num_parameters:minimize"]
    assert loaded.user_attrs["stage"] == "flash" and loaded.user_attrs["thresholds"] == {"exact": ">= 50"}


def test_sampler_sees_failures_as_infeasible_worst_case(storage):
    objectives = _objectives()
    study, space, _ = _study(storage, objectives)
    for exact, fail in ((60.0, None), (30.0, None), (None, "out_of_memory"), (None, "interrupted")):
        trial = study.ask(space.distributions())
        if fail == "interrupted":
            trial.set_user_attr("failure_kind", "interrupted")
            study.tell(trial, state=TrialState.FAIL)
            continue
        result = (TrialResult.failed(trial.params, fail, "boom") if fail
                  else TrialResult("ok", trial.params, metrics={"exact": exact, "num_parameters": 2e7 - exact * 1e5}))
        record_result(study, trial, result, objectives)
    view = sampler_view_of(study.get_trials(), objectives)
    # the interrupted one teaches nothing: it stays a FAIL trial (samplers skip those), in its place
    assert [t.state for t in view] == [TrialState.COMPLETE] * 3 + [TrialState.FAIL]
    assert [t.number for t in view] == [0, 1, 2, 3]  # NSGA-II finds trials by position
    penalty = view[2]
    assert penalty.values == [30.0, 2e7 - 30 * 1e5]  # the worst exact and the worst size seen
    assert penalty.constraints["failed"] == 1.0
    assert list(penalty.constraints) == list(view[0].constraints)  # same constraints, same order (GPSampler)
    assert study.get_trials()[2].state == TrialState.FAIL  # the database stays honest


# ---------------------------------------------------------------- what the sampler learns
def _flash(root, kind, n, startup, *, seed=3, learn=True, trial_function="search_fakes:failing_trial"):
    objectives = _objectives(thresholds={"exact": 40.0})
    storage = optuna.storages.InMemoryStorage()
    study, space, config = _study(storage, objectives, kind, seed=seed, startup=startup)
    if not learn:
        study.sampler._objectives = None  # the wrapped sampler sees FAIL trials as Optuna shows them: not at all
    values = config.to_dict()
    drive(study, stage="flash", n_target=n, distributions=space.distributions(), backend=InlineBackend(),
          objectives=objectives, token="test", progress=Progress(lambda message: None),
          make_spec=lambda t: WorkerSpec("flash", t.number, t.params, values, str(root / f"{kind}-{t.number}"),
                                         trial_function=trial_function))
    return study


def _post_startup_failures(study, startup):
    later = [t for t in study.get_trials() if t.number >= startup]
    return sum(t.state == TrialState.FAIL for t in later), len(later)


def test_gp_learns_to_avoid_the_failure_region(tmp_path):
    """Fake trials run out of memory from 5 layers on (half the range); GP after its random
    start puts far fewer trials there than random sampling with the same seed."""
    startup, n = 6, 14
    gp_fail, gp_n = _post_startup_failures(_flash(tmp_path, "gp", n, startup), startup)
    random_fail, random_n = _post_startup_failures(_flash(tmp_path, "random", n, startup), startup)
    assert gp_n == random_n == n - startup
    assert gp_fail <= 1, f"GP still put {gp_fail}/{gp_n} trials in the failure region"
    assert random_fail >= 3, f"random sampling put only {random_fail}/{random_n} there (seed changed?)"


def test_tpe_learns_from_failures_only_through_the_view(tmp_path):
    """Without the view (Optuna's plain behaviour: FAIL trials are invisible) TPE keeps going
    back to the deep students that look best and fail; with it, it mostly stays out."""
    startup, n = 6, 30
    learned, _ = _post_startup_failures(_flash(tmp_path, "tpe", n, startup), startup)
    blind, _ = _post_startup_failures(_flash(tmp_path, "tpe", n, startup, learn=False), startup)
    assert learned < blind / 2, (learned, blind)


@pytest.mark.parametrize("kind", ["tpe", "nsga2", "random"])
def test_every_sampler_runs_through_the_wrapper(tmp_path, kind):
    study = _flash(tmp_path, kind, 12, 4)
    trials = study.get_trials()
    assert len(trials) == 12 and all(t.state in (TrialState.COMPLETE, TrialState.FAIL) for t in trials)
    assert len({tuple(sorted(t.params.items())) for t in trials}) == 12


def test_tpe_gp_proposes_with_tpe_until_gp_after_trials_have_finished(storage, monkeypatch):
    objectives = _objectives()
    config = load_config(base={"search": {"space": SPACE, "sampler": "tpe-gp", "gp_after": 4}})
    space = build_space(config)
    study = open_study(storage, "t", "flash", objectives, space=space.to_dict())
    study.sampler = make_sampler(config.search.sampler, 0, 2, gp_after=config.search.gp_after)
    study.sampler.configure(space.distributions(), objectives)
    staged, asked = study.sampler.inner, []
    for name, inner in (("tpe", staged.first), ("gp", staged.then)):
        original = inner.sample_relative
        monkeypatch.setattr(inner, "sample_relative",
                            lambda s, t, sp, _o=original, _n=name: asked.append((t.number, _n)) or _o(s, t, sp))
    for _ in range(7):
        trial = study.ask(space.distributions())
        exact = 40.0 + 3 * trial.params["num_layers"]
        if trial.number == 2:  # a failure counts as finished too
            record_result(study, trial, TrialResult.failed(trial.params, "out_of_memory", "x"), objectives)
        else:
            record_result(study, trial, TrialResult("ok", trial.params, metrics={"exact": exact, "num_parameters": 1e6}), objectives)
    # trial 0 has nothing to model, so no joint proposal is asked for it
    assert asked == [(1, "tpe"), (2, "tpe"), (3, "tpe"), (4, "gp"), (5, "gp"), (6, "gp")]


def test_gp_window_fits_gp_on_the_front_and_the_latest_trials_once_there_are_more_than_the_window(storage):
    objectives = _objectives()
    config = load_config(base={"search": {"space": SPACE, "sampler": "gp-window", "gp_window": 4}})
    space = build_space(config)
    study = open_study(storage, "t", "flash", objectives, space=space.to_dict())
    study.sampler = make_sampler(config.search.sampler, 0, 2, gp_window=config.search.gp_window)
    study.sampler.configure(space.distributions(), objectives)
    windowed = study.sampler.inner
    for _ in range(9):
        trial = study.ask(space.distributions())
        assert all(name in space.distributions() for name in trial.params)
        if trial.number == 5:  # a failure is a finished (penalty) trial to the sampler, so it is windowed too
            record_result(study, trial, TrialResult.failed(trial.params, "out_of_memory", "x"), objectives)
        else:
            exact = 40.0 + 3 * trial.params["num_layers"]
            record_result(study, trial, TrialResult("ok", trial.params, metrics={"exact": exact, "num_parameters": 1e6}),
                          objectives)
    # one proposal per trial after the first: the GP is shown every finished trial up to 4, then 4
    assert windowed.shown == [1, 2, 3, 4, 4, 4, 4, 4]


def _told(number: int, exact: float, size: float, feasible: bool = True) -> optuna.trial.FrozenTrial:
    """A finished trial as the sampler's view holds it: values and the threshold's constraint."""
    return optuna.trial.FrozenTrial(
        number=number, state=TrialState.COMPLETE, value=None, values=[exact, size], datetime_start=None,
        datetime_complete=None, params={}, distributions={}, user_attrs={}, intermediate_values={}, trial_id=number,
        system_attrs={"constraints:exact": -1.0 if feasible else 1.0})


def test_the_window_keeps_the_feasible_front_then_the_latest_trials():
    from paretodistill.search.samplers import window_of

    directions = [optuna.study.StudyDirection.MAXIMIZE, optuna.study.StudyDirection.MINIMIZE]
    trials = [_told(0, 60, 5), _told(1, 50, 1), _told(2, 40, 4), _told(3, 70, 9), _told(4, 90, 1, feasible=False),
              _told(5, 55, 6), _told(6, 45, 2), _told(7, 30, 8)]
    running = optuna.trial.create_trial(state=TrialState.RUNNING)
    kept = window_of([*trials, running], directions, 6)
    # front (feasible, non-dominated): 1 (50, 1), 0 (60, 5), 3 (70, 9): 3 of 6 slots; then 7, 6, 5; the running one stays
    assert [t.number for t in kept if t.state == TrialState.COMPLETE] == [0, 1, 3, 5, 6, 7]
    assert kept[-1].state == TrialState.RUNNING
    assert [t.number for t in window_of(trials, directions, 4)] == [1, 3, 6, 7]  # the front spread over 2 slots
    assert window_of(trials, directions, 8) == trials


def test_gp_window_must_be_positive():
    with pytest.raises(ConfigError, match="search.gp_window"):
        load_config(base={"search": {"space": SPACE, "gp_window": 0}})


def test_the_wrapper_asks_a_joint_proposal_only_of_a_sampler_that_models_the_space_jointly(storage, monkeypatch):
    """Optuna's univariate TPE has an empty relative search space; the wrapper used to hand it the whole
    space anyway, which made every "univariate" proposal a multivariate one."""
    from paretodistill.search.samplers import tpe_sampler

    objectives = _objectives()
    config = load_config(base={"search": {"space": SPACE}})
    space = build_space(config)
    joint = {}
    for multivariate in (False, True):
        study = open_study(storage, f"tpe-{multivariate}", "flash", objectives, space=space.to_dict())
        study.sampler = FailureAwareSampler(tpe_sampler(0, 2, multivariate=multivariate), seed=0)
        study.sampler.configure(space.distributions(), objectives)
        asked = joint[multivariate] = []
        original = study.sampler.inner.sample_relative
        monkeypatch.setattr(study.sampler.inner, "sample_relative",
                            lambda s, t, sp, _o=original, _a=asked: _a.append(sorted(sp)) or _o(s, t, sp))
        for _ in range(5):
            trial = study.ask(space.distributions())
            record_result(study, trial, TrialResult("ok", trial.params, metrics={
                "exact": 40.0 + 3 * trial.params["num_layers"], "num_parameters": 1e6}), objectives)
    varied = sorted(name for name, d in space.distributions().items() if not d.single())
    assert joint[False] == []
    assert joint[True] and all(names == varied for names in joint[True])


def test_gp_after_must_not_be_negative():
    with pytest.raises(ConfigError, match="search.gp_after"):
        load_config(base={"search": {"space": SPACE, "gp_after": -1}})


GRID = {
    "num_layers": CategoricalDistribution([1, 2, 3]),
    "learning_rate": CategoricalDistribution([1e-4, 3e-4]),
    "temperature": FloatDistribution(1.0, 2.0, step=0.5),
    "hard_weight": FloatDistribution(1.0, 1.0),
}


def test_grid_sampler_runs_every_point_once_and_reruns_interrupted_ones(storage):
    objectives = _objectives()
    study = optuna.create_study(storage=storage, directions=objectives.directions)
    study.sampler = make_sampler("grid", 3)
    study.sampler.configure(GRID, objectives)
    first = study.ask(GRID)
    record_result(study, first, TrialResult.failed(first.params, INTERRUPTED, "the worker was killed"), objectives)
    for _ in range(18):  # 3 x 2 x 3 x 1 = 18 points
        trial = study.ask(GRID)
        record_result(study, trial, TrialResult("ok", trial.params, metrics={"exact": 60.0, "num_parameters": 1e7}),
                      objectives)
    done = [tuple(sorted(t.params.items())) for t in study.get_trials() if t.state == TrialState.COMPLETE]
    assert len(done) == len(set(done)) == 18
    assert tuple(sorted(first.params.items())) in done  # the interrupted point was run again
    assert {t.params["temperature"] for t in study.get_trials()} == {1.0, 1.5, 2.0}


def test_grid_sampler_needs_discrete_parameters():
    from paretodistill.search.samplers import grid_values

    assert grid_values("t", FloatDistribution(1.0, 2.0, step=0.25)) == [1.0, 1.25, 1.5, 1.75, 2.0]
    assert grid_values("n", IntDistribution(2, 8, step=3)) == [2, 5, 8]
    with pytest.raises(ConfigError, match=r"search.space.lr: sampler 'grid' needs discrete values"):
        grid_values("lr", FloatDistribution(1e-5, 1e-3, log=True))
    with pytest.raises(ConfigError, match="log-scale int"):
        grid_values("n", IntDistribution(1, 8, log=True))


class _Stubborn(optuna.samplers.RandomSampler):
    """Always proposes the same configuration (as GP can, at a corner of the box)."""

    def sample_independent(self, study, trial, name, distribution):
        return {"num_layers": 6, "learning_rate": 1e-3, "temperature": 8.0}[name]


def test_failed_configurations_are_not_proposed_again(tmp_path):
    objectives = _objectives(thresholds={"exact": 40.0})
    storage = optuna.storages.InMemoryStorage()
    study, space, config = _study(storage, objectives)
    study.sampler = FailureAwareSampler(_Stubborn(seed=0), seed=0)
    study.sampler.configure(space.distributions(), objectives)
    values = config.to_dict()
    drive(study, stage="flash", n_target=12, distributions=space.distributions(), backend=InlineBackend(),
          objectives=objectives, token="test", progress=Progress(lambda message: None),
          make_spec=lambda t: WorkerSpec("flash", t.number, t.params, values, str(tmp_path / str(t.number)),
                                         trial_function="search_fakes:failing_trial"))
    trials = study.get_trials()
    keys = [tuple(sorted(t.params.items())) for t in trials]
    assert len(set(keys)) == len(keys) == 12
    assert trials[0].params == {"num_layers": 6, "learning_rate": 1e-3, "temperature": 8.0}
    assert trials[0].state == TrialState.FAIL  # 6 layers: out of memory, and never proposed again
    assert study.sampler.perturbed == list(range(1, 12))
    distributions = space.distributions()
    for t in trials:  # moved values stay inside their distributions
        for name, value in t.params.items():
            assert distributions[name]._contains(distributions[name].to_internal_repr(value))


def test_perturbation_respects_steps_logs_and_choices():
    import random

    from paretodistill.search.samplers import _perturb

    rng = random.Random(0)
    ints = IntDistribution(2, 8, step=2)
    logs = FloatDistribution(1e-5, 1e-3, log=True)
    steps = FloatDistribution(1.0, 4.0, step=0.5)
    cats = CategoricalDistribution([16, 32])
    for _ in range(200):
        assert _perturb(ints, 8, 0.05, rng) in (2, 4, 6)
        assert 1e-5 <= _perturb(logs, 1e-3, 0.3, rng) <= 1e-3
        assert _perturb(steps, 2.0, 0.2, rng) in [1.0 + 0.5 * i for i in range(7)]
        assert _perturb(cats, 16, 0.1, rng) == 32


# ---------------------------------------------------------------- interrupted trials
def test_trials_left_running_are_recovered_by_heartbeat_or_at_once_under_the_lock(storage):
    """A shared database: a trial is dead only once its heartbeat is older than the grace period.
    The study folder's own database, whose lock this run holds: every trial but ours at once."""
    objectives = _objectives()
    study, space, _ = _study(storage, objectives)
    mine = study.ask(space.distributions())
    mine.set_user_attr("coordinator", {"run": "me"})
    gone = study.ask(space.distributions())
    gone.set_user_attr("coordinator", {"run": "gone"})
    storage.record_heartbeat(gone._trial_id)
    orphan = study.ask(space.distributions())  # its coordinator died before recording anything
    assert recover_interrupted(study, token="me") == []  # it beat recently: perhaps alive elsewhere
    time.sleep(3.2)  # grace period 2 s (SQLite timestamps have 1 s resolution)
    assert recover_interrupted(study, token="me") == [gone.number, orphan.number]
    fresh = study.ask(space.distributions())
    fresh.set_user_attr("coordinator", {"run": "killed just now"})
    storage.record_heartbeat(fresh._trial_id)
    assert recover_interrupted(study, token="me", exclusive=True) == [fresh.number]
    states = {t.number: (t.state, t.user_attrs.get("failure_kind")) for t in study.get_trials()}
    assert states[mine.number] == (TrialState.RUNNING, None)
    assert states[gone.number] == states[fresh.number] == (TrialState.FAIL, "interrupted")
    assert "this run holds the study's lock" in study.get_trials()[fresh.number].user_attrs["failure_reason"]


# ---------------------------------------------------------------- stages
def test_candidates_come_from_the_feasible_front_then_the_next_ranks(storage):
    objectives = _objectives(thresholds={"exact": 45.0})
    study, space, _ = _study(storage, objectives)
    table = [(60, 30e6), (50, 20e6), (55, 30e6), (44, 10e6), (48, 25e6), (40, 40e6)]
    for exact, size in table:
        trial = study.ask(space.distributions())
        record_result(study, trial, TrialResult("ok", trial.params, metrics={"exact": exact, "num_parameters": size}),
                      objectives)
    numbers = [t.number for t in select_candidates(study.get_trials(), objectives, 3)]
    assert numbers == [0, 1, 2]  # front (60, 30M), (50, 20M); then rank 1: (55, 30M) before (48, 25M)
    numbers = [t.number for t in select_candidates(study.get_trials(), objectives, 6)]
    assert numbers[:4] == [0, 1, 2, 4] and numbers[4:] == [3, 5]  # then the least infeasible
    assert select_candidates(study.get_trials(), objectives, 0) == []


@pytest.mark.parametrize(
    "search, message",
    [
        ({"samplr": "gp"}, "unknown key"),
        ({"sampler": "cmaes"}, "unknown sampler"),
        ({"flash": {"n_trial": 3}}, "unknown key"),
        ({"flash": {"n_trials": -1}}, "integer >= 0"),
        ({"heartbeat_interval": 10, "grace_period": 5}, "grace_period"),
        ({"trial_function": "run_trial"}, "module:function"),
    ],
)
def test_settings_are_checked(search, message):
    with pytest.raises(ConfigError, match=message):
        load_config(base={"search": search})


def _search_config(tmp_path, **extra):
    search = {
        "name": "t", "sampler": "tpe", "seed": 1, "n_startup_trials": 4, "backend": "inline",
        "trial_function": "search_fakes:failing_trial", "thresholds": {"exact": 40.0}, "space": SPACE,
        "flash": {"n_trials": 8, "budget": {"training.max_steps": 10}}, "regular": {"top_k": 3},
        "baseline": {"num_layers": 3}, **extra,
    }
    return load_config(base={"search": search})


def test_budget_may_not_set_a_searched_parameter(tmp_path):
    config = _search_config(tmp_path, flash={"n_trials": 2, "budget": {"student.num_layers": 2}})
    with pytest.raises(ConfigError, match="num_layers"):
        run_search(config, tmp_path / "s", log=lambda m: None)
    config = _search_config(tmp_path, flash={"n_trials": 2, "budget": {"training.max_stepz": 2}})
    with pytest.raises(ConfigError, match="max_stepz"):
        run_search(config, tmp_path / "s", log=lambda m: None)


def test_flash_then_regular_writes_pareto_json(tmp_path):
    lines = []
    pareto = run_search(_search_config(tmp_path), tmp_path / "s", log=lines.append)
    on_disk = json.loads((tmp_path / "s" / "pareto.json").read_text())
    assert on_disk["frontier"] == json.loads(json.dumps(pareto["frontier"]))
    assert pareto["objectives"] == ["exact:maximize", "num_parameters:minimize"]
    assert pareto["thresholds"] == {"exact": ">= 40"} and pareto["split"]["fractions"]["test"] == 0.2
    assert pareto["frontier_stage"] == "regular" and pareto["frontier"]
    for entry in pareto["frontier"]:
        assert entry["stage"] == "regular" and entry["validation"]["exact"] >= 40
        assert entry["test"]["exact"] == pytest.approx(entry["validation"]["exact"] - 1.0)  # the fake's test score
        assert not Path(entry["checkpoint"]).is_absolute()  # relative to the study folder: a copy reads its own
        assert (tmp_path / "s" / entry["checkpoint"]).is_dir() and entry["flash_trial"] in pareto["candidates"]
    assert isinstance(pareto["flash_regular_spearman"], float) and -1 <= pareto["flash_regular_spearman"] <= 1
    assert len(pareto["candidates"]) == 3
    assert pareto["baseline"]["params"] == {"num_layers": 3} and pareto["baseline"]["test"]["exact"] > 0
    assert pareto["counts"]["flash"]["finished"] == 8 and pareto["counts"]["regular"]["complete"] == 3

    storage = open_storage(f"sqlite:///{tmp_path / 's' / 'study.db'}")
    names = sorted(s.study_name for s in storage.get_all_studies())
    assert names == ["t-baseline", "t-flash", "t-regular"]
    flash = optuna.load_study(study_name="t-flash", storage=storage)
    assert flash.user_attrs["config"]["training"]["max_steps"] == 10  # the flash budget
    assert flash.user_attrs["split"]["split_seed"] == 13
    regular = optuna.load_study(study_name="t-regular", storage=storage)
    assert regular.user_attrs["config"]["training"]["max_steps"] is None
    for t in regular.get_trials():
        assert t.user_attrs["trial_dir"].endswith(f"trials/regular-{t.number}")
        assert t.params == flash.trials[t.user_attrs["flash_trial"]].params
        assert t.user_attrs["test_metrics"]["exact"] > 0 and t.user_attrs["curve"][0]["step"] == 1
    assert all((tmp_path / "s" / t.user_attrs["trial_dir"]).is_dir() for t in flash.get_trials())
    failed = [t for t in flash.get_trials() if t.state == TrialState.FAIL]
    assert all(t.user_attrs["failure_kind"] == "out_of_memory" for t in failed)
    assert len([line for line in lines if "FAILED out_of_memory" in line]) == len(failed)

    # the same command again: nothing left to do, nothing run twice
    again = run_search(_search_config(tmp_path), tmp_path / "s", log=lambda m: None)
    assert again["counts"] == pareto["counts"]
    text = study_status(tmp_path / "s")
    assert f"flash    8 trials: {8 - len(failed)} complete, 0 running, {len(failed)} failed" in text
    assert "regular  3 trials: 3 complete" in text and "baseline 1 trials: 1 complete" in text
    assert f"pareto.json: {len(pareto['frontier'])} frontier trial(s) from the regular stage" in text


def test_a_trial_whose_node_was_lost_is_not_counted_and_its_candidate_runs_again(tmp_path, monkeypatch):
    """``node_lost`` (the machine failed, not the settings): not finished, the candidate is queued again,
    the search goes on and the regular stage still trains every candidate."""
    monkeypatch.setenv("FAKE_NODE_LOST_FLAG", str(tmp_path / "lost"))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    config = _search_config(tmp_path, trial_function="search_fakes:node_lost_once_trial", baseline=None,
                            flash={"n_trials": 6})
    pareto = run_search(config, tmp_path / "s", log=lambda m: None)
    regular = optuna.load_study(study_name="t-regular", storage=open_storage(f"sqlite:///{tmp_path / 's' / 'study.db'}"))
    lost = [t for t in regular.get_trials() if t.state == TrialState.FAIL]
    assert [t.user_attrs["failure_kind"] for t in lost] == ["node_lost"]
    assert pareto["counts"]["regular"] == {**pareto["counts"]["regular"], "complete": 3, "interrupted": 1, "finished": 3}
    ran = sorted(t.user_attrs["flash_trial"] for t in regular.get_trials() if t.state == TrialState.COMPLETE)
    assert ran == sorted(pareto["candidates"]) and lost[0].user_attrs["flash_trial"] in ran  # run again
    assert all(t.user_attrs["placement"] == {"node": None, "devices": None} for t in regular.get_trials()
               if t.state == TrialState.COMPLETE)  # inline, with no GPU declared
    assert f"#{lost[0].number} node_lost: the Ray node running it (abc123) was lost" in study_status(tmp_path / "s")


class _OwnDiskBackend(InlineBackend):
    """Trials on a "node" with a disk of its own: each trial's folder is elsewhere than the study's, as on a
    Ray node without a shared filesystem; only its spec goes out and its payload comes back."""

    def __init__(self, disk: Path):
        super().__init__()
        self.disk = disk

    def submit(self, key, spec):
        import dataclasses

        super().submit(key, dataclasses.replace(spec, trial_dir=str(self.disk / Path(spec.trial_dir).name)))


def test_without_a_shared_filesystem_the_study_is_recorded_from_the_payload_alone(tmp_path, monkeypatch):
    """What a trial writes stays on its node's disk (checkpoint, trial.log); the coordinator records its
    metrics, curve and test metrics from the payload, and the checkpoint where the node wrote it."""
    from paretodistill.search import stages

    disk = tmp_path / "node-disk"
    monkeypatch.setattr(stages, "make_backend", lambda *a, **k: _OwnDiskBackend(disk))
    config = _search_config(tmp_path, trial_function="search_fakes:fake_trial", baseline=None, flash={"n_trials": 3},
                            regular={"top_k": 1})
    pareto = run_search(config, tmp_path / "s", log=lambda m: None)
    assert pareto["counts"]["flash"]["complete"] == 3 and pareto["counts"]["regular"]["complete"] == 1
    assert not list((tmp_path / "s" / "trials").iterdir())  # nothing written into the study's trial folders
    flash = optuna.load_study(study_name="t-flash", storage=open_storage(f"sqlite:///{tmp_path / 's' / 'study.db'}"))
    for t in flash.get_trials():
        on_disk = json.loads((disk / f"flash-{t.number}" / "checkpoint" / "metrics.json").read_text())
        assert t.user_attrs["metrics"]["exact"] == on_disk["exact"] and len(t.user_attrs["curve"]) == 3
        assert t.user_attrs["checkpoint"] == str(disk / f"flash-{t.number}" / "checkpoint")  # where the node wrote it
    assert pareto["frontier"][0]["test"]["exact"] == pytest.approx(pareto["frontier"][0]["validation"]["exact"] - 1.0)


def test_declared_devices_bypass_detection_and_name_gpus_as_cuda_does(monkeypatch):
    from paretodistill.search.runner import LocalProcessBackend, make_backend, visible_gpus

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")
    assert visible_gpus("auto", ("cuda:0", "1", "GPU-5e2f")) == ["0", "1", "GPU-5e2f"]
    assert visible_gpus("auto") == ["3"] and visible_gpus("cpu", ("0",)) == []
    backend = make_backend("local", 3, devices=("cuda:0", "cuda:1"))
    assert isinstance(backend, LocalProcessBackend) and backend._gpus == ["0", "1"]
    with pytest.raises(ConfigError, match="search.devices: only the local backend hands out devices"):
        load_config(base={"search": {"backend": "ray", "devices": ["0"]}})
    with pytest.raises(ConfigError, match="search.devices: expected distinct GPU ids"):
        load_config(base={"search": {"devices": ["0", "cuda:0"]}})


def test_ray_failures_are_read_as_kinds_the_search_knows():
    ray = pytest.importorskip("ray")
    from paretodistill.search.ray_backend import task_failure

    message = ("Task failed because the node it was running on is dead or unavailable. Node IP: 10.0.0.7, "
               "node ID: 37d81981e97b. This can happen if the node was preempted")
    kind, reason, where = task_failure(ray, ray.exceptions.NodeDiedError(message))
    assert (kind, where) == ("node_lost", {"node": "37d81981e97b"}) and "10.0.0.7" not in reason  # no host in a study
    assert reason == "the Ray node running it (37d81981e97b) was lost (NodeDiedError)"
    assert task_failure(ray, ray.exceptions.OutOfMemoryError("memory monitor"))[0] == "out_of_memory"
    kind, reason, where = task_failure(ray, ray.exceptions.WorkerCrashedError())
    assert kind == "error" and reason.startswith("the Ray task failed: WorkerCrashedError") and where is None


def test_status_cli_and_errors(tmp_path, capsys):
    from paretodistill.cli import main

    assert main(["status", "--study", str(tmp_path)]) == 2
    assert "no search.json" in capsys.readouterr().err
    assert main(["search", "--study", str(tmp_path / "s")]) == 2
    assert "--config" in capsys.readouterr().err


# ---------------------------------------------------------------- errors with reasons
def test_a_refused_tell_fails_the_trial_with_its_reason(storage, monkeypatch):
    """Optuna refusing the values must not leave the trial RUNNING: it becomes FAIL and says why."""
    objectives = _objectives()
    study, space, _ = _study(storage, objectives)
    trial = study.ask(space.distributions())
    real_tell = study.tell

    def tell(trial, values=None, state=None, **kwargs):
        if values is not None:
            raise ValueError("values rejected")
        return real_tell(trial, values, state=state, **kwargs)

    monkeypatch.setattr(study, "tell", tell)
    frozen = record_result(study, trial, TrialResult("ok", trial.params, metrics={"exact": 60, "num_parameters": 5e6}),
                           objectives)
    stored = study.get_trials()[trial.number]
    assert frozen.state == stored.state == TrialState.FAIL
    assert stored.user_attrs["failure_kind"] == "error"
    assert "could not be told" in stored.user_attrs["failure_reason"] and "values rejected" in stored.user_attrs["failure_reason"]


def test_a_stale_trial_check_that_fails_is_logged(storage, monkeypatch, caplog):
    from paretodistill.search import storage as storage_module

    objectives = _objectives()
    study, space, _ = _study(storage, objectives)
    study.ask(space.distributions())

    def broken(_study):
        raise RuntimeError("database went away")

    monkeypatch.setattr(storage_module, "stale_trial_ids", broken)
    with caplog.at_level("WARNING", logger="paretodistill.search"):
        assert recover_interrupted(study, token="me") == []
    assert "could not read stale trials" in caplog.text and "database went away" in caplog.text


def signal_trial(config, params, *, trial_dir=None, evaluate_test=False, log=print):
    """The fake student, also reporting a flash signal: span_f1 follows exact, teacher_kl opposes it."""

    result = search_fakes.fake_trial(config, params, trial_dir=trial_dir, evaluate_test=evaluate_test, log=log)
    result.metrics.update(span_f1=result.metrics["exact"] + 10.0, teacher_kl=100.0 - result.metrics["exact"])
    return result


def test_flash_objectives_drive_the_flash_stage_and_every_signal_is_correlated(tmp_path):
    """search.flash.objectives: the flash stage optimizes and picks candidates by span_f1; the frontier
    stays on exact; pareto.json gives each candidate flash metric's rank correlation with the regular stage."""
    config = _search_config(tmp_path, trial_function="test_search:signal_trial",
                            flash={"n_trials": 8, "budget": {"training.max_steps": 10},
                                   "objectives": ["span_f1:maximize", "num_parameters:minimize"]},
                            regular={"top_k": 4})
    pareto = run_search(config, tmp_path / "s", log=lambda m: None)
    flash = optuna.load_study(study_name="t-flash", storage=f"sqlite:///{tmp_path / 's' / 'study.db'}")
    assert flash.metric_names == ["span_f1", "num_parameters"]
    assert pareto["objectives"] == ["exact:maximize", "num_parameters:minimize"] and pareto["frontier_stage"] == "regular"
    assert set(pareto["frontier"][0]["objective_values"]) == {"exact", "num_parameters"}
    correlations = pareto["flash_metric_correlations"]
    assert correlations["span_f1"]["pairs"] == correlations["teacher_kl"]["pairs"] >= 3
    assert correlations["span_f1"]["spearman"] == pytest.approx(correlations["exact"]["spearman"])
    assert correlations["teacher_kl"]["spearman"] == pytest.approx(-correlations["exact"]["spearman"])
    assert "no_answer_auc" not in correlations  # not reported by this trial function
    with pytest.raises(ConfigError, match="search.flash.objectives"):
        load_config(None, ["search.flash.objectives=3"])


def test_each_stage_has_its_own_pace_and_eta():
    """A regular trial takes many flash trials' time: the stage ETA uses its own stage's mean."""
    from types import SimpleNamespace

    from paretodistill.search.runner import Progress

    lines = []
    progress = Progress(lines.append)
    done = optuna.trial.create_trial(value=50.0)
    done.number = 0
    flash, regular = SimpleNamespace(metric_names=["span_f1"]), SimpleNamespace(metric_names=["exact"])
    for seconds in (10.0, 10.0):
        progress.finished("flash", done, seconds, {"finished": 1, "running": 0, "failed": 0}, 1, 4, flash)
    progress.finished("regular", done, 300.0, {"finished": 1, "running": 0, "failed": 0}, 1, 3, regular)
    assert "10.0 s/trial, stage ETA 30 s" in lines[1]
    assert "ok (span_f1 50)" in lines[0] and "ok (exact 50)" in lines[2]  # each stage names its own objective
    assert "300.0 s/trial, stage ETA 10 min 00 s" in lines[2]


def test_a_stage_of_one_trial_gets_every_core():
    """The baseline stage runs one trial: with two workers it would leave a core idle."""
    from paretodistill.search.runner import LocalProcessBackend, cpu_count

    backend = LocalProcessBackend(2)
    assert backend.threads_per_trial() == max(1, cpu_count() // 2) == backend.threads_per_trial(at_once=5)
    assert backend.threads_per_trial(at_once=1) == cpu_count()


# ---------------------------------------------------------------- teacher logits before the first trials
@pytest.mark.parametrize("backend, trial_function, expected", [
    ("local", "paretodistill.distill.run:run_trial", True),
    ("inline", "paretodistill.distill.run:run_trial", True),
    ("ray", "paretodistill.distill.run:run_trial", False),  # a cluster's workers have their own caches
    ("local", "my_trials:run", False),  # a user's trial may have no teacher at all
])
def test_the_teacher_labels_the_windows_once_only_for_the_built_in_trial_on_this_machine(
        monkeypatch, backend, trial_function, expected):
    from types import SimpleNamespace

    import paretodistill.search.stages as stages_module
    from paretodistill.config import load_config
    from paretodistill.search.stages import label_windows_first

    labelled = []
    monkeypatch.setattr(stages_module, "prepare", lambda config, teacher_logits, log: labelled.append(config))
    values = load_config(None, ["teacher.path=\"some/teacher\"", "data.max_train_questions=7", "threads=1"]).to_dict()
    stages = SimpleNamespace(backend=SimpleNamespace(name=backend), log=print,
                             plan=SimpleNamespace(settings=SimpleNamespace(trial_function=trial_function)))
    label_windows_first(stages, values)
    assert bool(labelled) == expected
    if expected:  # the flash stage's data, on every core (threads unset), not one trial's share
        assert labelled[0].data.max_train_questions == 7 and labelled[0].threads is None


# ---------------------------------------------------------------- early stopping of flash trials
EARLY_STOP_SPACE = {  # one depth, so every student has the same size and the more accurate dominates
    "num_layers": {"type": "fixed", "value": 3},
    "learning_rate": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True},
}


@pytest.mark.parametrize("early_stop, message", [
    ({"safety": -1.0}, "search.flash.early_stop.safety: expected a number >= 0, got -1.0"),
    ({"floor": "big"}, "search.flash.early_stop.floor: expected a number, got 'big'"),
    ({"min_curves": 0}, "search.flash.early_stop.min_curves: expected an integer >= 1, got 0"),
    ({"dominated_by": 0}, "search.flash.early_stop.dominated_by: expected an integer >= 1, got 0"),
    ({"safty": 2.0}, "unknown key(s) ['search.flash.early_stop.safty']"),
    (True, "search.flash.early_stop: expected a table, got True"),
])
def test_early_stop_settings_are_checked_in_one_line(early_stop, message):
    with pytest.raises(ConfigError) as error:
        load_config(base={"search": {"flash": {"early_stop": early_stop}}})
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_early_stop_is_off_unless_asked_and_its_defaults_keep_the_candidates():
    from paretodistill.search.early_stop import StopRule

    assert load_config(base={}).search.flash.early_stop is None
    settings = load_config(None, ["search.flash.early_stop={}", "search.regular.top_k=4"]).search
    assert StopRule.from_settings(settings.flash.early_stop, settings.regular.top_k, "exact") == StopRule(1.0, 1.0, 5, 4)
    assert StopRule.from_settings(settings.flash.early_stop, 0, "exact").dominated_by == 1  # no regular stage: the front
    chosen = load_config(None, ["search.flash.early_stop={ dominated_by = 2, safety = 1.5 }"]).search.flash.early_stop
    assert StopRule.from_settings(chosen, 8, "span_f1") == StopRule(1.5, 1.0, 5, 2)


def test_the_early_stop_floor_follows_the_learning_objective_s_scale():
    """A floor of 1 on the no-answer AUC (a 0-1 score, the flash objective of the CPU configs) would keep every trial."""
    from paretodistill.search.early_stop import StopRule

    unset = load_config(None, ["search.flash.early_stop={}"]).search.flash.early_stop
    assert unset.floor is None
    assert StopRule.from_settings(unset, 3, "no_answer_auc").floor == 0.01
    assert StopRule.from_settings(unset, 3, "exact").floor == 1.0
    with pytest.raises(ConfigError, match="give a floor for 'teacher_kl', in its units"):
        StopRule.from_settings(unset, 3, "teacher_kl")
    given = load_config(None, ["search.flash.early_stop={ floor = 0.05 }"]).search.flash.early_stop
    assert StopRule.from_settings(given, 3, "teacher_kl").floor == StopRule.from_settings(given, 3, "no_answer_auc").floor == 0.05


def test_the_plan_says_when_no_flash_trial_could_be_stopped(tmp_path):
    from paretodistill.search.early_stop import StopRule
    from paretodistill.search.plan import plan_search

    def plan(budget):
        lines = []
        config = _search_config(tmp_path, trial_function="search_fakes:learning_trial",
                                flash={"n_trials": 2, "budget": budget, "early_stop": {}})
        return plan_search(config, config.search, lines.append), lines

    chosen, lines = plan({"training.max_steps": 10})
    assert chosen.early_stop == StopRule(1.0, 1.0, 5, 3)  # dominated_by: the regular stage's top_k
    assert any("flash trials of 10 steps are evaluated every epoch, so none has an evaluation point" in line
               for line in lines)
    _, lines = plan({"training.max_steps": 10, "training.eval_every_steps": 5})
    assert not any("early_stop" in line for line in lines)
    # a budget in windows is that many steps at the config's batch size (16): 160 windows, 10 steps
    _, lines = plan({"training.max_windows": 160})
    assert any("flash trials of 10 steps are evaluated every epoch" in line for line in lines)


def test_a_trial_function_that_cannot_be_stopped_is_refused_before_any_trial(tmp_path):
    config = _search_config(tmp_path, trial_function="search_fakes:fake_trial",
                            flash={"n_trials": 2, "early_stop": {}})
    with pytest.raises(ConfigError, match="fake_trial takes no should_stop keyword") as error:
        run_search(config, tmp_path / "s", log=lambda m: None)
    assert "\n" not in str(error.value) and not (tmp_path / "s" / "study.db").exists()


def _early_stop_config(tmp_path, n_trials, early_stop=None):
    flash = {"n_trials": n_trials, **({"early_stop": early_stop} if early_stop is not None else {})}
    return _search_config(tmp_path, trial_function="search_fakes:learning_trial", sampler="random", thresholds={},
                          space=EARLY_STOP_SPACE, flash=flash, regular={"top_k": 8}, baseline=None)


def test_a_flash_trial_that_cannot_reach_the_front_is_stopped_and_never_a_candidate(tmp_path):
    """One curve calibrates the margin (each rises 0.3 from its first point, x1): any later trial below the
    best completed one by then is stopped at its first point. top_k 8 would take every flash trial; the
    stopped ones are not taken. Turning it on for a study that ran without it is no change of identity."""
    study_dir, lines = tmp_path / "s", []
    run_search(_early_stop_config(tmp_path, 2), study_dir, log=lambda m: None)  # without: both run to the end
    rule = {"safety": 1.0, "floor": 0.1, "min_curves": 1, "dominated_by": 1}
    pareto = run_search(_early_stop_config(tmp_path, 8, rule), study_dir, log=lines.append)

    flash = optuna.load_study(study_name="t-flash", storage=f"sqlite:///{study_dir / 'study.db'}")
    trials = flash.get_trials()
    stopped = [t for t in trials if t.state == TrialState.PRUNED]
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert stopped and len(stopped) + len(complete) == 8 and pareto["counts"]["flash"]["finished"] == 8
    for t in stopped:
        assert t.user_attrs["stop_reason"].startswith("stopped early at 25% of training: even at exact")
        assert t.user_attrs["early_stop"]["step"] == 1 and t.user_attrs["early_stop"]["rule"]["min_curves"] == 1
        assert [p["step"] for p in t.user_attrs["curve"]] == [1] and t.user_attrs["metrics"]["train_steps"] == 1
        best_before = max(c.values[0] for c in complete if c.number < t.number)
        assert t.user_attrs["metrics"]["exact"] + 0.3 < best_before  # its optimistic end point is dominated
        assert any(f"[flash] trial {t.number} stopped early: stopped early at 25%" in line for line in lines)

    assert sorted(pareto["candidates"]) == [t.number for t in complete]  # every completed trial, no stopped one
    regular = optuna.load_study(study_name="t-regular", storage=f"sqlite:///{study_dir / 'study.db'}")
    assert sorted(t.user_attrs["flash_trial"] for t in regular.get_trials()) == [t.number for t in complete]
    assert pareto["flash_early_stop"] == rule
    listed = {entry["trial_number"]: entry for entry in pareto["stopped_early"]}
    assert sorted(listed) == [t.number for t in stopped]
    assert all(entry["reason"].startswith("stopped early") and entry["step"] == 1 for entry in listed.values())

    text = study_status(study_dir)
    assert f"flash    8 trials: {len(complete)} complete, 0 running, 0 failed, 0 interrupted, {len(stopped)} stopped early" in text
    assert f"  #{stopped[-1].number} stopped early at 25% of training" in text

    # the sampler learns from a stopped trial at the end point it was judged by (GP and NSGA-II skip PRUNED)
    seen = {t.number: t for t in sampler_view_of(trials, _objectives(thresholds={}))}
    for t in stopped:
        assert seen[t.number].state == TrialState.COMPLETE
        assert seen[t.number].values == [t.user_attrs["early_stop"]["optimistic"]["exact"], t.user_attrs["metrics"]["num_parameters"]]

    # the same command again: a stopped trial is finished, so nothing runs again
    again = run_search(_early_stop_config(tmp_path, 8, rule), study_dir, log=lambda m: None)
    assert again["counts"] == pareto["counts"] and len(flash.get_trials()) == 8
