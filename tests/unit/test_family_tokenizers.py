"""Every encoder family's kind of tokenizer through the data pipeline, and tiny checkpoints of every family.

bert, distilbert and electra tokenize with WordPiece, roberta with byte-level BPE and deberta-v2
with a SentencePiece-style Unigram model (``paretodistill.testing.tiny_checkpoints``). Features
built with each must point at the gold answers, put CLS first, and let a perfect model score 100
through the official metric; the tiny models must load with the stock Auto classes and run.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import transformers
from safetensors.torch import load_file
from transformers import AutoModel, AutoModelForQuestionAnswering, AutoTokenizer

from conftest import article, qa, write_squad
from paretodistill.config import FeatureSettings
from paretodistill.data.features import _answer_tokens, build_features
from paretodistill.data.squad import load_squad
from paretodistill.evaluation.postprocess import extract_answers
from paretodistill.evaluation.squad_metric import evaluate
from paretodistill.models.inputs import select_inputs
from paretodistill.testing.tiny_checkpoints import (
    DEBERTA_SPECIAL,
    FAMILIES,
    MODEL_CLASSES,
    TOKENIZER_CLASSES,
    _canonical_pieces,
    squad_text,
    tiny_checkpoint,
    tiny_tokenizer,
)
from paretodistill.training.batching import collate

# the first 30 questions (15 answerable) of an article the trained tokenizers did not see;
# short windows, so long contexts give several doc-stride windows
SAMPLE_TITLE = "Sky_(United_Kingdom)"
SETTINGS = FeatureSettings(max_seq_length=160, doc_stride=48, max_query_length=32)

KINDS = {"bert": "WordPiece", "distilbert": "WordPiece", "electra": "WordPiece", "roberta": "BPE", "deberta-v2": "Unigram"}
VOCAB_SIZES = {"bert": 30522, "distilbert": 30522, "electra": 30522, "roberta": 2000, "deberta-v2": 2000}
CLS = {"bert": "[CLS]", "distilbert": "[CLS]", "electra": "[CLS]", "roberta": "<s>", "deberta-v2": "[CLS]"}
WITHOUT_TOKEN_TYPES = ("distilbert", "roberta")


@pytest.fixture(scope="module")
def sample(dev_v2):
    data = load_squad(dev_v2).select_titles({SAMPLE_TITLE})
    return data, data.examples[:30]


@pytest.fixture(scope="module")
def tokenizers(tiny_family_tokenizers):
    return {family: AutoTokenizer.from_pretrained(folder) for family, folder in tiny_family_tokenizers.items()}


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_has_its_kind_of_tokenizer(family, tiny_family_tokenizers, tokenizers):
    folder, tokenizer = tiny_family_tokenizers[family], tokenizers[family]
    assert tokenizer.is_fast
    assert type(tokenizer.backend_tokenizer.model).__name__ == KINDS[family]
    assert len(tokenizer) == VOCAB_SIZES[family]
    assert tokenizer.cls_token == CLS[family]
    assert tokenizer.padding_side == "right"
    # the family's class is named, so AutoTokenizer reads the folder alone (transformers 5: electra's is BertTokenizer)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == getattr(transformers, TOKENIZER_CLASSES[family]).__name__
    assert type(tokenizer).__name__ == config["tokenizer_class"]
    assert ("token_type_ids" in tokenizer.model_input_names) == (family not in WITHOUT_TOKEN_TYPES)
    assert (folder / "tokenizer.json").exists() and not (folder / "spm.model").exists()


def test_trained_tokenizers_have_their_families_special_tokens(tokenizers):
    roberta, deberta = tokenizers["roberta"], tokenizers["deberta-v2"]
    assert roberta.convert_ids_to_tokens([0, 1, 2, 3, 4]) == ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    assert (roberta.cls_token_id, roberta.pad_token_id, roberta.sep_token_id) == (0, 1, 2)
    pair = roberta("Who?", "Rollo.")
    assert roberta.convert_ids_to_tokens(pair["input_ids"]) == ["<s>", "ĠWho", "?", "</s>", "</s>", "ĠRollo", ".", "</s>"]
    assert deberta.convert_ids_to_tokens([0, 1, 2, 3, 4]) == list(DEBERTA_SPECIAL)
    pair = deberta("Who?", "Rollo.")
    tokens = deberta.convert_ids_to_tokens(pair["input_ids"])
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]" and tokens.count("[SEP]") == 2
    assert pair["token_type_ids"] == [0] * (tokens.index("[SEP]") + 1) + [1] * (len(tokens) - tokens.index("[SEP]") - 1)


@pytest.mark.parametrize("family", FAMILIES)
def test_features_point_at_the_gold_answers(family, tokenizers, sample):
    tokenizer, (_, examples) = tokenizers[family], sample
    features = build_features(examples, tokenizer, SETTINGS)
    assert len(features) > len(examples)  # some contexts need several windows
    answered = set()
    for i in range(len(features)):
        row, example = features.row(i), examples[features.example_index[i]]
        ids, offsets, types = features.input_ids[row], features.offsets[row], features.token_type_ids[row]
        assert ids[0] == tokenizer.cls_token_id and offsets[0].tolist() == [-1, -1]
        context = offsets[:, 0] >= 0
        # context spans hold no surrounding whitespace (Metaspace's "▁word" counts the space before it)
        assert not any(example.context[s].isspace() or example.context[e - 1].isspace() for s, e in offsets[context])
        if family in WITHOUT_TOKEN_TYPES:
            assert not types.any()
        else:
            assert types[context].all() and not types[: np.flatnonzero(context)[0]].any()
        s, e = features.start_positions[i], features.end_positions[i]
        if s == 0:
            assert e == 0
            continue
        assert 0 < s <= e and context[s] and context[e]
        assert example.context[offsets[s][0] : offsets[e][1]] == example.answers[0].text
        answered.add(example.id)
    assert answered == {e.id for e in examples if not e.is_impossible}


def perfect_logits(features):
    """Logits of a model that is always right: the gold span where a window holds it, else CLS."""
    start = np.full(features.num_tokens(), -10.0, dtype=np.float32)
    end = start.copy()
    for i in range(len(features)):
        first = features.row_starts[i]
        start[first + features.start_positions[i]] = 10.0
        end[first + features.end_positions[i]] = 10.0
    return start, end


@pytest.mark.parametrize("family", FAMILIES)
def test_a_perfect_model_scores_100_through_the_official_metric(family, tokenizers, sample):
    data, examples = sample
    features = build_features(examples, tokenizers[family], SETTINGS)
    answers = extract_answers(examples, features, *perfect_logits(features))
    predictions = answers.predictions(0.0)
    assert predictions == {e.id: (e.answers[0].text if not e.is_impossible else "") for e in examples}
    result = evaluate(list(data.articles), predictions)
    assert result.metrics["total"] == len(examples)
    assert result.metrics["exact"] == 100.0 and result.metrics["f1"] == 100.0


def test_metaspace_offsets_lose_the_space_before_each_word(tmp_path, tokenizers):
    tokenizer = tokenizers["deberta-v2"]
    context = "In  the year 911,\tRollo ruled Normandy from Rouen."
    # the tokenizer itself counts the space before a word in "▁word": that is what features undo
    raw = tokenizer(context, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    assert any(context[s].isspace() for s, e in raw if e > s)
    gold = [("911", context.index("911")), ("Rollo", context.index("Rollo")), ("Rouen", context.index("Rouen"))]
    questions = [qa(f"q{i}", "When?", [answer]) for i, answer in enumerate(gold)]
    data = load_squad(write_squad(tmp_path / "s.json", [article("Rollo", context, questions)]))
    features = build_features(data.examples, tokenizer, FeatureSettings(64, 16, 16))
    for i, (text, _) in enumerate(gold):
        offsets = features.offsets[features.row(i)]
        s, e = features.start_positions[i], features.end_positions[i]
        assert context[offsets[s][0] : offsets[e][1]] == text
    answers = extract_answers(data.examples, features, *perfect_logits(features))
    assert answers.predictions(0.0) == {"q0": "911", "q1": "Rollo", "q2": "Rouen"}


def test_a_whitespace_token_after_the_answer_does_not_end_it():
    """A whitespace-only token (marked -1) between the answer and the next word is skipped."""
    from paretodistill.data.squad import Answer, Example

    example = Example("q", "t", "911 Rollo", "When?", (Answer("911", 0),), False)
    # CLS, question, SEP, "911", "▁" (whitespace only), "Rollo", SEP
    window = [(-1, -1), (-1, -1), (-1, -1), (0, 3), (-1, -1), (4, 9), (-1, -1)]
    assert _answer_tokens(example, window) == (3, 3)


@pytest.mark.parametrize("family", FAMILIES)
def test_tiny_qa_checkpoints_load_with_the_stock_auto_class_and_run(family, tiny_family_checkpoints, sample, one_torch_thread):
    folder = tiny_family_checkpoints[family]
    model, info = AutoModelForQuestionAnswering.from_pretrained(folder, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert type(model).__name__ == MODEL_CLASSES[family][0] and model.config.model_type == family
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert model.config.vocab_size == len(tokenizer) and model.config.pad_token_id == tokenizer.pad_token_id
    features = build_features(sample[1], tokenizer, SETTINGS)
    longest, shortest = int(np.argmax(features.lengths)), int(np.argmin(features.lengths))
    batch = collate(features, np.array([longest, shortest, 0, 1]), tokenizer.pad_token_id)
    inputs = select_inputs(model, batch.model_inputs())
    assert ("token_type_ids" in inputs) == (family != "distilbert")
    model.eval()
    with torch.no_grad():
        out = model(**inputs)
        alone = model(**select_inputs(model, collate(features, np.array([shortest]), tokenizer.pad_token_id).model_inputs()))
    assert out.start_logits.shape == batch.input_ids.shape and torch.isfinite(out.start_logits).all()
    # padding changes nothing in a window's logits (RoBERTa's positions count from the pad id)
    n = int(features.lengths[shortest])
    torch.testing.assert_close(out.start_logits[1, :n], alone.start_logits[0, :n], atol=1e-5, rtol=1e-4)


def test_tiny_checkpoints_follow_their_families_shapes(tiny_family_checkpoints):
    models = {family: AutoModelForQuestionAnswering.from_pretrained(folder) for family, folder in tiny_family_checkpoints.items()}
    assert models["electra"].electra.embeddings_project.in_features == models["electra"].config.embedding_size == 32
    roberta = models["roberta"].config
    assert (roberta.max_position_embeddings, roberta.pad_token_id, roberta.type_vocab_size) == (514, 1, 1)
    deberta = models["deberta-v2"].config
    assert deberta.relative_attention and deberta.position_buckets == 256 and deberta.norm_rel_ebd == "layer_norm"
    assert deberta.share_att_key and list(deberta.pos_att_type) == ["p2c", "c2p"]
    assert not deberta.position_biased_input and deberta.type_vocab_size == 0 and deberta.max_relative_positions == -1
    assert models["distilbert"].config.n_layers == 2 and models["distilbert"].config.dim == 64
    for family, model in models.items():
        assert model.config.num_hidden_layers == 2 and model.config.hidden_size == 64, family


@pytest.mark.parametrize("family", FAMILIES)
def test_bare_encoders_load_with_auto_model(family, tiny_family_tokenizers, tmp_path, one_torch_thread):
    folder = tiny_checkpoint(family, tmp_path / family, qa=False, tokenizer_folder=tiny_family_tokenizers[family])
    model = AutoModel.from_pretrained(folder)
    assert type(model).__name__ == MODEL_CLASSES[family][1]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    encoded = tokenizer("Who ruled?", "Rollo ruled Normandy.", return_tensors="pt")
    with torch.no_grad():
        hidden = model.eval()(**select_inputs(model, dict(encoded))).last_hidden_state
    assert hidden.shape == (1, encoded["input_ids"].shape[1], 64)


def test_weights_depend_on_the_seed_only(tiny_family_tokenizers, tmp_path):
    state = torch.random.get_rng_state()
    folders = [tiny_checkpoint("roberta", tmp_path / name, seed=seed, tokenizer_folder=tiny_family_tokenizers["roberta"])
               for name, seed in (("a", 0), ("b", 0), ("c", 1))]
    assert torch.equal(torch.random.get_rng_state(), state)  # the caller's random state is left alone
    a, b, c = (load_file(folder / "model.safetensors") for folder in folders)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_a_tokenizer_folder_of_another_kind_is_refused(tiny_family_tokenizers, tmp_path):
    with pytest.raises(ValueError, match="BPE"):
        tiny_checkpoint("bert", tmp_path / "x", tokenizer_folder=tiny_family_tokenizers["roberta"])


@pytest.mark.parametrize("family", ["roberta", "deberta-v2"])
def test_trained_tokenizers_are_the_same_on_every_build(family, dev_v2, tiny_family_tokenizers, tmp_path):
    tiny_tokenizer(family, tmp_path, text=squad_text(dev_v2))
    assert (tmp_path / "tokenizer.json").read_bytes() == (tiny_family_tokenizers[family] / "tokenizer.json").read_bytes()


def test_unigram_pieces_are_put_in_one_order():
    """Scores a last bit apart and characters appended in hash order come out the same."""
    special = [(token, 0.0) for token in DEBERTA_SPECIAL]
    trained = [("▁the", -2.5), ("ing", -3.0000000000000004), ("ed", -3.0), ("q", -6.0)]
    lowest = -7.0
    appended = [("Z", lowest), ("K", lowest + 1e-4), ("{", lowest + 2e-4)]
    one = _canonical_pieces(special + trained + appended)
    other = _canonical_pieces(special + [("▁the", -2.5), ("ed", -3.0000000000000004), ("ing", -3.0), ("q", -6.0)]
                              + [("{", lowest), ("Z", lowest + 1e-4), ("K", lowest + 2e-4)])
    assert one == other
    assert one[:5] == special
    assert one[5:] == [("▁the", -2.5), ("ed", -3.0), ("ing", -3.0), ("q", -6.0), ("K", -7.0), ("Z", -7.0), ("{", -7.0)]


def test_trained_tokenizers_need_text(tmp_path):
    with pytest.raises(ValueError, match="text="):
        tiny_tokenizer("roberta", tmp_path)
    with pytest.raises(ValueError, match="unknown family"):
        tiny_tokenizer("gpt2", tmp_path, text=["a"])
