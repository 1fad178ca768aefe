"""Student construction: layer map, seeded copies, pruning, init, dropouts, save/reload."""

import copy
import dataclasses
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from transformers import (
    AutoModelForQuestionAnswering,
    BertConfig,
    BertForQuestionAnswering,
    BertForSequenceClassification,
)

from paretodistill.errors import ModelMismatchError
from paretodistill.models.pruned_bert import PrunedBertConfig, PrunedBertForQuestionAnswering
from paretodistill.models.saving import save_with_code
from paretodistill.models.student import (
    StudentArchitecture,
    build_student,
    count_parameters,
    expected_parameter_count,
    factorize_table,
    layer_map,
)
from paretodistill.models.vocabulary import KeptVocabulary, corpus_token_ids, corpus_vocabulary

HIDDEN, HEADS, LAYERS, FFN, VOCAB = 64, 4, 4, 128, 100
HEAD_SIZE = HIDDEN // HEADS
NO_DROPOUT = dict(hidden_dropout=0.0, attention_dropout=0.0, qa_dropout=0.0)


def tiny_bert_config(**overrides) -> BertConfig:
    fields = dict(
        vocab_size=VOCAB,
        hidden_size=HIDDEN,
        num_attention_heads=HEADS,
        num_hidden_layers=LAYERS,
        intermediate_size=FFN,
        max_position_embeddings=32,
    )
    return BertConfig(**{**fields, **overrides})


@pytest.fixture(scope="module")
def teacher() -> BertForQuestionAnswering:
    torch.manual_seed(0)
    model = BertForQuestionAnswering(tiny_bert_config()).eval()
    # Non-trivial LayerNorms and biases, so that copying them is actually checked.
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "LayerNorm" in name or name.endswith("bias"):
                param.add_(0.1 * torch.randn_like(param))
    return model


@pytest.fixture(scope="module")
def batch() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(1, VOCAB, (2, 9), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 6:] = 0  # padding exercises the attention mask
    token_type_ids = torch.zeros_like(input_ids)
    token_type_ids[:, 4:] = 1
    return dict(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)


def logits(model, batch) -> torch.Tensor:
    out = model(**batch)
    return torch.stack([out.start_logits, out.end_logits])


# --- layer map --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("teacher_layers", "student_layers", "expected"),
    [
        (6, 3, [0, 2, 4]),
        (12, 6, [0, 2, 4, 6, 8, 10]),
        (6, 6, [0, 1, 2, 3, 4, 5]),
        (6, 8, [0, 1, 2, 3, 4, 5, None, None]),
        (12, 4, [0, 3, 6, 9]),
        (6, 4, [0, 1, 3, 4]),
        (6, 1, [0]),
    ],
)
def test_layer_map(teacher_layers, student_layers, expected):
    assert layer_map(teacher_layers, student_layers) == expected


@pytest.mark.parametrize(
    ("selection", "teacher_layers", "student_layers", "expected"),
    [
        ("bottom", 6, 3, [0, 1, 2]),
        ("ends", 6, 3, [0, 2, 5]),
        ("ends", 6, 2, [0, 5]),
        ("ends", 12, 4, [0, 3, 7, 11]),
        ("ends", 6, 1, [0]),
        ("bottom", 6, 8, [0, 1, 2, 3, 4, 5, None, None]),
    ],
)
def test_layer_selection(selection, teacher_layers, student_layers, expected):
    assert layer_map(teacher_layers, student_layers, selection) == expected
    with pytest.raises(ModelMismatchError, match="layer selection"):
        layer_map(6, 3, "top")


def test_an_architecture_is_the_student_settings_field_for_field(teacher):
    """One set of defaults, the config's: an architecture named by its size alone is the default
    [student] section's, and every other setting reaches it under its own name."""
    from paretodistill.config import StudentSettings

    assert StudentArchitecture(2, HEADS) == StudentArchitecture.from_settings(StudentSettings(num_layers=2), teacher.config)
    settings = StudentSettings(num_layers=3, heads_per_layer=2, pruning_seed=7, attention_dropout=0.2, pruning="random")
    arch = StudentArchitecture.from_settings(settings, teacher.config)
    assert (arch.num_layers, arch.heads_per_layer, arch.pruning_seed, arch.attention_dropout, arch.pruning) == (
        3, 2, 7, 0.2, "random")


def test_layer_selection_seeds_and_is_recorded(teacher):
    student = build_student(teacher, StudentArchitecture(num_layers=2, heads_per_layer=HEADS, layer_selection="ends", pruning="random"))
    assert student.config.seeded_from == [0, LAYERS - 1] and student.config.layer_selection == "ends"
    top = teacher.bert.encoder.layer[LAYERS - 1].output.dense.weight
    assert torch.equal(student.bert.encoder.layer[1].output.dense.weight, top)
    with pytest.raises(ModelMismatchError, match="layer_selection"):
        StudentArchitecture(num_layers=2, heads_per_layer=HEADS, layer_selection="random", pruning="random")


def test_layer_map_rejects_empty_models():
    with pytest.raises(ModelMismatchError, match="layer counts must be >= 1"):
        layer_map(6, 0)


# --- parameter counts -------------------------------------------------------------------------

ARCHITECTURES = [
    StudentArchitecture(num_layers=4, heads_per_layer=4, pruning="random"),  # a copy of the teacher
    StudentArchitecture(num_layers=4, heads_per_layer=2, pruning="random"),  # pruned heads
    StudentArchitecture(num_layers=2, heads_per_layer=4, pruning="random"),  # fewer layers
    StudentArchitecture(num_layers=6, heads_per_layer=3, pruning="random"),  # more layers, pruned heads
    StudentArchitecture(num_layers=3, heads_per_layer=1, intermediate_size=40, pruning="random"),  # smaller FFN
    StudentArchitecture(num_layers=2, heads_per_layer=2, intermediate_size=200, pruning="random"),  # wider FFN
    StudentArchitecture(num_layers=3, heads_per_layer=3, hidden_size=48, intermediate_size=96, pruning="random"),
    StudentArchitecture(num_layers=2, heads_per_layer=4, qa_dropout=0.1, pruning="random"),
]


@pytest.mark.parametrize("arch", ARCHITECTURES, ids=repr)
def test_parameter_count_matches_closed_form(teacher, arch):
    student = build_student(teacher, arch)
    assert count_parameters(student) == expected_parameter_count(teacher.config, arch)


def test_closed_form_by_hand(teacher):
    # 2 layers, 3 heads of 16 (width 48), FFN 40: written out independently of the code.
    h, w, f = HIDDEN, 3 * HEAD_SIZE, 40
    embeddings = VOCAB * h + 32 * h + 2 * h + 2 * h
    layer = 3 * (h * w + w) + (w * h + h) + 2 * h + (h * f + f) + (f * h + h) + 2 * h
    arch = StudentArchitecture(num_layers=2, heads_per_layer=3, intermediate_size=f, pruning="random")
    assert expected_parameter_count(teacher.config, arch) == embeddings + 2 * layer + 2 * h + 2
    full = StudentArchitecture(num_layers=LAYERS, heads_per_layer=HEADS, pruning="random")
    assert expected_parameter_count(teacher.config, full) == count_parameters(teacher)


def test_pruning_reduces_parameter_count(teacher):
    full = count_parameters(build_student(teacher, StudentArchitecture(num_layers=4, heads_per_layer=4, pruning="random")))
    fewer_heads = count_parameters(build_student(teacher, StudentArchitecture(4, heads_per_layer=2, pruning="random")))
    smaller_ffn = StudentArchitecture(num_layers=4, heads_per_layer=2, intermediate_size=64, pruning="random")
    assert count_parameters(build_student(teacher, smaller_ffn)) < fewer_heads < full


def test_plain_bert_when_nothing_is_pruned(teacher):
    student = build_student(teacher, StudentArchitecture(num_layers=2, heads_per_layer=HEADS, pruning="random"))
    assert type(student) is BertForQuestionAnswering
    assert student.config._attn_implementation == "sdpa"
    # qa_dropout needs the pruned class, even when nothing is pruned
    with_qa_dropout = build_student(teacher, StudentArchitecture(2, HEADS, qa_dropout=0.1, pruning="random"))
    assert type(with_qa_dropout) is PrunedBertForQuestionAnswering
    assert set(with_qa_dropout.state_dict()) == set(student.state_dict())


# --- pruning seeds and seeded copies ----------------------------------------------------------


def test_same_seed_same_student_different_seeds_differ(teacher):
    arch = StudentArchitecture(num_layers=4, heads_per_layer=2, intermediate_size=64, pruning_seed=7, pruning="random")
    first, second = build_student(teacher, arch), build_student(teacher, arch)
    assert first.config.kept_heads == second.config.kept_heads
    for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    kept = {
        seed: build_student(teacher, dataclasses.replace(arch, pruning_seed=seed)).config.kept_heads
        for seed in range(6)
    }
    assert len({json.dumps(k) for k in kept.values()}) > 1
    for layers in kept.values():
        assert all(len(heads) == 2 and heads == sorted(set(heads)) for heads in layers)


def _kept_neurons(teacher_layer, student_layer) -> list[int]:
    """Which teacher FFN neurons a student layer holds, found by exact row equality."""
    teacher_rows = teacher_layer.intermediate.dense.weight
    found = []
    for row in student_layer.intermediate.dense.weight:
        matches = [i for i, candidate in enumerate(teacher_rows) if torch.equal(candidate, row)]
        assert len(matches) == 1, "every student neuron must be an exact copy of one teacher neuron"
        found.append(matches[0])
    return found


@pytest.mark.parametrize("num_layers", [4, 2])
def test_seeded_layers_are_exact_slices(teacher, num_layers):
    arch = StudentArchitecture(num_layers=num_layers, heads_per_layer=2, intermediate_size=96, pruning_seed=3, pruning="random")
    student = build_student(teacher, arch)
    assert student.config.seeded_from == layer_map(LAYERS, num_layers)
    s_embeddings, t_embeddings = student.bert.embeddings, teacher.bert.embeddings
    assert torch.equal(s_embeddings.word_embeddings.weight, t_embeddings.word_embeddings.weight)
    assert torch.equal(student.qa_outputs.weight, teacher.qa_outputs.weight)
    for i, t in enumerate(student.config.seeded_from):
        s_layer, t_layer = student.bert.encoder.layer[i], teacher.bert.encoder.layer[t]
        kept = student.config.kept_heads[i]
        rows = torch.cat([torch.arange(h * HEAD_SIZE, (h + 1) * HEAD_SIZE) for h in kept])
        for name in ("query", "key", "value"):
            s_linear, t_linear = getattr(s_layer.attention.self, name), getattr(t_layer.attention.self, name)
            assert torch.equal(s_linear.weight, t_linear.weight[rows])
            assert torch.equal(s_linear.bias, t_linear.bias[rows])
        s_output, t_output = s_layer.attention.output, t_layer.attention.output
        assert torch.equal(s_output.dense.weight, t_output.dense.weight[:, rows])
        assert torch.equal(s_output.LayerNorm.bias, t_output.LayerNorm.bias)
        neurons = _kept_neurons(t_layer, s_layer)
        assert neurons == sorted(neurons)
        assert torch.equal(s_layer.output.dense.weight, t_layer.output.dense.weight[:, neurons])
        assert torch.equal(s_layer.output.LayerNorm.weight, t_layer.output.LayerNorm.weight)


@pytest.mark.parametrize("num_layers", [4, 2])
def test_pruned_student_computes_the_teacher_with_removed_units_zeroed(teacher, batch, num_layers):
    """Removing heads and neurons equals keeping them in the teacher with their outputs zeroed.

    Zeroing a head's value rows makes its attention output exactly zero whatever its attention
    pattern; zeroing a neuron's output column removes its contribution. The reference teacher
    runs only the mapped layers. Agreement (to float rounding) shows the right slices were kept.
    """
    arch = StudentArchitecture(num_layers=num_layers, heads_per_layer=2, intermediate_size=96, **NO_DROPOUT, pruning="random")
    student = build_student(teacher, arch)
    reference = copy.deepcopy(teacher)
    with torch.no_grad():
        layers = []
        for i, t in enumerate(student.config.seeded_from):
            layer = reference.bert.encoder.layer[t]
            for head in set(range(HEADS)) - set(student.config.kept_heads[i]):
                layer.attention.self.value.weight[head * HEAD_SIZE : (head + 1) * HEAD_SIZE] = 0
                layer.attention.self.value.bias[head * HEAD_SIZE : (head + 1) * HEAD_SIZE] = 0
            kept = set(_kept_neurons(teacher.bert.encoder.layer[t], student.bert.encoder.layer[i]))
            layer.output.dense.weight[:, sorted(set(range(FFN)) - kept)] = 0
            layers.append(layer)
        reference.bert.encoder.layer = torch.nn.ModuleList(layers)
        reference.config.num_hidden_layers = num_layers
        expected = reference(**batch, output_hidden_states=True)
        actual = student(**batch, output_hidden_states=True)
    assert len(actual.hidden_states) == num_layers + 1
    for a, e in zip(actual.hidden_states, expected.hidden_states, strict=True):
        torch.testing.assert_close(a, e, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(actual.start_logits, expected.start_logits, atol=1e-5, rtol=1e-5)
    # and the pruning did change the function
    assert not torch.allclose(logits(student, batch), logits(teacher, batch), atol=1e-3)


def test_pruned_teacher_can_be_pruned_again(teacher):
    first = build_student(teacher, StudentArchitecture(3, heads_per_layer=3, intermediate_size=100, pruning="random"))
    arch = StudentArchitecture(num_layers=2, heads_per_layer=2, intermediate_size=50, pruning="random")
    second = build_student(first, arch)
    assert count_parameters(second) == expected_parameter_count(first.config, arch)
    with pytest.raises(ModelMismatchError, match="exceeds the 3 heads of seed layer 0"):
        build_student(first, StudentArchitecture(num_layers=2, heads_per_layer=4, pruning="random"))


# --- fresh initialisation ---------------------------------------------------------------------


def test_extra_layers_are_initialised_with_initializer_range(teacher):
    arch = StudentArchitecture(num_layers=6, heads_per_layer=4, initializer_range=0.05, pruning_seed=2, pruning="random")
    student = build_student(teacher, arch)
    assert student.config.seeded_from == [0, 1, 2, 3, None, None]
    assert student.config.initializer_range == 0.05
    for layer in student.bert.encoder.layer[4:]:
        for linear in (layer.attention.self.query, layer.attention.output.dense, layer.intermediate.dense):
            assert linear.weight.std().item() == pytest.approx(0.05, rel=0.1)
            assert linear.weight.mean().abs().item() < 0.005
            assert torch.count_nonzero(linear.bias) == 0
        assert torch.equal(layer.output.LayerNorm.weight, torch.ones(HIDDEN))
        assert torch.count_nonzero(layer.output.LayerNorm.bias) == 0
    # Same seed, doubled range: the same draws, scaled; seeded layers untouched.
    doubled = build_student(teacher, dataclasses.replace(arch, initializer_range=0.1))
    torch.testing.assert_close(
        doubled.bert.encoder.layer[5].intermediate.dense.weight,
        2 * student.bert.encoder.layer[5].intermediate.dense.weight,
    )
    seeded = doubled.bert.encoder.layer[3].output.dense.weight
    assert torch.equal(seeded, teacher.bert.encoder.layer[3].output.dense.weight)


def test_wider_ffn_keeps_teacher_neurons_and_initialises_the_rest(teacher):
    arch = StudentArchitecture(2, HEADS, intermediate_size=FFN + 64, initializer_range=0.03, pruning="random")
    student = build_student(teacher, arch)
    s_dense = student.bert.encoder.layer[1].intermediate.dense
    t_dense = teacher.bert.encoder.layer[2].intermediate.dense
    assert torch.equal(s_dense.weight[:FFN], t_dense.weight)
    assert s_dense.weight[FFN:].std().item() == pytest.approx(0.03, rel=0.15)
    assert torch.count_nonzero(s_dense.bias[FFN:]) == 0


def test_other_hidden_size_is_fresh_bert(teacher):
    arch = StudentArchitecture(num_layers=2, heads_per_layer=2, hidden_size=32, initializer_range=0.04, pruning="random")
    student = build_student(teacher, arch)
    assert type(student) is BertForQuestionAnswering
    assert student.config.num_attention_heads == 2 and student.config.intermediate_size == FFN
    assert student.config.kept_heads == [None, None] and student.config.seeded_from == [None, None]
    assert student.bert.embeddings.word_embeddings.weight.std().item() == pytest.approx(0.04, rel=0.15)
    assert torch.count_nonzero(student.bert.embeddings.word_embeddings.weight[0]) == 0  # padding row


# --- dropouts ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "config_key"),
    [
        ("hidden_dropout", "hidden_dropout_prob"),
        ("attention_dropout", "attention_probs_dropout_prob"),
        ("qa_dropout", "qa_dropout"),
    ],
)
def test_each_dropout_acts_in_training_only(teacher, batch, field, config_key):
    base = StudentArchitecture(num_layers=2, heads_per_layer=2, **NO_DROPOUT, pruning="random")
    plain = build_student(teacher, base)
    dropped = build_student(teacher, dataclasses.replace(base, **{field: 0.5}))
    assert getattr(dropped.config, config_key) == 0.5
    with torch.no_grad():
        reference = logits(plain, batch)
        torch.testing.assert_close(logits(dropped, batch), reference, rtol=0, atol=0)  # eval: no effect
        plain.train()
        dropped.train()
        torch.testing.assert_close(logits(plain, batch), reference, rtol=0, atol=0)  # no dropout at all
        torch.manual_seed(0)
        assert not torch.allclose(logits(dropped, batch), reference, atol=1e-4)


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (dict(num_layers=0), "num_layers must be >= 1"),
        (dict(num_layers=2.0), "num_layers must be an integer"),
        (dict(heads_per_layer=0), "heads_per_layer must be >= 1"),
        (dict(heads_per_layer=5), "heads_per_layer 5 exceeds the seed's 4 attention heads"),
        (dict(hidden_size=50), "hidden_size 50 is not divisible by heads_per_layer 4"),
        (dict(hidden_size=-8), "hidden_size must be >= 1"),
        (dict(intermediate_size=0), "intermediate_size must be >= 1"),
        (dict(hidden_dropout=1.0), r"hidden_dropout must be in \[0, 1\)"),
        (dict(attention_dropout=-0.1), r"attention_dropout must be in \[0, 1\)"),
        (dict(qa_dropout=1.5), r"qa_dropout must be in \[0, 1\)"),
        (dict(initializer_range=0.0), "initializer_range must be > 0"),
        (dict(initializer_range=-0.02), "initializer_range must be > 0"),
    ],
)
def test_impossible_architectures_are_rejected(teacher, fields, message):
    def attempt():
        arch = StudentArchitecture(**{"num_layers": 2, "heads_per_layer": 4, **fields}, pruning="random")
        arch.validate(teacher.config)
        build_student(teacher, arch)

    with pytest.raises(ModelMismatchError, match=message):
        attempt()


def test_same_hidden_size_does_not_need_divisible_heads(teacher):
    arch = StudentArchitecture(num_layers=2, heads_per_layer=3, hidden_size=HIDDEN, pruning="random")  # 3 heads of 16
    assert count_parameters(build_student(teacher, arch)) == expected_parameter_count(teacher.config, arch)


def test_a_seed_without_a_qa_head_seeds_the_encoder_and_the_head_starts_fresh():
    torch.manual_seed(0)
    classifier = BertForSequenceClassification(tiny_bert_config())
    student = build_student(classifier, StudentArchitecture(num_layers=2, heads_per_layer=HEADS, pruning="random"))
    assert torch.equal(student.bert.encoder.layer[1].output.dense.weight,
                       classifier.bert.encoder.layer[2].output.dense.weight)
    fresh = build_student(classifier, StudentArchitecture(num_layers=2, heads_per_layer=HEADS, pruning_seed=1, pruning="random"))
    assert not torch.equal(student.qa_outputs.weight, fresh.qa_outputs.weight)  # drawn from pruning_seed


def test_a_model_of_no_supported_family_cannot_seed():
    from transformers import GPT2Config, GPT2Model

    with pytest.raises(ModelMismatchError, match="the seed is a 'gpt2' model"):
        build_student(GPT2Model(GPT2Config(n_embd=32, n_layer=1, n_head=2, vocab_size=50)),
                      StudentArchitecture(num_layers=1, heads_per_layer=2, pruning="random"))


# --- pruned BERT model: attention backends and reloading --------------------------------------


def test_sdpa_and_eager_agree_with_per_layer_heads(batch):
    torch.manual_seed(0)
    config = PrunedBertConfig(
        **tiny_bert_config().to_diff_dict() | dict(num_hidden_layers=3),
        heads_per_layer=[1, 3, 4],
        intermediate_sizes=[16, FFN, 200],
        attn_implementation="sdpa",
    )
    model = PrunedBertForQuestionAnswering(config).eval()
    assert [layer.attention.self.query.out_features for layer in model.bert.encoder.layer] == [16, 48, 64]
    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")
    assert (model.config._attn_implementation, eager.config._attn_implementation) == ("sdpa", "eager")
    with torch.no_grad():
        torch.testing.assert_close(logits(model, batch), logits(eager, batch), atol=1e-5, rtol=1e-5)


def test_sdpa_and_eager_agree_for_pruned_student(teacher, batch):
    student = build_student(teacher, StudentArchitecture(3, heads_per_layer=1, intermediate_size=50, pruning="random"))
    eager = copy.deepcopy(student)
    eager.set_attn_implementation("eager")
    with torch.no_grad():
        torch.testing.assert_close(logits(student, batch), logits(eager, batch), atol=1e-5, rtol=1e-5)


def test_pruned_config_rejects_inconsistent_layers():
    with pytest.raises(ValueError, match="heads_per_layer has 1 entries but num_hidden_layers is 4"):
        PrunedBertConfig(**tiny_bert_config().to_diff_dict(), heads_per_layer=[2])


_RELOAD_SCRIPT = textwrap.dedent(
    """
    import sys

    class BlockParetodistill:  # the checkpoint must load without paretodistill
        def find_spec(self, name, path=None, target=None):
            if name == "paretodistill" or name.startswith("paretodistill."):
                raise ImportError("paretodistill is blocked in this test")

    sys.meta_path.insert(0, BlockParetodistill())
    import torch
    from transformers import AutoModelForQuestionAnswering

    checkpoint, inputs, output = sys.argv[1:4]
    model = AutoModelForQuestionAnswering.from_pretrained(checkpoint, trust_remote_code=True).eval()
    batch = torch.load(inputs)
    with torch.no_grad():
        out = model(**batch)
    torch.save(
        {"class": type(model).__name__, "module": type(model).__module__,
         "kept_heads": model.config.kept_heads,
         "logits": torch.stack([out.start_logits, out.end_logits])},
        output,
    )
    """
)


def test_saved_pruned_student_reloads_without_paretodistill(teacher, batch, tmp_path):
    arch = StudentArchitecture(3, heads_per_layer=2, intermediate_size=72, qa_dropout=0.2, pruning_seed=5, pruning="random")
    student = build_student(teacher, arch)
    checkpoint = save_with_code(student, tmp_path / "student")
    assert (checkpoint / "pruned_bert.py").is_file()
    auto_map = json.loads((checkpoint / "config.json").read_text())["auto_map"]
    assert auto_map["AutoModelForQuestionAnswering"] == "pruned_bert.PrunedBertForQuestionAnswering"
    with torch.no_grad():
        expected = logits(student, batch)

    # In this process the registered classes are used.
    reloaded = AutoModelForQuestionAnswering.from_pretrained(checkpoint).eval()
    assert type(reloaded) is PrunedBertForQuestionAnswering
    assert reloaded.config.kept_heads == student.config.kept_heads
    with torch.no_grad():
        torch.testing.assert_close(logits(reloaded, batch), expected, rtol=0, atol=0)

    # In a fresh Python, through the copied code.
    torch.save(batch, tmp_path / "batch.pt")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_MODULES_CACHE=str(tmp_path / "modules"), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    result = subprocess.run(
        [sys.executable, "-c", _RELOAD_SCRIPT, str(checkpoint), str(tmp_path / "batch.pt"),
         str(tmp_path / "out.pt")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    out = torch.load(tmp_path / "out.pt")
    assert out["class"] == "PrunedBertForQuestionAnswering"
    assert out["module"].startswith("transformers_modules.")  # the copied file, not paretodistill
    assert out["kept_heads"] == student.config.kept_heads
    torch.testing.assert_close(out["logits"], expected, rtol=0, atol=0)


def test_saved_plain_student_needs_no_code(teacher, batch, tmp_path):
    student = build_student(teacher, StudentArchitecture(num_layers=2, heads_per_layer=HEADS, pruning="random"))
    checkpoint = save_with_code(student, tmp_path / "plain")
    assert not (checkpoint / "pruned_bert.py").exists()
    reloaded = AutoModelForQuestionAnswering.from_pretrained(checkpoint).eval()
    assert type(reloaded) is BertForQuestionAnswering
    assert reloaded.config.seeded_from == [0, 2]
    with torch.no_grad():
        torch.testing.assert_close(logits(reloaded, batch), logits(student, batch), rtol=0, atol=0)


def test_load_qa_model_reads_a_pruned_student_in_a_fresh_process(teacher, tmp_path):
    """`evaluate` and `analyze` load students through ``load_qa_model``: in a fresh Python that must
    use paretodistill's registered class, not stop at transformers' trust_remote_code prompt."""
    student = build_student(teacher, StudentArchitecture(2, heads_per_layer=2, pruning_seed=3, pruning="random"))
    checkpoint = save_with_code(student, tmp_path / "student")
    script = ("import sys; from paretodistill.models.loading import load_qa_model; "
              "m = load_qa_model(sys.argv[1]); print(type(m).__name__, m.config.kept_heads)")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", script, str(checkpoint)], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[0] == "PrunedBertForQuestionAnswering"


def test_a_bf16_checkpoint_loads_as_float32_with_the_same_rounded_weights(teacher, tmp_path):
    """The shipped teacher is stored in bf16; training and CPU timing expect float32 weights."""
    from paretodistill.models.loading import load_qa_model

    halved = copy.deepcopy(teacher).to(torch.bfloat16)
    halved.save_pretrained(tmp_path / "bf16")
    loaded = load_qa_model(tmp_path / "bf16")
    assert {p.dtype for p in loaded.parameters()} == {torch.float32}
    expected = dict(halved.named_parameters())
    for name, parameter in loaded.named_parameters():
        assert torch.equal(parameter, expected[name].float()), name


# --- AutoDistill's template: bottleneck, stacked FFNs, factorized and pruned embeddings -------

KEPT = KeptVocabulary(tuple(range(0, VOCAB, 3)), unknown_id=3)  # 0, 3, ..., 99: 34 tokens

TEMPLATES = [
    (StudentArchitecture(2, 4, bottleneck_size=32, pruning="random"), None),
    (StudentArchitecture(3, 2, bottleneck_size=32, intermediate_size=48, stacked_ffn=4, pruning="random"), None),
    (StudentArchitecture(2, 2, stacked_ffn=3, pruning="random"), None),  # seeded layers, extra FFN blocks
    (StudentArchitecture(2, 4, embedding_size=16, pruning="random"), None),
    (StudentArchitecture(2, 4, vocabulary="corpus", pruning="random"), KEPT),
    (StudentArchitecture(2, 4, embedding_size=HIDDEN, vocabulary="corpus", pruning="random"), KEPT),  # E = hidden: no projection
    (StudentArchitecture(3, 4, hidden_size=48, bottleneck_size=24, stacked_ffn=2, embedding_size=12,
                         vocabulary="corpus", pruning="random"), KEPT),
    (StudentArchitecture(2, 2, bottleneck_size=HIDDEN, embedding_size=8, vocabulary="corpus", pruning="random"), KEPT),
]


@pytest.mark.parametrize(("arch", "vocabulary"), TEMPLATES, ids=repr)
def test_template_parameter_count_matches_closed_form(teacher, arch, vocabulary):
    student = build_student(teacher, arch, vocabulary)
    assert type(student) is PrunedBertForQuestionAnswering
    assert count_parameters(student) == expected_parameter_count(teacher.config, arch, vocabulary)


def test_template_closed_form_by_hand(teacher):
    # 1 layer, hidden 64, bottleneck 32 (2 heads of 16), FFN 40 stacked twice, E = 8, 34 kept rows.
    h, b, f, e, rows = HIDDEN, 32, 40, 8, len(KEPT)
    embeddings = rows * e + (e * h + h) + 32 * h + 2 * h + 2 * h
    bottleneck = (h * b + b) + 2 * b + (b * h + h) + 2 * h
    attention = 3 * (b * b + b) + (b * b + b) + 2 * b
    ffn = (b * f + f) + (f * b + b) + 2 * b
    arch = StudentArchitecture(1, 2, intermediate_size=f, bottleneck_size=b, stacked_ffn=2, embedding_size=e,
                               vocabulary="corpus", pruning="random")
    expected = embeddings + bottleneck + attention + 2 * ffn + 2 * h + 2
    assert expected_parameter_count(teacher.config, arch, KEPT) == expected == 17_346


def test_template_parts_shrink_the_student(teacher):
    plain = expected_parameter_count(teacher.config, StudentArchitecture(2, 4, pruning="random"))
    factorized = expected_parameter_count(teacher.config, StudentArchitecture(2, 4, embedding_size=8, pruning="random"))
    pruned = expected_parameter_count(teacher.config, StudentArchitecture(2, 4, vocabulary="corpus", pruning="random"), KEPT)
    assert plain - pruned == (VOCAB - len(KEPT)) * HIDDEN
    assert plain - factorized == VOCAB * (HIDDEN - 8) - (8 * HIDDEN + HIDDEN)


def test_template_layers_change_width_inside_only(teacher, batch):
    arch = StudentArchitecture(2, 2, bottleneck_size=32, stacked_ffn=3, intermediate_size=24, pruning="random")
    student = build_student(teacher, arch)
    layer = student.bert.encoder.layer[0]
    assert (layer.bottleneck_in[0].in_features, layer.bottleneck_in[0].out_features) == (HIDDEN, 32)
    assert layer.attention.self.query.in_features == 32 and layer.attention.self.attention_head_size == 16
    assert [block.intermediate.out_features for block in layer.stacked_ffn_blocks] == [24, 24]
    assert student.config.seeded_from == [None, None]  # a bottlenecked layer has no teacher counterpart
    out = student(**batch, output_hidden_states=True)
    assert [tuple(h.shape) for h in out.hidden_states] == [(2, 9, HIDDEN)] * 3  # between layers: the hidden size
    # embeddings and the QA head are still the teacher's
    assert torch.equal(student.bert.embeddings.word_embeddings.weight, teacher.bert.embeddings.word_embeddings.weight)
    assert torch.equal(student.qa_outputs.weight, teacher.qa_outputs.weight)


def test_stacked_ffn_keeps_the_seeded_layer_and_adds_blocks(teacher, batch):
    plain = build_student(teacher, StudentArchitecture(2, 4, **NO_DROPOUT, pruning="random"))
    stacked = build_student(teacher, StudentArchitecture(2, 4, stacked_ffn=2, **NO_DROPOUT, pruning="random"))
    for name, parameter in plain.named_parameters():  # every teacher copy is still there
        assert torch.equal(dict(stacked.named_parameters())[name], parameter), name
    assert len(stacked.bert.encoder.layer[1].stacked_ffn_blocks) == 1
    with torch.no_grad():
        assert not torch.allclose(logits(stacked, batch), logits(plain, batch))


@pytest.mark.parametrize("arch", [StudentArchitecture(2, 2, bottleneck_size=32, stacked_ffn=2, embedding_size=8, pruning="random"),
                                  StudentArchitecture(2, 4, stacked_ffn=3, pruning="random")], ids=repr)
def test_sdpa_and_eager_agree_for_template_student(teacher, batch, arch):
    student = build_student(teacher, arch)
    assert student.config._attn_implementation == "sdpa"
    eager = copy.deepcopy(student)
    eager.set_attn_implementation("eager")
    with torch.no_grad():
        torch.testing.assert_close(logits(student, batch), logits(eager, batch), atol=1e-5, rtol=1e-5)


def _low_rank_teacher(teacher, rank: int):
    """The teacher with a word table of exactly ``rank``."""
    low = copy.deepcopy(teacher)
    generator = torch.Generator().manual_seed(7)
    table = torch.randn(VOCAB, rank, generator=generator) @ torch.randn(rank, HIDDEN, generator=generator)
    with torch.no_grad():
        low.bert.embeddings.word_embeddings.weight.copy_(table / rank)
    return low


def test_factorized_embeddings_are_the_teachers_at_full_rank(teacher, batch):
    low = _low_rank_teacher(teacher, 12)
    student = build_student(low, StudentArchitecture(LAYERS, HEADS, embedding_size=12, pruning="random"))
    words = student.bert.embeddings.word_embeddings
    assert words.table.weight.shape == (VOCAB, 12) and words.projection.weight.shape == (HIDDEN, 12)
    ids = torch.arange(VOCAB)
    with torch.no_grad():
        torch.testing.assert_close(words(ids), low.bert.embeddings.word_embeddings(ids), atol=1e-5, rtol=0)
        torch.testing.assert_close(logits(student, batch), logits(low, batch), atol=1e-4, rtol=0)


def test_factorized_embedding_error_falls_with_its_size(teacher):
    table = teacher.bert.embeddings.word_embeddings.weight.detach()
    errors = []
    for size in (4, 8, 16, 32, 48):
        student = build_student(teacher, StudentArchitecture(2, HEADS, embedding_size=size, pruning="random"))
        with torch.no_grad():
            approximation = student.bert.embeddings.word_embeddings(torch.arange(VOCAB))
        errors.append(float((approximation - table).norm()))
    assert errors == sorted(errors, reverse=True) and errors[-1] < 0.5 * errors[0]
    # Eckart-Young: the error is the norm of the dropped singular values
    singular = torch.linalg.svdvals(table.double())
    assert errors[1] == pytest.approx(float(singular[8:].norm()), rel=1e-4)


def test_factorize_table_is_the_truncated_svd():
    table = torch.randn(20, 6, generator=torch.Generator().manual_seed(0))
    narrow, up = factorize_table(table, 6)
    assert narrow.shape == (20, 6) and up.shape == (6, 6)
    torch.testing.assert_close(narrow @ up.T, table, atol=1e-5, rtol=0)
    narrow, up = factorize_table(table, 2)
    assert torch.linalg.matrix_rank(narrow @ up.T) == 2


def test_corpus_vocabulary_answers_as_the_full_one_on_text_it_covers(teacher):
    covered = torch.tensor([[0, 3, 6, 9, 99, 51, 3, 0], [0, 12, 15, 18, 21, 0, 0, 0]])
    batch = dict(input_ids=covered, attention_mask=(covered != 0).long())
    # every part seeded from the teacher (fresh parts would draw differently after a smaller table)
    full = build_student(teacher, StudentArchitecture(2, 2, intermediate_size=100, pruning="random"))
    pruned = build_student(teacher, StudentArchitecture(2, 2, intermediate_size=100, vocabulary="corpus", pruning="random"), KEPT)
    with torch.no_grad():
        torch.testing.assert_close(logits(pruned, batch), logits(full, batch), atol=1e-6, rtol=0)
        # an id outside the kept set reads the [UNK] row
        unknown = dict(batch, input_ids=covered.masked_fill(covered == 6, 7))
        as_unk = dict(batch, input_ids=covered.masked_fill(covered == 6, 3))
        torch.testing.assert_close(logits(pruned, unknown), logits(full, as_unk), atol=1e-6, rtol=0)
    assert pruned.bert.embeddings.word_embeddings.table.weight.shape == (len(KEPT), HIDDEN)


def test_corpus_vocabulary_needs_its_ids(teacher):
    with pytest.raises(ModelMismatchError, match="needs a KeptVocabulary"):
        build_student(teacher, StudentArchitecture(2, 2, vocabulary="corpus", pruning="random"))
    with pytest.raises(ModelMismatchError, match="needs no KeptVocabulary"):
        build_student(teacher, StudentArchitecture(2, 2, pruning="random"), KEPT)
    with pytest.raises(ModelMismatchError, match="outside the seed's vocabulary"):
        build_student(teacher, StudentArchitecture(2, 2, vocabulary="corpus", pruning="random"), KeptVocabulary((0, 3, 500), 3))
    with pytest.raises(ModelMismatchError, match="unknown token id 1"):
        KeptVocabulary((0, 3), 1)
    with pytest.raises(ModelMismatchError, match="bottleneck_size 30 is not divisible"):
        StudentArchitecture(2, 4, bottleneck_size=30, pruning="random").validate(teacher.config)


def test_corpus_token_ids_keep_special_tokens_and_the_pieces_used():
    from transformers import BertTokenizerFast

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "dog", "##s", "on", "mat"]
    tokenizer = BertTokenizerFast(vocab={word: i for i, word in enumerate(words)})
    ids = corpus_token_ids(["the cats sat", "The cat sat on the zebra", "the cats sat"], tokenizer)
    assert [words[i] for i in ids] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "##s", "on"]
    vocabulary = corpus_vocabulary(["dog"], tokenizer)
    assert vocabulary.unknown_id == 1 and words[vocabulary.token_ids[-1]] == "dog"
    assert vocabulary.token_map(len(words)).tolist() == [0, 1, 2, 3, 4, 1, 1, 1, 5, 1, 1, 1]



def test_a_trials_corpus_vocabulary_never_reads_the_test_articles():
    from types import SimpleNamespace

    from paretodistill.distill.run import vocabulary_texts

    def part(*pairs):
        return SimpleNamespace(examples=[SimpleNamespace(question=q, context=c) for q, c in pairs])

    data = SimpleNamespace(train=part(("who sat", "the cat sat")), validation=part(("where", "on the mat")),
                           test=part(("which zebra", "a zebra ran")))
    texts = list(vocabulary_texts(data))
    assert texts == ["who sat", "the cat sat", "where", "on the mat"]
    assert not any("zebra" in text for text in texts)

_TEMPLATE_RELOAD = textwrap.dedent(
    """
    import sys
    import torch
    from paretodistill.models.loading import load_qa_model

    checkpoint, inputs, output = sys.argv[1:4]
    model = load_qa_model(checkpoint).eval()
    with torch.no_grad():
        out = model(**torch.load(inputs))
    torch.save({"class": type(model).__name__, "attention": model.config._attn_implementation,
                "logits": torch.stack([out.start_logits, out.end_logits])}, output)
    """
)


def test_template_student_reloads_in_a_fresh_process_with_the_same_logits(teacher, batch, tmp_path):
    arch = StudentArchitecture(2, 2, bottleneck_size=32, stacked_ffn=2, embedding_size=16, vocabulary="corpus",
                               **NO_DROPOUT, pruning="random")
    student = build_student(teacher, arch, KEPT)
    covered = dict(batch, input_ids=batch["input_ids"] // 3 * 3)  # ids the vocabulary kept, and others
    mixed = dict(batch, input_ids=batch["input_ids"])
    checkpoint = save_with_code(student, tmp_path / "student")
    with torch.no_grad():
        expected = {name: logits(student, b) for name, b in (("covered", covered), ("mixed", mixed))}
    torch.save(mixed, tmp_path / "batch.pt")

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", _TEMPLATE_RELOAD, str(checkpoint), str(tmp_path / "batch.pt"), str(tmp_path / "a.pt")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = torch.load(tmp_path / "a.pt")
    assert out["class"] == "PrunedBertForQuestionAnswering" and out["attention"] == "sdpa"
    torch.testing.assert_close(out["logits"], expected["mixed"], rtol=0, atol=0)

    # without paretodistill, through the copied model file
    env = {k: v for k, v in env.items() if k != "PYTHONPATH"} | {"HF_MODULES_CACHE": str(tmp_path / "modules")}
    result = subprocess.run(
        [sys.executable, "-c", _RELOAD_SCRIPT, str(checkpoint), str(tmp_path / "batch.pt"), str(tmp_path / "b.pt")],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    torch.testing.assert_close(torch.load(tmp_path / "b.pt")["logits"], expected["mixed"], rtol=0, atol=0)

    reloaded = AutoModelForQuestionAnswering.from_pretrained(checkpoint).eval()
    assert torch.equal(reloaded.bert.embeddings.word_embeddings.token_map, KEPT.token_map(VOCAB))
    with torch.no_grad():
        torch.testing.assert_close(logits(reloaded, covered), expected["covered"], rtol=0, atol=0)
