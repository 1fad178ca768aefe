"""The distillation levers for the no-answer decision: the null-score margin as a target, and the
no-answer windows weighed apart (``distillation.margin_weight``, ``distillation.no_answer_weight``).

Hand-made logits and one tiny student: the file runs in seconds.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import BertConfig, BertForQuestionAnswering

from paretodistill.config import DistillSettings, load_config
from paretodistill.data.features import Features
from paretodistill.distill.losses import (
    MASKED,
    hard_loss,
    margin_loss,
    null_margin,
    soft_loss,
    teacher_no_answer_weights,
)
from paretodistill.distill.objective import DistillationObjective
from paretodistill.distill.teacher_cache import TeacherLogits
from paretodistill.errors import ConfigError
from paretodistill.training.batching import Batch, collate

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------- the margin itself
def test_null_margin_of_hand_made_logits():
    # window 0: tokens 1..5 are context; the best valid span is start 2 (4.0) + end 3 (3.0) = 7;
    # start 4 (5.0) + end 3 would be higher but ends before it starts, end 5 (9.0) is outside the context
    start = torch.tensor([[1.0, 0.0, 4.0, 0.0, 5.0, 0.0, 0.0]])
    end = torch.tensor([[2.0, 0.0, 0.0, 3.0, 0.0, 9.0, 0.0]])
    context = torch.tensor([[0, 1, 1, 1, 1, 0, 0]])
    margin, has_span = null_margin(start, end, context)
    assert has_span.tolist() == [True]
    assert margin.item() == pytest.approx((1.0 + 2.0) - (4.0 + 3.0))
    # at most 1 token long: the best is then start 4 + end 4 = 5 (or start 2 + end 2 = 4)
    margin, _ = null_margin(start, end, context, max_answer_length=1)
    assert margin.item() == pytest.approx(3.0 - 5.0)
    # at most 2 tokens: start 2 + end 3 is again allowed (length 2)
    assert null_margin(start, end, context, max_answer_length=2)[0].item() == pytest.approx(-4.0)


def test_null_margin_against_a_brute_force_loop():
    generator = torch.Generator().manual_seed(0)
    start, end = torch.randn(4, 40, generator=generator), torch.randn(4, 40, generator=generator)
    context = (torch.rand(4, 40, generator=generator) > 0.3).long()
    margin, has_span = null_margin(start, end, context, max_answer_length=7)
    for b in range(4):
        best = max(start[b, s] + end[b, e] for s in range(1, 40) for e in range(s, min(s + 7, 40))
                   if context[b, s] and context[b, e])
        assert has_span[b]
        assert margin[b].item() == pytest.approx((start[b, 0] + end[b, 0] - best).item(), abs=1e-5)


def test_a_window_without_context_has_no_margin():
    margin, has_span = null_margin(torch.ones(1, 5), torch.ones(1, 5), torch.tensor([[1, 0, 0, 0, 0]]))
    assert has_span.tolist() == [False] and margin.item() == 0.0


def test_margin_loss_is_zero_at_the_teacher_and_its_gradient_moves_the_student_margin_toward_it():
    generator = torch.Generator().manual_seed(1)
    teacher_start, teacher_end = torch.randn(3, 20, generator=generator), torch.randn(3, 20, generator=generator)
    context = torch.ones(3, 20, dtype=torch.long)
    teacher_margin, has_span = null_margin(teacher_start, teacher_end, context)
    same = margin_loss(null_margin(teacher_start, teacher_end, context)[0], teacher_margin, has_span)
    assert same.item() == 0.0

    student_start = torch.randn(3, 20, generator=generator).requires_grad_(True)
    student_end = torch.randn(3, 20, generator=generator).requires_grad_(True)
    optimizer = torch.optim.SGD([student_start, student_end], lr=0.5)
    gaps = []
    for _ in range(20):
        margin, _ = null_margin(student_start, student_end, context)
        gaps.append((margin - teacher_margin).abs().detach())
        optimizer.zero_grad()
        margin_loss(margin, teacher_margin, has_span).backward()
        optimizer.step()
    assert bool((gaps[-1] < gaps[0]).all()), f"{gaps[0]} -> {gaps[-1]}"
    assert gaps[-1].max().item() < 0.1 * gaps[0].max().item()


# ---------------------------------------------------------------- the no-answer weight
def _logits(batch=4, length=10, seed=2):
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, length, generator=generator), torch.randn(batch, length, generator=generator)


def test_no_answer_weight_2_doubles_the_unanswerable_windows_share_of_the_hard_loss():
    start, end = _logits()
    mask = torch.ones(4, 10, dtype=torch.long)
    starts, ends = torch.tensor([0, 3, 0, 5]), torch.tensor([0, 4, 0, 6])  # windows 0 and 2: no answer

    def per_window(rows):
        return [hard_loss(start[[i]], end[[i]], starts[[i]], ends[[i]], mask[[i]]).item() for i in rows]

    unanswerable, answerable = per_window([0, 2]), per_window([1, 3])
    plain = hard_loss(start, end, starts, ends, mask)
    weighted = hard_loss(start, end, starts, ends, mask, no_answer_weight=2.0)
    assert plain.item() == pytest.approx((sum(unanswerable) + sum(answerable)) / 4)
    assert weighted.item() == pytest.approx((2 * sum(unanswerable) + sum(answerable)) / (2 * 2 + 2))


def test_soft_loss_weighs_the_windows_where_the_teacher_says_no_answer():
    student_start, student_end = _logits(seed=3)
    teacher_start, teacher_end = _logits(seed=4)
    teacher_start[1, 0] = teacher_end[1, 0] = 10.0  # window 1: the teacher's argmax is CLS at both ends
    teacher_start[2, 0] = 10.0  # window 2: only the start is CLS: an answer window
    mask = torch.ones(4, 10, dtype=torch.long)
    weights = teacher_no_answer_weights(teacher_start, teacher_end, mask, 3.0)
    assert weights.tolist() == [1.0, 3.0, 1.0, 1.0]

    def alone(i):
        return soft_loss(student_start[[i]], student_end[[i]], teacher_start[[i]], teacher_end[[i]], mask[[i]], 2.0).item()

    weighted = soft_loss(student_start, student_end, teacher_start, teacher_end, mask, 2.0, weights)
    assert weighted.item() == pytest.approx((alone(0) + 3 * alone(1) + alone(2) + alone(3)) / 6, rel=1e-5)
    unweighted = soft_loss(student_start, student_end, teacher_start, teacher_end, mask, 2.0, torch.ones(4))
    assert unweighted.item() == pytest.approx(soft_loss(student_start, student_end, teacher_start, teacher_end, mask,
                                                        2.0).item(), rel=1e-6)


# ---------------------------------------------------------------- the objective
def _tiny_student() -> BertForQuestionAnswering:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=16, num_attention_heads=2, num_hidden_layers=1,
                        intermediate_size=32, max_position_embeddings=32, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    return BertForQuestionAnswering(config).eval()


def _features() -> Features:
    """Three windows of 12, 9 and 12 tokens: question tokens 0..3 (offsets -1), context after them."""
    lengths = [12, 9, 12]
    offsets = np.concatenate([np.array([[-1, -1]] * 4 + [[i, i + 1] for i in range(n - 5)] + [[-1, -1]]) for n in lengths])
    generator = np.random.default_rng(5)
    tokens = sum(lengths)
    return Features(
        input_ids=generator.integers(1, 50, tokens).astype(np.int32), token_type_ids=np.zeros(tokens, np.int8),
        offsets=offsets.astype(np.int32), row_starts=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        start_positions=np.array([5, 0, 0], np.int32), end_positions=np.array([6, 0, 0], np.int32),
        example_index=np.arange(3, dtype=np.int32),
    )


def _teacher_logits(features: Features) -> TeacherLogits:
    generator = np.random.default_rng(6)
    tokens = features.num_tokens()
    start, end = generator.normal(size=tokens).astype(np.float16), generator.normal(size=tokens).astype(np.float16)
    start[12], end[12] = 8.0, 8.0  # window 1 (tokens 12..20): the teacher says no answer
    return TeacherLogits(start, end, features.row_starts)


def test_collate_marks_the_context_tokens():
    batch = collate(_features(), np.array([1, 0]))
    assert batch.context_mask[0].tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0]
    assert batch.context_mask[1, :12].tolist() == [0] * 4 + [1] * 7 + [0]


def _loss(settings: DistillSettings) -> torch.Tensor:
    features = _features()
    student = _tiny_student()
    batch = collate(features, np.array([0, 1, 2]))
    objective = DistillationObjective(student, settings, _teacher_logits(features))
    with torch.no_grad():
        return objective(student(**batch.model_inputs()), batch)


def _todays_loss(settings: DistillSettings) -> torch.Tensor:
    """The loss as the objective computed it before the decision levers: soft KL x T² and hard CE, written out."""
    features = _features()
    student = _tiny_student()
    batch = collate(features, np.array([0, 1, 2]))
    teacher_start, teacher_end = _teacher_logits(features).gather(batch.indices, batch.attention_mask.shape[1])
    with torch.no_grad():
        outputs = student(**batch.model_inputs())

    def masked(logits):
        return logits.float().masked_fill(batch.attention_mask == 0, MASKED)

    def kl(s, t):
        t_ = settings.temperature
        return F.kl_div(F.log_softmax(masked(s) / t_, -1), F.log_softmax(masked(t) / t_, -1), log_target=True,
                        reduction="batchmean") * t_**2

    soft = (kl(outputs.start_logits, teacher_start) + kl(outputs.end_logits, teacher_end)) / 2
    hard = ((F.cross_entropy(masked(outputs.start_logits), batch.start_positions, reduction="none")
             + F.cross_entropy(masked(outputs.end_logits), batch.end_positions, reduction="none")) / 2).mean()
    return settings.soft_weight * soft + settings.hard_weight * hard


def test_with_the_levers_off_the_loss_is_todays_to_the_digit():
    settings = DistillSettings(soft_weight=0.6, hard_weight=0.4, temperature=2.0)
    assert settings.margin_weight == 0.0 and settings.no_answer_weight == 1.0
    assert _loss(settings).item() == _todays_loss(settings).item()


def test_each_lever_changes_the_objective_by_its_own_term():
    base = DistillSettings(soft_weight=0.5, hard_weight=0.5)
    plain = _loss(base).item()
    with_margin = _loss(DistillSettings(soft_weight=0.5, hard_weight=0.5, margin_weight=0.3)).item()
    assert with_margin > plain
    margin_only = _loss(DistillSettings(soft_weight=0.0, hard_weight=0.0, margin_weight=1.0)).item()
    assert with_margin == pytest.approx(plain + 0.3 * margin_only, rel=1e-6)
    assert _loss(DistillSettings(soft_weight=0.5, hard_weight=0.5, no_answer_weight=2.0)).item() != pytest.approx(plain)


def test_the_margin_alone_is_a_loss_and_a_zero_no_answer_weight_is_refused():
    assert _loss(DistillSettings(soft_weight=0.0, hard_weight=0.0, margin_weight=1.0)).item() > 0
    with pytest.raises(ConfigError, match="no_answer_weight"):
        DistillSettings(no_answer_weight=0.0)
    with pytest.raises(ConfigError, match="margin_weight"):
        DistillSettings(margin_weight=-1.0)
    with pytest.raises(ValueError, match="teacher logits"):
        DistillationObjective(_tiny_student(), DistillSettings(soft_weight=0.0, hard_weight=1.0, margin_weight=1.0), None)


def test_the_levers_are_dotted_settings(tmp_path):
    config = load_config(None, ["distillation.margin_weight=0.25", "distillation.no_answer_weight=2"])
    assert config.distillation.margin_weight == 0.25 and config.distillation.no_answer_weight == 2.0
    with pytest.raises(ConfigError, match="no_answer_weight"):
        load_config(None, ["distillation.no_answer_weight=0"])


def test_a_batch_built_by_hand_has_no_context_mask_and_the_margin_uses_every_real_token():
    ids = torch.randint(1, 50, (2, 8), generator=torch.Generator().manual_seed(7))
    mask = torch.ones_like(ids)
    mask[1, 5:] = 0
    batch = Batch(np.array([0, 1]), ids, torch.zeros_like(ids), mask, torch.tensor([2, 0]), torch.tensor([3, 0]))
    assert batch.context_mask is None and batch.to(torch.device("cpu")).context_mask is None
    student = _tiny_student()
    with torch.no_grad():
        outputs = student(**batch.model_inputs())
    teacher_start, teacher_end = outputs.start_logits + 1.0, outputs.end_logits.clone()
    teacher_start[:, 0] += 3.0  # the teacher's margin is the student's + 3: (CLS + 1 + 3) - (best span + 1)
    term = DistillationObjective.margin_term(outputs, batch, teacher_start, teacher_end)
    assert term.item() == pytest.approx(3.0 - 0.5)  # smooth-L1 beyond beta 1: |d| - 0.5


DATA = Path(__file__).resolve().parents[2].parent / "shared/data/squad2/dev-v2.0.json"


@pytest.mark.skipif(not DATA.exists(), reason=f"{DATA} is not there")
def test_the_distill_command_takes_them_by_set_and_refuses_a_bad_one_in_one_line(tmp_path, capsys):
    from paretodistill.cli import main

    code = main(["distill", "--preset", "smoke", "--data", str(DATA), "--out", str(tmp_path / "run"),
                 "--set", "distillation.margin_weight=0.1", "--set", "distillation.no_answer_weight=0"])
    err = capsys.readouterr().err
    assert code == 2 and err.strip().count("\n") == 0
    assert "distillation.no_answer_weight: expected a number > 0, got 0" in err
    assert not (tmp_path / "run" / "metrics.json").exists()
