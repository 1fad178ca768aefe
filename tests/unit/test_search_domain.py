"""The search's domain model, and the two questions the search and the report used to answer differently.

Both ``pareto.json`` (:func:`search.pareto.build_pareto`) and the report (:func:`report.frontier.load_study_dir`)
read the same study here; each decision is pinned by a test that checks both agree.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import optuna
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/report_fixtures.py
import report_fixtures as fx  # noqa: E402
from paretodistill.report.frontier import flash_regular_correlation, load_study_dir  # noqa: E402
from paretodistill.search.domain import (  # noqa: E402
    frontier_stage,
    pair_flash_regular,
    recorded_storage_url,
    search_prefixes,
    spearman,
    stage_study_name,
    storage_url,
    student_key,
)
from paretodistill.search.objectives import ObjectiveSet  # noqa: E402
from paretodistill.search.pareto import build_pareto  # noqa: E402


@dataclass
class Item:
    number: int
    params: dict = field(default_factory=dict)


def pareto_of(directory: Path) -> dict:
    objectives = ObjectiveSet.from_search({"objectives": fx.OBJECTIVES_2D, "thresholds": fx.THRESHOLDS})
    url = storage_url(directory)
    storage = optuna.storages.RDBStorage(url)
    return build_pareto(storage, "study", objectives, objectives, [], {}, url)


# ---------------------------------------------------------------- names and places
def test_names_and_storage(tmp_path):
    assert stage_study_name("s", "flash") == "s-flash"
    assert search_prefixes(["a-flash", "a-regular", "b-baseline", "other", "c-x"]) == ["a", "b"]
    assert storage_url(tmp_path, "postgresql://u:p@h/db") == "postgresql://u:p@h/db"
    assert storage_url(tmp_path) == f"sqlite:///{tmp_path.resolve() / 'study.db'}"
    assert recorded_storage_url(tmp_path) is None
    (tmp_path / "search.json").write_text('{"name": "s", "storage": "postgresql://***@h/db"}')
    assert recorded_storage_url(tmp_path) is None  # a redacted URL cannot be opened
    (tmp_path / "study.db").write_text("")
    assert recorded_storage_url(tmp_path) == storage_url(tmp_path)


def test_student_key_ignores_budget_parameters():
    assert student_key({"a": 1, "epochs": 3, "max_steps": 10}) == student_key({"eval_every_steps": 5, "a": 1})
    assert student_key({"a": 1, "max_windows": 160}) == student_key({"a": 1, "max_windows": 640})
    assert student_key({"a": 1}) != student_key({"a": 2})


def test_spearman():
    assert spearman([1, 2, 3, 4], [10, 30, 20, 40]) == pytest.approx(0.8)
    assert spearman([1, 2], [1, 2]) is None
    assert spearman([1, 2, 3], [5, 5, 5]) is None


# ---------------------------------------------------------------- decision (a): which frontier is the result
def test_frontier_stage_is_regular_once_a_regular_trial_is_feasible():
    assert frontier_stage({"flash": 3, "regular": 1}, {"flash": 5, "regular": 2}) == "regular"
    assert frontier_stage({"flash": 3, "regular": 0}, {"flash": 5, "regular": 2}) == "flash"
    assert frontier_stage({"flash": 0, "regular": 0}, {"flash": 5, "regular": 2}) == "regular"  # empty either way
    assert frontier_stage({}, {}) == "flash"


def test_pareto_json_and_report_take_the_same_frontier_stage(tmp_path):
    flash_frontier = [0, 1, 3, 7, 9]
    infeasible = [fx.FakeTrial(45.0, 8 * fx.M, params=fx.params_for(i)) for i in (0, 1)]  # exact < 50
    fx.write_study(tmp_path / "a", fx.HAND_FLASH, infeasible, pareto=False)
    pareto, data = pareto_of(tmp_path / "a"), load_study_dir(tmp_path / "a")
    assert pareto["frontier_stage"] == data.final_stage == "flash"  # pareto.json used to say regular (empty)
    assert [e["trial_number"] for e in pareto["frontier"]] == sorted(flash_frontier, key=lambda n: -fx.HAND_FLASH[n].exact)

    one_feasible = [*infeasible, fx.FakeTrial(60.0, 9 * fx.M, params=fx.params_for(3))]
    fx.write_study(tmp_path / "b", fx.HAND_FLASH, one_feasible, pareto=False)
    pareto, data = pareto_of(tmp_path / "b"), load_study_dir(tmp_path / "b")
    assert pareto["frontier_stage"] == data.final_stage == "regular"
    assert [e["trial_number"] for e in pareto["frontier"]] == [2]


def test_an_interrupted_trial_is_not_finished_for_pareto_json_nor_the_report(tmp_path):
    """Every trial infeasible, and the regular stage's only trial interrupted: it will be run again, so the
    regular stage finished nothing and both name the flash stage (the report used to count it as failed)."""
    infeasible = [fx.FakeTrial(45.0, 8 * fx.M, params=fx.params_for(i)) for i in range(3)]  # exact < 50
    interrupted = [fx.FakeTrial(state="FAIL", params=fx.params_for(0), failure_kind="interrupted",
                                failure_reason="interrupted: the search was stopped")]
    fx.write_study(tmp_path, infeasible, interrupted, pareto=False)
    pareto, data = pareto_of(tmp_path), load_study_dir(tmp_path)
    assert pareto["frontier_stage"] == data.final_stage == "flash"
    assert pareto["frontier"] == [] and pareto["counts"]["regular"]["interrupted"] == 1
    assert [r.category for r in data.records("regular")] == ["interrupted"]
    assert {r.category for r in data.records("flash")} == {"below_threshold"}


# ---------------------------------------------------------------- decision (b): flash against regular
def test_pairs_are_one_parameter_key_completed_in_both_stages():
    flash = [Item(0, {"a": 1, "epochs": 1}), Item(1, {"a": 2}), Item(2, {"a": 1})]  # 2 repeats 0's key
    regular = [Item(5, {"a": 2}), Item(3, {"a": 1, "epochs": 9}), Item(4, {"a": 1}), Item(6, {"a": 7})]
    assert [(f.number, r.number) for f, r in pair_flash_regular(flash, regular)] == [(0, 3), (1, 5)]


def test_pareto_json_and_report_pair_and_correlate_alike(tmp_path):
    exacts = {0: 71.0, 1: 66.5, 3: 75.0, 7: 52.0}
    regular = [fx.FakeTrial(exact, fx.HAND_FLASH[n].size, params=fx.params_for(n), extra_attrs={"flash_trial": n})
               for n, exact in exacts.items()]
    # names flash trial 2 but re-ran trial 9's parameters: paired with 9 (the same student), not 2
    regular.append(fx.FakeTrial(64.0, 10 * fx.M, params=fx.params_for(9), extra_attrs={"flash_trial": 2}))
    regular.append(fx.FakeTrial(state="FAIL", params=fx.params_for(1), failure_kind="out_of_memory"))
    fx.write_study(tmp_path, fx.HAND_FLASH, regular, pareto=False)
    pareto, data = pareto_of(tmp_path), load_study_dir(tmp_path)
    metric, pairs, rho = flash_regular_correlation(data)
    assert metric == pareto["spearman_metric"] == "exact"
    assert [(f.number, r.number) for f, r in pairs] == [(0, 0), (1, 1), (3, 2), (7, 3), (9, 4)]
    assert [(row["flash_trial"], row["regular_trial"]) for row in pareto["flash_regular_pairs"]] == \
        [(f.number, r.number) for f, r in pairs]
    assert rho is not None and pareto["flash_regular_spearman"] == pytest.approx(rho, abs=1e-6)
