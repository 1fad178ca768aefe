"""One distillation trial: parameters in, a ``TrialResult`` out, whatever happens.

``run_trial(config, params)`` is the engine the search calls: apply the parameters to the config,
load the teacher and its tokenizer, prepare the data (cached), get the teacher's logits (cached,
computed once for all trials), build the student, train it with the distillation objective,
score it on the validation articles (the no-answer threshold is chosen there), optionally on the
test articles at that threshold, time it, and save it.

Every failure becomes a ``TrialResult`` the optimizer can learn from rather than an exception
that kills the search: an architecture the teacher cannot seed is ``impossible_architecture``, a
NaN/inf loss is ``diverged`` (with the step), running out of memory is ``out_of_memory``, an
interrupt is ``interrupted``, anything else ``error``; the reason names the stage, the step and
the parameters. Callers that see ``interrupted`` should stop rather than start the next trial.

A caller may pass ``should_stop`` (a search stopping flash trials that cannot reach its front):
it sees each evaluation point with the student's parameter count, and a reason it returns ends
training there. Such a trial is ``stopped``, not failed: it keeps its curve and its last
evaluation's metrics, and is neither scored again, timed nor saved (nobody will use that student).

On disk (when ``trial_dir`` is given): ``checkpoint/`` (a Hugging Face folder with the tokenizer,
the split and a copy of the metrics, loadable without paretodistill), ``curve.json``, and
``metrics.json`` written last through a temporary file and a rename, so a folder with a
``metrics.json`` always holds a complete result. A failed trial leaves ``failure.json`` instead, a
stopped one ``curve.json`` and ``stopped.json``.

Everything ``run_trial`` takes and returns is plain picklable data, so it runs the same in this
process, in a worker process (``python -m paretodistill.distill.run``) or on another machine.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import shutil
import sys
import time
import traceback
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Any, Callable

import torch

from paretodistill.config import PARAMETER_TARGETS, ExperimentConfig, StudentSettings, build_section, with_parameters
from paretodistill.data.prepare import load_train_titles, prepare_data
from paretodistill.distill.objective import DistillationObjective, check_distill_settings, needs_teacher_forward
from paretodistill.distill.pretrained_student import (
    check_init_from,
    check_same_tokenizer,
    is_pretrain_folder,
    load_seed,
    start_from_pretrained,
)
from paretodistill.distill.teacher_cache import cached_teacher_logits
from paretodistill.distill.teacher_importance import teacher_importance
from paretodistill.errors import ModelMismatchError
from paretodistill.evaluation.inference import (
    curve_metrics,
    evaluate_model,
    no_answer_rate,
    predict_logits,
    score_answers,
)
from paretodistill.evaluation.postprocess import extract_answers
from paretodistill.evaluation.signals import no_answer_auc, span_f1, window_kl
from paretodistill.hardware.device import compute_setup, device_name
from paretodistill.hardware.latency import check_runtime, measure_latency
from paretodistill.models.loading import check_tokenizer_fits, load_qa_model, load_tokenizer
from paretodistill.models.saving import save_with_code
from paretodistill.models.student import (
    StudentArchitecture,
    build_student,
    count_parameters,
    cuts_units,
    resolve_teacher,
)
from paretodistill.models.vocabulary import corpus_vocabulary
from paretodistill.training.loop import TrainingDiverged, train
from paretodistill.trial import ENVIRONMENT, STOPPED, EvaluationPoint, ShouldStop, TrialResult

METRICS_FILE = "metrics.json"
FAILURE_FILE = "failure.json"
STOPPED_FILE = "stopped.json"
CURVE_FILE = "curve.json"
CHECKPOINT_DIR = "checkpoint"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt")
FALLBACK_TOKENIZER = "minilm"


class Stage(Enum):
    """Where a trial is; a failure's reason names it, and its kind may depend on it."""

    STARTING = "starting"
    APPLYING_PARAMETERS = "applying the parameters"
    LOADING_TEACHER = "loading the teacher"
    BUILDING_STUDENT = "building the student"
    PREPARING_DATA = "preparing the data"
    TEACHER_LOGITS = "computing the teacher logits"
    TRAINING = "training"
    EVALUATING = "evaluating"
    MEASURING_LATENCY = "measuring latency"
    SAVING = "saving"


class _Progress:
    """Where a trial is, so that a failure can say where it happened."""

    def __init__(self) -> None:
        self.stage = Stage.STARTING
        self.objective: DistillationObjective | None = None
        self.curve: list[dict] = []

    @property
    def step(self) -> int | None:
        return self.objective.calls if self.objective is not None else None


def student_architecture(settings: StudentSettings, teacher_config) -> StudentArchitecture:
    """The architecture the student settings describe; ``heads_per_layer=None`` keeps all the teacher's heads."""
    heads = settings.heads_per_layer if settings.heads_per_layer is not None else teacher_config.num_attention_heads
    return StudentArchitecture(
        num_layers=settings.num_layers,
        heads_per_layer=heads,
        pruning_seed=settings.pruning_seed,
        intermediate_size=settings.intermediate_size,
        hidden_size=settings.hidden_size,
        hidden_dropout=settings.hidden_dropout,
        attention_dropout=settings.attention_dropout,
        qa_dropout=settings.qa_dropout,
        initializer_range=settings.initializer_range,
        layer_selection=settings.layer_selection,
        bottleneck_size=settings.bottleneck_size,
        stacked_ffn=settings.stacked_ffn,
        embedding_size=settings.embedding_size,
        vocabulary=settings.vocabulary,
        pruning=settings.pruning,
    )


def teacher_tokenizer(teacher_path: str | Path, log: Callable[[str], None] = print):
    """The teacher folder's own tokenizer when it has one (the data must be tokenized with it)."""
    folder = Path(teacher_path)
    if any((folder / name).exists() for name in TOKENIZER_FILES):
        return load_tokenizer(folder)
    log(f"{folder} has no tokenizer; using the packaged {FALLBACK_TOKENIZER} tokenizer")
    return load_tokenizer(FALLBACK_TOKENIZER)


def check_seed_checkpoint(config: ExperimentConfig, teacher_path: str, tokenizer=None) -> str | None:
    """The folder of ``student.init_from`` when it is a pretrained checkpoint to seed from (None when
    unset or a ``pretrain-distill`` folder), refused in one line when no family adapter reads it or
    its tokenizer is not the teacher's: before any data or model work."""
    init_from = config.student.init_from
    if not init_from or is_pretrain_folder(init_from):
        return None
    seed_path = resolve_teacher(init_from, "student.init_from")
    check_same_tokenizer(tokenizer or teacher_tokenizer(teacher_path, log=lambda _: None), seed_path)
    return seed_path


def effective_parameters(config: ExperimentConfig) -> dict[str, Any]:
    """The value every searchable parameter has in ``config``: what the trial really ran with."""
    values = config.to_dict()
    return {name: values[target.split(".")[0]][target.split(".")[1]] for name, target in PARAMETER_TARGETS.items()}



def _is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def _classify(error: BaseException, stage: Stage) -> str:
    if isinstance(error, KeyboardInterrupt):
        return "interrupted"
    if isinstance(error, TrainingDiverged):
        return "diverged"
    if _is_out_of_memory(error):
        return "out_of_memory"
    if isinstance(error, ModelMismatchError) and stage is Stage.BUILDING_STUDENT:
        return "impossible_architecture"
    if _is_environment(error):
        return ENVIRONMENT
    return "error"


# A full disk as libraries report it without an OSError: torch.save (PytorchStreamWriter) and
# safetensors (a Rust io error) raise their own types with these words.
_DISK_FULL_WORDS = ("no space left on device", "file write failed", "os { code: 28", "disk quota exceeded")


def _is_environment(error: BaseException) -> bool:
    """A full disk, an unreadable file: the machine failed the trial, not its settings."""
    if isinstance(error, OSError):
        return True
    text = str(error).lower()
    return any(words in text for words in _DISK_FULL_WORDS)


def _write_json_atomically(path: Path, values: Any) -> None:
    """Write to a temporary file in the same folder, then rename: readers see all of it or nothing."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(values, indent=1, default=str))
    os.replace(temporary, path)


def vocabulary_texts(data) -> Iterator[str]:
    """The text a corpus vocabulary is cut to: the questions and contexts of the training and validation
    parts. Never the test articles: a student must meet their words as it would meet a user's, so a
    word it never saw reads [UNK] and the test figures show what that costs."""
    for part in (data.train, data.validation):
        for example in part.examples:
            yield example.question
            yield example.context


def run_trial(
    config: ExperimentConfig,
    params: dict,
    *,
    trial_dir: str | Path | None = None,
    evaluate_test: bool = False,
    log: Callable[[str], None] = print,
    should_stop: ShouldStop | None = None,
) -> TrialResult:
    """Distil one student with ``params`` applied to ``config``; never raises for a failed trial.

    ``should_stop``: asked at every evaluation point but the last; a reason it returns stops the
    trial there (a ``stopped`` result)."""
    params = dict(params)
    trial_dir = Path(trial_dir).resolve() if trial_dir is not None else None
    if trial_dir is not None:
        trial_dir.mkdir(parents=True, exist_ok=True)
        for stale in (METRICS_FILE, FAILURE_FILE, STOPPED_FILE):  # a re-run replaces any earlier outcome
            (trial_dir / stale).unlink(missing_ok=True)
    progress = _Progress()
    started = time.perf_counter()
    threads = torch.get_num_threads()  # config.threads applies to this trial only
    try:
        return _run(config, params, trial_dir=trial_dir, evaluate_test=evaluate_test, log=log, progress=progress,
                    started=started, should_stop=should_stop)
    except (SystemExit, GeneratorExit):
        raise
    except BaseException as error:  # noqa: BLE001 -- every failure becomes a result
        kind = _classify(error, progress.stage)
        step = error.step if isinstance(error, TrainingDiverged) else progress.step
        at_step = f" at step {step}" if step is not None else ""
        reason = f"{type(error).__name__} while {progress.stage.value}{at_step}: {error} (parameters: {params})"
        details = traceback.format_exc()
    finally:
        torch.set_num_threads(threads)
    # Out of the handler, the traceback (and the models its frames hold) is gone: free the memory
    # so that the next trial in this process gets it back.
    progress.objective = None
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    result = TrialResult.failed(params, kind, reason, step=step, curve=progress.curve)
    log(f"trial failed ({kind}): {reason}")
    if kind == "error":
        log(details)
    if trial_dir is not None:
        if kind != "interrupted":  # only an interrupted trial is worth resuming
            shutil.rmtree(trial_dir / ".state", ignore_errors=True)
        _write_json_atomically(trial_dir / FAILURE_FILE, {**result.to_dict(), "traceback": details})
    return result


def _load_teacher(config: ExperimentConfig, device: torch.device, log):
    """The teacher's folder (a hub id: its snapshot, for tokenizer, weights and fingerprint), its
    tokenizer and the model in eval mode on ``device``; a tokenizer that does not fit is refused."""
    teacher_path = resolve_teacher(config.teacher.path)
    tokenizer = teacher_tokenizer(teacher_path, log)
    teacher = load_qa_model(teacher_path, fast_attention=config.distillation.attention_weight == 0).to(device).eval()
    check_tokenizer_fits(tokenizer, teacher, "teacher")
    return teacher_path, tokenizer, teacher


def _unseen_titles(config: ExperimentConfig, teacher_path: str) -> tuple[str, ...]:
    """The teacher's own training titles, when the transfer set must avoid them."""
    return tuple(load_train_titles(teacher_path)) if config.data.unseen_by_teacher else ()


def _teacher_outputs(config: ExperimentConfig, teacher, teacher_path: str, data, use_bf16: bool, log):
    """The teacher's logits over the training and validation windows (cached; see teacher_cache)."""
    return tuple(cached_teacher_logits(
        teacher, features, config.cache_dir, teacher_dir=teacher_path,
        batch_size=config.training.eval_batch_size, bf16=use_bf16, log=log,
    ) for features in (data.train_features, data.validation_features))


def label_windows_once(config: ExperimentConfig, log: Callable[[str], None] = print) -> None:
    """Run the teacher over the training and validation windows now, on every thread, into the cache.

    Every trial of a search reads the same teacher logits. Without this, the first trials of a
    parallel search would each compute them, on one thread each, at the same time.
    """
    device, precision = compute_setup(config.device, config.threads, config.training.bf16)
    teacher_path, tokenizer, teacher = _load_teacher(config, device, log)
    data = prepare_data(config.data, tokenizer, config.cache_dir, log, exclude_titles=_unseen_titles(config, teacher_path))
    _teacher_outputs(config, teacher, teacher_path, data, precision == "bf16", log)


def _signals(data, answers, logits, teacher_logits) -> dict[str, float]:
    """What the threshold hides (evaluation/signals.py): candidate flash metrics, at the end and on the curve."""
    return {
        "span_f1": span_f1(data.validation, answers),
        "no_answer_auc": no_answer_auc(data.validation, answers),
        "teacher_kl": window_kl(logits, (teacher_logits.start, teacher_logits.end), data.validation_features.row_starts),
    }


def _run(config: ExperimentConfig, params: dict, *, trial_dir: Path | None, evaluate_test: bool,
         log: Callable[[str], None], progress: _Progress, started: float,
         should_stop: ShouldStop | None = None) -> TrialResult:
    progress.stage = Stage.APPLYING_PARAMETERS
    config = with_parameters(config, params)
    check_distill_settings(config.distillation)
    if config.latency.enabled:
        check_runtime(config.latency.runtime)
    if not config.teacher.path:
        raise ModelMismatchError("no teacher: set teacher.path (or --teacher) to a QA checkpoint folder")
    device, precision = compute_setup(config.device, config.threads, config.training.bf16)
    use_bf16 = precision == "bf16"  # evaluation: bf16 where native, else fp32
    layerwise = needs_teacher_forward(config.distillation)

    progress.stage = Stage.LOADING_TEACHER
    teacher_path, tokenizer, teacher = _load_teacher(config, device, log)
    seed_path = check_seed_checkpoint(config, teacher_path, tokenizer)
    seed = teacher if seed_path is None else load_seed(seed_path, device)[1]
    progress.stage = Stage.BUILDING_STUDENT
    architecture = student_architecture(config.student, seed.config)
    architecture.validate(seed.config)  # before any data work: an impossible trial fails fast
    if seed is not teacher and architecture.pruning == "importance" and cuts_units(seed.config, architecture):
        raise ModelMismatchError(
            "student.pruning 'importance' scores the teacher's heads and neurons, and this student drops some of "
            f"its seed's ({config.student.init_from}): set student.pruning = \"random\" for a separate seed")
    pretrained = None
    if config.student.init_from and seed_path is None:  # a pretrain-distill folder
        pretrained = check_init_from(config.student.init_from, architecture)

    progress.stage = Stage.PREPARING_DATA
    data = prepare_data(config.data, tokenizer, config.cache_dir, log, exclude_titles=_unseen_titles(config, teacher_path))
    progress.stage = Stage.TEACHER_LOGITS
    teacher_logits, teacher_validation_logits = _teacher_outputs(config, teacher, teacher_path, data, use_bf16, log)

    progress.stage = Stage.BUILDING_STUDENT
    vocabulary = corpus_vocabulary(vocabulary_texts(data), tokenizer) if architecture.vocabulary == "corpus" else None
    importance = None
    if seed is teacher and architecture.pruning == "importance" and cuts_units(teacher.config, architecture):
        importance = teacher_importance(teacher, data.train_features, config.student, config.training.train_batch_size,
                                        teacher_dir=teacher_path, cache_dir=config.cache_dir)
        log(f"importance pruning: the teacher's heads and neurons scored on "
            f"{min(config.student.importance_windows, len(data.train_features))} training windows")
    student = build_student(seed, architecture, vocabulary, importance,
                            seed_checkpoint=None if seed is teacher else str(config.student.init_from))
    if seed is not teacher:
        del seed
        log(f"the student is seeded from {config.student.init_from} ({student.config.model_type})")
    if pretrained is not None:
        start_from_pretrained(student, config.student.init_from)
        log(f"the student starts from the pretrain-distilled {config.student.init_from}")
    teacher_summary = {
        "path": str(config.teacher.path),
        "resolved": teacher_path,
        "num_parameters": count_parameters(teacher),
        "layers": teacher.config.num_hidden_layers,
        "hidden_size": teacher.config.hidden_size,
        "heads": teacher.config.num_attention_heads,
        "model_type": teacher.config.model_type,
        "student_seed": str(config.student.init_from) if seed_path else "teacher",
    }
    if not layerwise:
        del teacher  # logit distillation reads the cache; the teacher's memory goes to the student
        teacher = None
    steps_per_epoch = math.ceil(len(data.train_features) / config.training.train_batch_size)
    objective = DistillationObjective(
        student, config.distillation, teacher_logits, teacher=teacher, steps_per_epoch=steps_per_epoch
    )
    progress.objective = objective

    latest: dict = {}  # the last curve point's validation logits: the final scoring reuses them

    def evaluate_validation(_model) -> dict:
        latest["logits"] = predict_logits(student, data.validation_features, config.training.eval_batch_size, use_bf16)
        answers = extract_answers(data.validation.examples, data.validation_features, *latest["logits"])
        signals = _signals(data, answers, latest["logits"], teacher_validation_logits)
        return {**curve_metrics(score_answers(data.validation, answers, threshold=0.0).metrics),
                **{key: round(value, 4) for key, value in signals.items() if math.isfinite(value)}}

    known = {"num_parameters": float(count_parameters(student))}  # final before training: early stopping may use it

    def at_evaluation(step: int, total_steps: int, point: dict) -> str | None:
        return should_stop(EvaluationPoint(step, total_steps, dict(point), dict(known)))

    progress.stage = Stage.TRAINING
    log(f"trial {params}: {int(known['num_parameters'])} student parameters, {len(data.train_features)} windows, "
        f"{device_name(device)}, {precision}")
    trained = train(
        objective.model, data.train_features, objective, config.training, precision=precision,
        evaluator=evaluate_validation, state_dir=trial_dir / ".state" if trial_dir else None,
        should_stop=at_evaluation if should_stop is not None else None, log=log,
    )
    progress.curve = trained.curve
    objective.finish()
    if trained.stop_reason is not None:
        return _stopped(params, trained, known, started, trial_dir, log)
    student.eval()
    del teacher, objective
    progress.objective = None
    final_step = trained.steps

    progress.stage = Stage.EVALUATING
    # The loop always scores the last step for the curve; the weights have not moved since, so
    # that pass's logits are the final ones (one validation pass less per trial).
    last_point_is_final = bool(trained.curve) and trained.curve[-1]["step"] == final_step and "logits" in latest
    student_logits = latest["logits"] if last_point_is_final else predict_logits(
        student, data.validation_features, config.training.eval_batch_size, use_bf16)
    answers = extract_answers(data.validation.examples, data.validation_features, *student_logits)
    validation = score_answers(data.validation, answers, threshold=None)
    signals = _signals(data, answers, student_logits, teacher_validation_logits)
    test = None
    if evaluate_test:
        test = evaluate_model(student, data.test, data.test_features,
                              config.training.eval_batch_size, use_bf16, threshold=validation.threshold)

    latency = None
    if config.latency.enabled:
        progress.stage = Stage.MEASURING_LATENCY
        lat = config.latency
        latency = measure_latency(
            student, batch_size=lat.batch_size,
            sequence_length=lat.sequence_length or config.data.features.max_seq_length,
            warmup=lat.warmup, repeats=lat.repeats, runtime=lat.runtime, threads=lat.threads,
        )

    metrics = {key: float(value) for key, value in validation.metrics.items()}
    if metrics.get("total"):
        # Answering "no answer" to everything scores the no-answer rate: a student is only useful
        # above it, so thresholds can be set on the margin (e.g. exact_over_no_answer >= 1).
        metrics["exact_over_no_answer"] = metrics["exact"] - no_answer_rate(metrics)
    metrics.update(signals)
    metrics["num_parameters"] = float(count_parameters(student))
    if pretrained is not None:  # what the starting point cost, for comparisons at equal total time
        metrics["pretrain_seconds"] = float(pretrained["pretrain_seconds"])
        if pretrained.get("pretrain_cpu_seconds") is not None:
            metrics["pretrain_cpu_seconds"] = float(pretrained["pretrain_cpu_seconds"])
    if latency is not None:
        metrics.update(
            latency_ms=latency["median_ms"], latency_p10_ms=latency["p10_ms"], latency_p90_ms=latency["p90_ms"],
            latency_iqr_ms=latency["iqr_ms"], latency_mean_ms=latency["mean_ms"], latency_std_ms=latency["std_ms"],
        )
    metrics.update(
        train_seconds=trained.train_seconds,
        train_cpu_seconds=trained.train_cpu_seconds,
        examples_per_second=trained.examples_per_second,
        train_steps=float(final_step),
        train_epochs=trained.epochs,
        trial_seconds=time.perf_counter() - started,
    )
    test_metrics = {key: float(value) for key, value in test.metrics.items()} if test is not None else None
    result = TrialResult("ok", params, metrics=metrics, curve=trained.curve, test_metrics=test_metrics)

    if trial_dir is not None:
        progress.stage = Stage.SAVING
        record = {
            "status": "ok",
            **metrics,
            "device": device_name(device),
            "bf16": use_bf16,
            "precision": precision,
            "latency": latency,
            "test": test_metrics,
            "parameters": effective_parameters(config),  # every searchable parameter, as the trial ran
            "searched": sorted(params),  # which of them the search set
            "config": config.to_dict(),
            "split": data.split.to_dict(),
            "data": data.summary,
            "teacher": teacher_summary,
            "training": trained.to_dict(),
            "checkpoint": CHECKPOINT_DIR,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        checkpoint = _save_checkpoint(student, tokenizer, data.split, record, trial_dir)
        (trial_dir / CURVE_FILE).write_text(json.dumps(trained.curve, indent=1))
        shutil.rmtree(trial_dir / ".state", ignore_errors=True)
        _write_json_atomically(trial_dir / METRICS_FILE, record)  # last: marks the trial complete
        result.checkpoint = str(checkpoint)
        log(f"trial done: f1 {metrics['f1']:.2f}, exact {metrics['exact']:.2f}, "
            f"{int(metrics['num_parameters'])} parameters"
            + (f", {metrics['latency_ms']:.2f} ms" if latency else "") + f"; saved in {trial_dir}")
    return result


def _stopped(params: dict, trained, known: dict, started: float, trial_dir: Path | None, log) -> TrialResult:
    """A trial the ``should_stop`` check ended: its curve, and its last evaluation's metrics as they are."""
    last = trained.curve[-1]
    metrics = {key: float(value) for key, value in last.items() if key not in ("step", "epoch", "loss")}
    metrics.update(known)
    metrics.update(
        train_seconds=trained.train_seconds,
        train_cpu_seconds=trained.train_cpu_seconds,
        examples_per_second=trained.examples_per_second,
        train_steps=float(trained.steps),
        train_epochs=trained.epochs,
        trial_seconds=time.perf_counter() - started,
    )
    result = TrialResult(STOPPED, params, metrics=metrics, curve=trained.curve, stop_reason=trained.stop_reason)
    if trial_dir is not None:
        (trial_dir / CURVE_FILE).write_text(json.dumps(trained.curve, indent=1))
        shutil.rmtree(trial_dir / ".state", ignore_errors=True)
        _write_json_atomically(trial_dir / STOPPED_FILE, result.to_dict())
    log(f"trial stopped at step {trained.steps}: {trained.stop_reason}")
    return result


def _save_checkpoint(student, tokenizer, split, record: dict, trial_dir: Path) -> Path:
    """Save into a staging folder and rename it into place, so no reader sees half a checkpoint.

    ``split.json`` and a copy of the metrics (with ``na_threshold``) go in too, which is what
    ``paretodistill evaluate --model DIR --part test`` reads to score with the right threshold.
    """
    staging = trial_dir / f".{CHECKPOINT_DIR}-staging"
    final = trial_dir / CHECKPOINT_DIR
    shutil.rmtree(staging, ignore_errors=True)
    save_with_code(student, staging)
    tokenizer.save_pretrained(staging)
    split.save(staging / "split.json")
    (staging / METRICS_FILE).write_text(json.dumps(record, indent=1, default=str))
    shutil.rmtree(final, ignore_errors=True)
    os.rename(staging, final)
    return final


def searched_parameters(record: dict) -> dict[str, Any]:
    """The parameters the search set, from a trial's ``metrics.json`` (records before issue 11 hold
    them under ``params``, beside the effective ``parameters``)."""
    if "params" in record:
        return dict(record["params"])
    parameters = record.get("parameters") or {}
    return {name: parameters[name] for name in record.get("searched", ()) if name in parameters}


def load_trial(trial_dir: str | Path) -> TrialResult | None:
    """The outcome recorded in a trial folder: ok (metrics.json), failed (failure.json), stopped
    (stopped.json) or None (unfinished)."""
    trial_dir = Path(trial_dir)
    if (trial_dir / METRICS_FILE).exists():
        record = json.loads((trial_dir / METRICS_FILE).read_text())
        curve = json.loads((trial_dir / CURVE_FILE).read_text()) if (trial_dir / CURVE_FILE).exists() else []
        numeric = {k: v for k, v in record.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        return TrialResult("ok", searched_parameters(record), metrics=numeric, curve=curve,
                           checkpoint=str(trial_dir / record.get("checkpoint", CHECKPOINT_DIR)),
                           test_metrics=record.get("test"))
    if (trial_dir / FAILURE_FILE).exists():
        record = json.loads((trial_dir / FAILURE_FILE).read_text())
        record.pop("traceback", None)
        return TrialResult.from_dict(record)
    if (trial_dir / STOPPED_FILE).exists():
        return TrialResult.from_dict(json.loads((trial_dir / STOPPED_FILE).read_text()))
    return None


# ---------------------------------------------------------------- worker entry
def main(argv: list[str] | None = None) -> int:
    """``python -m paretodistill.distill.run --config C.json --params P.json --trial-dir D [--test]``.

    ``--config`` is ``ExperimentConfig.to_dict()`` as JSON (or a TOML config file); ``--params`` a
    JSON object or a file holding one. The TrialResult is written to ``--result`` (default
    ``TRIAL_DIR/result.json``) and printed as the last line of stdout. Exit status 0 when ok.
    """
    parser = argparse.ArgumentParser(prog="python -m paretodistill.distill.run", description=main.__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="config as JSON (ExperimentConfig.to_dict()) or TOML")
    parser.add_argument("--params", default="{}", help="JSON object, or a file holding one")
    parser.add_argument("--trial-dir", required=True)
    parser.add_argument("--test", action="store_true", help="also score the test articles")
    parser.add_argument("--result", help="where to write the TrialResult JSON")
    args = parser.parse_args(argv)
    config_path = Path(args.config)
    if config_path.suffix == ".json":
        config = build_section(ExperimentConfig, json.loads(config_path.read_text()))
    else:
        from paretodistill.config import load_config

        config = load_config(config_path)
    params_text = Path(args.params).read_text() if Path(args.params).is_file() else args.params
    params = json.loads(params_text)
    result = run_trial(config, params, trial_dir=args.trial_dir, evaluate_test=args.test,
                       log=lambda message: print(message, file=sys.stderr, flush=True))
    result.save(args.result or Path(args.trial_dir) / "result.json")
    print(json.dumps(result.to_dict(), default=str))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
