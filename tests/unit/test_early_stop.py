"""search.early_stop: a flash trial is stopped only when even its optimistic end point is dominated."""

import pytest

from paretodistill.search.early_stop import CompletedCurve, StopRule, decide, margin_at
from paretodistill.search.objectives import ObjectiveSet

ACCURACY_SIZE = ObjectiveSet.parse(["exact:maximize", "num_parameters:minimize"], None)
FRONT = [[60.0, 10e6], [55.0, 5e6]]
RULE = StopRule(safety=2.0)  # the figures below take margins of twice the largest rise (the default is once)


def rising(by: float, count: int = 5) -> list[CompletedCurve]:
    """``count`` completed curves that rise by ``by`` from half-way to the end."""
    return [CompletedCurve(((0.5, 50.0), (1.0, 50.0 + by)), final=50.0 + by) for _ in range(count)]


def test_it_stops_a_trial_that_cannot_reach_the_front():
    decision = decide(ACCURACY_SIZE, "exact", 50.0, 0.5, {"num_parameters": 11e6}, FRONT, rising(1.0), RULE)
    assert decision.stop and decision.margin == 2.0  # the largest rise (1) times the safety factor (2)
    assert decision.optimistic == (52.0, 11e6)
    assert "dominated by 2 completed trial(s)" in decision.reason  # (60, 10M) and (55, 5M)


@pytest.mark.parametrize("value, size", [(59.0, 11e6), (40.0, 4e6)])
def test_it_keeps_a_trial_that_can_still_reach_the_front(value, size):
    """59 + 2 beats 60 at 11M; a student smaller than every completed one is on the front whatever its accuracy."""
    decision = decide(ACCURACY_SIZE, "exact", value, 0.5, {"num_parameters": size}, FRONT, rising(1.0), RULE)
    assert not decision.stop and decision.reason.startswith("kept: exact")


def test_it_never_stops_before_enough_completed_curves():
    hopeless = {"num_parameters": 20e6}
    assert not decide(ACCURACY_SIZE, "exact", 1.0, 0.5, hopeless, FRONT, rising(1.0, count=4), RULE).stop
    assert decide(ACCURACY_SIZE, "exact", 1.0, 0.5, hopeless, FRONT, rising(1.0, count=5), RULE).stop
    late = [CompletedCurve(((0.8, 50.0), (1.0, 51.0)), final=51.0)] * 5  # no point by 50 %: no evidence there
    assert margin_at(0.5, late, 1.0, RULE) is None
    assert not decide(ACCURACY_SIZE, "exact", 1.0, 0.5, hopeless, FRONT, late, RULE).stop


def test_the_margin_is_the_largest_rise_times_the_safety_factor_and_at_least_the_floor():
    curves = rising(0.2, count=3) + rising(3.0, count=2)
    assert margin_at(0.5, curves, 1.0, RULE) == 6.0
    assert margin_at(0.5, rising(-2.0), 1.0, RULE) == 1.0  # curves that fell: the floor
    assert margin_at(0.5, curves, 1.0, StopRule(safety=1.0, floor=0.0)) == 3.0
    assert margin_at(0.5, curves, 1.0, StopRule()) == 3.0  # the default: the largest rise itself (docs/results.md#early-stopping)


def test_directions_are_respected():
    """Teacher KL falls as a student learns; a larger student (maximized here) is better."""
    objectives = ObjectiveSet.parse(["teacher_kl:minimize", "num_parameters:maximize"], None)
    front = [[1.0, 12e6]]

    def falling(by):
        return [CompletedCurve(((0.5, 2.0), (1.0, 2.0 - by)), final=2.0 - by)] * 5

    rule = StopRule(safety=2.0, floor=0.1)
    stopped = decide(objectives, "teacher_kl", 2.0, 0.5, {"num_parameters": 11e6}, front, falling(0.3), rule)
    assert stopped.stop and stopped.optimistic == pytest.approx((1.4, 11e6))  # 2.0 - 2 x 0.3: still above 1.0
    assert not decide(objectives, "teacher_kl", 2.0, 0.5, {"num_parameters": 11e6}, front, falling(0.8), rule).stop
    assert not decide(objectives, "teacher_kl", 2.0, 0.5, {"num_parameters": 13e6}, front, falling(0.3), rule).stop


def test_dominated_by_k_keeps_the_k_best_candidates():
    """At 56 + 2 and 11M only (60, 10M) dominates it: off the front, but possibly the second-best candidate."""
    size, rule = {"num_parameters": 11e6}, StopRule(safety=2.0, dominated_by=2)
    assert decide(ACCURACY_SIZE, "exact", 56.0, 0.5, size, FRONT, rising(1.0), RULE).stop
    assert not decide(ACCURACY_SIZE, "exact", 56.0, 0.5, size, FRONT, rising(1.0), rule).stop
    assert decide(ACCURACY_SIZE, "exact", 56.0, 0.5, size, FRONT + [[59.0, 10.5e6]], rising(1.0), rule).stop


def test_an_objective_not_known_before_training_ends_keeps_the_trial():
    objectives = ObjectiveSet.parse(["exact:maximize", "num_parameters:minimize", "latency_ms:minimize"], None)
    decision = decide(objectives, "exact", 1.0, 0.5, {"num_parameters": 20e6}, [[60.0, 10e6, 1.0]], rising(1.0), RULE)
    assert not decision.stop and "latency_ms not known" in decision.reason
    with pytest.raises(ValueError, match="not one of the objectives"):
        decide(ACCURACY_SIZE, "f1", 1.0, 0.5, {"num_parameters": 1.0}, FRONT, rising(1.0), RULE)


# ---------------------------------------------------------------- in the search
def _trial(number, exact, size, curve, state="COMPLETE"):
    """A stored flash trial: curve of best_exact at steps 50 and 100 of 100 (exact 0.5 below it)."""
    import optuna
    from optuna.distributions import IntDistribution
    from optuna.trial import TrialState

    points = [{"step": step, "exact": value - 0.5, "best_exact": value} for step, value in zip((50, 100), curve)]
    state = TrialState[state]
    return optuna.trial.create_trial(
        params={"layers": number}, distributions={"layers": IntDistribution(0, 99)}, state=state,
        values=[exact, size] if state == TrialState.COMPLETE else None,
        user_attrs={"metrics": {"exact": exact, "num_parameters": size, "train_steps": 100}, "curve": points})


def test_the_evidence_is_what_the_completed_trials_show():
    """Front from the feasible completed trials, curves (best_exact) from every completed one, nothing from the rest."""
    from paretodistill.search.stages import stop_evidence

    objectives = ObjectiveSet.parse(["exact:maximize", "num_parameters:minimize"], {"exact": 50.0})
    trials = [_trial(0, 60.0, 10e6, [58.0, 60.5]), _trial(1, 40.0, 5e6, [39.0, 40.5]),
              _trial(2, 0.0, 1e6, [30.0], state="PRUNED")]
    evidence = stop_evidence(trials, objectives, StopRule(safety=2.0, min_curves=2))
    assert evidence.learning == "exact" and evidence.curve_key == "best_exact"
    assert evidence.completed == ((60.0, 10e6),)  # trial 1 misses the threshold
    assert evidence.curves == (CompletedCurve(((0.5, 58.0), (1.0, 60.5)), 60.0), CompletedCurve(((0.5, 39.0), (1.0, 40.5)), 40.0))
    assert margin_at(0.5, evidence.curves, 1.0, evidence.rule) == 4.0  # (60 - 58) x 2
    assert stop_evidence(trials, objectives, RULE, key="exact").curves[0].points == ((0.5, 57.5), (1.0, 60.0))


def test_the_check_judges_each_point_logs_it_and_keeps_what_stopped_the_trial():
    from paretodistill.search.early_stop import StopCheck, StopEvidence
    from paretodistill.trial import EvaluationPoint

    evidence = StopEvidence(ACCURACY_SIZE, "exact", "best_exact", RULE, tuple(map(tuple, FRONT)), tuple(rising(1.0)))
    lines = []
    check = StopCheck(evidence, lines.append)
    assert check(EvaluationPoint(50, 100, {"exact": 40.0}, {"num_parameters": 11e6})) is None  # no best_exact: kept
    assert check(EvaluationPoint(50, 100, {"best_exact": 59.0}, {"num_parameters": 11e6})) is None and check.record() is None
    reason = check(EvaluationPoint(50, 100, {"best_exact": 50.0}, {"num_parameters": 11e6}))
    assert reason.startswith("stopped early at 50% of training") and "dominated by 2 completed trial(s)" in reason
    assert lines[0].endswith("kept: the curve point records no best_exact") and lines[-1].endswith(reason)
    assert check.record() == {"step": 50, "progress": 0.5, "learning": "exact", "curve_key": "best_exact", "margin": 2.0,
                              "optimistic": {"exact": 52.0, "num_parameters": 11e6},
                              "rule": {"safety": 2.0, "floor": 1.0, "min_curves": 5, "dominated_by": 1},
                              "completed_trials": 2, "curves": 5}
    import pickle

    assert pickle.loads(pickle.dumps(evidence)) == evidence  # it travels in a worker's spec
