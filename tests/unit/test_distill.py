"""The distillation engine: losses, the teacher-logit cache, the objective, run_trial and its failures.

One tiny random teacher and one tiny slice of the SQuAD 2.0 dev set are shared by the module;
every trial is a few steps of a 1-layer student on one thread, so the file runs in well under a minute.
"""

import json
import math
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForQuestionAnswering, BertConfig, BertForQuestionAnswering

import paretodistill.distill.objective as objective_module
from paretodistill.config import DistillSettings
from paretodistill.data.prepare import prepare_data
from paretodistill.distill.losses import hard_loss, soft_loss
from paretodistill.distill.objective import DistillationObjective, layer_pairs
from paretodistill.distill.presets import sigopt_baseline, smoke_config
from paretodistill.distill.run import Stage, _classify, run_trial
from paretodistill.distill.teacher_cache import TeacherLogits, cached_teacher_logits
from paretodistill.distill.trial_files import FAILURE_FILE, METRICS_FILE, load_trial, searched_parameters
from paretodistill.errors import ConfigError
from paretodistill.evaluation.inference import evaluate_model
from paretodistill.hardware.device import supports_fast_bf16
from paretodistill.models.loading import load_qa_model, load_tokenizer
from paretodistill.models.student import StudentArchitecture, build_student
from paretodistill.training.batching import Batch, collate

DATA = Path(__file__).resolve().parents[2].parent / "shared/data/squad2/dev-v2.0.json"
needs_data = pytest.mark.skipif(not DATA.exists(), reason=f"{DATA} is not there")

# A smaller smoke run still: 8 steps, curve points at 4 and 8, one thread (deterministic, and
# polite to whatever else runs on the machine).
FAST = [
    "threads=1", "latency.threads=1", "latency.repeats=3", "latency.warmup=1",
    "training.max_steps=8", "training.eval_every_steps=4", "training.log_every_steps=1000",
    "data.max_train_questions=100",
]
TIMING_KEYS = {"train_seconds", "train_cpu_seconds", "examples_per_second", "trial_seconds"}


def quiet(_message: str) -> None:
    pass


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def config(teacher_dir, cache_dir):
    if not DATA.exists():
        pytest.skip(f"{DATA} is not there")
    return smoke_config(str(DATA), teacher_dir, cache_dir, overrides=FAST)


@pytest.fixture(scope="module")
def prepared(config, teacher_dir, cache_dir):
    tokenizer = load_tokenizer(teacher_dir)
    return prepare_data(config.data, tokenizer, cache_dir, quiet)


@pytest.fixture(scope="module")
def smoke_result(config, tmp_path_factory):
    return run_trial(config, {}, trial_dir=tmp_path_factory.mktemp("trial") / "t", log=quiet)


# --- losses -----------------------------------------------------------------------------------
def test_soft_loss_equals_hand_computed_kl_times_t_squared():
    student = [1.0, 2.0, 0.5, -1.0]
    teacher = [0.0, 3.0, 1.0, 0.5]
    t = 2.0

    def softmax(values):
        exps = [math.exp(v / t) for v in values]
        return [e / sum(exps) for e in exps]

    p, q = softmax(teacher), softmax(student)
    expected = sum(pi * math.log(pi / qi) for pi, qi in zip(p, q)) * t * t
    s, te = torch.tensor([student]), torch.tensor([teacher])
    mask = torch.ones(1, 4, dtype=torch.long)
    # start and end distributions are averaged; using the same pair for both gives the single KL
    assert soft_loss(s, s, te, te, mask, t).item() == pytest.approx(expected, rel=1e-5)


def test_soft_loss_is_zero_when_student_equals_teacher():
    logits = torch.randn(3, 7)
    mask = torch.ones(3, 7, dtype=torch.long)
    mask[1, 5:] = 0
    assert soft_loss(logits, logits, logits.clone(), logits.clone(), mask, 3.0).item() == pytest.approx(0.0, abs=1e-6)


def test_padding_changes_neither_soft_nor_hard_loss():
    generator = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(2, 5, generator=generator), torch.randn(2, 5, generator=generator)
    mask = torch.ones(2, 5, dtype=torch.long)
    positions = torch.tensor([1, 3])
    padded_student = torch.cat([student, 50 * torch.randn(2, 3, generator=generator)], dim=1)
    padded_teacher = torch.cat([teacher, -50 * torch.randn(2, 3, generator=generator)], dim=1)
    padded_mask = torch.cat([mask, torch.zeros(2, 3, dtype=torch.long)], dim=1)
    assert soft_loss(padded_student, padded_student, padded_teacher, padded_teacher, padded_mask, 2.0).item() == \
        pytest.approx(soft_loss(student, student, teacher, teacher, mask, 2.0).item(), rel=1e-5)
    assert hard_loss(padded_student, padded_student, positions, positions, padded_mask).item() == \
        pytest.approx(hard_loss(student, student, positions, positions, mask).item(), rel=1e-5)


# --- teacher-logit cache ----------------------------------------------------------------------
def test_teacher_logits_cached_once_and_aligned(prepared, teacher_dir, tmp_path):
    teacher = load_qa_model(teacher_dir).eval()
    calls = []
    teacher.register_forward_hook(lambda *args: calls.append(1))
    features = prepared.train_features

    first = cached_teacher_logits(teacher, features, tmp_path, teacher_dir=teacher_dir, bf16=False, log=quiet)
    assert calls, "the first call must run the teacher"
    ran = len(calls)
    stamp = (first.directory / "start_logits.npy").stat().st_mtime_ns
    second = cached_teacher_logits(teacher, features, tmp_path, teacher_dir=teacher_dir, bf16=False, log=quiet)
    assert len(calls) == ran, "the second call must read the cache, not run the teacher"
    assert second.directory == first.directory
    assert (second.directory / "start_logits.npy").stat().st_mtime_ns == stamp
    assert isinstance(second.start, np.memmap)
    assert not list(first.directory.parent.glob(".tmp-*")), "no staging folder is left behind"

    # aligned: the cached logits of a window equal a fresh teacher forward on it
    for feature in (0, len(features) // 2, len(features) - 1):
        batch = collate(features, np.array([feature]))
        with torch.no_grad():
            fresh = teacher(**batch.model_inputs())
        span = features.row(feature)
        n = span.stop - span.start  # collate pads to a multiple of 8
        np.testing.assert_allclose(second.start[span], fresh.start_logits[0, :n].numpy(), atol=2e-3, rtol=2e-3)
        np.testing.assert_allclose(second.end[span], fresh.end_logits[0, :n].numpy(), atol=2e-3, rtol=2e-3)

    # gathered per batch: padded like the inputs, zeros beyond each window
    indices = np.array([3, 0, 7])
    batch = collate(features, indices)
    start, end = second.gather(indices, batch.input_ids.shape[1])
    assert start.shape == batch.input_ids.shape
    for row, feature in enumerate(indices):
        span = features.row(int(feature))
        n = span.stop - span.start
        np.testing.assert_array_equal(start[row, :n].numpy(), np.asarray(second.start[span], dtype=np.float32))
        np.testing.assert_array_equal(end[row, :n].numpy(), np.asarray(second.end[span], dtype=np.float32))
        assert not start[row, n:].any()


def test_teacher_cache_key_changes_with_the_teacher(prepared, teacher_dir, tmp_path):
    teacher = load_qa_model(teacher_dir).eval()
    features = prepared.train_features.take(np.arange(4))
    one = cached_teacher_logits(teacher, features, tmp_path, bf16=False, log=quiet)
    with torch.no_grad():
        teacher.qa_outputs.bias.add_(1.0)
    two = cached_teacher_logits(teacher, features, tmp_path, bf16=False, log=quiet)
    assert one.directory != two.directory
    np.testing.assert_allclose(np.asarray(two.start) - np.asarray(one.start), 1.0, atol=1e-2)


@pytest.mark.parametrize("damage", ["cut short", "other length", "other dtype"])
def test_a_damaged_teacher_cache_is_recomputed_not_trusted(prepared, teacher_dir, tmp_path, damage):
    teacher = load_qa_model(teacher_dir).eval()
    features = prepared.train_features.take(np.arange(6))
    first = cached_teacher_logits(teacher, features, tmp_path, teacher_dir=teacher_dir, bf16=False, log=quiet)
    expected = np.array(first.start)
    path = first.directory / "start_logits.npy"
    if damage == "cut short":
        path.write_bytes(path.read_bytes()[:-10])
    else:  # a readable file of another array, as left by an older or foreign writer without the manifest
        (first.directory / "arrays.json").unlink()
        np.save(path, expected[:-1] if damage == "other length" else expected.astype(np.float32))
    calls, told = [], []
    teacher.register_forward_hook(lambda *args: calls.append(1))
    again = cached_teacher_logits(teacher, features, tmp_path, teacher_dir=teacher_dir, bf16=False, log=told.append)
    assert calls, "a damaged cache must run the teacher again"
    assert any("teacher logit cache damaged" in line for line in told), told
    assert again.directory == first.directory and isinstance(again.start, np.memmap)
    np.testing.assert_array_equal(np.asarray(again.start), expected)


def test_teacher_logits_refuse_misaligned_features():
    with pytest.raises(ValueError, match="not aligned"):
        TeacherLogits(np.zeros(5, np.float16), np.zeros(5, np.float16), np.array([0, 3, 6]))


# --- objective: weights and layer-wise transfer -----------------------------------------------
def _tiny(layers=4, hidden=32, heads=4) -> BertForQuestionAnswering:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=hidden, num_attention_heads=heads, num_hidden_layers=layers,
                        intermediate_size=2 * hidden, max_position_embeddings=32)
    return BertForQuestionAnswering(config).eval()


def _batch(length=12) -> Batch:
    generator = torch.Generator().manual_seed(2)
    ids = torch.randint(1, 50, (2, length), generator=generator)
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0
    return Batch(np.array([0, 1]), ids, torch.zeros_like(ids), mask, torch.tensor([2, 0]), torch.tensor([4, 0]))


def test_both_weights_zero_without_layerwise_is_a_config_error():
    student = _tiny(2)
    with pytest.raises(ConfigError, match="empty"):
        DistillationObjective(student, DistillSettings(soft_weight=0, hard_weight=0), None)
    with pytest.raises(ConfigError):
        DistillationObjective(student, DistillSettings(soft_weight=1.5), None)


@pytest.mark.parametrize(
    "arch, heads",
    [
        (StudentArchitecture(num_layers=2, heads_per_layer=4, pruning_seed=1, pruning="random"), "same"),
        (StudentArchitecture(num_layers=2, heads_per_layer=2, pruning_seed=1, pruning="random"), "kept"),
        (StudentArchitecture(num_layers=2, heads_per_layer=2, hidden_size=16, pruning="random"), "mean"),
        # AutoDistill template students: attention at the bottleneck width, hidden states between layers
        (StudentArchitecture(num_layers=2, heads_per_layer=4, bottleneck_size=16, stacked_ffn=2, pruning="random"), "same"),
        (StudentArchitecture(num_layers=2, heads_per_layer=2, hidden_size=16, bottleneck_size=8, stacked_ffn=2,
                             embedding_size=8, pruning="random"), "mean"),
    ],
)
def test_layerwise_transfer_pairs_projects_and_trains(arch, heads):
    teacher = _tiny(4)
    student = build_student(teacher, arch)
    pairs = layer_pairs(student.config, teacher.config)
    assert [(p.student_layer, p.teacher_layer) for p in pairs] == [(0, 0), (1, 2)]
    if heads == "same":
        assert pairs[1].teacher_heads == (0, 1, 2, 3)
    elif heads == "kept":
        assert pairs[1].teacher_heads == tuple(student.config.kept_heads[1])
    else:
        assert pairs[1].teacher_heads is None  # no correspondence: compare head means

    settings = DistillSettings(soft_weight=0.5, hard_weight=0.5, hidden_weight=1.0, attention_weight=1.0)
    objective = DistillationObjective(student, settings, None, teacher=teacher, steps_per_epoch=4)
    assert student.config._attn_implementation == "eager"
    if arch.hidden_size is not None:
        assert objective.model.projection.in_features == 16 and objective.model.projection.out_features == 32
    else:
        assert objective.model.projection is None
    objective.model.train()
    batch = _batch()
    outputs = objective.model(**batch.model_inputs())
    terms = objective.terms(outputs, batch)
    assert set(terms) == {"soft", "hard", "hidden", "attention"}
    assert all(torch.isfinite(v) for v in terms.values())
    objective(outputs, batch).backward()
    trained = objective.model.projection or student.bert.encoder.layer[0].attention.self.query
    assert trained.weight.grad is not None and trained.weight.grad.abs().sum() > 0
    if arch.bottleneck_size is not None:
        for layer in student.bert.encoder.layer:
            assert layer.bottleneck_in[0].weight.grad.abs().sum() > 0
            assert layer.stacked_ffn_blocks[0].output.dense.weight.grad.abs().sum() > 0
    objective.finish()
    assert student.config._attn_implementation == "sdpa"


def test_progressive_schedule_switches_layers_on_bottom_up():
    teacher = _tiny(4)
    student = build_student(teacher, StudentArchitecture(num_layers=4, heads_per_layer=4, pruning="random"))
    settings = DistillSettings(hidden_weight=1.0, progressive=True)
    objective = DistillationObjective(student, settings, None, teacher=teacher, steps_per_epoch=8)
    assert [len(objective.active_pairs(step)) for step in range(10)] == [1, 1, 2, 2, 3, 3, 4, 4, 4, 4]
    plain = DistillationObjective(student, DistillSettings(hidden_weight=1.0), None, teacher=teacher, steps_per_epoch=8)
    assert len(plain.active_pairs(0)) == 4


# --- run_trial --------------------------------------------------------------------------------
@needs_data
def test_smoke_trial_is_ok_and_its_checkpoint_reloads(smoke_result, prepared, config):
    result = smoke_result
    assert result.ok, result.failure_reason
    for key in ("exact", "f1", "HasAns_exact", "HasAns_f1", "NoAns_exact", "NoAns_f1", "best_f1", "na_threshold",
                "num_parameters", "latency_ms", "latency_p10_ms", "latency_p90_ms", "train_seconds", "train_cpu_seconds",
                "examples_per_second"):
        assert key in result.metrics, key
    assert [point["step"] for point in result.curve] == [4, 8]
    # the margin over answering "no answer" to every validation question, counted from the data itself
    no_answer_rate = 100.0 * sum(e.is_impossible for e in prepared.validation.examples) / len(prepared.validation.examples)
    assert result.metrics["exact_over_no_answer"] == pytest.approx(result.metrics["exact"] - no_answer_rate)
    for key in ("loss", "exact", "f1", "HasAns_exact", "NoAns_exact"):
        assert key in result.curve[0]

    trial_dir = Path(result.checkpoint).parent
    record = json.loads((trial_dir / METRICS_FILE).read_text())
    assert record["device"] and record["split"]["validation"] and record["config"]["student"]["num_layers"] == 1
    assert record["parameters"]["heads_per_layer"] == 2 and record["searched"] == []
    assert "params" not in record  # one record of the parameters; searched_parameters reads both forms
    assert record["precision"] == ("bf16" if record["bf16"] else "fp32")  # this CPU: bf16 only where native
    assert (trial_dir / "curve.json").exists() and not (trial_dir / FAILURE_FILE).exists()
    assert load_trial(trial_dir).metrics["f1"] == result.metrics["f1"]
    json.dumps(result.to_dict())  # plain data: crosses process boundaries
    assert pickle.loads(pickle.dumps(result)) == result and pickle.loads(pickle.dumps(config)) == config

    # the saved checkpoint (pruned: it needs its own code) is the model that was scored
    model = AutoModelForQuestionAnswering.from_pretrained(result.checkpoint, trust_remote_code=True)
    bf16 = config.training.bf16 and supports_fast_bf16(torch.device("cpu"))
    scored = evaluate_model(model, prepared.validation, prepared.validation_features, 64, bf16,
                            threshold=result.metrics["na_threshold"])
    assert scored.metrics["f1"] == pytest.approx(result.metrics["f1"])
    assert scored.metrics["exact"] == pytest.approx(result.metrics["exact"])


@needs_data
def test_the_final_scoring_reuses_the_last_curve_pass(config, tmp_path, monkeypatch):
    """The loop scores the last step for the curve; scoring it again would be a wasted pass."""
    import paretodistill.distill.run as run_module

    passes = []
    real = run_module.predict_logits
    monkeypatch.setattr(run_module, "predict_logits", lambda *a, **k: passes.append(1) or real(*a, **k))
    result = run_trial(config, {}, trial_dir=tmp_path / "t", evaluate_test=False, log=quiet)
    assert result.ok and result.curve[-1]["step"] == result.metrics["train_steps"]
    assert len(passes) == len(result.curve)  # one validation pass per curve point, none after


@needs_data
def test_a_trial_stopped_at_an_evaluation_point_keeps_its_curve_and_says_why(smoke_result, config, tmp_path):
    """should_stop sees the point (with the signals) and the parameter count; its reason ends the trial
    there: not failed, not scored again, timed or saved; the curve and that evaluation's metrics kept."""
    seen = []

    def should_stop(point):
        seen.append(point)
        return "hopeless: dominated"

    result = run_trial(config, {}, trial_dir=tmp_path / "t", log=quiet, should_stop=should_stop)
    assert result.stopped and not result.ok and result.failure_kind is None
    assert result.stop_reason == "hopeless: dominated"
    assert [p.step for p in seen] == [4] and seen[0].total_steps == 8 and seen[0].progress == 0.5
    assert seen[0].known == {"num_parameters": smoke_result.metrics["num_parameters"]}  # counted before training
    assert {"exact", "best_exact", "span_f1", "teacher_kl"} <= set(seen[0].metrics)
    assert result.curve == smoke_result.curve[:1]  # the same seeded run, up to where it stopped
    assert result.metrics["exact"] == result.curve[0]["exact"] and result.metrics["train_steps"] == 4
    assert result.metrics["num_parameters"] == smoke_result.metrics["num_parameters"] and "latency_ms" not in result.metrics
    assert load_trial(tmp_path / "t").stop_reason == "hopeless: dominated"
    assert not (tmp_path / "t" / METRICS_FILE).exists() and not (tmp_path / "t" / "checkpoint").exists()
    assert not (tmp_path / "t" / ".state").exists()
    json.dumps(result.to_dict())


@needs_data
def test_seeded_trials_are_identical(smoke_result, config, tmp_path):
    again = run_trial(config, {}, trial_dir=tmp_path / "again", evaluate_test=True, log=quiet)
    assert again.ok and again.test_metrics is not None and "f1" in again.test_metrics
    same = {k: v for k, v in again.metrics.items() if k not in TIMING_KEYS and not k.startswith("latency")}
    assert same == {k: v for k, v in smoke_result.metrics.items() if k in same}
    assert again.curve == smoke_result.curve


@needs_data
@pytest.mark.parametrize("heads, kind, reason", [
    (0, "error", "student.heads_per_layer: expected an integer >= 1, got 0"),  # the config's rule, before any model
    (5, "impossible_architecture", "heads_per_layer"),
])
def test_impossible_architecture_fails_cleanly(config, tmp_path, heads, kind, reason):
    result = run_trial(config, {"heads_per_layer": heads}, trial_dir=tmp_path, log=quiet)
    assert result.status == "failed" and result.failure_kind == kind
    assert reason in result.failure_reason
    assert not (tmp_path / METRICS_FILE).exists()
    assert load_trial(tmp_path).failure_kind == kind


@needs_data
def test_nan_loss_fails_as_diverged_with_its_step(config, tmp_path, monkeypatch):
    calls = []

    def exploding_hard_loss(*args):
        calls.append(1)
        value = hard_loss(*args)
        return value * float("nan") if len(calls) == 3 else value

    monkeypatch.setattr(objective_module, "hard_loss", exploding_hard_loss)
    result = run_trial(config, {"learning_rate": 1e-4}, trial_dir=tmp_path, log=quiet)
    assert result.failure_kind == "diverged" and result.failure_step == 2
    assert "step 2" in result.failure_reason and "learning_rate" in result.failure_reason
    assert not (tmp_path / METRICS_FILE).exists() and not (tmp_path / "checkpoint").exists()


@needs_data
@pytest.mark.parametrize("error", [torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"),
                                   RuntimeError("DefaultCPUAllocator: can't allocate memory: out of memory")])
def test_out_of_memory_fails_as_out_of_memory(config, tmp_path, monkeypatch, error):
    calls = []

    def soft_loss_that_runs_out(*args):
        calls.append(1)
        if len(calls) == 2:
            raise error
        return soft_loss(*args)

    monkeypatch.setattr(objective_module, "soft_loss", soft_loss_that_runs_out)
    result = run_trial(config, {"train_batch_size": 16}, trial_dir=tmp_path, log=quiet)
    assert result.failure_kind == "out_of_memory" and result.failure_step == 1
    assert "train_batch_size" in result.failure_reason and "training" in result.failure_reason
    assert not (tmp_path / METRICS_FILE).exists()


@needs_data
def test_bad_parameters_fail_as_errors_not_exceptions(config):
    unknown = run_trial(config, {"no_such_parameter": 1}, log=quiet)
    assert unknown.failure_kind == "error" and "no_such_parameter" in unknown.failure_reason
    empty = run_trial(config, {"soft_weight": 0.0, "hard_weight": 0.0}, log=quiet)
    assert empty.failure_kind == "error" and "empty" in empty.failure_reason


# --- presets and command line -----------------------------------------------------------------
def test_sigopt_baseline_is_half_the_teacher_with_all_heads():
    params = sigopt_baseline(BertConfig(num_hidden_layers=6, num_attention_heads=12))
    assert params["num_layers"] == 3 and params["heads_per_layer"] == 12
    assert params["epsilon"] == 9.98e-09 and params["weight_decay"] == 9e-06 and params["epochs"] == 3
    assert (params["soft_weight"], params["hard_weight"], params["train_batch_size"]) == (0.5, 0.5, 8)


@needs_data
def test_distill_command_smoke_preset_needs_only_data(teacher_dir, cache_dir, tmp_path, capsys):
    from paretodistill.cli import main

    out = tmp_path / "run"
    status = main(["distill", "--preset", "smoke", "--data", str(DATA), "--out", str(out), "--cache-dir", str(cache_dir),
                   *sum((["--set", o] for o in FAST), [])])
    assert status == 0
    assert (out / METRICS_FILE).exists() and (out / "checkpoint" / "config.json").exists()
    assert str(out / METRICS_FILE) in capsys.readouterr().out
    record = json.loads((out / METRICS_FILE).read_text())
    assert record["config"]["teacher"]["path"] == str(teacher_dir)  # the tiny teacher, built once
    assert record["config"]["training"]["max_steps"] == 8


@needs_data
def test_distill_command_recipe_then_set_overrides(teacher_dir, cache_dir, tmp_path):
    """``--recipe sigopt-baseline`` sets the baseline; a ``--set`` after it changes one setting."""
    from paretodistill.cli import main

    out = tmp_path / "hard-only"
    fast = [o for o in FAST if not o.startswith("training.max_steps")]
    status = main(["distill", "--preset", "smoke", "--data", str(DATA), "--out", str(out), "--cache-dir", str(cache_dir),
                   "--recipe", "sigopt-baseline", "--set", "distillation.soft_weight=0.0",
                   "--set", "training.max_steps=4", *sum((["--set", o] for o in fast), [])])
    assert status == 0
    config = json.loads((out / METRICS_FILE).read_text())["config"]
    assert config["distillation"]["soft_weight"] == 0.0 and config["distillation"]["hard_weight"] == 0.5
    assert config["training"]["learning_rate"] == 5e-5 and config["training"]["epsilon"] == 9.98e-09
    assert config["training"]["train_batch_size"] == 8 and config["training"]["max_steps"] == 4
    assert config["student"]["num_layers"] == 1 and config["student"]["attention_dropout"] == 0.1


def test_searched_parameters_of_new_and_old_records():
    new = {"parameters": {"num_layers": 2, "learning_rate": 1e-4, "temperature": 2.0}, "searched": ["num_layers"]}
    old = {"params": {"num_layers": 2}, "parameters": {"num_layers": 2, "learning_rate": 1e-4}}
    assert searched_parameters(new) == searched_parameters(old) == {"num_layers": 2}
    assert searched_parameters({"status": "ok"}) == {}


def test_failure_kind_depends_on_the_stage_not_its_wording():
    from paretodistill.errors import ModelMismatchError

    mismatch = ModelMismatchError("3 heads of 12 do not divide")
    assert _classify(mismatch, Stage.BUILDING_STUDENT) == "impossible_architecture"
    assert _classify(mismatch, Stage.LOADING_TEACHER) == "error"
    assert _classify(KeyboardInterrupt(), Stage.TRAINING) == "interrupted"
    assert Stage.BUILDING_STUDENT.value == "building the student"  # the words a failure reason shows
