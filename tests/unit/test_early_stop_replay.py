"""benchmarks/early_stop_replay.py on a hand-made stage: what is stopped, the seconds saved, the front lost."""

import importlib.util
from pathlib import Path

import optuna
import pytest
from optuna.distributions import IntDistribution

from paretodistill.search.early_stop import StopRule
from paretodistill.search.results import stored_trials
from paretodistill.search.table_file import study_fields, table_of, write_table

optuna.logging.set_verbosity(optuna.logging.WARNING)

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "early_stop_replay.py"
_spec = importlib.util.spec_from_file_location("early_stop_replay", _PATH)
replay_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(replay_module)


def _stage(cpu_seconds=None):
    """Curves of best_exact at 25, 50, 75 and 100 % of 200 steps; the final exact is 0.2 below the last point; 100 s each.

    Trials 0-4 calibrate (10-14M parameters, each rises 3.3 from 25 % to the end, 1.3 from 50 %); 5 is large
    and poor (20M); 6 is poor but the smallest (5M); 7 (15M) starts late and ends on the front (63.8).
    """
    study = optuna.create_study(directions=["maximize", "minimize"], study_name="s-flash")
    study.set_user_attr("objectives", ["exact:maximize", "num_parameters:minimize"])
    study.set_user_attr("thresholds", {"exact": ">= 50"})
    curves = [[50 + 2 * i, 52 + 2 * i, 53 + 2 * i, 53.5 + 2 * i] for i in range(5)]
    curves += [[45, 46, 47, 47.5], [40, 41, 42, 42.5], [56, 60, 63, 64]]
    sizes = [10e6, 11e6, 12e6, 13e6, 14e6, 20e6, 5e6, 15e6]
    for number, (curve, size) in enumerate(zip(curves, sizes)):
        metrics = {"exact": curve[-1] - 0.2, "num_parameters": size, "train_seconds": 100.0, "train_steps": 200.0}
        if cpu_seconds is not None and (cpu_seconds[number] if isinstance(cpu_seconds, list) else True):
            metrics["train_cpu_seconds"] = 60.0
        points = [{"step": 50 * (i + 1), "exact": value - 1, "best_exact": value} for i, value in enumerate(curve)]
        study.add_trial(optuna.trial.create_trial(
            params={"layers": number}, distributions={"layers": IntDistribution(0, 7)},
            values=[metrics["exact"], size], user_attrs={"metrics": metrics, "curve": points}))
    return study


def _objectives(study):
    return replay_module.ObjectiveSet.from_search(
        {"objectives": study.user_attrs["objectives"], "thresholds": study.user_attrs["thresholds"]})


def test_a_safety_of_2_stops_only_the_hopeless_trial_and_keeps_the_front():
    study = _stage()
    trials, objectives = study.get_trials(), _objectives(study)
    assert replay_module.curve_key(stored_trials(trials), "exact") == "best_exact"
    outcome = replay_module.replay_stopping(trials, objectives, "exact", "best_exact", StopRule(safety=2.0))
    assert [(s["trial"].number, s["progress"]) for s in outcome["stopped"]] == [(5, 0.25)]  # 45 + 2 x 3.3 < 61.3 at 14M
    assert outcome["saved_s"] == pytest.approx(75.0) and outcome["train_s"] == pytest.approx(800.0)
    assert outcome["saved_steps"] == pytest.approx(150.0) and outcome["train_steps"] == pytest.approx(1600.0)
    text = replay_module.report(outcome, objectives, top_k=3)
    assert "lost none; hypervolume kept 100.0 %" in text and "(the same)" in text
    assert "| 5 | 25% | 45 | 47.3 | no | 75 |" in text


def test_seconds_are_cpu_seconds_when_every_trial_recorded_them():
    study = _stage(cpu_seconds=True)
    outcome = replay_module.replay_stopping(study.get_trials(), _objectives(study), "exact", "best_exact", StopRule(safety=2.0))
    assert outcome["clock"] == "train_cpu_seconds" and outcome["saved_s"] == pytest.approx(45.0)
    assert "training 480 CPU s in all, 45 s saved" in replay_module.report(outcome, _objectives(study), top_k=0)
    one_without = _stage(cpu_seconds=[True] * 7 + [False])  # then the wall clock, for every trial alike
    outcome = replay_module.replay_stopping(one_without.get_trials(), _objectives(study), "exact", "best_exact", StopRule(safety=2.0))
    assert outcome["clock"] == "train_seconds" and outcome["saved_s"] == pytest.approx(75.0)


def test_a_tight_rule_stops_the_late_starter_and_says_what_was_lost():
    study = _stage()
    trials, objectives = study.get_trials(), _objectives(study)
    outcome = replay_module.replay_stopping(trials, objectives, "exact", "best_exact", StopRule(safety=1.0, floor=0.0))
    assert [s["trial"].number for s in outcome["stopped"]] == [5, 7]  # 56 + 3.3 < 61.3: trial 7 looked finished
    text = replay_module.report(outcome, objectives, top_k=0)
    assert "lost [7]" in text and "hypervolume kept 100.0 %" not in text
    assert "| 7 | 25% | 56 | 63.8 | yes | 75 |" in text


def test_the_command_reads_a_table_file(tmp_path):
    study = _stage()
    path = tmp_path / "stage.json"
    write_table(path, table_of(study.get_trials(), study_fields(study)))
    assert replay_module.main(["--table", str(path), "--top-k", "3", "--safety", "2", "--out", str(tmp_path / "r.md")]) == 0
    text = (tmp_path / "r.md").read_text()
    assert "8 completed trials, 1 stopped early; training 800 wall s in all, 75 s saved (9.4 %); 1600 steps, 150 saved (9.4 %)." in text
    assert "read from the curves' 'best_exact'" in text


def test_curves_with_only_their_last_point_are_refused_with_the_reason(tmp_path):
    """A flash stage whose eval_every_steps is not below its max_steps records one point per trial."""
    study = _stage()
    trials = study.get_trials()
    for t in trials:
        t.user_attrs["curve"] = t.user_attrs["curve"][-1:]
    path = tmp_path / "stage.json"
    write_table(path, table_of(trials, study_fields(study)))
    with pytest.raises(SystemExit, match="no curve has a point before its trial's end"):
        replay_module.main(["--table", str(path)])
