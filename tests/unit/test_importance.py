"""Importance pruning: the gate-gradient scores see which units the teacher's answers use, leave the
teacher untouched, and decide what the student builder keeps."""

import pytest
import torch
from transformers import BertConfig, BertForQuestionAnswering

from paretodistill.errors import ModelMismatchError
from paretodistill.models.importance import UnitImportance, measure_importance
from paretodistill.models.student import StudentArchitecture, build_student, cuts_units

HIDDEN, HEADS, LAYERS, FFN, VOCAB = 32, 4, 2, 64, 50
HEAD_SIZE = HIDDEN // HEADS
DEAD_HEAD, DEAD_NEURONS = 1, [3, 10, 40]


@pytest.fixture(scope="module")
def teacher() -> BertForQuestionAnswering:
    """A tiny teacher whose head 1 and three FFN neurons of every layer write nothing: they cannot matter."""
    torch.manual_seed(0)
    config = BertConfig(vocab_size=VOCAB, hidden_size=HIDDEN, num_attention_heads=HEADS, num_hidden_layers=LAYERS,
                        intermediate_size=FFN, max_position_embeddings=32, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0)
    model = BertForQuestionAnswering(config).eval()
    with torch.no_grad():
        for layer in model.bert.encoder.layer:
            layer.attention.output.dense.weight[:, DEAD_HEAD * HEAD_SIZE:(DEAD_HEAD + 1) * HEAD_SIZE] = 0
            layer.output.dense.weight[:, DEAD_NEURONS] = 0
    return model


def batches(count: int = 3):
    generator = torch.Generator().manual_seed(1)
    for _ in range(count):
        ids = torch.randint(1, VOCAB, (4, 12), generator=generator)
        yield {"input_ids": ids, "attention_mask": torch.ones_like(ids),
               "start_positions": torch.randint(0, 12, (4,), generator=generator),
               "end_positions": torch.randint(0, 12, (4,), generator=generator)}


def test_units_that_write_nothing_score_zero_and_the_others_do_not(teacher):
    scores = measure_importance(teacher, batches())
    assert len(scores.heads) == LAYERS and all(len(layer) == HEADS for layer in scores.heads)
    assert all(len(layer) == FFN for layer in scores.neurons)
    for layer in range(LAYERS):
        assert scores.heads[layer][DEAD_HEAD] == 0.0
        assert all(scores.heads[layer][h] > 0 for h in range(HEADS) if h != DEAD_HEAD)
        assert all(scores.neurons[layer][n] == 0.0 for n in DEAD_NEURONS)
        assert sum(score > 0 for score in scores.neurons[layer]) >= FFN - len(DEAD_NEURONS) - 2  # GELU'd zeros aside


def test_scoring_leaves_the_teacher_as_it_was(teacher):
    ids = torch.arange(1, 13).unsqueeze(0)
    before = teacher(input_ids=ids).start_logits.detach().clone()
    teacher.train()
    measure_importance(teacher, batches(1))
    assert teacher.training  # mode restored
    teacher.eval()
    assert all(p.grad is None for p in teacher.parameters())
    assert torch.equal(teacher(input_ids=ids).start_logits, before)  # hooks removed: no gate left in the way


def test_top_keeps_the_highest_scores_in_index_order_and_breaks_ties_by_index():
    scores = UnitImportance(heads=((0.1, 0.9, 0.5, 0.9),), neurons=((1.0, 2.0),))
    assert scores.top("heads", 0, 2) == [1, 3]
    assert scores.top("heads", 0, 3) == [1, 2, 3]
    assert scores.top("ffn", 0, 5) == [0, 1]


def test_the_student_keeps_the_units_that_matter(teacher):
    scores = measure_importance(teacher, batches())
    arch = StudentArchitecture(2, 3, intermediate_size=FFN - len(DEAD_NEURONS), pruning="importance",
                               hidden_dropout=0.0, attention_dropout=0.0)
    student = build_student(teacher, arch, importance=scores)
    assert all(DEAD_HEAD not in kept for kept in student.config.kept_heads)
    assert student.config.pruning == "importance"
    # the kept neurons are the live ones: no FFN output column of the student is the teacher's zero one
    for layer in student.bert.encoder.layer:
        assert layer.output.dense.weight.abs().sum(0).min() > 0
    # random pruning keeps the dead head for some seeds: importance really chooses differently
    randoms = {tuple(map(tuple, build_student(teacher, StudentArchitecture(2, 3, pruning_seed=seed, pruning="random")).config.kept_heads))
               for seed in range(6)}
    assert any(DEAD_HEAD in kept for choice in randoms for kept in choice)


def test_the_builder_wants_scores_exactly_when_pruning_by_importance(teacher):
    scores = measure_importance(teacher, batches(1))
    with pytest.raises(ModelMismatchError, match="importance"):
        build_student(teacher, StudentArchitecture(2, 3, pruning="importance"))
    with pytest.raises(ModelMismatchError, match="importance"):
        build_student(teacher, StudentArchitecture(2, 3, pruning="random"), importance=scores)
    with pytest.raises(ModelMismatchError, match="pruning must be one of"):
        StudentArchitecture(2, 3, pruning="magnitude")


def test_a_student_that_cuts_nothing_needs_no_scores(teacher):
    whole = StudentArchitecture(2, HEADS, pruning="importance")  # every head and neuron of layers 0 and 1
    assert not cuts_units(teacher.config, whole)
    assert cuts_units(teacher.config, StudentArchitecture(2, HEADS - 1, pruning="random"))
    assert cuts_units(teacher.config, StudentArchitecture(2, HEADS, intermediate_size=FFN // 2, pruning="random"))
    assert not cuts_units(teacher.config, StudentArchitecture(2, 2, hidden_size=16, pruning="random"))  # a new width copies no layer
    assert build_student(teacher, whole).config.kept_heads == [[0, 1, 2, 3]] * 2


def test_no_batch_is_a_clear_error(teacher):
    with pytest.raises(ModelMismatchError, match="at least one labelled batch"):
        measure_importance(teacher, iter(()))


def test_a_search_scores_the_teacher_once_per_teacher_windows_and_seed(teacher, tmp_path, monkeypatch):
    import paretodistill.distill.teacher_importance as module
    from paretodistill.config import StudentSettings
    from paretodistill.data.features import Features

    teacher.save_pretrained(tmp_path / "teacher")
    lengths = [12, 10, 12, 9, 11, 12]
    ids = torch.randint(1, VOCAB, (sum(lengths),), generator=torch.Generator().manual_seed(2)).numpy()
    features = Features(input_ids=ids, token_type_ids=ids * 0, offsets=torch.zeros(len(ids), 2, dtype=torch.int32).numpy(),
                        row_starts=torch.tensor([0, *lengths]).cumsum(0).numpy(),
                        start_positions=torch.tensor([1, 0, 3, 2, 0, 5]).int().numpy(),
                        end_positions=torch.tensor([2, 0, 4, 2, 0, 7]).int().numpy(),
                        example_index=torch.arange(6).int().numpy())
    settings = StudentSettings(importance_windows=4, pruning_seed=3)
    arguments = dict(teacher_dir=tmp_path / "teacher", cache_dir=tmp_path / "cache")
    first = module.teacher_importance(teacher, features, settings, 2, **arguments)
    assert len(list((tmp_path / "cache" / "importance").glob("*.json"))) == 1

    def measured_again(*_args, **_kwargs):
        raise AssertionError("the teacher was scored again")

    monkeypatch.setattr(module, "measure_importance", measured_again)
    assert module.teacher_importance(teacher, features, settings, 2, **arguments) == first  # read back, equal
    with pytest.raises(AssertionError, match="scored again"):  # another sample of windows is another key
        module.teacher_importance(teacher, features, StudentSettings(importance_windows=4, pruning_seed=4), 2,
                                  **arguments)
