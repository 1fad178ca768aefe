"""A study whose every trial failed on a fixed setting, then the fix: the refusal names the command.

The study's identity refuses a rerun with other fixed settings (its trials would not compare). A
study with no result at all is still not reused: its failed trials count toward the budget and
steer the sampler away, and an interrupted trial's folder holds training state that a new trial of
the same number would resume. So the refusal says nothing is lost and names the one command that
runs the fix: the same command with a new, unused ``--study`` folder. That command then runs the
full budget.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # this module's trial function; test_study_safety

from test_study_safety import config_file, finished, one_line, search, stage_trials  # noqa: E402

from paretodistill.config import with_parameters  # noqa: E402
from paretodistill.errors import BAD_INPUT, FAILED, OK  # noqa: E402
from paretodistill.trial import TrialResult  # noqa: E402

BROKEN_TEMPERATURE = 2.0  # the default: every trial of a first search fails on it


def temperature_trial(config, params, *, trial_dir=None, evaluate_test=False, log=print) -> TrialResult:
    """Fails (as run_trial reports an error) while ``distillation.temperature`` is the broken value."""
    import search_fakes

    if with_parameters(config, params).distillation.temperature == BROKEN_TEMPERATURE:
        return TrialResult.failed(params, "error", f"fake: temperature {BROKEN_TEMPERATURE} breaks the loss")
    return search_fakes.fake_trial(config, params, trial_dir=trial_dir, evaluate_test=evaluate_test, log=log)


def test_after_every_trial_failed_the_refusal_names_the_command_that_runs_the_fix(tmp_path, capsys):
    config, study = config_file(tmp_path), tmp_path / "s"
    trial = ("--set", 'search.trial_function="test_study_identity:temperature_trial"')
    code, _, err = search(capsys, config, study, *trial)
    assert code == FAILED and "every flash trial failed (error 3)" in err
    assert "temperature 2.0 breaks the loss" in (study / "trials" / "flash-0" / "result.json").read_text()
    assert finished(stage_trials(study)) == 3

    (tmp_path / "s-2").mkdir()  # taken: the command names the next free folder
    code, _, err = search(capsys, config, study, *trial, "--set", "distillation.temperature=4")
    assert code == BAD_INPUT and one_line(err)
    assert "fixed.distillation.temperature: 2.0 -> 4" in err
    assert "None of its 3 trial(s) finished with a result" in err and "nothing is lost" in err
    named = f"--study {tmp_path / 's-3'}"
    assert err.rstrip().endswith(named)
    assert finished(stage_trials(study)) == 3  # the study as it was

    code, _, err = search(capsys, config, tmp_path / "s-3", *trial, "--set", "distillation.temperature=4")
    assert code == OK, err
    assert finished(stage_trials(tmp_path / "s-3")) == 3
    assert all(t.state.name == "COMPLETE" for t in stage_trials(tmp_path / "s-3"))


def test_a_study_with_results_is_refused_with_the_same_command(tmp_path, capsys):
    config = config_file(tmp_path)
    study = tmp_path / "s"
    assert search(capsys, config, study)[0] == OK
    code, _, err = search(capsys, config, study, "--set", "distillation.temperature=4")
    assert code == BAD_INPUT and one_line(err)
    assert "None of its" not in err  # it has results: restoring the settings is the other way
    assert f"new --study folder: the same command with --study {tmp_path / 's-2'}" in err


def test_a_setting_added_after_the_study_started_is_no_difference_at_its_default():
    from paretodistill.search.identity import differences

    recorded = {"fixed": {"distillation": {"soft_weight": 0.5}}}
    at_default = {"fixed": {"distillation": {"soft_weight": 0.5, "margin_weight": 0.0, "no_answer_weight": 1.0}}}
    assert differences(recorded, at_default) == []
    changed = {"fixed": {"distillation": {"soft_weight": 0.5, "margin_weight": 0.5, "no_answer_weight": 1.0}}}
    assert differences(recorded, changed) == ["fixed.distillation.margin_weight: null -> 0.5"]
    assert differences(at_default, recorded) == [  # a setting this run lacks is a difference
        "fixed.distillation.margin_weight: 0.0 -> null", "fixed.distillation.no_answer_weight: 1.0 -> null"]
