"""One distillation trial as a recipe: parameters in, a ``TrialResult`` out, whatever happens.

``run_trial(config, params)`` reads top to bottom, one short step each:

* **setup**: apply the parameters to the config, check them, choose the device and precision;
* **build**: load the teacher, its tokenizer and the student's seed, check the student's
  architecture against the seed (an impossible one fails before any data work), prepare the data
  (cached), get the teacher's logits (cached, computed once for all trials), build the student;
* **distil**: train it with the distillation objective, scoring the validation articles at each
  evaluation point (the learning curve);
* **score**: on the validation articles (the no-answer threshold is chosen there), optionally on
  the test articles at that threshold;
* **measure**: the student's inference latency;
* **record**: the metrics, and the trial folder (``distill.trial_files``).

Every failure becomes a ``TrialResult`` the optimizer can learn from rather than an exception
that kills the search: an architecture the teacher cannot seed is ``impossible_architecture``, a
NaN/inf loss is ``diverged`` (with the step), running out of memory is ``out_of_memory``, an
interrupt is ``interrupted``, anything else ``error``; the reason names the stage, the step and
the parameters. Callers that see ``interrupted`` should stop rather than start the next trial.

A caller may pass ``should_stop`` (a search stopping flash trials that cannot reach its front):
it sees each evaluation point with the student's parameter count, and a reason it returns ends
training there. Such a trial is ``stopped``, not failed: it keeps its curve and its last
evaluation's metrics, and is neither scored again, timed nor saved (nobody will use that student).

Everything ``run_trial`` takes and returns is plain picklable data, so the same function runs in
this process, in a search worker process (``search.worker``) or as a Ray task on another machine.
The search reaches it through ``distill.engine``.
"""

from __future__ import annotations

import gc
import math
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Callable

import torch

from paretodistill.config import PARAMETER_TARGETS, ExperimentConfig, with_parameters
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
from paretodistill.distill.trial_files import (
    CHECKPOINT_DIR,
    environment_record,
    open_trial_dir,
    state_dir,
    teacher_record,
    write_failure,
    write_finished,
    write_stopped,
)
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
from paretodistill.models.student import StudentArchitecture, build_student, count_parameters, cuts_units, resolve_teacher
from paretodistill.models.vocabulary import corpus_vocabulary
from paretodistill.training.loop import TrainingDiverged, train
from paretodistill.trial import ENVIRONMENT, STOPPED, EvaluationPoint, ShouldStop, TrialResult

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


@dataclass
class _Trial:
    """What every step of one trial reads: its inputs, where it is, and (after setup) its config
    with the parameters applied, its device and precision."""

    config: ExperimentConfig
    params: dict
    trial_dir: Path | None
    evaluate_test: bool
    log: Callable[[str], None]
    should_stop: ShouldStop | None
    progress: _Progress
    started: float
    device: torch.device | None = None
    precision: str = "fp32"

    @property
    def use_bf16(self) -> bool:  # evaluation: bf16 where native, else fp32
        return self.precision == "bf16"


@dataclass
class _Built:
    """What the build steps hand to training: the data, the teacher's logits, the student."""

    tokenizer: Any
    data: Any
    teacher: Any  # None unless a layer-wise loss needs the teacher's forward pass
    teacher_logits: Any
    teacher_validation_logits: Any
    student: torch.nn.Module
    teacher_summary: dict
    pretrained: dict | None  # the pretrain-distill record the student starts from


@dataclass
class Teachers:
    """The teacher (its folder, tokenizer and model) and the student's seed: the teacher itself or
    ``student.init_from``'s checkpoint."""

    path: str
    tokenizer: Any
    teacher: torch.nn.Module
    seed_path: str | None
    seed: torch.nn.Module

    @property
    def seed_is_teacher(self) -> bool:
        return self.seed is self.teacher


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


def vocabulary_texts(data) -> Iterator[str]:
    """The text a corpus vocabulary is cut to: the questions and contexts of the training and validation
    parts. Never the test articles: a student must meet their words as it would meet a user's, so a
    word it never saw reads [UNK] and the test figures show what that costs."""
    for part in (data.train, data.validation):
        for example in part.examples:
            yield example.question
            yield example.context


# ---------------------------------------------------------------- the trial, whatever happens
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
    trial = _Trial(config, dict(params), open_trial_dir(trial_dir), evaluate_test, log, should_stop,
                   _Progress(), time.perf_counter())
    threads = torch.get_num_threads()  # config.threads applies to this trial only
    try:
        return _run(trial)
    except (SystemExit, GeneratorExit):
        raise
    except BaseException as error:  # noqa: BLE001 -- every failure becomes a result
        result = _failure(error, trial)
        details = traceback.format_exc()
    finally:
        torch.set_num_threads(threads)
    # Out of the handler, the traceback (and the models its frames hold) is gone: free the memory
    # so that the next trial in this process gets it back.
    trial.progress.objective = None
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    log(f"trial failed ({result.failure_kind}): {result.failure_reason}")
    if result.failure_kind == "error":
        log(details)
    if trial.trial_dir is not None:
        write_failure(trial.trial_dir, result, details)
    return result


def _failure(error: BaseException, trial: _Trial) -> TrialResult:
    """The failed result of ``error``: its kind, and a reason naming the stage, the step and the parameters."""
    progress = trial.progress
    kind = _classify(error, progress.stage)
    step = error.step if isinstance(error, TrainingDiverged) else progress.step
    at_step = f" at step {step}" if step is not None else ""
    reason = f"{type(error).__name__} while {progress.stage.value}{at_step}: {error} (parameters: {trial.params})"
    return TrialResult.failed(trial.params, kind, reason, step=step, curve=progress.curve)


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


# ---------------------------------------------------------------- the recipe
def _run(trial: _Trial) -> TrialResult:
    """The steps of one trial, in order; each sets the stage a failure is reported at."""
    _setup(trial)
    built = _build(trial)
    trained, scorer, known = _distil(trial, built)
    if trained.stop_reason is not None:
        return _stopped(trial, trained, known)
    validation, signals, test_metrics = _score(trial, built, trained, scorer)
    latency = _measure(trial, built.student)
    metrics = _metrics(trial, built, trained, validation, signals, latency)
    result = TrialResult("ok", trial.params, metrics=metrics, curve=trained.curve, test_metrics=test_metrics)
    _record(trial, built, trained, result, latency)
    return result


# ---------------------------------------------------------------- setup
def _setup(trial: _Trial) -> None:
    """Apply the parameters and check what would only fail later; choose the device and precision."""
    trial.progress.stage = Stage.APPLYING_PARAMETERS
    config = trial.config = with_parameters(trial.config, trial.params)
    check_distill_settings(config.distillation)
    if config.latency.enabled:
        check_runtime(config.latency.runtime)
    if not config.teacher.path:
        raise ModelMismatchError("no teacher: set teacher.path (or --teacher) to a QA checkpoint folder")
    trial.device, trial.precision = compute_setup(config.device, config.threads, config.training.bf16)


# ---------------------------------------------------------------- build
def _build(trial: _Trial) -> _Built:
    """The teacher, the checked architecture, the data and the teacher's logits, then the student."""
    config, log, progress = trial.config, trial.log, trial.progress
    progress.stage = Stage.LOADING_TEACHER
    teachers = load_teachers(config, trial.device, log)
    progress.stage = Stage.BUILDING_STUDENT
    architecture, pretrained = check_architecture(config, teachers)  # before any data work: fails fast
    progress.stage = Stage.PREPARING_DATA
    data = training_data(config, teachers.tokenizer, teachers.path, log)
    progress.stage = Stage.TEACHER_LOGITS
    logits, validation_logits = teacher_logits(config, teachers.teacher, teachers.path, data, trial.use_bf16, log)
    progress.stage = Stage.BUILDING_STUDENT
    student = build_seeded_student(config, teachers, architecture, data, log)
    if pretrained is not None:
        start_from_pretrained(student, config.student.init_from)
        log(f"the student starts from the pretrain-distilled {config.student.init_from}")
    summary = teacher_record(config, teachers.path, teachers.teacher, teachers.seed_path)
    # Logit distillation reads the cache: the teacher's memory goes to the student.
    teacher = teachers.teacher if needs_teacher_forward(config.distillation) else None
    return _Built(teachers.tokenizer, data, teacher, logits, validation_logits, student, summary, pretrained)


def load_teacher(config: ExperimentConfig, device: torch.device, log: Callable[[str], None]):
    """The teacher's folder (a hub id: its snapshot, for tokenizer, weights and fingerprint), its
    tokenizer and the model in eval mode on ``device``; a tokenizer that does not fit is refused."""
    teacher_path = resolve_teacher(config.teacher.path)
    tokenizer = teacher_tokenizer(teacher_path, log)
    teacher = load_qa_model(teacher_path, fast_attention=config.distillation.attention_weight == 0).to(device).eval()
    check_tokenizer_fits(tokenizer, teacher, "teacher")
    return teacher_path, tokenizer, teacher


def load_teachers(config: ExperimentConfig, device: torch.device, log: Callable[[str], None]) -> Teachers:
    teacher_path, tokenizer, teacher = load_teacher(config, device, log)
    seed_path = check_seed_checkpoint(config, teacher_path, tokenizer)
    seed = teacher if seed_path is None else load_seed(seed_path, device)[1]
    return Teachers(teacher_path, tokenizer, teacher, seed_path, seed)


def check_architecture(config: ExperimentConfig, teachers: Teachers) -> tuple[StudentArchitecture, dict | None]:
    """The student's architecture, checked against its seed; and the pretrain-distill record when
    ``student.init_from`` is such a folder (its architecture must be this one)."""
    architecture = StudentArchitecture.from_settings(config.student, teachers.seed.config)
    architecture.validate(teachers.seed.config)
    if not teachers.seed_is_teacher and architecture.pruning == "importance" and cuts_units(teachers.seed.config, architecture):
        raise ModelMismatchError(
            "student.pruning 'importance' scores the teacher's heads and neurons, and this student drops some of "
            f"its seed's ({config.student.init_from}): set student.pruning = \"random\" for a separate seed")
    pretrained = None
    if config.student.init_from and teachers.seed_path is None:  # a pretrain-distill folder
        pretrained = check_init_from(config.student.init_from, architecture)
    return architecture, pretrained


def training_data(config: ExperimentConfig, tokenizer, teacher_path: str, log: Callable[[str], None]):
    """The prepared data (cached); without the teacher's own training articles when the transfer
    set must avoid them."""
    unseen = tuple(load_train_titles(teacher_path)) if config.data.unseen_by_teacher else ()
    return prepare_data(config.data, tokenizer, config.cache_dir, log, exclude_titles=unseen)


def teacher_logits(config: ExperimentConfig, teacher, teacher_path: str, data, use_bf16: bool, log: Callable[[str], None]):
    """The teacher's logits over the training and validation windows (cached; see teacher_cache)."""
    return tuple(cached_teacher_logits(
        teacher, features, config.cache_dir, teacher_dir=teacher_path,
        batch_size=config.training.eval_batch_size, bf16=use_bf16, log=log,
    ) for features in (data.train_features, data.validation_features))


def build_seeded_student(config: ExperimentConfig, teachers: Teachers, architecture: StudentArchitecture, data,
                   log: Callable[[str], None]) -> torch.nn.Module:
    """The student, seeded from its seed: with the corpus vocabulary and the teacher's unit
    importance when the architecture asks for them."""
    vocabulary = corpus_vocabulary(vocabulary_texts(data), teachers.tokenizer) if architecture.vocabulary == "corpus" else None
    importance = None
    if teachers.seed_is_teacher and architecture.pruning == "importance" and cuts_units(teachers.teacher.config, architecture):
        importance = teacher_importance(teachers.teacher, data.train_features, config.student,
                                        config.training.train_batch_size, teacher_dir=teachers.path, cache_dir=config.cache_dir)
        log(f"importance pruning: the teacher's heads and neurons scored on "
            f"{min(config.student.importance_windows, len(data.train_features))} training windows")
    seed_checkpoint = None if teachers.seed_is_teacher else str(config.student.init_from)
    student = build_student(teachers.seed, architecture, vocabulary, importance, seed_checkpoint=seed_checkpoint)
    if not teachers.seed_is_teacher:
        log(f"the student is seeded from {config.student.init_from} ({student.config.model_type})")
    return student


# ---------------------------------------------------------------- distil
@dataclass
class _CurveScorer:
    """The training loop's evaluator: scores the validation articles at each curve point (at the
    no-answer threshold 0, plus the signals) and keeps that pass's logits for the final scoring."""

    student: torch.nn.Module
    data: Any
    teacher_validation_logits: Any
    batch_size: int
    use_bf16: bool
    last_logits: tuple | None = None

    def __call__(self, _model) -> dict:
        self.last_logits = predict_logits(self.student, self.data.validation_features, self.batch_size, self.use_bf16)
        answers = extract_answers(self.data.validation.examples, self.data.validation_features, *self.last_logits)
        signals = _signals(self.data, answers, self.last_logits, self.teacher_validation_logits)
        return {**curve_metrics(score_answers(self.data.validation, answers, threshold=0.0).metrics),
                **{key: round(value, 4) for key, value in signals.items() if math.isfinite(value)}}


@dataclass(frozen=True)
class _AskToStop:
    """The loop's stop check: the caller's ``should_stop``, shown the point and what is already final."""

    should_stop: ShouldStop
    known: dict[str, float]

    def __call__(self, step: int, total_steps: int, point: dict) -> str | None:
        return self.should_stop(EvaluationPoint(step, total_steps, dict(point), dict(self.known)))


def _distil(trial: _Trial, built: _Built):
    """Train the student against the teacher's logits (and its forward pass for layer-wise losses)."""
    config, data, student = trial.config, built.data, built.student
    steps_per_epoch = math.ceil(len(data.train_features) / config.training.train_batch_size)
    objective = DistillationObjective(student, config.distillation, built.teacher_logits, teacher=built.teacher,
                                      steps_per_epoch=steps_per_epoch)
    trial.progress.objective = objective
    scorer = _CurveScorer(student, data, built.teacher_validation_logits, config.training.eval_batch_size, trial.use_bf16)
    known = {"num_parameters": float(count_parameters(student))}  # final before training: early stopping may use it
    trial.progress.stage = Stage.TRAINING
    trial.log(f"trial {trial.params}: {int(known['num_parameters'])} student parameters, {len(data.train_features)} "
              f"windows, {device_name(trial.device)}, {trial.precision}")
    trained = train(
        objective.model, data.train_features, objective, config.training, precision=trial.precision,
        evaluator=scorer, state_dir=state_dir(trial.trial_dir),
        should_stop=_AskToStop(trial.should_stop, known) if trial.should_stop is not None else None, log=trial.log,
    )
    trial.progress.curve = trained.curve
    objective.finish()
    student.eval()
    built.teacher = None
    trial.progress.objective = None
    return trained, scorer, known


def _stopped(trial: _Trial, trained, known: dict) -> TrialResult:
    """A trial the ``should_stop`` check ended: its curve, and its last evaluation's metrics as they are."""
    last = trained.curve[-1]
    metrics = {key: float(value) for key, value in last.items() if key not in ("step", "epoch", "loss")}
    metrics.update(known)
    metrics.update(_training_metrics(trained, trial.started))
    result = TrialResult(STOPPED, trial.params, metrics=metrics, curve=trained.curve, stop_reason=trained.stop_reason)
    if trial.trial_dir is not None:
        write_stopped(trial.trial_dir, result)
    trial.log(f"trial stopped at step {trained.steps}: {trained.stop_reason}")
    return result


# ---------------------------------------------------------------- score
def _score(trial: _Trial, built: _Built, trained, scorer: _CurveScorer):
    """The validation scores at their best no-answer threshold, the signals, and the test metrics
    at that threshold (when asked for)."""
    trial.progress.stage = Stage.EVALUATING
    data, batch_size = built.data, trial.config.training.eval_batch_size
    # The loop always scores the last step for the curve; the weights have not moved since, so
    # that pass's logits are the final ones (one validation pass less per trial).
    last_point_is_final = bool(trained.curve) and trained.curve[-1]["step"] == trained.steps and scorer.last_logits is not None
    logits = scorer.last_logits if last_point_is_final else predict_logits(
        built.student, data.validation_features, batch_size, trial.use_bf16)
    answers = extract_answers(data.validation.examples, data.validation_features, *logits)
    validation = score_answers(data.validation, answers, threshold=None)
    signals = _signals(data, answers, logits, built.teacher_validation_logits)
    test_metrics = None
    if trial.evaluate_test:
        test = evaluate_model(built.student, data.test, data.test_features, batch_size, trial.use_bf16,
                              threshold=validation.threshold)
        test_metrics = {key: float(value) for key, value in test.metrics.items()}
    return validation, signals, test_metrics


def _signals(data, answers, logits, teacher_logits) -> dict[str, float]:
    """What the threshold hides (evaluation/signals.py): candidate flash metrics, at the end and on the curve."""
    return {
        "span_f1": span_f1(data.validation, answers),
        "no_answer_auc": no_answer_auc(data.validation, answers),
        "teacher_kl": window_kl(logits, (teacher_logits.start, teacher_logits.end), data.validation_features.row_starts),
    }


# ---------------------------------------------------------------- measure
def _measure(trial: _Trial, student: torch.nn.Module) -> dict | None:
    """The student's inference latency, when ``[latency]`` is enabled."""
    if not trial.config.latency.enabled:
        return None
    trial.progress.stage = Stage.MEASURING_LATENCY
    return configured_latency(student, trial.config)


def configured_latency(model: torch.nn.Module, config: ExperimentConfig) -> dict:
    """``measure_latency`` with the config's ``[latency]`` settings: how every student of a search,
    and its teacher (``engine.teacher_latency``), is timed."""
    latency = config.latency
    return measure_latency(
        model, batch_size=latency.batch_size,
        sequence_length=latency.sequence_length or config.data.features.max_seq_length,
        warmup=latency.warmup, repeats=latency.repeats, runtime=latency.runtime, threads=latency.threads,
    )


# ---------------------------------------------------------------- record
def _metrics(trial: _Trial, built: _Built, trained, validation, signals: dict, latency: dict | None) -> dict[str, float]:
    """Everything the optimizer may read: validation scores, signals, size, latency, time."""
    metrics = {key: float(value) for key, value in validation.metrics.items()}
    if metrics.get("total"):
        # Answering "no answer" to everything scores the no-answer rate: a student is only useful
        # above it, so thresholds can be set on the margin (e.g. exact_over_no_answer >= 1).
        metrics["exact_over_no_answer"] = metrics["exact"] - no_answer_rate(metrics)
    metrics.update(signals)
    metrics["num_parameters"] = float(count_parameters(built.student))
    if built.pretrained is not None:  # what the starting point cost, for comparisons at equal total time
        metrics["pretrain_seconds"] = float(built.pretrained["pretrain_seconds"])
        if built.pretrained.get("pretrain_cpu_seconds") is not None:
            metrics["pretrain_cpu_seconds"] = float(built.pretrained["pretrain_cpu_seconds"])
    if latency is not None:
        metrics.update(
            latency_ms=latency["median_ms"], latency_p10_ms=latency["p10_ms"], latency_p90_ms=latency["p90_ms"],
            latency_iqr_ms=latency["iqr_ms"], latency_mean_ms=latency["mean_ms"], latency_std_ms=latency["std_ms"],
        )
    metrics.update(_training_metrics(trained, trial.started))
    return metrics


def _training_metrics(trained, started: float) -> dict[str, float]:
    return dict(
        train_seconds=trained.train_seconds,
        train_cpu_seconds=trained.train_cpu_seconds,
        examples_per_second=trained.examples_per_second,
        train_steps=float(trained.steps),
        train_epochs=trained.epochs,
        trial_seconds=time.perf_counter() - started,
    )


def _record(trial: _Trial, built: _Built, trained, result: TrialResult, latency: dict | None) -> None:
    """Save the student and the record of the trial in its folder (``distill.trial_files``)."""
    if trial.trial_dir is None:
        return
    trial.progress.stage = Stage.SAVING
    config, metrics = trial.config, result.metrics
    record = {
        "status": "ok",
        **metrics,
        "device": device_name(trial.device),
        "bf16": trial.use_bf16,
        "precision": trial.precision,
        "latency": latency,
        "test": result.test_metrics,
        "parameters": effective_parameters(config),  # every searchable parameter, as the trial ran
        "searched": sorted(trial.params),  # which of them the search set
        "config": config.to_dict(),
        "split": built.data.split.to_dict(),
        "data": built.data.summary,
        "teacher": built.teacher_summary,
        "training": trained.to_dict(),
        "checkpoint": CHECKPOINT_DIR,
        **environment_record(),
    }
    checkpoint = write_finished(trial.trial_dir, built.student, built.tokenizer, built.data.split, record, trained.curve)
    result.checkpoint = str(checkpoint)
    trial.log(f"trial done: f1 {metrics['f1']:.2f}, exact {metrics['exact']:.2f}, {int(metrics['num_parameters'])} "
              f"parameters" + (f", {metrics['latency_ms']:.2f} ms" if latency else "") + f"; saved in {trial.trial_dir}")
