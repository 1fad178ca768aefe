"""Search spaces as data: presets resolved from the teacher, and every malformed space refused early."""

import json
import math

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from paretodistill.config import load_config
from paretodistill.distill.engine import TeacherShape, prepare
from paretodistill.errors import ConfigError
from paretodistill.search.space import build_space, resolve_params

MINILM = {"num_hidden_layers": 6, "num_attention_heads": 12, "hidden_size": 384, "intermediate_size": 1536}


@pytest.fixture
def teacher_dir(tmp_path):
    folder = tmp_path / "teacher"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(MINILM))
    return folder


def _config(space=None, teacher=None, **search):
    values = {"search": {**search}}
    if space is not None:
        values["search"]["space"] = space
    if teacher is not None:
        values["teacher"] = {"path": str(teacher)}
    return load_config(base=values)


def _space(space, teacher=None, **search):
    return build_space(_config(space, teacher, **search))


def test_teacher_shape_is_read_from_config_json(teacher_dir):
    assert prepare(_config(teacher=teacher_dir)).shape == TeacherShape(6, 12, 384, 1536)
    assert prepare(_config()).shape is None


def test_sigopt_preset_fills_teacher_dependent_ranges(teacher_dir):
    space = _space(None, teacher_dir, space_preset="sigopt-2020")
    d = space.distributions()
    assert d["num_layers"] == IntDistribution(1, 12)  # 2 x the teacher's 6 layers
    assert d["heads_per_layer"] == IntDistribution(1, 12)
    assert d["learning_rate"] == FloatDistribution(2e-6, 0.1, log=True)
    assert d["epsilon"].log and d["weight_decay"].log
    assert d["attention_dropout"].high < 1 and d["qa_dropout"].high < 1  # dropout 1 is degenerate
    assert d["initializer_range"].low > 0  # an init std of 0 zeroes fresh weights
    assert len(space.names) == 18
    assert d["pruning"] == CategoricalDistribution(["random"])  # the 2020 space draws heads with pruning_seed


def test_cpu_preset_and_overrides(teacher_dir):
    space = _space({"learning_rate": {"type": "float", "low": 2e-5, "high": 1e-4, "log": True}},
                   teacher_dir, space_preset="cpu")
    d = space.distributions()
    assert d["num_layers"] == IntDistribution(1, 6)
    assert d["intermediate_size"] == CategoricalDistribution([384, 768, 1536])
    assert d["attention_dropout"] == CategoricalDistribution([0.0])  # fixed: recorded, never sampled
    assert d["learning_rate"].low == 2e-5  # the config's table replaces the preset's


def test_all_types_and_steps():
    space = _space({
        "learning_rate": {"type": "float", "low": 1e-5, "high": 1e-3, "log": True},
        "temperature": {"type": "float", "low": 1.0, "high": 4.0, "step": 0.5},
        "num_layers": {"type": "int", "low": 2, "high": 8, "step": 2},
        "train_batch_size": {"type": "categorical", "choices": [16, 32]},
        "progressive": {"type": "categorical", "choices": [True, False]},
        "pruning_seed": {"type": "fixed", "value": 7},
    })
    d = space.distributions()
    assert d["temperature"] == FloatDistribution(1.0, 4.0, step=0.5)
    assert d["num_layers"] == IntDistribution(2, 8, step=2)
    assert d["pruning_seed"].single()
    assert space.to_dict()["num_layers"] == {"type": "int", "low": 2, "high": 8, "log": False, "step": 2}


@pytest.mark.parametrize(
    "table, message",
    [
        ({"learning_rate": {"type": "float", "low": 1e-3, "high": 1e-5}}, "inverted range"),
        ({"learning_rate": {"type": "float", "low": 1e-3, "high": 1e-3}}, "empty range"),
        ({"learning_rate": {"type": "float", "low": 0.0, "high": 1e-3, "log": True}}, "log scale needs low > 0"),
        ({"train_batch_size": {"type": "categorical", "choices": []}}, "non-empty list"),
        ({"train_batch_size": {"type": "categorical", "choices": [16, 16]}}, "repeat"),
        ({"learning_rate": {"type": "uniform", "low": 1e-5, "high": 1e-3}}, "unknown type"),
        ({"dropout": {"type": "float", "low": 0.0, "high": 0.5}}, "not a searchable parameter"),
        ({"max_seq_length": {"type": "int", "low": 128, "high": 384}}, "not a searchable parameter"),
        ({"num_layers": {"type": "float", "low": 1, "high": 6}}, "use type = \"int\""),
        ({"learning_rate": {"type": "int", "low": 1, "high": 6}}, "use type = \"float\""),
        ({"num_layers": {"type": "int", "low": 1.5, "high": 6}}, "expected an integer"),
        ({"num_layers": {"type": "int", "low": 0, "high": 6}}, "must be >= 1"),
        ({"attention_dropout": {"type": "float", "low": 0.0, "high": 1.0}}, "dropout of 1"),
        ({"initializer_range": {"type": "float", "low": 0.0, "high": 1.0}}, "must be > 0"),
        ({"num_layers": {"type": "int", "low": 1, "high": 6, "step": 4}}, "whole number of steps"),
        ({"learning_rate": {"type": "float", "low": 1e-5, "high": 1e-3, "lg": True}}, "unknown key"),
        ({"learning_rate": {"type": "float", "high": 1e-3}}, "needs low"),
        ({"train_batch_size": {"type": "categorical", "choices": [16, "big"]}}, "does not fit"),
        ({"num_layers": {"type": "fixed"}}, "needs a value"),
        ({"learning_rate": "1e-4"}, "expected a table"),
    ],
)
def test_malformed_spaces_are_refused(table, message):
    with pytest.raises(ConfigError, match=message):
        _space(table)


def test_empty_space_and_unknown_preset():
    with pytest.raises(ConfigError, match="empty"):
        _space({})
    with pytest.raises(ConfigError, match="unknown preset"):
        _space(None, space_preset="gpu-xl")


def test_teacher_bounds_need_a_teacher():
    with pytest.raises(ConfigError, match="needs the teacher's shape"):
        _space({"num_layers": {"type": "int", "low": 1, "high": "teacher_layers"}})


def test_more_heads_than_the_teacher_is_refused(teacher_dir):
    with pytest.raises(ConfigError, match="exceeds the teacher's 12"):
        _space({"heads_per_layer": {"type": "int", "low": 2, "high": 16}}, teacher_dir)


def test_hidden_size_must_be_divisible_by_every_head_count(teacher_dir):
    with pytest.raises(ConfigError, match="hidden_size 256 / heads 3"):
        _space({"hidden_size": {"type": "categorical", "choices": [256, 384]},
                "heads_per_layer": {"type": "int", "low": 2, "high": 4}}, teacher_dir)
    # the teacher's own width keeps the teacher's head size: any head count is fine
    _space({"hidden_size": {"type": "fixed", "value": 384}, "heads_per_layer": {"type": "int", "low": 1, "high": 12}},
           teacher_dir)
    # a fixed width from the [student] section counts too
    with pytest.raises(ConfigError, match="do not divide"):
        build_space(load_config(base={"student": {"hidden_size": 256},
                                      "search": {"space": {"heads_per_layer": {"type": "categorical", "choices": [3, 4]}}}}))


def test_baseline_params_resolve_from_the_teacher(teacher_dir):
    from paretodistill.search.presets import BASELINES

    params = resolve_params(BASELINES["distilbert"], TeacherShape(6, 12, 384, 1536), "search.baseline")
    assert params["num_layers"] == 3 and params["heads_per_layer"] == 12
    assert resolve_params(BASELINES["distilbert"], TeacherShape(7, 12, 384, 1536), "b")["num_layers"] == 3  # floor
    with pytest.raises(ConfigError, match="not a searchable parameter"):
        resolve_params({"layers": 3}, None, "search.baseline")


@pytest.mark.parametrize("name, thresholds", [
    ("search-cpu.toml", {"exact_over_no_answer": ">= 0.5"}),  # an abstaining student is infeasible
    ("search-sigopt.toml", {"exact": ">= 50"}),
    ("search-small.toml", {"exact_over_no_answer": ">= 0.5"}),  # + factorized embeddings, corpus vocabulary
])
def test_shipped_search_configs_load(name, thresholds, teacher_dir):
    from pathlib import Path

    from paretodistill.search.objectives import ObjectiveSet

    path = Path(__file__).resolve().parents[2] / "configs" / name
    config = load_config(path, [f'teacher.path="{teacher_dir}"'])
    space = build_space(config)
    settings = config.search
    assert settings.flash.n_trials > 0 and settings.regular.top_k > 0 and settings.flash.budget
    assert ObjectiveSet.parse(settings.objectives, settings.thresholds).describe_thresholds() == thresholds
    assert space.distributions()["num_layers"].high in (6, 12)


def test_shipped_table_and_distill_configs_load(teacher_dir):
    """The lookup-table search (every parameter categorical, no regular stage) and the baseline run's config."""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    configs, experiments = repo / "configs", repo / "benchmarks" / "configs"
    table = load_config(experiments / "table-grid.toml", [f'teacher.path="{teacher_dir}"'])
    settings = table.search
    assert (settings.sampler, settings.regular.top_k, settings.baseline) == ("grid", 0, None)
    from paretodistill.search.samplers import grid_values

    def grid_size(config) -> int:
        return math.prod(len(grid_values(name, dist)) for name, dist in build_space(config).distributions().items())

    assert grid_size(table) == settings.flash.n_trials == 128 and table.training.max_steps == 64
    current = load_config(experiments / "table-grid-v2.toml", [f'teacher.path="{teacher_dir}"'])  # the current recipe
    assert grid_size(current) == current.search.flash.n_trials == 96 and current.student.pruning == "importance"
    template = load_config(experiments / "table-template.toml", [f'teacher.path="{teacher_dir}"'])  # the factorized-embedding template
    assert grid_size(template) == template.search.flash.n_trials == 48 and template.search.regular.top_k == 0
    assert set(build_space(template).distributions()["embedding_size"].choices) == {64, 128, 384}
    distill = load_config(configs / "distill-baseline.toml", [f'teacher.path="{teacher_dir}"'])
    assert distill.latency.threads == 1 and distill.data.split_file.endswith("dev-v2.0.json")


def test_gpu_search_and_ablation_configs_load(teacher_dir):
    """The GPU run's search (a transfer set the teacher never saw, layer selection searched) and the ablation's base."""
    from pathlib import Path

    configs = Path(__file__).resolve().parents[2] / "configs"
    gpu = load_config(configs / "search-gpu.toml", [f'teacher.path="{teacher_dir}"'])
    assert gpu.data.unseen_by_teacher and gpu.data.synthetic_unanswerable_fraction == 0.5
    assert build_space(gpu).distributions()["layer_selection"].choices == ("spread", "bottom", "ends")
    from paretodistill.search.objectives import ObjectiveSet

    assert ObjectiveSet.parse(gpu.search.objectives, gpu.search.thresholds).describe_thresholds() == {
        "exact_over_no_answer": ">= 0"}
    ablation = load_config(configs.parent / "benchmarks" / "configs" / "ablation.toml", [f'teacher.path="{teacher_dir}"'])
    assert ablation.student.num_layers == 3 and ablation.training.max_steps == 300 and not ablation.latency.enabled


def test_autodistill_preset_samples_only_buildable_template_students(teacher_dir):
    from transformers import BertConfig

    from paretodistill.models.student import StudentArchitecture, expected_parameter_count

    space = _space(None, teacher_dir, space_preset="autodistill")
    d = space.distributions()
    assert d["num_layers"] == IntDistribution(1, 6)
    assert d["hidden_size"] == IntDistribution(144, 384, step=48)
    assert d["vocabulary"] == CategoricalDistribution(["full", "corpus"])
    teacher = BertConfig(vocab_size=30522, hidden_size=384, num_attention_heads=12, num_hidden_layers=6,
                         intermediate_size=1536)
    for width in space["hidden_size"].candidate_values():
        for bottleneck in space["bottleneck_size"].candidate_values():
            for heads in space["heads_per_layer"].candidate_values():
                StudentArchitecture(1, heads, hidden_size=width, bottleneck_size=bottleneck).validate(teacher)
    smallest = StudentArchitecture(1, 2, hidden_size=144, bottleneck_size=48, intermediate_size=144, embedding_size=48)
    whole = expected_parameter_count(teacher, StudentArchitecture(6, 12))  # the teacher's own size
    assert expected_parameter_count(teacher, smallest) < whole / 4 < 5.7e6


def test_autodistill_config_searches_the_template_on_exact_size_and_latency(teacher_dir):
    import tomllib
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "configs" / "search-autodistill.toml"
    config = load_config(path, [f'teacher.path="{teacher_dir}"'])
    assert set(build_space(config).names) >= {"bottleneck_size", "stacked_ffn", "embedding_size", "vocabulary"}
    search = tomllib.loads(path.read_text())["search"]
    assert search["objectives"] == ["exact:maximize", "num_parameters:minimize", "latency_ms:minimize"]
    assert config.latency.enabled


def test_the_no_answer_decision_levers_are_searchable_within_their_rules():
    space = _space({"margin_weight": {"type": "float", "low": 0.0, "high": 1.0},
                    "no_answer_weight": {"type": "float", "low": 0.5, "high": 4.0, "log": True}})
    d = space.distributions()
    assert d["margin_weight"] == FloatDistribution(0.0, 1.0)
    assert d["no_answer_weight"] == FloatDistribution(0.5, 4.0, log=True)
    assert resolve_params({"margin_weight": 0.5, "no_answer_weight": 2}, None, "baseline") == {
        "margin_weight": 0.5, "no_answer_weight": 2.0}
    with pytest.raises(ConfigError, match="no_answer_weight: 0.0 is out of range"):
        _space({"no_answer_weight": {"type": "float", "low": 0.0, "high": 2.0}})
    with pytest.raises(ConfigError, match="margin_weight"):
        _space({"margin_weight": {"type": "float", "low": -1.0, "high": 1.0}})
