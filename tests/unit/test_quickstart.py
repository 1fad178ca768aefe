"""The main job's choice of teacher: the shipped one by default, a given one, or a quick one trained here."""

from __future__ import annotations

import pytest

from paretodistill.cli import main
from paretodistill.errors import ModelMismatchError
from paretodistill.recipes import shipped_teacher


def test_teacher_and_train_teacher_exclude_each_other(tmp_path, capsys):
    assert main(["quickstart", "--teacher", str(tmp_path), "--train-teacher", "--out", str(tmp_path / "q")]) == 2
    assert "exclude each other" in capsys.readouterr().err


def test_a_missing_shipped_teacher_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(shipped_teacher, "REPOSITORY", tmp_path)
    with pytest.raises(ModelMismatchError, match="--train-teacher"):
        shipped_teacher.shipped_teacher_dir()


def test_the_shipped_teacher_is_found_in_the_checkout():
    folder = shipped_teacher.shipped_teacher_dir()
    assert folder.name == shipped_teacher.SHIPPED_TEACHER_NAME and (folder / "config.json").exists()


def test_the_quick_search_is_a_valid_config_that_ranks_flash_students_by_span_f1():
    import json

    from paretodistill.config import load_config
    from paretodistill.recipes.quickstart import QUICK_SEARCH

    teacher = json.dumps(str(shipped_teacher.shipped_teacher_dir()))
    config = load_config(None, [f"teacher.path={teacher}"], base=QUICK_SEARCH)
    search = config.search
    assert search.flash.objectives == ("span_f1:maximize", "num_parameters:minimize")
    assert search.objectives[0] == "exact:maximize"  # the frontier stays on the user's objectives
    assert search.regular.budget["training.max_steps"] > search.flash.budget["training.max_steps"]
    assert config.training.train_batch_size == 8


def test_the_quickstart_toml_gives_exactly_the_settings_of_the_old_dict():
    """Moving the quick search from a dict in recipes/quickstart.py to configs/quickstart.toml changed nothing."""
    from pathlib import Path

    from paretodistill.config import load_config
    from paretodistill.recipes.quickstart import QUICK_SEARCH

    flags = ['teacher.path="/t"', 'data.split_file="/d.json"']
    toml = Path(__file__).resolve().parents[2] / "configs" / "quickstart.toml"
    assert load_config(toml, flags).to_dict() == load_config(None, flags, base=QUICK_SEARCH).to_dict()
