"""Every fixed setting is checked when the config is loaded, against one table of rules.

A NaN temperature, a negative learning rate, ``max_steps = -5``, batch 0, ``threads = -4`` or
fractions that do not add up used to load, and every trial of a search then failed on them. Now
each is one line naming the dotted key, the value and the rule, exit 2, before anything is spent;
the same rules hold for a command's flags (``paretodistill teacher``), a stage's budget and a
searched parameter's bounds or fixed value (``search.space``).
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
import typing
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # test_study_safety's helpers

from test_study_safety import config_file, one_line, search  # noqa: E402

import paretodistill.config as config_module  # noqa: E402
from paretodistill.cli import main  # noqa: E402
from paretodistill.config import (  # noqa: E402
    Checked,
    ExperimentConfig,
    TrainSettings,
    load_config,
    rule_of,
)
from paretodistill.errors import BAD_INPUT, ConfigError  # noqa: E402
from paretodistill.recipes.teacher import TeacherRecipe  # noqa: E402
from paretodistill.search.space import parse_param  # noqa: E402


@pytest.mark.parametrize("override, message", [
    ("distillation.temperature=nan", "distillation.temperature: expected a number > 0, got nan"),
    ("distillation.temperature=0", "distillation.temperature: expected a number > 0, got 0.0"),
    ("training.learning_rate=-1e-4", "training.learning_rate: expected a number > 0, got -0.0001"),
    ("training.learning_rate=inf", "training.learning_rate: expected a number > 0, got inf"),
    ("training.max_steps=-5", "training.max_steps: expected an integer >= 1, got -5"),
    ("training.train_batch_size=0", "training.train_batch_size: expected an integer >= 1, got 0"),
    ("training.beta2=1.0", "training.beta2: expected a number in [0, 1), got 1.0"),
    ("training.epsilon=0", "training.epsilon: expected a number > 0, got 0.0"),
    ("training.weight_decay=-0.01", "training.weight_decay: expected a number >= 0, got -0.01"),
    ("training.warmup_ratio=1", "training.warmup_ratio: expected a number in [0, 1), got 1.0"),
    ("threads=-4", "threads: expected an integer >= 1, got -4"),
    ("latency.threads=0", "latency.threads: expected an integer >= 1, got 0"),
    ("data.fractions=[0.5, 0.2, 0.2]", "data.fractions: expected train, validation and test shares summing to 1, "
                                       "got [0.5, 0.2, 0.2] (sum 0.9)"),
    ("data.fractions=[0.6, 0.6, -0.2]", "data.fractions[2]: expected a number in [0, 1], got -0.2"),
    ("data.hard_unanswerable_fraction=1.5", "data.hard_unanswerable_fraction: expected a number in [0, 1], got 1.5"),
    ("student.hidden_dropout=1.0", "student.hidden_dropout: expected a number in [0, 1), got 1.0"),
    ("student.num_layers=0", "student.num_layers: expected an integer >= 1, got 0"),
    ("distillation.soft_weight=-1", "distillation.soft_weight: expected a number >= 0, got -1.0"),
    ("pretrain.mask_probability=0", "pretrain.mask_probability: expected a number in (0, 1), got 0.0"),
    ("pretrain.training.learning_rate=0", "pretrain.training.learning_rate: expected a number > 0, got 0.0"),
    ("search.workers=0", "search.workers: expected an integer >= 1, got 0"),
    ("search.ray.num_gpus=-1", "search.ray.num_gpus: expected a number >= 0, got -1.0"),
    ("search.flash.early_stop={safety = nan}", "search.flash.early_stop.safety: expected a number >= 0, got nan"),
    ("data.features.doc_stride=400", "data.features.doc_stride: must be smaller than the context room"),
])
def test_each_kind_of_bad_value_is_one_line_naming_the_key_the_value_and_the_rule(override, message):
    with pytest.raises(ConfigError) as raised:
        load_config(None, [override])
    text = str(raised.value)
    assert text.startswith(message) and "\n" not in text
    assert ";" not in text.replace(message, "")  # this one problem, no other


def test_several_bad_values_are_named_together():
    with pytest.raises(ConfigError) as raised:
        load_config(None, ["training.learning_rate=-1", "training.max_steps=0", "distillation.temperature=nan"])
    assert str(raised.value).split("; ") == [
        "training.learning_rate: expected a number > 0, got -1.0",
        "training.max_steps: expected an integer >= 1, got 0",
        "distillation.temperature: expected a number > 0, got nan",
    ]


def test_rules_between_settings_name_the_setting():
    with pytest.raises(ConfigError, match=r"^pretrain.soft_weight: every pretrain weight is 0 \(or unset\): the loss "
                                          r"would be empty$"):
        load_config(None, ["pretrain.soft_weight=0", "pretrain.hard_weight=0", "pretrain.cosine_weight=0"])
    with pytest.raises(ConfigError, match=r"^search.grace_period: must exceed search.heartbeat_interval \(30\), got 30"):
        load_config(None, ["search.grace_period=30"])


def test_the_edges_of_each_rule_are_allowed():
    config = load_config(None, [
        "training.max_steps=1", "training.weight_decay=0", "training.beta1=0", "threads=1",
        "data.fractions=[1, 0, 0]", "data.synthetic_unanswerable_fraction=1", "student.hidden_dropout=0.999",
        "distillation.soft_weight=0", "pretrain.mask_probability=0.99", "search.regular.top_k=0",
    ])
    assert config.training.max_steps == 1 and config.data.fractions == (1.0, 0.0, 0.0)


def _settings_classes() -> list[type]:
    return [cls for _, cls in inspect.getmembers(config_module, inspect.isclass)
            if dataclasses.is_dataclass(cls) and cls.__module__ == config_module.__name__]


def test_every_settings_section_has_a_rule_for_every_number():
    """The table is complete: a number setting added without a rule fails here, not in a trial."""
    assert {cls.__name__ for cls in _settings_classes() if not issubclass(cls, Checked)} <= {"Range"}
    for cls in _settings_classes():
        if not issubclass(cls, Checked):
            continue
        hints = typing.get_type_hints(cls)
        names = {f.name for f in dataclasses.fields(cls)}
        assert set(cls.RULES) <= names, f"{cls.__name__}: rules for no field: {set(cls.RULES) - names}"
        numbers = {name for name in names
                   if {int, float} & set(typing.get_args(hints[name]) or (hints[name],))
                   or typing.get_origin(hints[name]) is tuple and float in typing.get_args(hints[name])}
        assert numbers <= set(cls.RULES), f"{cls.__name__}: numbers without a rule: {numbers - set(cls.RULES)}"


def test_the_defaults_and_the_teacher_recipe_meet_the_rules():
    ExperimentConfig()
    TeacherRecipe()


def test_settings_made_in_code_are_checked_too():
    with pytest.raises(ConfigError, match=r"^learning_rate: expected a number > 0, got -1.0$"):
        TrainSettings(learning_rate=-1.0)
    with pytest.raises(ConfigError, match=r"^threads: expected an integer >= 1, got -4$"):
        TeacherRecipe(threads=-4)


@pytest.mark.parametrize("flags, message", [
    (["--lr", "nan"], "learning_rate: expected a number > 0, got nan"),
    (["--batch-size", "0"], "train_batch_size: expected an integer >= 1, got 0"),
    (["--max-steps", "-5"], "max_steps: expected an integer >= 1, got -5"),
    (["--threads", "-4"], "threads: expected an integer >= 1, got -4"),
])
def test_the_teacher_command_s_flags_meet_the_same_rules(tmp_path, capsys, flags, message):
    code = main(["teacher", "--data", str(tmp_path / "absent.json"), "--out", str(tmp_path / "t"), *flags])
    err = capsys.readouterr().err
    assert code == BAD_INPUT and one_line(err) and message in err
    assert not (tmp_path / "t").exists()  # refused before anything was made


def test_a_search_with_a_bad_fixed_setting_spends_nothing(tmp_path, capsys):
    study = tmp_path / "s"
    code, _, err = search(capsys, config_file(tmp_path), study, "--set", "distillation.temperature=nan")
    assert code == BAD_INPUT and one_line(err)
    assert "distillation.temperature: expected a number > 0, got nan" in err
    assert not study.exists()


@pytest.mark.parametrize("name, table, message", [
    ("temperature", {"type": "fixed", "value": 0}, "temperature must be > 0"),
    ("temperature", {"type": "fixed", "value": float("nan")}, "temperature must be > 0"),
    ("max_steps", {"type": "int", "low": -5, "high": 10}, "max_steps must be >= 1"),
    ("train_batch_size", {"type": "categorical", "choices": [0, 16]}, "train_batch_size must be >= 1"),
    ("beta2", {"type": "float", "low": 0.9, "high": 1.0}, "beta2 must be in [0, 1)"),
    ("soft_weight", {"type": "fixed", "value": -1.0}, "soft_weight must be >= 0"),
])
def test_a_searched_value_meets_the_rule_of_its_field(name, table, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace(")", r"\)")):
        parse_param(name, table, None)


def test_the_space_reads_the_config_s_rules():
    assert str(rule_of("training.learning_rate")) == "> 0"
    assert str(rule_of("student.hidden_dropout")) == "in [0, 1)"
    assert str(rule_of("student.layer_selection")) == "finite"  # not a number: no rule beyond its type
