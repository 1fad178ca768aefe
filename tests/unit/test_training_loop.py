"""The shared training loop on a tiny BERT built from a config: it learns, resumes exactly, and stops on NaN."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import BertConfig, BertForQuestionAnswering

from paretodistill.config import TrainSettings
from paretodistill.data.features import Features
from paretodistill.recipes.teacher import hard_target_loss
from paretodistill.training import loop
from paretodistill.training.loop import TrainingDiverged, build_optimizer, train


def tiny_model(seed: int = 0) -> BertForQuestionAnswering:
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    return BertForQuestionAnswering(config)


def synthetic_features(n: int = 64, seed: int = 0) -> Features:
    """Windows where the answer is the token with id 7: learnable by a tiny model."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(8, 24, size=n)
    ids, starts, ends = [], [], []
    for length in lengths:
        window = rng.integers(10, 50, size=length).astype(np.int32)
        window[0] = 1
        position = int(rng.integers(2, length))
        window[position] = 7
        ids.append(window)
        starts.append(position)
        ends.append(position)
    total = int(lengths.sum())
    return Features(
        input_ids=np.concatenate(ids), token_type_ids=np.zeros(total, np.int8),
        offsets=np.zeros((total, 2), np.int32), row_starts=np.concatenate([[0], np.cumsum(lengths)]),
        start_positions=np.asarray(starts, np.int32), end_positions=np.asarray(ends, np.int32),
        example_index=np.arange(n, dtype=np.int32),
    )


SETTINGS = TrainSettings(learning_rate=3e-3, train_batch_size=8, epochs=6, warmup_steps=4, seed=3,
                         log_every_steps=1000, bf16=False)


def test_loss_falls_and_curve_has_one_point_per_epoch():
    model = tiny_model()
    result = train(model, synthetic_features(), hard_target_loss, SETTINGS, log=lambda m: None)
    assert result.steps == 48 and len(result.curve) == 6
    assert [p["epoch"] for p in result.curve] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    first, last = result.curve[0]["loss"], result.curve[-1]["loss"]
    assert first > 2.5  # about log(16): guessing among ~16 positions
    assert last < 0.5 * first
    assert result.examples_seen == 6 * 64


def test_evaluator_points_join_the_curve():
    calls = []

    def evaluator(model):
        calls.append(model.training)
        return {"exact": 42.0}

    result = train(tiny_model(), synthetic_features(), hard_target_loss,
                   TrainSettings(**{**SETTINGS.__dict__, "epochs": 2, "eval_every_steps": 3}),
                   evaluator=evaluator, log=lambda m: None)
    steps = [p["step"] for p in result.curve]
    assert steps == [3, 6, 8, 9, 12, 15, 16]  # every 3 steps and at each epoch end (8 steps per epoch)
    assert all(p["exact"] == 42.0 for p in result.curve) and len(calls) == len(steps)


def test_cpu_time_counts_training_steps_and_not_evaluations(monkeypatch):
    """A fake CPU clock: each training step costs 1 s of it, each of the 7 evaluations 100 s."""
    clock = [0.0]
    monkeypatch.setattr(loop.time, "process_time", lambda: clock[0])

    def costly_loss(outputs, batch):
        clock[0] += 1.0
        return hard_target_loss(outputs, batch)

    def evaluator(model):
        clock[0] += 100.0
        return {}

    result = train(tiny_model(), synthetic_features(), costly_loss,
                   TrainSettings(**{**SETTINGS.__dict__, "epochs": 2, "eval_every_steps": 3}),
                   evaluator=evaluator, log=lambda m: None)
    assert len(result.curve) == 7 and result.steps == 16
    assert result.train_cpu_seconds == 16.0
    assert result.to_dict()["train_cpu_seconds"] == 16.0


def test_should_stop_ends_training_at_an_evaluation_point_with_its_reason():
    """Asked at every curve point but the last; the first reason ends training there, curve kept."""
    asked = []

    def should_stop(step, total_steps, point):
        asked.append((step, total_steps, point["exact"]))
        return "hopeless" if step == 6 else None

    settings = TrainSettings(**{**SETTINGS.__dict__, "epochs": 2, "eval_every_steps": 3})
    result = train(tiny_model(), synthetic_features(), hard_target_loss, settings,
                   evaluator=lambda model: {"exact": 42.0}, should_stop=should_stop, log=lambda m: None)
    assert asked == [(3, 16, 42.0), (6, 16, 42.0)]
    assert [p["step"] for p in result.curve] == [3, 6] and result.curve[-1]["exact"] == 42.0
    assert result.stop_reason == "hopeless" and result.steps == 6 and result.epochs == 6 / 8
    assert result.examples_seen == 6 * 8

    asked.clear()
    kept = train(tiny_model(), synthetic_features(), hard_target_loss, settings, evaluator=lambda model: {"exact": 1.0},
                 should_stop=lambda step, total, point: asked.append(step), log=lambda m: None)
    assert asked == [3, 6, 8, 9, 12, 15] and kept.curve[-1]["step"] == 16  # never at the last point
    assert kept.stop_reason is None and kept.steps == 16


def test_resume_after_a_kill_gives_the_same_weights(tmp_path, monkeypatch):
    features = synthetic_features()
    reference = tiny_model()
    train(reference, features, hard_target_loss, SETTINGS, log=lambda m: None)

    settings = TrainSettings(**{**SETTINGS.__dict__, "state_every_seconds": 0.0})
    interrupted = tiny_model()
    real_step = torch.optim.AdamW.step
    counter = {"n": 0}

    def dying_step(self, *args, **kwargs):
        counter["n"] += 1
        if counter["n"] == 21:
            raise KeyboardInterrupt  # the process is killed during step 21
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", dying_step)
    with pytest.raises(KeyboardInterrupt):
        train(interrupted, features, hard_target_loss, settings, state_dir=tmp_path, log=lambda m: None)
    monkeypatch.setattr(torch.optim.AdamW, "step", real_step)
    assert (tmp_path / loop.STATE_FILE).exists()

    resumed = tiny_model(seed=99)  # a fresh process: other initial weights, overwritten by the state
    messages = []
    result = train(resumed, features, hard_target_loss, settings, state_dir=tmp_path, log=messages.append)
    assert "resumed at step 20/48" in messages
    for a, b in zip(reference.parameters(), resumed.parameters()):
        assert torch.equal(a, b)
    assert len(result.curve) == 6 and not (tmp_path / loop.STATE_FILE).exists()


def test_state_from_other_settings_is_refused(tmp_path):
    settings = TrainSettings(**{**SETTINGS.__dict__, "state_every_seconds": 0.0, "epochs": 1})
    loop._save_state(tmp_path / loop.STATE_FILE, 3, tiny_model(), build_optimizer(tiny_model(), settings),
                     torch.optim.lr_scheduler.LambdaLR(build_optimizer(tiny_model(), settings), lambda s: 1.0),
                     loop.TrainResult(8, 1.0, 0.0, 0, 0), TrainSettings())
    with pytest.raises(RuntimeError, match="other settings"):
        train(tiny_model(), synthetic_features(), hard_target_loss, settings, state_dir=tmp_path, log=lambda m: None)


def test_nan_loss_stops_with_the_step():
    def poisoned(outputs, batch):
        loss = hard_target_loss(outputs, batch)
        return loss * float("nan") if poisoned.calls >= 2 else loss + 0 * poisoned.bump()

    poisoned.calls = 0

    def bump():
        poisoned.calls += 1
        return 0

    poisoned.bump = bump
    with pytest.raises(TrainingDiverged) as error:
        train(tiny_model(), synthetic_features(), poisoned, SETTINGS, log=lambda m: None)
    assert error.value.step == 2 and "nan" in str(error.value)


def test_optimizer_receives_every_setting():
    settings = TrainSettings(learning_rate=1e-3, beta1=0.8, beta2=0.95, epsilon=1e-7, weight_decay=0.05)
    optimizer = build_optimizer(tiny_model(), settings)
    decayed, plain = optimizer.param_groups
    assert decayed["lr"] == 1e-3 and decayed["betas"] == (0.8, 0.95) and decayed["eps"] == 1e-7
    assert decayed["weight_decay"] == 0.05 and plain["weight_decay"] == 0.0
    assert all(p.ndim >= 2 for p in decayed["params"]) and all(p.ndim == 1 for p in plain["params"])


class _RunsCodeWhenUnpickled:
    """What a planted state file would hold: unpickling it calls a function of the attacker's choice."""

    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path(__import__('os').environ['PLANTED_MARKER']).touch()",))


def test_a_planted_state_file_runs_no_code(tmp_path, monkeypatch):
    marker = tmp_path / "code-ran"
    monkeypatch.setenv("PLANTED_MARKER", str(marker))
    torch.save({"step": 3, "payload": _RunsCodeWhenUnpickled()}, tmp_path / loop.STATE_FILE)
    settings = TrainSettings(**{**SETTINGS.__dict__, "epochs": 1})
    with pytest.raises(RuntimeError, match="not a training state paretodistill wrote"):
        train(tiny_model(), synthetic_features(), hard_target_loss, settings, state_dir=tmp_path, log=lambda m: None)
    assert not marker.exists()


def test_progress_lines_give_an_eta():
    messages = []
    settings = TrainSettings(**{**SETTINGS.__dict__, "epochs": 1, "log_every_steps": 4})
    train(tiny_model(), synthetic_features(), hard_target_loss, settings, log=messages.append)
    progress = [m for m in messages if m.startswith("step ")]
    assert [m.split()[1] for m in progress] == ["4/8", "8/8"]
    assert all(", ETA " in m for m in progress) and progress[-1].endswith("ETA 0 s")


def test_durations_read_at_a_glance():
    from paretodistill.progress import format_duration, remaining_seconds, stage_eta

    assert remaining_seconds(elapsed=30.0, steps_done=10, steps_left=40) == 120.0
    assert [format_duration(s) for s in (12.4, 250, 3900, -3)] == ["12 s", "4 min 10 s", "1 h 05 min", "0 s"]
    # 6 trials left at 60 s each: 2 workers (1 running + the freed slot) take 3 minutes; none left: 0
    assert stage_eta(60.0, remaining=6, running=1) == 180.0 and stage_eta(60.0, remaining=0, running=2) == 0.0
    assert stage_eta(60.0, remaining=1, running=3) == 60.0

def test_fp16_trains_with_a_grad_scaler(monkeypatch):
    """fp16 (a GPU without native bf16) scales the loss: every step goes through the scaler, and it learns."""
    steps = []
    real_step = torch.amp.GradScaler.step

    def counting_step(self, optimizer, *args, **kwargs):
        steps.append(self.get_scale())
        return real_step(self, optimizer, *args, **kwargs)

    monkeypatch.setattr(torch.amp.GradScaler, "step", counting_step)
    settings = TrainSettings(**{**SETTINGS.__dict__, "epochs": 3})
    result = train(tiny_model(), synthetic_features(), hard_target_loss, settings, precision="fp16", log=lambda m: None)
    assert len(steps) == result.steps == 24
    assert result.curve[-1]["loss"] < 0.8 * result.curve[0]["loss"]
