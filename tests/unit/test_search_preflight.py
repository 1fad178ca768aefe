"""Before trial 0, every metric a search reads must be computable on its data; after a stage whose
every trial failed for one reason, the search stops.

The pre-flight case is the real one: the first ten articles of the SQuAD 2.0 training set, whose
validation part (the smoke preset's one article) has no unanswerable question, searched with the
flash stage ranked by ``no_answer_auc``. It used to fail every flash trial ("metric 'no_answer_auc'
is nan") and then run the later stages anyway; now it is one line, exit 2, in seconds, with no
study folder; and the fix the line names runs.
"""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import optuna
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: search_fakes
sys.path.insert(0, str(Path(__file__).resolve().parent))  # this module's trial functions; test_study_safety

from test_study_safety import config_file, one_line, search, stage_trials  # noqa: E402

import search_fakes  # noqa: E402,F401  (the trial_function paths below resolve)
from paretodistill.cli import main  # noqa: E402
from paretodistill.config import load_config  # noqa: E402
from paretodistill.errors import BAD_INPUT, FAILED, OK, ConfigError, StageFailure  # noqa: E402
from paretodistill.search.objectives import KNOWN_METRICS, METRIC_NEEDS, ObjectiveSet  # noqa: E402
from paretodistill.search.preflight import available_needs, check_metrics_computable, data_fix, why  # noqa: E402
from paretodistill.search.results import Failure, StoredTrial, common_failure  # noqa: E402
from paretodistill.search.stages import run_search  # noqa: E402
from paretodistill.search.storage import open_storage  # noqa: E402
from paretodistill.trial import TrialResult  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)
pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")

FIRST_TEN = Path(__file__).resolve().parents[3] / "shared/data/squad2/train-v2.0-first10articles.json"
AUC_FLASH = 'search.flash.objectives=["no_answer_auc:maximize", "num_parameters:minimize"]'
MIXED = {"articles": 2, "questions": 10, "answerable": 6, "unanswerable": 4}
ANSWERABLE_ONLY = {"articles": 2, "questions": 1080, "answerable": 1080, "unanswerable": 0}


# ---------------------------------------------------------------- the table
def test_every_known_metric_has_one_entry_and_every_need_is_explained():
    assert set(KNOWN_METRICS) == set(METRIC_NEEDS) and len(KNOWN_METRICS) == len(METRIC_NEEDS)
    needs = {need for wanted in METRIC_NEEDS.values() for need in wanted}
    assert needs == {"questions", "answerable", "unanswerable", "latency", "pretrained"}
    for need in needs:  # each has its reason and its fix (a KeyError here is a need without words)
        assert why(need, ANSWERABLE_ONLY) and data_fix(need).startswith("; or ")
    assert METRIC_NEEDS["no_answer_auc"] == ("answerable", "unanswerable")
    assert METRIC_NEEDS["NoAns_f1"] == ("unanswerable",) and METRIC_NEEDS["HasAns_exact"] == ("answerable",)
    assert METRIC_NEEDS["latency_ms"] == ("latency",) and METRIC_NEEDS["num_parameters"] == ()


def test_every_metric_the_official_score_and_the_signals_report_has_an_entry():
    """The keys the built-in trial's scorer really produces on a file with both kinds of questions."""
    from conftest import article, qa
    from paretodistill.data.squad import parse_squad
    from paretodistill.evaluation.inference import score_answers
    from paretodistill.evaluation.postprocess import Answers

    context = "The Normans were a people in Normandy, France."
    data = parse_squad({"version": "v2.0", "data": [article("N", context, [
        qa("q1", "Who?", [("a people", 17)]), qa("q2", "When?")])]}, "tiny", "0" * 64)
    answers = Answers(best_span={"q1": "a people", "q2": "Normandy"}, na_score={"q1": -2.0, "q2": 3.0})
    reported = set(score_answers(data, answers, threshold=None).metrics)
    reported |= {"span_f1", "no_answer_auc", "teacher_kl", "exact_over_no_answer", "num_parameters"}
    assert {"HasAns_f1", "NoAns_f1", "best_f1", "na_threshold"} <= reported
    assert reported - set(METRIC_NEEDS) == set()


# ---------------------------------------------------------------- the check, case by case
def _config(**search):
    return load_config(base={"search": {"thresholds": {}, **search}})


def _refusal(config, validation) -> str:
    with pytest.raises(ConfigError) as raised:
        check_metrics_computable(config, validation)
    return str(raised.value)


def test_the_flash_auc_without_unanswerable_questions_names_the_metric_the_reason_and_the_fix():
    config = _config(flash={"objectives": ["no_answer_auc:maximize", "num_parameters:minimize"]})
    check_metrics_computable(config, MIXED)  # both kinds: fine
    text = _refusal(config, ANSWERABLE_ONLY)
    assert text.startswith("metric 'no_answer_auc' (search.flash.objectives) cannot be computed: "
                           "the validation part (2 article(s), 1080 questions) has 0 unanswerable questions; ")
    assert """--set 'search.flash.objectives=["span_f1:maximize", "num_parameters:minimize"]'""" in text
    assert "data.split_file whose validation articles have unanswerable questions" in text


@pytest.mark.parametrize("search, validation, expected", [
    ({"thresholds": {"NoAns_f1": ">= 20", "exact": ">= 1"}}, ANSWERABLE_ONLY,
     """'NoAns_f1' (search.thresholds) cannot be computed: the validation part (2 article(s), 1080 questions) has 0 """
     """unanswerable questions; drop that threshold: --set 'search.thresholds={exact = ">= 1"}'"""),
    ({"objectives": ["HasAns_f1:maximize", "num_parameters:minimize"]},
     {"articles": 1, "questions": 5, "answerable": 0, "unanswerable": 5},
     """has 0 answerable questions; choose another metric, e.g. --set 'search.objectives=["f1:maximize", "num_parameters:minimize"]'"""),
    ({"flash": {"thresholds": {"span_f1": ">= 10"}}}, {"articles": 1, "questions": 5, "answerable": 0, "unanswerable": 5},
     "'span_f1' (search.flash.thresholds) cannot be computed"),
    ({"objectives": ["exact:maximize", "num_parameters:minimize", "latency_ms:minimize"]}, MIXED,
     """'latency_ms' (search.objectives) cannot be computed: latency is not measured ([latency] enabled = false); """
     """leave it out: --set 'search.objectives=["exact:maximize", "num_parameters:minimize"]'; or measure it: """
     "--set latency.enabled=true"),
    ({"objectives": ["pretrain_seconds:minimize"]}, MIXED, "not seeded from a pretrain-distill checkpoint"),
])
def test_each_need_is_checked_where_the_metric_is_named(search, validation, expected):
    config = _config(**search)
    if "latency_ms:minimize" in search.get("objectives", []):
        check_metrics_computable(config, validation)  # latency on (the default): fine
        config = load_config(None, ["latency.enabled=false"], base={"search": {"thresholds": {}, **search}})
    assert expected in _refusal(config, validation)


def test_a_trial_function_of_its_own_and_unread_data_are_not_judged():
    config = _config(flash={"objectives": ["no_answer_auc:maximize"]}, trial_function="search_fakes:fake_trial")
    check_metrics_computable(config, ANSWERABLE_ONLY)  # the table describes the built-in trial only
    built_in = _config(flash={"objectives": ["no_answer_auc:maximize"]})
    check_metrics_computable(built_in, None)  # counts not read: nothing refused on a guess
    assert available_needs(built_in, None) == {"latency": True, "pretrained": False}


# ---------------------------------------------------------------- the real case, through the command line
@pytest.mark.skipif(not FIRST_TEN.exists(), reason=f"{FIRST_TEN} is not there")
def test_no_unanswerable_validation_is_refused_in_seconds_then_the_named_fix_runs(tmp_path, capsys, teacher_dir, cache_dir,
                                                                                 one_torch_thread):
    study = tmp_path / "s"
    common = ["search", "--preset", "smoke", "--data", str(FIRST_TEN), "--teacher", str(teacher_dir),
              "--cache-dir", str(cache_dir), "--study", str(study),
              "--set", "search.flash.n_trials=1", "--set", "search.regular.top_k=0",  # one trial: a busy 2-core machine
              "--set", "student.importance_windows=16", "--set", "data.max_train_questions=64"]
    started = time.monotonic()
    code = main([*common, "--set", AUC_FLASH])
    seconds = time.monotonic() - started
    err = capsys.readouterr().err
    assert code == BAD_INPUT and one_line(err), err
    assert "metric 'no_answer_auc' (search.flash.objectives) cannot be computed: the validation part " \
           "(1 article(s), 327 questions) has 0 unanswerable questions" in err
    assert seconds < 15, f"the refusal took {seconds:.1f} s"
    assert not study.exists()  # no folder, no study.db, no trial

    fix = re.search(r"--set '([^']+)'", err).group(1)
    assert fix == 'search.flash.objectives=["span_f1:maximize", "num_parameters:minimize"]'
    assert main([*common, "--set", fix]) == OK, capsys.readouterr().err
    pareto = json.loads((study / "pareto.json").read_text())
    assert pareto["counts"]["flash"]["complete"] == 1 and pareto["frontier_stage"] == "flash"
    for trial in stage_trials(study):
        assert 0.0 <= trial.user_attrs["metrics"]["span_f1"] <= 100.0
        assert set(trial.user_attrs["metrics"]) - set(METRIC_NEEDS) == set()  # the table covers a real trial


# ---------------------------------------------------------------- a stage that failed for one reason
def same_reason_trial(config, params, *, trial_dir=None, evaluate_test=False, log=print) -> TrialResult:
    """Every trial fails as the no-AUC search's did (the step differs: the same reason all the same)."""
    return TrialResult.failed(params, "error", f"the trial returned no usable objective: metric 'no_answer_auc' is "
                              f"nan, not a finite number (at step {int(1e3 * params['learning_rate'])})")


def full_budget_fails_trial(config, params, *, trial_dir=None, evaluate_test=False, log=print) -> TrialResult:
    """Fine on the flash budget, out of memory on the full one (no max_steps)."""
    if config.training.max_steps is None:
        return TrialResult.failed(params, "out_of_memory", "CUDA out of memory. Tried to allocate 2.00 GiB", step=1)
    return search_fakes.fake_trial(config, params, trial_dir=trial_dir, evaluate_test=evaluate_test, log=log)


def mixed_failures_trial(config, params, *, trial_dir=None, evaluate_test=False, log=print) -> TrialResult:
    kind = "out_of_memory" if params["num_layers"] % 2 else "diverged"
    return TrialResult.failed(params, kind, f"fake {kind}")


def _stopping_config(trial: str, **extra):
    search = {"name": "t", "sampler": "random", "seed": 1, "backend": "inline", "trial_function": f"test_search_preflight:{trial}",
              "thresholds": {}, "space": {"num_layers": {"type": "int", "low": 1, "high": 8},
                                          "learning_rate": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True}},
              "flash": {"n_trials": 4, "budget": {"training.max_steps": 10}}, "regular": {"top_k": 2},
              "baseline": {"num_layers": 1}, **extra}
    return load_config(base={"search": search})


def _study_names(study: Path) -> list[str]:
    return sorted(s.study_name for s in open_storage(f"sqlite:///{study / 'study.db'}").get_all_studies())


def test_a_flash_stage_that_failed_for_one_reason_stops_the_search_before_the_regular_stage(tmp_path):
    with pytest.raises(StageFailure) as raised:
        run_search(_stopping_config("same_reason_trial"), tmp_path / "s", log=lambda m: None)
    text = str(raised.value)
    assert text.startswith("every flash trial failed (error 4), all for one reason: the trial returned no usable "
                           "objective: metric 'no_answer_auc' is nan, not a finite number (at step ")
    assert "the search stopped before the regular stage" in text and str(tmp_path / "s") in text
    assert _study_names(tmp_path / "s") == ["t-flash"]  # no regular, no baseline stage
    assert not (tmp_path / "s" / "pareto.json").exists()


def test_the_command_line_ends_such_a_stage_with_one_line_and_status_one(tmp_path, capsys):
    config = config_file(tmp_path, trial="same_reason_trial", n_trials=3)
    config.write_text(config.read_text().replace("search_fakes:same_reason_trial", "test_search_preflight:same_reason_trial"))
    code, _, err = search(capsys, config, tmp_path / "s")
    assert code == FAILED and one_line(err) and "every flash trial failed (error 3), all for one reason" in err
    code, _, err = search(capsys, config, tmp_path / "s")  # the same command again: the same line, nothing run
    assert code == FAILED and "every flash trial failed (error 3)" in err and len(stage_trials(tmp_path / "s")) == 3


def test_a_regular_stage_that_failed_for_one_reason_stops_before_the_baseline(tmp_path):
    with pytest.raises(StageFailure, match=r"every regular trial failed \(out_of_memory 2\), all for one reason: CUDA out "
                                           r"of memory. Tried to allocate 2.00 GiB; the search stopped before the baseline"):
        run_search(_stopping_config("full_budget_fails_trial"), tmp_path / "s", log=lambda m: None)
    assert _study_names(tmp_path / "s") == ["t-flash", "t-regular"]


def test_failures_for_different_reasons_do_not_stop_the_search(tmp_path):
    pareto = run_search(_stopping_config("mixed_failures_trial", seed=3), tmp_path / "s", log=lambda m: None)
    kinds = pareto["counts"]["flash"]["failed_kinds"]
    assert set(kinds) == {"out_of_memory", "diverged"} and sum(kinds.values()) == 4
    assert pareto["baseline"]["status"] == "failed"  # the later stages ran, as before


def _trial(number, state, kind=None, reason=None, metrics=None):
    from optuna.trial import TrialState

    return StoredTrial(number, getattr(TrialState, state), {"x": number}, metrics=metrics or {},
                       values=(1.0,) if state == "COMPLETE" else None, objective_values=(1.0,) if state == "COMPLETE" else None,
                       failure=Failure(kind, reason) if kind else None)


def test_common_failure_is_one_kind_and_one_reason_numbers_aside():
    objectives = ObjectiveSet.parse(["exact:maximize"], {})
    oom = [_trial(0, "FAIL", "out_of_memory", "CUDA out of memory. Tried to allocate 20.00 MiB\ntrace"),
           _trial(1, "FAIL", "out_of_memory", "CUDA out of memory. Tried to allocate 384.50 MiB")]
    count, failure = common_failure(oom, objectives)
    assert count == 2 and failure.kind == "out_of_memory"
    assert common_failure([*oom, _trial(2, "COMPLETE", metrics={"exact": 5.0})], objectives) is None
    assert common_failure([*oom, _trial(2, "FAIL", "diverged", "CUDA out of memory. Tried")], objectives) is None
    assert common_failure([*oom, _trial(2, "FAIL", "out_of_memory", "host memory exhausted")], objectives) is None
    interrupted = _trial(3, "FAIL", "interrupted", "interrupted: Ctrl-C")
    assert common_failure([*oom, interrupted], objectives)[0] == 2  # not finished: not counted
    assert common_failure([interrupted], objectives) is None and common_failure([], objectives) is None
    assert common_failure([_trial(4, "PRUNED")], objectives) is None  # stopped early is no failure of the settings


def test_the_study_is_kept_as_it_was_for_status(tmp_path, capsys):
    with pytest.raises(StageFailure):
        run_search(_stopping_config("same_reason_trial"), tmp_path / "s", log=lambda m: None)
    assert main(["status", str(tmp_path / "s")]) == OK
    out = capsys.readouterr().out
    assert "flash    4 trials: 0 complete, 0 running, 4 failed (error 4)" in out and "regular  not started" in out
