"""Task-agnostic distillation of a student on unlabeled text (``paretodistill pretrain-distill``).

The whole workflow in one file: load the teacher and build the student exactly as ``distill``
would (same config: teacher, student settings), select the text (paragraphs of articles the
evaluation file does not hold: ``data.unlabeled``), fit the teacher's MLM head with its encoder
frozen (it has none: ``distill.pretrain`` says why and what soft MLM then means), distil the
student's encoder with DistilBERT's losses (and layer-wise transfer when the widths differ), and
save a folder that ``distill --set student.init_from=FOLDER`` (or a search's config) starts from.

Times are recorded for comparisons at equal total time: ``pretrain_seconds`` is the head fit plus
the student's training (evaluation and tokenization excluded, as the training loop excludes them),
``pretrain_cpu_seconds`` the same in this process's CPU time (what other runs on the cores do not
inflate), and ``run_trial`` copies both into the metrics of every trial that starts from the folder. Re-running
the same command resumes: a fitted head is reused, and training resumes from its last state.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import shutil
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from paretodistill.config import ExperimentConfig
from paretodistill.data.unlabeled import text_features, unlabeled_paragraphs
from paretodistill.distill.pretrain import (
    MaskedLMModel,
    Masker,
    PretrainObjective,
    check_pretrain_settings,
    masked_lm_loss,
    masked_lm_metrics,
)
from paretodistill.distill.pretrained_student import save_pretrained_student
from paretodistill.distill.run import teacher_tokenizer
from paretodistill.errors import ConfigError, ModelMismatchError
from paretodistill.hardware.device import compute_setup, device_name
from paretodistill.models.families import family_of
from paretodistill.models.loading import check_tokenizer_fits, load_qa_model
from paretodistill.models.masked_lm import MaskedLMHead, initial_head, student_head
from paretodistill.models.student import StudentArchitecture, build_student, count_parameters, cuts_units, resolve_teacher
from paretodistill.training.loop import train

TEACHER_HEAD_FILE = "teacher_mlm_head.safetensors"
TEACHER_HEAD_RECORD = "teacher_mlm_head.json"


def pretrain_distill(config: ExperimentConfig, out_dir: str | Path, log=print) -> dict:
    """Distil the configured student on the text; returns the record written to ``out_dir/pretrain.json``."""
    settings = config.pretrain
    check_pretrain_settings(settings)
    if config.student.init_from:
        raise ConfigError("student.init_from is where `distill` starts; pretrain-distill builds its student "
                          "from the teacher (leave student.init_from unset)")
    if config.student.vocabulary != "full":
        raise ConfigError("pretrain-distill keeps the full vocabulary (student.vocabulary = \"full\"): a corpus "
                          "vocabulary is made from the task data, which this stage does not read")
    evaluation_files = [f for f in (config.data.split_file, *config.data.validation_files, *config.data.test_files) if f]
    if not evaluation_files:
        raise ConfigError("no evaluation file: pass --data FILE, or --validation and --test files "
                          "(their articles are left out of the text)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device, precision = compute_setup(config.device, config.threads, settings.training.bf16)

    teacher_path = resolve_teacher(config.teacher.path)
    tokenizer = teacher_tokenizer(teacher_path, log)
    teacher = load_qa_model(teacher_path).to(device).eval()
    check_tokenizer_fits(tokenizer, teacher, "teacher")
    if not family_of(teacher).template:
        raise ModelMismatchError(f"pretrain-distill distils BERT-family teachers (its MLM heads are BERT's); "
                                 f"{config.teacher.path} is a {family_of(teacher).name} model")
    architecture = StudentArchitecture.from_settings(config.student, teacher.config)
    if architecture.pruning == "importance" and cuts_units(teacher.config, architecture):
        raise ConfigError("pretrain-distill drops heads and neurons at random: set student.pruning=\"random\" here "
                          "and in the distill run that starts from it (importance pruning scores them with the QA "
                          "loss, on task data this stage does not read)")
    student = build_student(teacher, architecture)

    paragraphs = unlabeled_paragraphs(settings.text_files, evaluation_files,
                                      max_paragraphs=settings.max_paragraphs, heldout=settings.heldout_paragraphs,
                                      seed=settings.training.seed)
    features = text_features(paragraphs.train, tokenizer, settings.max_seq_length)
    heldout = text_features(paragraphs.heldout, tokenizer, settings.max_seq_length) if paragraphs.heldout else None
    text = {"files": list(settings.text_files), "articles": paragraphs.articles, "paragraphs": len(paragraphs.train),
            "heldout_paragraphs": len(paragraphs.heldout), "sequences": len(features), "tokens": features.num_tokens(),
            "left_out_articles": list(paragraphs.left_out_articles), "left_out_paragraphs": paragraphs.left_out_paragraphs}
    log(f"text: {json.dumps(text)}")

    masker = Masker(tokenizer, settings.mask_probability)

    def heldout_metrics(model) -> dict:
        return masked_lm_metrics(model, heldout, settings.training.eval_batch_size) if heldout is not None else {}

    teacher_head, head_record = _teacher_head(teacher, features, masker, config, out_dir, precision, heldout_metrics, log)

    objective = PretrainObjective(student, teacher, teacher_head, student_head(student.config, teacher_head),
                                  settings, masker)
    log(f"pretrain-distilling a {count_parameters(student)}-parameter student on {device_name(device)}, {precision}; "
        f"weights {json.dumps(objective.weights)}, T {settings.temperature}")
    trained = train(objective.model, features, objective, settings.training, precision=precision,
                    evaluator=heldout_metrics, state_dir=out_dir / ".state", log=log)
    objective.finish()
    student.eval()

    record = {
        "status": "ok",
        "architecture": dataclasses.asdict(architecture),
        "teacher": {"path": str(config.teacher.path), "resolved": teacher_path},
        "settings": dataclasses.asdict(settings),
        "weights": objective.weights,
        "text": text,
        "teacher_head": head_record,
        "student_heldout": heldout_metrics(objective.model),
        "training": trained.to_dict(),
        "pretrain_seconds": head_record["seconds"] + trained.train_seconds,
        "pretrain_cpu_seconds": (None if head_record.get("cpu_seconds") is None  # a head fitted by an older version
                                 else head_record["cpu_seconds"] + trained.train_cpu_seconds),
        "num_parameters": count_parameters(student),
        "device": device_name(device),
        "precision": precision,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    (out_dir / "curve.json").write_text(json.dumps(trained.curve, indent=1))
    save_pretrained_student(student, tokenizer, objective.model.head, record, out_dir)
    shutil.rmtree(out_dir / ".state", ignore_errors=True)
    log(f"student saved to {out_dir}: held-out masked-LM accuracy {record['student_heldout'].get('mlm_accuracy', 0):.1f}% "
        f"(teacher's head {head_record['heldout_after'].get('mlm_accuracy', 0):.1f}%), "
        f"{record['pretrain_seconds']:.0f} s of training; distil it with --set student.init_from={out_dir}")
    return record


def _teacher_head(teacher, features, masker, config: ExperimentConfig, out_dir: Path, precision, heldout_metrics,
                  log) -> tuple[MaskedLMHead, dict]:
    """The teacher's MLM head: the one fitted in ``out_dir`` before (same settings), else fitted now
    on the text with the encoder frozen, and saved with its record (time, held-out accuracy before and after)."""
    settings = config.pretrain
    fit_settings = dataclasses.replace(settings.training, learning_rate=settings.head_learning_rate,
                                       max_steps=max(settings.head_steps, 1), max_windows=None, warmup_steps=0, weight_decay=0.0,
                                       eval_every_steps=None)
    wanted = {"teacher": str(config.teacher.path), "base_encoder": settings.base_encoder,
              "head_steps": settings.head_steps, "training": dataclasses.asdict(fit_settings),
              "tokens": features.num_tokens(), "mask_probability": settings.mask_probability}
    head_file, record_file = out_dir / TEACHER_HEAD_FILE, out_dir / TEACHER_HEAD_RECORD
    head, source = initial_head(teacher.config, settings.base_encoder, features.input_ids)
    head.to(next(teacher.parameters()).device)
    if head_file.exists() and record_file.exists():
        record = json.loads(record_file.read_text())
        if record.get("fitted_with") == wanted:
            head.load_prefixed_state(load_file(head_file))
            log(f"teacher MLM head: reusing {head_file} ({record['source']})")
            return head, record
    log(f"teacher MLM head: {source}")
    model = MaskedLMModel(teacher.bert, head, masker, train_encoder=False)
    before = heldout_metrics(model)
    seconds = cpu_seconds = 0.0
    if settings.head_steps:
        log(f"fitting it for {settings.head_steps} steps on the text, the teacher's encoder frozen")
        fitted = train(model, features, masked_lm_loss, fit_settings, precision=precision,
                       state_dir=out_dir / ".head-state", log=log)
        seconds, cpu_seconds = fitted.train_seconds, fitted.train_cpu_seconds
    after = heldout_metrics(model)
    record = {"source": source, "steps": settings.head_steps, "seconds": seconds, "cpu_seconds": cpu_seconds,
              "heldout_before": before,
              "heldout_after": after, "fitted_with": wanted}
    save_file(head.prefixed_state(), head_file)
    record_file.write_text(json.dumps(record, indent=1))
    log(f"teacher MLM head: held-out accuracy {before.get('mlm_accuracy', 0):.1f}% -> "
        f"{after.get('mlm_accuracy', 0):.1f}% in {seconds:.0f} s")
    return head, record
