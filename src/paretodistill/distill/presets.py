"""Named starting points for distillation runs.

* ``smoke``: the whole engine end to end in seconds, on a tiny random-init teacher and a tiny
  slice of the data: a check that everything is wired, not a model anyone should use.
* ``sigopt_baseline``: the hand-picked DistilBERT-style setting of the 2020 SigOpt SQuAD 2.0
  experiment, as trial parameters, the reference point the search is compared against.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from paretodistill.data.features import default_cache_dir

SMOKE_TEACHER_VERSION = 1
SMOKE_TEACHER_SHAPE = dict(num_hidden_layers=2, hidden_size=64, num_attention_heads=4, intermediate_size=128)


def tiny_teacher(cache_dir: str | Path | None = None, seed: int = 0) -> Path:
    """A random-init 2-layer, 64-wide BERT QA teacher with the packaged MiniLM tokenizer, saved once.

    Saved under ``cache_dir/smoke_teacher/v{version}-seed{seed}`` (staged, then renamed) and
    reused by every later call, so its weights, and the teacher-logit cache keyed on them, stay put.
    """
    import torch
    from transformers import BertConfig, BertForQuestionAnswering

    from paretodistill.models.loading import load_tokenizer

    root = Path(cache_dir) if cache_dir else default_cache_dir()
    folder = root / "smoke_teacher" / f"v{SMOKE_TEACHER_VERSION}-seed{seed}"
    if (folder / "config.json").exists():
        return folder
    tokenizer = load_tokenizer("minilm")
    config = BertConfig(
        vocab_size=len(tokenizer), max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id,
        **SMOKE_TEACHER_SHAPE,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertForQuestionAnswering(config).eval()
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tmp-"))
    try:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        try:
            os.rename(staging, folder)
        except OSError:  # another process saved it first
            shutil.rmtree(staging, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def smoke_values(data_file: str | None, teacher: str | Path | None = None, cache_dir: str | Path | None = None) -> dict:
    """Config values (for ``load_config(base=...)``) of the smoke preset.

    ~200 training questions in 128-token windows, one validation and one test article, 24 steps
    with a curve point every 12, a 1-layer 2-head (pruned) student (all heads for a family whose
    attention cannot drop heads), latency from 5 calls. Without ``teacher`` the tiny random teacher
    is built (once) in the cache.
    """
    teacher_path = str(teacher) if teacher else str(tiny_teacher(cache_dir))
    values: dict[str, Any] = {  # only what differs from the defaults of paretodistill.config
        "teacher": {"path": teacher_path},
        "data": {  # the split file, when there is one (own validation and test files come as flags)
            **({"split_file": str(data_file)} if data_file else {}),
            "max_eval_articles": 1,
            "max_train_questions": 200,
            "features": {"max_seq_length": 128, "doc_stride": 48, "max_query_length": 32},
        },
        "student": {"num_layers": 1},
        "training": {"warmup_steps": 2, "max_steps": 24, "eval_every_steps": 12, "log_every_steps": 8},
        "latency": {"warmup": 1, "repeats": 5, "sequence_length": 128},
    }
    if _prunes_heads(teacher_path):
        values["student"]["heads_per_layer"] = 2
    if cache_dir:
        values["cache_dir"] = str(cache_dir)
    return values


def _prunes_heads(teacher_path: str) -> bool:
    """Whether the teacher's family can drop heads (True when its config cannot be read here:
    the run itself then says what is wrong with it)."""
    import json

    from paretodistill.errors import ModelMismatchError
    from paretodistill.models.families import family_of
    from paretodistill.models.loading import resolve_model_path

    try:
        values = json.loads((Path(resolve_model_path(teacher_path)) / "config.json").read_text())
        return family_of(values).prunes_heads
    except (OSError, ValueError, ModelMismatchError):
        return True


def smoke_config(data_file: str | None, teacher: str | Path | None = None, cache_dir: str | Path | None = None,
                 overrides: list[str] | tuple[str, ...] = ()):
    """The smoke preset as an ``ExperimentConfig``."""
    from paretodistill.config import load_config

    return load_config(None, overrides, base=smoke_values(data_file, teacher, cache_dir))


PRESETS = {"smoke": smoke_values}


def sigopt_baseline(teacher_config) -> dict[str, Any]:
    """The 2020 SigOpt experiment's baseline student, as trial parameters for ``run_trial``.

    Half the teacher's layers (at least one) with all heads, seeded from the teacher
    (``build_student`` always seeds), AdamW lr 5e-5, betas (0.9, 0.999), epsilon 9.98e-9,
    weight decay 9e-6, no warm-up, batch 8, 3 epochs, soft/hard weights 0.5/0.5, attention and
    QA-head dropout 0.1, initializer range 0.02, heads and neurons kept at random with pruning seed 42
    (the 2020 student; with all heads and the full FFN it cuts none). Everything else (temperature,
    hidden dropout, FFN and hidden width) stays as the config has it. ``teacher_config`` is a
    transformers config or a teacher checkpoint folder.
    """
    if isinstance(teacher_config, (str, Path)):
        from transformers import AutoConfig

        import paretodistill.models.pruned_bert  # noqa: F401  (registers the pruned config type)

        teacher_config = AutoConfig.from_pretrained(str(teacher_config), trust_remote_code=False)
    return {
        "num_layers": max(1, teacher_config.num_hidden_layers // 2),
        "heads_per_layer": teacher_config.num_attention_heads,
        "pruning_seed": 42,
        "pruning": "random",
        "learning_rate": 5e-5,
        "train_batch_size": 8,
        "soft_weight": 0.5,
        "hard_weight": 0.5,
        "attention_dropout": 0.1,
        "qa_dropout": 0.1,
        "beta1": 0.9,
        "beta2": 0.999,
        "epsilon": 9.98e-09,
        "weight_decay": 9e-06,
        "initializer_range": 0.02,
        "warmup_steps": 0,
        "epochs": 3.0,
        "max_steps": None,  # so that the 3 epochs apply even if the config caps steps
        "max_windows": None,
    }


def sigopt_distilbert(seed_config) -> dict[str, Any]:
    """The 2020 experiment's baseline as it was built: the seed DistilBERT's whole architecture (all
    its layers and heads, copied from it) with the 2020 hyperparameters of :func:`sigopt_baseline`.
    ``seed_config`` is the seed checkpoint's config or folder (``student.init_from``)."""
    if isinstance(seed_config, (str, Path)):
        from transformers import AutoConfig

        import paretodistill.models.loading  # noqa: F401  (registers the pruned config types)

        seed_config = AutoConfig.from_pretrained(str(seed_config), trust_remote_code=False)
    return {**sigopt_baseline(seed_config), "num_layers": seed_config.num_hidden_layers}


def recipe_parameters(name: str, config) -> dict[str, Any]:
    """The trial parameters of ``distill --recipe NAME`` for ``config`` (an ``ExperimentConfig``).

    ``sigopt-baseline``: the 2020 baseline's settings on a student seeded from the teacher.
    ``sigopt``: the 2020 arrangement itself: the baseline is the DistilBERT that seeds the students
    (``student.init_from``: a DistilBERT checkpoint, e.g. ``paretodistill convert --family distilbert``).
    """
    from paretodistill.errors import ConfigError
    from paretodistill.models.loading import resolve_model_path

    if name == "sigopt-baseline":
        return sigopt_baseline(resolve_model_path(config.teacher.path))
    if not config.student.init_from:
        raise ConfigError("--recipe sigopt seeds the student from a DistilBERT checkpoint: set student.init_from "
                          "(paretodistill convert --model minilm --family distilbert --out DIR makes one)")
    return sigopt_distilbert(resolve_model_path(config.student.init_from))


RECIPES = ("sigopt-baseline", "sigopt")
