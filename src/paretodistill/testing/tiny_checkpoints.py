"""Tiny random-init QA checkpoints of every supported encoder family, each with its family's kind of tokenizer.

Everything is built locally, in seconds, and is reproducible: nothing is downloaded, nothing is cached.

* ``bert``, ``distilbert``, ``electra``: WordPiece, the packaged MiniLM tokenizer (uncased BERT
  vocabulary, 30,522 tokens) saved as the family's tokenizer class.
* ``roberta``: byte-level BPE (GPT-2 / RoBERTa style: ``<s> <pad> </s> <unk> <mask>`` at ids 0-4,
  ``<s> A </s></s> B </s>`` pairs, no token types) trained on a given text.
* ``deberta-v2``: a SentencePiece-style Unigram model (Metaspace pre-tokenizer, DeBERTa-v3's
  ``[PAD] [CLS] [SEP] [UNK] [MASK]`` at ids 0-4, ``[CLS] A [SEP] B [SEP]`` with token types 0/1)
  trained on a given text and saved as ``tokenizer.json`` only: no sentencepiece model file.

The text to train on is a list of strings or the path of a SQuAD JSON file, whose first articles'
contexts and questions are read (:func:`squad_text`); the tests use the real SQuAD 2.0 dev set.

A saved tokenizer folder is loaded back with ``AutoTokenizer.from_pretrained``, which (transformers
5) rebuilds a family's tokenizer from the vocabulary in ``tokenizer.json`` with the class's own
normalizer and pre-tokenizer: the trained ones are therefore built exactly as the classes build
theirs, and :func:`tiny_tokenizer` checks that the folder reloads to the same tokenizer.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

FAMILIES = ("bert", "distilbert", "roberta", "electra", "deberta-v2")

WORDPIECE_FAMILIES = ("bert", "distilbert", "electra")
TOKENIZER_CLASSES = {
    "bert": "BertTokenizerFast",
    "distilbert": "DistilBertTokenizerFast",
    "electra": "ElectraTokenizerFast",  # transformers 5: an alias of BertTokenizer
    "roberta": "RobertaTokenizerFast",
    "deberta-v2": "DebertaV2TokenizerFast",
}
TOKENIZER_KINDS = {"bert": "WordPiece", "distilbert": "WordPiece", "electra": "WordPiece", "roberta": "BPE", "deberta-v2": "Unigram"}

TRAINED_VOCAB_SIZE = 2000
TEXT_ARTICLES = 3  # the first articles of a SQuAD file: about 130,000 characters of the dev set
ROBERTA_SPECIAL = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
DEBERTA_SPECIAL = ("[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]")
MODEL_MAX_LENGTH = 512

TextSource = str | os.PathLike | Sequence[str]  # a str is a path (of a SQuAD JSON file), a list holds the texts


def squad_text(path: str | os.PathLike, articles: int = TEXT_ARTICLES) -> list[str]:
    """The contexts and questions of a SQuAD JSON file's first ``articles`` articles, in file order."""
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    texts = []
    for entry in document["data"][:articles]:
        for paragraph in entry["paragraphs"]:
            texts.append(paragraph["context"])
            texts.extend(question["question"] for question in paragraph["qas"])
    return texts


def _texts(text: TextSource | None, family: str) -> list[str]:
    if text is None:
        raise ValueError(f"a {family} tokenizer is trained: pass text= (a list of strings or a SQuAD JSON file)")
    if isinstance(text, (str, os.PathLike)):
        return squad_text(text)
    texts = list(text)
    if not texts or not all(isinstance(t, str) for t in texts):
        raise ValueError("text= must be a SQuAD JSON path or a non-empty list of strings")
    return texts


def tiny_tokenizer(family: str, folder: str | os.PathLike, *, text: TextSource | None = None,
                   vocab_size: int = TRAINED_VOCAB_SIZE):
    """Write the family's kind of fast tokenizer to ``folder`` and return it (as loaded back from there).

    ``text`` (strings, or a SQuAD JSON path) is what the BPE (roberta) and Unigram (deberta-v2)
    tokenizers are trained on; the WordPiece families reuse the packaged MiniLM vocabulary.
    """
    from transformers import AutoTokenizer

    _check_family(family)
    if family in WORDPIECE_FAMILIES:
        tokenizer = _wordpiece(family)
    elif family == "roberta":
        tokenizer = _byte_level_bpe(_texts(text, family), vocab_size)
    else:
        tokenizer = _unigram(_texts(text, family), vocab_size)
    folder = Path(folder)
    tokenizer.save_pretrained(folder)
    loaded = AutoTokenizer.from_pretrained(folder)
    if _definition(loaded) != _definition(tokenizer):
        raise RuntimeError(f"the {family} tokenizer saved in {folder} does not load back as itself")
    return loaded


def _check_family(family: str) -> None:
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; one of {', '.join(FAMILIES)}")


def _definition(tokenizer) -> dict:
    """The parts of a fast tokenizer that decide ids, offsets and token types."""
    definition = json.loads(tokenizer.backend_tokenizer.to_str())
    return {key: definition[key] for key in ("normalizer", "pre_tokenizer", "post_processor", "model")} | {
        "class": type(tokenizer).__name__,
        "inputs": list(tokenizer.model_input_names),
        "special": {name: getattr(tokenizer, f"{name}_token_id") for name in ("cls", "sep", "pad", "unk", "mask")},
    }


def _plain(backend):
    """A copy of a backend tokenizer without fixed padding or truncation (callers choose their own)."""
    from tokenizers import Tokenizer

    copy = Tokenizer.from_str(backend.to_str())
    copy.no_padding()
    copy.no_truncation()
    return copy


def _wordpiece(family: str):
    import transformers

    from paretodistill.models.loading import load_tokenizer

    minilm = load_tokenizer("minilm")
    cls = getattr(transformers, TOKENIZER_CLASSES[family])
    return cls(tokenizer_object=_plain(minilm.backend_tokenizer), do_lower_case=True, model_max_length=MODEL_MAX_LENGTH)


def _byte_level_bpe(texts: list[str], vocab_size: int):
    """RoBERTa's byte-level BPE (``ByteLevelBPETokenizer``'s pipeline), trained on ``texts``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import RobertaTokenizerFast

    bpe = Tokenizer(models.BPE(continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=2, special_tokens=list(ROBERTA_SPECIAL),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    bpe.train_from_iterator(texts, trainer=trainer)
    bpe.model.continuing_subword_prefix = bpe.model.end_of_word_suffix = ""  # training reset them to None (the same)
    bos, pad, eos, unk, mask = ROBERTA_SPECIAL
    assert [bpe.token_to_id(t) for t in ROBERTA_SPECIAL] == [0, 1, 2, 3, 4]
    # trim_offsets: a token's offsets leave out the space it starts with ("Ġword" covers "word")
    bpe.post_processor = processors.RobertaProcessing((eos, 2), (bos, 0), trim_offsets=True, add_prefix_space=True)
    return RobertaTokenizerFast(
        tokenizer_object=bpe, add_prefix_space=True, trim_offsets=True, model_max_length=MODEL_MAX_LENGTH,
        bos_token=bos, eos_token=eos, sep_token=eos, cls_token=bos, unk_token=unk, pad_token=pad, mask_token=mask,
    )


def _unigram(texts: list[str], vocab_size: int):
    """A DeBERTa-v3-style SentencePiece Unigram model trained on ``texts``, kept as ``tokenizer.json``.

    The normalizer and pre-tokenizer are the ones ``DebertaV2Tokenizer`` builds around a vocabulary
    without a sentencepiece charsmap (whitespace runs to one space, NFC, right strip; Metaspace with
    a prefix space), so the folder reloads to the very tokenizer trained here.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import DebertaV2TokenizerFast

    pad, cls, sep, unk, mask = DEBERTA_SPECIAL
    unigram = Tokenizer(models.Unigram())
    unigram.normalizer = normalizers.Sequence([
        normalizers.Replace(Regex(r"\s{2,}|[\n\r\t]"), " "), normalizers.NFC(), normalizers.Strip(left=False, right=True),
    ])
    unigram.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")])
    unigram.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size, special_tokens=list(DEBERTA_SPECIAL), unk_token=unk, max_piece_length=16,
        show_progress=False,
    )
    unigram.train_from_iterator(texts, trainer=trainer)
    unigram.model = models.Unigram(_canonical_pieces(json.loads(unigram.to_str())["model"]["vocab"]),
                                   unk_id=DEBERTA_SPECIAL.index(unk), byte_fallback=False)
    assert [unigram.token_to_id(t) for t in DEBERTA_SPECIAL] == [0, 1, 2, 3, 4]
    unigram.post_processor = processors.TemplateProcessing(
        single=f"{cls}:0 $A:0 {sep}:0", pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
        special_tokens=[(cls, 1), (sep, 2)],
    )
    return DebertaV2TokenizerFast(
        tokenizer_object=unigram, do_lower_case=False, split_by_punct=False, add_prefix_space=True,
        bos_token=cls, eos_token=sep, unk_token=unk, sep_token=sep, pad_token=pad, cls_token=cls, mask_token=mask,
        unk_id=DEBERTA_SPECIAL.index(unk), model_max_length=MODEL_MAX_LENGTH,
    )


REQUIRED_CHAR_STEP = 1e-4  # the Unigram trainer's score step between characters it adds at the bottom


def _canonical_pieces(vocab: list) -> list[tuple[str, float]]:
    """The trained Unigram pieces, scored and ordered the same in every process.

    The trainer's output varies between processes although its pieces do not: it sums scores in
    hash-map order (scores a last bit apart, so ties order differently), and it appends the
    characters of the text that no piece kept with scores ``lowest + k * 1e-4`` in hash-set order.
    Here scores are rounded to 6 decimals, those appended characters all get the lowest score,
    and pieces are sorted by score, then by text, after the special tokens (which keep ids 0-4).
    """
    special, pieces = vocab[: len(DEBERTA_SPECIAL)], vocab[len(DEBERTA_SPECIAL):]
    assert [piece for piece, _ in special] == list(DEBERTA_SPECIAL)
    lowest = min(score for _, score in pieces)
    characters = sum(1 for piece, _ in pieces if len(piece) == 1)
    appended = lowest + REQUIRED_CHAR_STEP * characters + 1e-9
    canonical = [(piece, round(lowest if len(piece) == 1 and score <= appended else score, 6)) for piece, score in pieces]
    canonical.sort(key=lambda item: (-item[1], item[0]))
    return [(piece, score) for piece, score in special] + canonical


def tiny_checkpoint(family: str, folder: str | os.PathLike, *, qa: bool = True, seed: int = 0, layers: int = 2,
                    hidden: int = 64, heads: int = 4, ffn: int = 128, tokenizer_folder: str | os.PathLike | None = None,
                    text: TextSource | None = None) -> Path:
    """A random-init model of ``family`` saved with its tokenizer in ``folder``; returns the folder.

    ``qa=True`` saves the family's ``*ForQuestionAnswering``, ``qa=False`` its bare encoder.
    The tokenizer is read from ``tokenizer_folder`` (one written by :func:`tiny_tokenizer` for this
    family), else built here (``text`` as for :func:`tiny_tokenizer`). The weights depend only on
    the arguments: the seed is set inside a forked RNG, so the caller's random state is untouched.
    """
    import torch
    from transformers import AutoTokenizer

    _check_family(family)
    folder = Path(folder)
    if tokenizer_folder is None:
        tokenizer = tiny_tokenizer(family, folder, text=text)
    else:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_folder)
        kind = type(tokenizer.backend_tokenizer.model).__name__
        if kind != TOKENIZER_KINDS[family]:
            raise ValueError(f"{tokenizer_folder} holds a {kind} tokenizer; a {family} model takes {TOKENIZER_KINDS[family]}")
    config = family_config(family, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                           layers=layers, hidden=hidden, heads=heads, ffn=ffn)
    model_class = _model_class(family, qa)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_class(config).eval()
    model.save_pretrained(folder)
    if tokenizer_folder is not None:
        tokenizer.save_pretrained(folder)
    return folder


def family_config(family: str, *, vocab_size: int, pad_token_id: int, layers: int = 2, hidden: int = 64,
                  heads: int = 4, ffn: int = 128):
    """The family's config class for a small encoder of these dimensions (512 positions)."""
    import transformers

    _check_family(family)
    if family == "bert":
        return transformers.BertConfig(
            vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
            intermediate_size=ffn, max_position_embeddings=512, pad_token_id=pad_token_id,
        )
    if family == "distilbert":
        return transformers.DistilBertConfig(
            vocab_size=vocab_size, dim=hidden, n_layers=layers, n_heads=heads, hidden_dim=ffn,
            max_position_embeddings=512, pad_token_id=pad_token_id,
        )
    if family == "roberta":
        # positions count from pad + 1, so 512 tokens need 512 + pad + 1 position embeddings
        return transformers.RobertaConfig(
            vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
            intermediate_size=ffn, max_position_embeddings=512 + pad_token_id + 1, pad_token_id=pad_token_id,
            bos_token_id=0, eos_token_id=2, type_vocab_size=1,
        )
    if family == "electra":
        # an embedding narrower than the encoder, as in ELECTRA-small: embeddings_project exists
        return transformers.ElectraConfig(
            vocab_size=vocab_size, embedding_size=max(hidden // 2, 8), hidden_size=hidden, num_hidden_layers=layers,
            num_attention_heads=heads, intermediate_size=ffn, max_position_embeddings=512, pad_token_id=pad_token_id,
        )
    # DeBERTa-v3: relative positions in 256 log buckets, no absolute positions, no token-type embedding
    return transformers.DebertaV2Config(
        vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
        intermediate_size=ffn, max_position_embeddings=512, pad_token_id=pad_token_id,
        relative_attention=True, position_buckets=256, norm_rel_ebd="layer_norm", share_att_key=True,
        pos_att_type=["p2c", "c2p"], position_biased_input=False, type_vocab_size=0, max_relative_positions=-1,
    )


MODEL_CLASSES = {
    "bert": ("BertForQuestionAnswering", "BertModel"),
    "distilbert": ("DistilBertForQuestionAnswering", "DistilBertModel"),
    "roberta": ("RobertaForQuestionAnswering", "RobertaModel"),
    "electra": ("ElectraForQuestionAnswering", "ElectraModel"),
    "deberta-v2": ("DebertaV2ForQuestionAnswering", "DebertaV2Model"),
}


def _model_class(family: str, qa: bool):
    import transformers

    return getattr(transformers, MODEL_CLASSES[family][0 if qa else 1])

