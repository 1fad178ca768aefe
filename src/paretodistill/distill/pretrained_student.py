"""Where a student's weights start when they are not the teacher's: ``student.init_from``.

Two kinds of folder (or hub id) are taken. A pretrained checkpoint of any supported family (a base
encoder or a QA model, :func:`load_seed`) seeds the student in place of the teacher: the student
takes that checkpoint's family and widths and copies its layers, the way DistilBERT seeded its
students from BERT; its tokenizer must be the teacher's (:func:`check_same_tokenizer`), since the
student reads the windows the teacher's tokenizer made. A folder ``pretrain-distill`` wrote holds
one finished student instead:

The folder is a Hugging Face QA checkpoint (the student: its encoder distilled on text, its QA
head still the teacher's copy) with the tokenizer, both MLM heads and ``pretrain.json``, written
last: the run's record, with the student's :class:`StudentArchitecture`. ``student.init_from =
FOLDER`` makes ``run_trial`` build the student from the teacher as usual and then replace every
weight with the folder's (:func:`start_from_pretrained`). The config's student settings must
describe the same student, dropouts excepted (they are training settings): a searched or set
architecture field that differs would be silently ignored otherwise, so it is refused instead,
naming the fields (a search records such a trial as an impossible architecture).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import save_file

from paretodistill.errors import ConfigError, ModelMismatchError
from paretodistill.models.loading import load_qa_model, load_seed_model, load_tokenizer, resolve_model_path
from paretodistill.models.saving import save_with_code
from paretodistill.models.student import StudentArchitecture

PRETRAIN_FILE = "pretrain.json"
STUDENT_HEAD_FILE = "student_mlm_head.safetensors"
FREE_FIELDS = ("hidden_dropout", "attention_dropout", "qa_dropout")  # may differ between the two stages


def save_pretrained_student(student, tokenizer, student_head, record: dict, out_dir: str | Path) -> Path:
    """Write the student, tokenizer and MLM head into ``out_dir`` (staged, then moved in), then
    ``pretrain.json``: a folder with ``pretrain.json`` is complete."""
    out_dir = Path(out_dir)
    staging = out_dir / ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    save_with_code(student, staging)
    tokenizer.save_pretrained(staging)
    save_file(student_head.prefixed_state(), staging / STUDENT_HEAD_FILE)
    for path in staging.iterdir():
        path.replace(out_dir / path.name)
    staging.rmdir()
    temporary = out_dir / f".{PRETRAIN_FILE}.tmp"
    temporary.write_text(json.dumps(record, indent=1, default=str))
    os.replace(temporary, out_dir / PRETRAIN_FILE)
    return out_dir


def is_pretrain_folder(init_from: str | Path) -> bool:
    """Whether ``student.init_from`` names a folder ``pretrain-distill`` wrote (else a pretrained checkpoint)."""
    return (Path(init_from) / PRETRAIN_FILE).exists()


def load_seed(init_from: str | Path, device=None) -> tuple[str, torch.nn.Module]:
    """The seed checkpoint's folder (a hub id: its snapshot) and its model in eval mode."""
    path = resolve_model_path(init_from)
    model = load_seed_model(path)
    return path, (model.to(device) if device is not None else model).eval()


_SPECIAL_TOKENS = ("cls_token", "sep_token", "pad_token", "unk_token", "mask_token")


def check_same_tokenizer(teacher_tokenizer, seed_path: str | Path, what: str = "student.init_from") -> None:
    """Refuse a seed whose tokenizer is not the teacher's, naming the first difference.

    The student embeds the ids the teacher's tokenizer gives: a seed whose rows mean other tokens
    would start from the wrong word vectors. Compared: the vocabulary (token -> id) and each
    special token with its id. A seed folder with no tokenizer is compared by vocabulary size.
    """
    try:
        seed_tokenizer = load_tokenizer(seed_path)
    except ModelMismatchError:
        seed_tokenizer = None
    if seed_tokenizer is None:
        size = json.loads((Path(seed_path) / "config.json").read_text()).get("vocab_size")
        if size is not None and size < len(teacher_tokenizer):
            raise ModelMismatchError(f"{what} {seed_path}: embeds {size} tokens, the teacher's tokenizer has "
                                     f"{len(teacher_tokenizer)}; the two tokenizers differ")
        return
    for name in _SPECIAL_TOKENS:
        ours, theirs = getattr(teacher_tokenizer, name), getattr(seed_tokenizer, name)
        ours_id, theirs_id = getattr(teacher_tokenizer, f"{name}_id"), getattr(seed_tokenizer, f"{name}_id")
        if (ours, ours_id) != (theirs, theirs_id):
            raise ModelMismatchError(f"{what} {seed_path}: its tokenizer's {name} is {theirs!r} (id {theirs_id}), the "
                                     f"teacher's is {ours!r} (id {ours_id}); the seed must use the teacher's tokenizer")
    ours, theirs = teacher_tokenizer.get_vocab(), seed_tokenizer.get_vocab()
    if ours != theirs:
        differing = sorted(set(ours.items()) ^ set(theirs.items()), key=lambda item: item[1])
        token, _ = differing[0]
        raise ModelMismatchError(
            f"{what} {seed_path}: its vocabulary differs from the teacher's ({len(theirs)} tokens there, {len(ours)} "
            f"here; {sum(1 for _ in differing)} token/id pairs differ, e.g. {token!r}); the seed must use the "
            "teacher's tokenizer")


def read_record(folder: str | Path) -> dict:
    path = Path(folder) / PRETRAIN_FILE
    if not path.exists():
        raise ConfigError(f"student.init_from {folder}: no {PRETRAIN_FILE}; expected a folder that "
                          "`paretodistill pretrain-distill` finished")
    return json.loads(path.read_text())


def check_init_from(folder: str | Path, wanted: StudentArchitecture) -> dict:
    """The folder's record, once its student is known to be ``wanted`` in all but dropouts (else
    ``ModelMismatchError`` naming the fields and the ``--set`` that matches them)."""
    record = read_record(folder)
    recorded = StudentArchitecture(**record["architecture"])
    differing = [f.name for f in dataclasses.fields(StudentArchitecture)
                 if f.name not in FREE_FIELDS and getattr(recorded, f.name) != getattr(wanted, f.name)]
    if differing:
        details = ", ".join(f"{name} {getattr(recorded, name)!r} there, {getattr(wanted, name)!r} here"
                            for name in differing)
        hint = " ".join(f"student.{name}={json.dumps(getattr(recorded, name))}" for name in differing)
        raise ModelMismatchError(f"student.init_from {folder} holds another student ({details}); "
                                 f"set {hint} to start from it")
    return record


@torch.no_grad()
def start_from_pretrained(student: torch.nn.Module, folder: str | Path) -> None:
    """Replace every weight of ``student`` (checked with :func:`check_init_from`) by the folder's."""
    pretrained = load_qa_model(folder)
    student.load_state_dict(pretrained.state_dict())  # strict: same names and shapes, or an error
