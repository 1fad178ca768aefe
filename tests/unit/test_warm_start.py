"""A search warm-started from an earlier study: its first flash trials are the old frontier, then
the old best trials; what does not fit the new space is skipped and counted; a rerun enqueues
nothing twice; another warm start for a study under way, and a missing or damaged old study, are refused."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: search_fakes
sys.path.insert(0, str(Path(__file__).resolve().parent))  # test_study_safety

from test_study_safety import config_file, one_line, search  # noqa: E402

import search_fakes  # noqa: E402,F401  (the trial_function paths below resolve)
from paretodistill.config import load_config  # noqa: E402
from paretodistill.errors import BAD_INPUT, OK, StudyError  # noqa: E402
from paretodistill.search.domain import student_key  # noqa: E402
from paretodistill.search.stages import run_search  # noqa: E402
from paretodistill.search.status import study_status  # noqa: E402
from paretodistill.search.storage import open_storage  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)
pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")

SPACE = {
    "num_layers": {"type": "int", "low": 1, "high": 8},
    "learning_rate": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True},
    "temperature": {"type": "float", "low": 1.0, "high": 8.0},
}


def _config(**extra):
    search = {"name": "t", "sampler": "tpe", "seed": 1, "n_startup_trials": 4, "backend": "inline",
              "trial_function": "search_fakes:fake_trial", "thresholds": {}, "space": SPACE,
              "flash": {"n_trials": 8, "budget": {"training.max_steps": 10}}, "regular": {"top_k": 3}, **extra}
    return load_config(base={"search": search})


def _trials(study: Path, stage: str = "flash") -> list:
    storage = open_storage(f"sqlite:///{study / 'study.db'}")
    return sorted(optuna.load_study(study_name=f"t-{stage}", storage=storage).get_trials(), key=lambda t: t.number)


def _expected_queue(old: Path, pareto: dict, size: int) -> list[dict]:
    """The old frontier, then the other completed students, regular first, by exact (the fakes have no thresholds)."""
    queue = [entry["params"] for entry in pareto["frontier"]]
    for stage in ("regular", "flash"):
        complete = [t for t in _trials(old, stage) if t.state == TrialState.COMPLETE]
        queue += [t.params for t in sorted(complete, key=lambda t: (-t.values[0], t.number))]
    unique, seen = [], set()
    for params in queue:
        if student_key(params) not in seen:
            seen.add(student_key(params))
            unique.append(params)
    return unique[: max(size, len(pareto["frontier"]))]


@pytest.fixture(scope="module")
def old_study(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("old") / "a"
    return folder, run_search(_config(), folder, log=lambda m: None)


def test_the_first_trials_of_a_warm_started_search_are_the_old_frontier_then_its_best(tmp_path, old_study):
    old, pareto = old_study
    assert pareto["frontier_stage"] == "regular" and pareto["frontier"]
    lines: list[str] = []
    new = tmp_path / "b"
    run_search(_config(seed=7, flash={"n_trials": 6, "budget": {"training.max_steps": 20}}, warm_start=str(old)),
               new, log=lines.append)
    expected = _expected_queue(old, pareto, size=4)
    assert len(expected) == 4
    trials = _trials(new)
    assert [t.params for t in trials[: len(pareto["frontier"])]] == [e["params"] for e in pareto["frontier"]]
    assert [t.params for t in trials[:4]] == expected
    assert all(t.user_attrs["warm_start"]["stage"] in ("regular", "flash") for t in trials[:4])
    assert not any("warm_start" in t.user_attrs for t in trials[4:])  # then the sampler's own
    assert all(t.state == TrialState.COMPLETE for t in trials) and len(trials) == 6
    assert optuna.load_study(study_name="t-flash", storage=open_storage(f"sqlite:///{new / 'study.db'}")).user_attrs[
        "config"]["training"]["max_steps"] == 20
    record = optuna.load_study(study_name="t-flash", storage=open_storage(f"sqlite:///{new / 'study.db'}")).user_attrs[
        "warm_start"]
    assert record["from"] == str(old) and record["skipped"] == 0 and len(record["trials"]) == 4
    assert any(f"warm start from {old}: 4 trial(s)" in line and "(4 enqueued now), 0 skipped" in line for line in lines)
    assert f"warm start from {old}: 4 trial(s) enqueued, 0 skipped" in study_status(new)


def test_trials_outside_the_new_space_are_skipped_and_counted(tmp_path, old_study):
    old, pareto = old_study
    narrow = {**SPACE, "num_layers": {"type": "int", "low": 1, "high": 4}}
    students = {student_key(t.params): t.params for stage in ("regular", "flash") for t in _trials(old, stage)
                if t.state == TrialState.COMPLETE}
    outside = sum(1 for params in students.values() if params["num_layers"] > 4)
    assert 0 < outside < len(students)
    lines: list[str] = []
    run_search(_config(space=narrow, flash={"n_trials": 4, "budget": {"training.max_steps": 10}}, warm_start=str(old)),
               tmp_path / "b", log=lines.append)
    warm = [t for t in _trials(tmp_path / "b") if "warm_start" in t.user_attrs]
    assert warm and all(t.params["num_layers"] <= 4 for t in warm)
    assert any(f"{outside} skipped (parameters outside this space)" in line for line in lines)

    other_names = {**SPACE, "hidden_dropout": {"type": "float", "low": 0.0, "high": 0.3}}
    lines.clear()
    run_search(_config(space=other_names, flash={"n_trials": 2, "budget": {"training.max_steps": 10}}, warm_start=str(old)),
               tmp_path / "c", log=lines.append)
    assert not any("warm_start" in t.user_attrs for t in _trials(tmp_path / "c"))
    assert any(f"0 trial(s) of its frontier and best first (0 enqueued now), {len(students)} skipped" in line
               for line in lines)


def test_a_rerun_enqueues_nothing_twice_and_another_warm_start_is_refused(tmp_path, old_study):
    old, _ = old_study
    new = tmp_path / "b"
    first = _config(flash={"n_trials": 5, "budget": {"training.max_steps": 10}}, warm_start=str(old))
    run_search(first, new, log=lambda m: None)
    warm_numbers = [t.number for t in _trials(new) if "warm_start" in t.user_attrs]
    assert len(warm_numbers) == 4

    more = _config(flash={"n_trials": 7, "budget": {"training.max_steps": 10}}, warm_start=str(old))
    run_search(more, new, log=lambda m: None)  # the same warm start, more trials: nothing enqueued again
    trials = _trials(new)
    assert [t.number for t in trials if "warm_start" in t.user_attrs] == warm_numbers
    assert len(trials) == 7 and not [t for t in trials if t.state == TrialState.WAITING]
    run_search(_config(flash={"n_trials": 7, "budget": {"training.max_steps": 10}}), new, log=lambda m: None)  # without: fine

    other = tmp_path / "other"
    run_search(_config(seed=5, flash={"n_trials": 3, "budget": {"training.max_steps": 10}}, regular={"top_k": 0}),
               other, log=lambda m: None)
    with pytest.raises(StudyError, match=f"this study was warm-started from {old} with other trials"):
        run_search(_config(flash={"n_trials": 7, "budget": {"training.max_steps": 10}}, warm_start=str(other)), new,
                   log=lambda m: None)
    with pytest.raises(StudyError, match="was started without a warm start and has trials already"):
        run_search(_config(seed=5, flash={"n_trials": 4, "budget": {"training.max_steps": 10}}, regular={"top_k": 0},
                           warm_start=str(old)), other, log=lambda m: None)
    assert len(_trials(new)) == 7 and len(_trials(other)) == 3  # refused: nothing added


@pytest.mark.parametrize("case, message", [
    ("missing", "no such study folder"),
    ("empty", "not a study folder written by paretodistill search"),
    ("damaged", "cannot read the study database"),
    ("itself", "this search's own --study folder"),
])
def test_a_missing_or_damaged_old_study_is_one_line_and_status_two(tmp_path, capsys, old_study, case, message):
    old = tmp_path / "old"
    if case == "empty":
        old.mkdir()
    if case == "damaged":
        old.mkdir()
        (old / "search.json").write_text(json.dumps({"name": "t", "storage": None}))
        (old / "study.db").write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 16)
    new = tmp_path / "new"
    code, _, err = search(capsys, config_file(tmp_path), new, "--warm-start", new if case == "itself" else old)
    assert code == BAD_INPUT and one_line(err) and message in err, err
    assert not new.exists()  # refused before the study folder was made


def test_the_command_line_flag_warm_starts(tmp_path, capsys, old_study):
    old, pareto = old_study
    code, _, err = search(capsys, config_file(tmp_path, n_trials=3, top_k=0), tmp_path / "b",
                          "--warm-start", old)
    assert code == OK, err
    # config_file's space has no temperature: every old student has other parameter names
    record = optuna.load_study(study_name="t-flash", storage=open_storage(f"sqlite:///{tmp_path / 'b' / 'study.db'}")
                               ).user_attrs["warm_start"]
    assert record["trials"] == [] and record["skipped"] > 0
