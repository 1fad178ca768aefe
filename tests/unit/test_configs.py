"""Every config file the project ships loads and validates with the current code.

User configs live in ``configs/``, the benchmarks' experiment configs in ``benchmarks/configs/``. A
config that was moved, renamed or left behind by a change of the settings fails here, not in a user's
search an hour in.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from paretodistill.config import load_config
from paretodistill.recipes.shipped_teacher import shipped_teacher_dir
from paretodistill.search.plan import plan_search

REPO = Path(__file__).resolve().parents[2]
USER_CONFIGS = REPO / "configs"
EXPERIMENT_CONFIGS = REPO / "benchmarks" / "configs"
ALL_CONFIGS = sorted([*USER_CONFIGS.glob("*.toml"), *EXPERIMENT_CONFIGS.glob("*.toml")])


def _name(path: Path) -> str:
    return str(path.relative_to(REPO))


def test_the_configs_are_where_their_users_look():
    assert {p.stem for p in USER_CONFIGS.glob("*.toml")} == {
        "search-cpu", "search-gpu", "search-small", "search-sigopt", "search-autodistill", "distill-baseline", "quickstart"}
    assert {"ablation", "table-grid", "table-grid-v2", "table-template"} <= {p.stem for p in EXPERIMENT_CONFIGS.glob("*.toml")}


def _planned(path: Path):
    return pytest.param(path, id=_name(path))


@pytest.mark.parametrize("path", [_planned(p) for p in ALL_CONFIGS])
def test_every_shipped_config_loads_and_plans(path):
    """Typed loading (unknown keys, wrong types), then for a search the whole checked plan: objectives,
    thresholds, the space resolved against the shipped teacher, the stage budgets and the baseline."""
    config = load_config(path, [f'teacher.path="{shipped_teacher_dir()}"'])
    if "search" in tomllib.loads(path.read_text(encoding="utf-8")):
        warnings: list[str] = []
        plan = plan_search(config, config.search, log=warnings.append, teacher_folder=str(shipped_teacher_dir()))
        assert plan.space.names
        assert not [w for w in warnings if "not a metric" in w], warnings  # a misspelt objective


@pytest.mark.parametrize("path", ALL_CONFIGS, ids=_name)
def test_config_headers_say_what_the_config_is_for_not_who_made_it(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# "), "a config opens with a comment saying what it is for"
    comments = [line.split("#", 1)[1] for line in lines if "#" in line]
    stale = [c for c in comments if re.search(r"\b(issues?|sessions?)\b", c, re.IGNORECASE)]
    assert not stale, f"{_name(path)}: comments cite issues or sessions: {stale}"


def test_the_default_objectives_and_thresholds_are_the_typed_settings_defaults():
    """One definition (paretodistill.config): the typed settings, the objective parser and the report agree."""
    from paretodistill.config import DEFAULT_OBJECTIVES, DEFAULT_THRESHOLDS, SearchSettings
    from paretodistill.report.frontier import parse_objectives
    from paretodistill.search.objectives import ObjectiveSet

    settings = SearchSettings()
    assert settings.objectives == DEFAULT_OBJECTIVES and settings.thresholds == DEFAULT_THRESHOLDS
    assert settings.thresholds is not DEFAULT_THRESHOLDS  # a config's table is its own
    parsed = ObjectiveSet.from_search({})
    assert parsed == ObjectiveSet.parse(settings.objectives, settings.thresholds)
    assert [str(o) for o in parse_objectives(None)] == list(DEFAULT_OBJECTIVES)
