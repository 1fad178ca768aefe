"""The experiment config: typed sections, TOML files, dotted ``--set`` overrides, clear errors.

One ``ExperimentConfig`` describes a run or a search: data, teacher, student, training,
distillation, latency measurement and search. Every field is typed and checked on load; an
unknown key or a value of the wrong type names the key and what was expected. Every number is
then checked against its section's ``RULES`` (finite, its sign, its range, an integer's minimum)
when the section is made, whoever makes it: a file, ``--set``, a stage's budget, a trial's
parameters, a command's flags. A bad fixed setting is one line before anything is spent, not a
failure of every trial.

Trial parameters from the search are flat names (``learning_rate``, ``num_layers``...) and each
maps to exactly one config field (``PARAMETER_TARGETS``). A parameter without a target is an
error, never silently ignored: a searched knob that does nothing is the worst bug here.
"""

from __future__ import annotations

import dataclasses
import math
import os
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Sequence

from paretodistill.errors import ConfigError


# ---------------------------------------------------------------- what a fixed value may be
@dataclass(frozen=True)
class Range:
    """Where a number setting must lie. Every number must also be finite: a NaN learning rate or
    temperature would otherwise load and fail every trial of a search, minutes later."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False  # the low end itself is outside (> low, not >= low)
    high_open: bool = False

    def __str__(self) -> str:
        if self.low is not None and self.high is not None:
            return f"in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        if self.high is not None:
            return f"{'<' if self.high_open else '<='} {self.high:g}"
        return "finite"

    def allows(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        above = self.low is None or value > self.low or (value == self.low and not self.low_open)
        below = self.high is None or value < self.high or (value == self.high and not self.high_open)
        return above and below

    def problem(self, value: Any) -> str | None:
        """What is wrong with ``value`` (None: nothing; values that are not numbers are the type check's)."""
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)) or self.allows(value):
            return None
        kind = "an integer" if isinstance(value, int) else "a number"
        return f"expected {kind} {self}, got {value!r}" if str(self) != "finite" else f"expected a finite number, got {value!r}"


FINITE = Range()
POSITIVE = Range(0, low_open=True)  # learning rates, temperatures, epsilons, times
NON_NEGATIVE = Range(0)  # loss weights, seeds, decay, counts where 0 means "none"
AT_LEAST_ONE = Range(1)  # batch sizes, steps, threads, workers, layers
SHARE = Range(0, 1)  # a fraction of something: [0, 1]
PROBABILITY = Range(0, 1, high_open=True)  # dropouts, Adam's betas, the warm-up ratio: [0, 1)


class SettingsError(ConfigError):
    """Every setting of a section that breaks its rule, one ``key: problem`` each; the section's
    loader (:func:`build_section`) puts the section's dotted name in front of the keys."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{key}: {text}" for key, text in problems))

    def under(self, prefix: str) -> "SettingsError":
        return SettingsError([(f"{prefix}.{key}" if prefix else key, text) for key, text in self.problems])


class Checked:
    """A settings section checked when it is made, whoever makes it (a config file, ``--set``, a
    command's flags, a trial's parameters): each field against its ``RULES`` entry (numbers without
    one must still be finite), then the section's ``relations`` between fields."""

    RULES: ClassVar[dict[str, Range]] = {}

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        problems = [*field_problems(self), *self.relations()]
        if problems:
            raise SettingsError(problems)

    def relations(self) -> list[tuple[str, str]]:
        """``(key, problem)`` for rules between fields (none unless a section says otherwise)."""
        return []


def field_problems(section: Any) -> list[tuple[str, str]]:
    """``(key, problem)`` for each field of ``section`` (and each item of a tuple field) outside its rule."""
    problems = []
    for item in dataclasses.fields(section):
        rule = section.RULES.get(item.name, FINITE)
        value = getattr(section, item.name)
        values = enumerate(value) if isinstance(value, tuple) else [(None, value)]
        for index, one in values:
            problem = rule.problem(one)
            if problem:
                problems.append((item.name if index is None else f"{item.name}[{index}]", problem))
    return problems


def rule_of(dotted: str) -> Range:
    """The rule of a field by its dotted name (``training.learning_rate``): what a searched value must meet too."""
    cls, *keys, key = [ExperimentConfig, *dotted.split(".")]
    for name in keys:
        cls = typing.get_type_hints(cls)[name]
    return cls.RULES.get(key, FINITE)


@dataclass(frozen=True)
class FeatureSettings(Checked):
    max_seq_length: int = 384
    doc_stride: int = 128
    max_query_length: int = 64

    RULES: ClassVar[dict[str, Range]] = {
        "max_seq_length": AT_LEAST_ONE, "max_query_length": AT_LEAST_ONE, "doc_stride": AT_LEAST_ONE,
    }

    def relations(self) -> list[tuple[str, str]]:
        if min(self.max_seq_length, self.max_query_length, self.doc_stride) < 1:
            return []  # their rules said so
        if self.max_seq_length < self.max_query_length + 8:
            return [("max_seq_length", f"must exceed max_query_length ({self.max_query_length}) by at least 8 tokens, "
                                       f"leaving room for the context, got {self.max_seq_length}")]
        room_for_context = self.max_seq_length - self.max_query_length - 3
        if self.doc_stride >= room_for_context:
            return [("doc_stride", f"must be smaller than the context room of a window, max_seq_length - "
                                   f"max_query_length - 3 = {room_for_context}, got {self.doc_stride}")]
        return []


@dataclass(frozen=True)
class DataSettings(Checked):
    """Where the train, validation and test parts come from (``data/prepare.py`` says how they combine).

    ``split_file`` is cut by article into the parts that no files are given for, in the shares of
    ``fractions``; ``validation_files`` and ``test_files``, when given, ARE those parts. Training
    questions come from the split's train articles and ``extra_train_files``. Each entry is a SQuAD
    JSON file (plain or gzip) or a Hugging Face dataset id with a split, ``owner/name:split``.
    """

    split_file: str = ""
    extra_train_files: tuple[str, ...] = ()
    validation_files: tuple[str, ...] = ()  # given: they are the validation part (the split file gives none)
    test_files: tuple[str, ...] = ()  # given: they are the test part (the split file gives none)
    split_seed: int = 13
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)  # train, validation, test
    use_split_train: bool = True
    split_train_repeats: int = 1
    max_extra_articles: int | None = None  # a seeded sample of the extra files' articles
    max_eval_articles: int | None = None  # quick runs: the first N validation / test articles
    max_train_questions: int | None = None  # quick runs: the first N training questions
    synthetic_unanswerable_fraction: float = 0.0  # extra files: this share of answerable questions also asked of another paragraph
    hard_unanswerable_fraction: float = 0.0  # extra files: this share of answerable questions edited so their paragraph cannot answer
    unseen_by_teacher: bool = False  # extra files: only articles the teacher did not train on (its train_titles.json)
    features: FeatureSettings = field(default_factory=FeatureSettings)

    RULES: ClassVar[dict[str, Range]] = {
        "split_seed": NON_NEGATIVE, "fractions": SHARE, "split_train_repeats": AT_LEAST_ONE,
        "max_extra_articles": AT_LEAST_ONE, "max_eval_articles": AT_LEAST_ONE, "max_train_questions": AT_LEAST_ONE,
        "synthetic_unanswerable_fraction": SHARE, "hard_unanswerable_fraction": SHARE,
    }

    def relations(self) -> list[tuple[str, str]]:
        if all(SHARE.allows(share) for share in self.fractions) and not math.isclose(sum(self.fractions), 1.0, abs_tol=1e-6):
            return [("fractions", f"expected train, validation and test shares summing to 1, got "
                                  f"{list(self.fractions)} (sum {sum(self.fractions):g})")]
        return []


@dataclass(frozen=True)
class TrainSettings(Checked):
    """Optimizer, schedule and budget. The defaults are the distillation recipe that won the ablation
    at equal windows (docs/results.md#the-distillation-ablation): lr 1e-4, batch 16, 10% linear warm-up then decay."""

    learning_rate: float = 1e-4
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-8
    weight_decay: float = 0.0
    warmup_steps: int | None = None  # None: warmup_ratio of the run's steps; a number overrides the ratio
    warmup_ratio: float = 0.1
    train_batch_size: int = 16
    eval_batch_size: int = 64
    epochs: float = 1.0
    max_steps: int | None = None  # overrides epochs when set
    # the budget in training windows, over max_steps and epochs: ceil(max_windows / train_batch_size) steps, so
    # that trials of different batch sizes (a searched train_batch_size) see as many windows
    max_windows: int | None = None
    max_grad_norm: float = 1.0
    seed: int = 42
    bf16: bool = True  # used only where the hardware computes bf16 natively
    eval_every_steps: int | None = None
    log_every_steps: int = 100
    state_every_seconds: float = 300.0

    RULES: ClassVar[dict[str, Range]] = {
        "learning_rate": POSITIVE, "beta1": PROBABILITY, "beta2": PROBABILITY, "epsilon": POSITIVE,
        "weight_decay": NON_NEGATIVE, "warmup_steps": NON_NEGATIVE, "warmup_ratio": PROBABILITY,
        "train_batch_size": AT_LEAST_ONE, "eval_batch_size": AT_LEAST_ONE, "epochs": POSITIVE,
        "max_steps": AT_LEAST_ONE, "max_windows": AT_LEAST_ONE, "max_grad_norm": NON_NEGATIVE,  # 0: no clipping
        "seed": NON_NEGATIVE, "eval_every_steps": AT_LEAST_ONE, "log_every_steps": AT_LEAST_ONE,
        "state_every_seconds": NON_NEGATIVE,
    }

    def budget_steps(self) -> int | None:
        """The steps the budget fixes: from ``max_windows``, else ``max_steps``; None when ``epochs`` decide."""
        if self.max_windows is not None:
            return math.ceil(self.max_windows / self.train_batch_size)
        return self.max_steps


# ``paretodistill teacher`` (recipes/teacher.py): fine-tuning a QA head on a pretrained encoder takes
# weight decay, a 200-step warm-up and batch 32; the rest is the defaults above.
TEACHER_TRAINING = TrainSettings(warmup_steps=200, weight_decay=0.01, train_batch_size=32)


@dataclass(frozen=True)
class TeacherSettings(Checked):
    path: str = ""  # a fine-tuned QA checkpoint (what `paretodistill teacher` writes)


@dataclass(frozen=True)
class StudentSettings(Checked):
    num_layers: int = 3
    heads_per_layer: int | None = None  # None: all of the teacher's heads
    pruning_seed: int = 42
    intermediate_size: int | None = None  # None: the teacher's FFN width
    hidden_size: int | None = None  # None: the teacher's width
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.0
    qa_dropout: float = 0.0
    initializer_range: float = 0.02
    layer_selection: str = "spread"  # which teacher layers seed the student: spread | bottom | ends
    # AutoDistill's template (models/pruned_bert.py); the defaults leave a pruned BERT
    bottleneck_size: int | None = None  # None: no bottleneck; else attention and FFNs run at this width
    stacked_ffn: int = 1  # FFN blocks per layer (MobileBERT: 4)
    embedding_size: int | None = None  # None: the hidden size; smaller: factorized, SVD of the teacher's table
    vocabulary: str = "full"  # full | corpus: only the tokens of the training and evaluation text
    # which heads and FFN neurons a smaller student keeps: importance (the teacher's gate-gradient
    # scores on importance_windows training windows drawn with pruning_seed, models/importance.py;
    # at equal windows it beat random cuts by 1-2 F1, docs/results.md#the-distillation-ablation) | random (from pruning_seed)
    pruning: str = "importance"
    importance_windows: int = 256  # not searchable: how many training windows score the units
    # where the student's weights start instead of the teacher's (not searchable): a pretrained checkpoint
    # of any supported family, a folder or a hub id (the student takes its family and widths and copies its
    # layers; its tokenizer must be the teacher's), or a `paretodistill pretrain-distill` folder (the
    # fields above must then describe the same student, dropouts excepted)
    init_from: str | None = None

    RULES: ClassVar[dict[str, Range]] = {
        "num_layers": AT_LEAST_ONE, "heads_per_layer": AT_LEAST_ONE, "pruning_seed": NON_NEGATIVE,
        "intermediate_size": AT_LEAST_ONE, "hidden_size": AT_LEAST_ONE, "hidden_dropout": PROBABILITY,
        "attention_dropout": PROBABILITY, "qa_dropout": PROBABILITY, "initializer_range": POSITIVE,
        "bottleneck_size": AT_LEAST_ONE, "stacked_ffn": AT_LEAST_ONE, "embedding_size": AT_LEAST_ONE,
        "importance_windows": AT_LEAST_ONE,
    }


@dataclass(frozen=True)
class DistillSettings(Checked):
    soft_weight: float = 0.5  # weight of the KL term against the teacher's softened distributions
    hard_weight: float = 0.5  # weight of the cross-entropy against the gold positions
    temperature: float = 2.0
    hidden_weight: float = 0.0  # layer-wise transfer of hidden states (MSE, projected if widths differ)
    attention_weight: float = 0.0  # layer-wise transfer of attention distributions
    progressive: bool = False  # transfer layer by layer, bottom first, over the first epoch
    margin_weight: float = 0.0  # the teacher's per-window null-score margin (CLS minus best span) as a target
    no_answer_weight: float = 1.0  # no-answer windows (gold CLS; teacher's argmax CLS) weighed apart in hard/soft

    RULES: ClassVar[dict[str, Range]] = {
        "soft_weight": NON_NEGATIVE, "hard_weight": NON_NEGATIVE, "temperature": POSITIVE,
        "hidden_weight": NON_NEGATIVE, "attention_weight": NON_NEGATIVE,
        "margin_weight": NON_NEGATIVE, "no_answer_weight": POSITIVE,  # 0 would leave a batch of no-answers no weight
    }


@dataclass(frozen=True)
class PretrainSettings(Checked):
    """Task-agnostic distillation (``paretodistill pretrain-distill``, ``distill/pretrain.py``):
    DistilBERT's losses on unlabeled text, plus layer-wise transfer when the widths differ."""

    text_files: tuple[str, ...] = ()  # SQuAD-format files whose paragraphs are the text (the split file's articles left out)
    max_paragraphs: int | None = None  # quick runs: a seeded sample of the paragraphs
    heldout_paragraphs: int = 200  # kept out of training: the masked-LM accuracy of the curve is measured on them
    max_seq_length: int = 256  # a paragraph longer than this is cut into several sequences
    mask_probability: float = 0.15  # BERT's masking: of these, 80% [MASK], 10% a random token, 10% unchanged
    soft_weight: float = 5.0  # DistilBERT's L_ce: KL of the softened MLM distributions at the masked tokens, x T²
    hard_weight: float = 2.0  # L_mlm: cross-entropy against the masked tokens
    cosine_weight: float = 1.0  # L_cos: 1 - cos between the last hidden states
    temperature: float = 2.0
    hidden_weight: float | None = None  # layer-wise MSE of hidden states; None: 1 when the widths differ, else 0
    attention_weight: float | None = None  # layer-wise KL of attention maps; None: 1 when the widths differ, else 0
    base_encoder: str = "minilm"  # the teacher's base encoder: its MLM head (cls.predictions.*), if it has one, is the start
    head_steps: int = 100  # steps fitting the teacher's MLM head on the text, its encoder frozen (0: use it as it starts)
    head_learning_rate: float = 1e-3
    training: TrainSettings = field(default_factory=lambda: TrainSettings(
        learning_rate=5e-4, warmup_steps=50, weight_decay=0.01, train_batch_size=32, eval_every_steps=250,
        log_every_steps=20, state_every_seconds=120.0))

    RULES: ClassVar[dict[str, Range]] = {
        "max_paragraphs": AT_LEAST_ONE, "heldout_paragraphs": NON_NEGATIVE, "max_seq_length": AT_LEAST_ONE,
        "mask_probability": Range(0, 1, low_open=True, high_open=True),  # 0 masks nothing, 1 leaves no context
        "soft_weight": NON_NEGATIVE, "hard_weight": NON_NEGATIVE, "cosine_weight": NON_NEGATIVE,
        "temperature": POSITIVE, "hidden_weight": NON_NEGATIVE, "attention_weight": NON_NEGATIVE,
        "head_steps": NON_NEGATIVE, "head_learning_rate": POSITIVE,
    }

    def relations(self) -> list[tuple[str, str]]:
        weights = ("soft_weight", "hard_weight", "cosine_weight", "hidden_weight", "attention_weight")
        if not any(getattr(self, name) for name in weights):
            return [("soft_weight", "every pretrain weight is 0 (or unset): the loss would be empty")]
        return []


@dataclass(frozen=True)
class LatencySettings(Checked):
    enabled: bool = True
    batch_size: int = 1
    sequence_length: int | None = None  # None: the features' max_seq_length
    warmup: int = 5
    repeats: int = 30
    runtime: str = "torch"  # "torch" (eager, bf16 weights where supported) or "onnx"
    threads: int | None = None

    RULES: ClassVar[dict[str, Range]] = {
        "batch_size": AT_LEAST_ONE, "sequence_length": AT_LEAST_ONE, "warmup": NON_NEGATIVE,
        "repeats": AT_LEAST_ONE, "threads": AT_LEAST_ONE,
    }


def cuda_device_id(name: str) -> str:
    """A GPU as CUDA_VISIBLE_DEVICES names it: ``"cuda:1"`` is ``"1"``; ``"1"`` and ``"GPU-<uuid>"`` stay."""
    return str(name).strip().removeprefix("cuda:")


SAMPLERS = ("gp", "gp-window", "tpe", "tpe-gp", "nsga2", "random", "grid")
BACKENDS = ("local", "ray", "inline")
DEFAULT_TRIAL_FUNCTION = "paretodistill.distill.run:run_trial"
# What a search optimizes and requires unless its config says otherwise: validation exact against
# size, and exact >= 50 (search/objectives.py parses these texts; the report falls back on them for a
# study that recorded none).
DEFAULT_OBJECTIVES: tuple[str, ...] = ("exact:maximize", "num_parameters:minimize")
DEFAULT_THRESHOLDS: dict[str, Any] = {"exact": 50.0}


@dataclass(frozen=True)
class EarlyStopSettings(Checked):
    """``search.flash.early_stop``: stop a flash trial at an evaluation point once even an optimistic
    guess of its end point is dominated by completed trials (``search/early_stop.py`` says why these)."""

    safety: float = 1.0  # times the largest rise completed trials showed from the same point of training
    floor: float | None = None  # the margin is at least this, in the learning objective's units (None: early_stop.default_floor)
    min_curves: int = 5  # completed curves needed before anything is stopped
    dominated_by: int | None = None  # None: search.regular.top_k (at least 1), which keeps the flash candidates

    RULES: ClassVar[dict[str, Range]] = {
        "safety": NON_NEGATIVE, "floor": NON_NEGATIVE, "min_curves": AT_LEAST_ONE, "dominated_by": AT_LEAST_ONE,
    }


@dataclass(frozen=True)
class FlashSettings(Checked):
    """The flash stage: many trials on a short budget (config overrides such as ``training.max_steps``)."""

    n_trials: int = 20
    budget: dict[str, Any] = field(default_factory=dict)
    thresholds: dict[str, Any] | None = None  # None: the search's thresholds
    evaluate_test: bool = False
    # What the flash stage optimizes and chooses candidates by (None: the search's objectives). A
    # short budget leaves most students abstaining, so exact ranks nothing there; a signal such as
    # "span_f1:maximize" can. The frontier stays on the search's objectives.
    objectives: tuple[str, ...] | None = None
    early_stop: EarlyStopSettings | None = None  # None (absent): every flash trial trains to its end

    RULES: ClassVar[dict[str, Range]] = {"n_trials": NON_NEGATIVE}


@dataclass(frozen=True)
class RegularSettings(Checked):
    """The regular stage: the ``top_k`` best flash candidates again, on the full budget."""

    top_k: int = 3
    budget: dict[str, Any] = field(default_factory=dict)

    RULES: ClassVar[dict[str, Range]] = {"top_k": NON_NEGATIVE}


@dataclass(frozen=True)
class RaySettings(Checked):
    """Resources of one Ray trial task (None: Ray's default)."""

    num_cpus: float | None = None
    num_gpus: float | None = None

    RULES: ClassVar[dict[str, Range]] = {"num_cpus": NON_NEGATIVE, "num_gpus": NON_NEGATIVE}

    def options(self) -> dict[str, float]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclass(frozen=True)
class SearchSettings(Checked):
    """The ``[search]`` table. Objectives, thresholds and space stay text here: the search turns
    them into its own types (:mod:`paretodistill.search.objectives`, ``search.space``)."""

    name: str = "study"
    storage: str | None = None  # a database URL; None: STUDY_DIR/study.db
    sampler: str = "gp"
    seed: int = 0
    n_startup_trials: int = 5  # random trials before the model: 5 beat 10 on both replay tables (docs/results.md#sampler-evidence)
    gp_after: int = 20  # sampler "tpe-gp": finished trials after which GP takes over from TPE
    gp_window: int = 50  # sampler "gp-window": the most finished trials GP fits (front + latest); docs/benchmarks.md
    dedupe: bool = True
    trial_function: str = DEFAULT_TRIAL_FUNCTION
    workers: int = 1
    backend: str = "local"
    address: str | None = None  # a Ray cluster
    ray: RaySettings = field(default_factory=RaySettings)
    # the GPUs the local backend hands out, one per running trial, as CUDA_VISIBLE_DEVICES names them
    # ("0", "cuda:1", "GPU-<uuid>"); None: those CUDA_VISIBLE_DEVICES lists, else every GPU torch sees
    devices: tuple[str, ...] | None = None
    heartbeat_interval: int = 30
    grace_period: int = 120
    flash: FlashSettings = field(default_factory=FlashSettings)
    regular: RegularSettings = field(default_factory=RegularSettings)
    baseline: str | dict[str, Any] | None = None  # a named baseline or a table of parameters
    objectives: tuple[str, ...] = DEFAULT_OBJECTIVES
    thresholds: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    space_preset: str | None = None
    space: dict[str, Any] = field(default_factory=dict)
    mlflow_uri: str | None = None  # also log the search and its trials (live) to MLflow there (search/tracking.py)
    warm_start: str | None = None  # an earlier study folder: its frontier and best trials are the first flash trials (search/warm_start.py)

    RULES: ClassVar[dict[str, Range]] = {
        "seed": NON_NEGATIVE, "n_startup_trials": AT_LEAST_ONE, "gp_after": NON_NEGATIVE, "gp_window": AT_LEAST_ONE,
        "workers": AT_LEAST_ONE,
        "heartbeat_interval": AT_LEAST_ONE, "grace_period": AT_LEAST_ONE,
    }

    def relations(self) -> list[tuple[str, str]]:
        problems = []
        if not self.name or "/" in self.name:
            problems.append(("name", f"expected a plain name, got {self.name!r}"))
        if self.sampler not in SAMPLERS:
            problems.append(("sampler", f"unknown sampler {self.sampler!r}; expected one of {', '.join(SAMPLERS)}"))
        if self.backend not in BACKENDS:
            problems.append(("backend", f"unknown backend {self.backend!r}; expected local, ray or inline"))
        problems += self._device_problems()
        if ":" not in self.trial_function:
            problems.append(("trial_function", f"expected 'module:function', got {self.trial_function!r}"))
        if self.grace_period <= self.heartbeat_interval:
            problems.append(("grace_period", f"must exceed search.heartbeat_interval ({self.heartbeat_interval}), "
                                             f"got {self.grace_period} (a live trial would look dead)"))
        return problems

    def _device_problems(self) -> list[tuple[str, str]]:
        if self.devices is None:
            return []
        if self.backend != "local":
            return [("devices", f"only the local backend hands out devices; the {self.backend} backend does not "
                                "(a Ray trial gets the GPUs Ray assigns it: search.ray.num_gpus)")]
        names = [cuda_device_id(d) for d in self.devices]
        if not names or "" in names or len(set(names)) != len(names):
            return [("devices", f"expected distinct GPU ids such as [\"0\", \"1\"], got {list(self.devices)!r}")]
        return []


@dataclass(frozen=True)
class ExperimentConfig(Checked):
    data: DataSettings = field(default_factory=DataSettings)
    teacher: TeacherSettings = field(default_factory=TeacherSettings)
    student: StudentSettings = field(default_factory=StudentSettings)
    training: TrainSettings = field(default_factory=TrainSettings)
    distillation: DistillSettings = field(default_factory=DistillSettings)
    pretrain: PretrainSettings = field(default_factory=PretrainSettings)
    latency: LatencySettings = field(default_factory=LatencySettings)
    search: SearchSettings = field(default_factory=SearchSettings)
    device: str = "auto"
    threads: int | None = None
    cache_dir: str | None = None

    RULES: ClassVar[dict[str, Range]] = {"threads": AT_LEAST_ONE}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# Every searchable parameter and the one config field it sets (a path to start from is not searched).
PARAMETER_TARGETS: dict[str, str] = {
    **{name: f"student.{name}" for name in (f.name for f in dataclasses.fields(StudentSettings))
       if name not in ("init_from", "importance_windows")},
    **{
        name: f"training.{name}"
        for name in (
            "learning_rate", "beta1", "beta2", "epsilon", "weight_decay", "warmup_steps",
            "train_batch_size", "eval_batch_size", "epochs", "max_steps", "max_windows",
        )
    },
    **{name: f"distillation.{name}" for name in (f.name for f in dataclasses.fields(DistillSettings))},
}


# ---------------------------------------------------------------- building from plain data
def _check_value(value: Any, annotation: Any, key: str) -> Any:
    """Convert ``value`` to ``annotation`` where that is lossless, else raise ConfigError naming ``key``."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(annotation)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _check_value(value, option, key)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if errors else f"{key}: invalid value {value!r}")
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_check_value(item, args[0], f"{key}[{i}]") for i, item in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(f"{key}: expected {len(args)} values, got {len(value)}")
        return tuple(_check_value(item, arg, f"{key}[{i}]") for i, (item, arg) in enumerate(zip(value, args)))
    if origin is dict or annotation is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a table, got {value!r}")
        return value
    if dataclasses.is_dataclass(annotation):
        return build_section(annotation, value, key)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    if annotation is Any:
        return value
    raise ConfigError(f"{key}: unsupported type {annotation}")


def build_section(cls, values: Any, prefix: str = ""):
    """A dataclass from a table, refusing unknown keys and wrongly typed values."""
    if dataclasses.is_dataclass(values):
        return values
    if not isinstance(values, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a table, got {values!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise ConfigError(
            f"unknown key(s) {sorted(f'{prefix}.{k}' if prefix else k for k in unknown)}; "
            f"valid keys{' in [' + prefix + ']' if prefix else ''}: {sorted(names)}"
        )
    kwargs, problems = {}, []
    for name, value in values.items():
        try:
            kwargs[name] = _check_value(value, hints[name], f"{prefix}.{name}" if prefix else name)
        except ConfigError as error:  # every wrong value of the file at once, each with its key
            problems.append(str(error))
    if problems:
        raise ConfigError("; ".join(problems))
    try:
        return cls(**kwargs)
    except SettingsError as error:
        raise error.under(prefix) from None


def _parse_override_value(text: str) -> Any:
    """``--set`` values are TOML values (``3``, ``1e-4``, ``true``, ``"x"``, ``[1, 2]``); bare words are strings."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


Override = str | tuple[str, Any]  # "key=value" as --set gives it, or (key, value) with the value itself (the Python API)


def apply_overrides(values: dict, overrides: Sequence[Override]) -> dict:
    """Set dotted keys (``training.learning_rate=1e-4``) in a nested dict, returning a new dict."""
    result = _deep_copy(values)
    for override in overrides:
        key, value = override if isinstance(override, tuple) else _split_override(override)
        parts = key.strip().split(".")
        node = result
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: {part} is not a table")
        node[parts[-1]] = value
    return result


def _split_override(override: str) -> tuple[str, Any]:
    if "=" not in override:
        raise ConfigError(f"--set {override!r}: expected key=value, e.g. training.learning_rate=1e-4")
    key, text = override.split("=", 1)
    return key, _parse_override_value(text.strip())


def _deep_copy(values: dict) -> dict:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in values.items()}


def load_config(path: str | Path | None = None, overrides: Sequence[Override] = (), base: dict | None = None):
    """An ExperimentConfig from an optional TOML file (on top of ``base``) and ``--set`` overrides.

    Paths in the file are relative to the file's folder (:func:`resolve_config_paths`); paths in
    ``base`` and the overrides come from the command line and stay relative to the working directory.
    """
    values = _deep_copy(base or {})
    if path is not None:
        path = Path(path)
        if not path.exists():
            raise ConfigError(f"{path}: no such config file")
        try:
            values = _merge(values, resolve_config_paths(tomllib.loads(path.read_text(encoding="utf-8")), path.parent))
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: not valid TOML ({error})") from None
        except UnicodeDecodeError as error:
            raise ConfigError(f"{path}: not UTF-8 text, as TOML must be ({error})") from None
        except IsADirectoryError:
            raise ConfigError(f"{path}: a folder, not a config file") from None
    values = apply_overrides(values, overrides)
    return build_section(ExperimentConfig, _lowercase_choices(values))


# ---------------------------------------------------------------- paths written in a config file
# Every field of a config file that names a file or folder, and how to tell a path from a name:
# "data" files are SQuAD files or dataset ids (``owner/name:split``), "model" folders may be hub ids
# or packaged names (``minilm``), a "folder" is always a path.
PATH_FIELDS: dict[str, str] = {
    "data.split_file": "data", "data.extra_train_files": "data", "data.validation_files": "data",
    "data.test_files": "data", "pretrain.text_files": "data",
    "teacher.path": "model", "student.init_from": "model", "pretrain.base_encoder": "model",
    "cache_dir": "folder",
}
DATA_FILE_SUFFIXES = (".json", ".gz")  # what load_squad reads as a file even when it does not exist


def resolve_config_paths(values: dict, folder: Path) -> dict:
    """The values of a config file with its relative paths made relative to ``folder`` (the file's).

    A config then means the same wherever it is run from. The result is written relative to the
    working directory where it can be, so a config run from where it always was gives the very
    same strings (and a study the same identity). Names that are not paths are kept: a dataset or
    hub id, ``minilm``.
    """
    result = _deep_copy(values)
    for dotted, kind in PATH_FIELDS.items():
        *sections, key = dotted.split(".")
        node = result
        for section in sections:
            node = node.get(section) if isinstance(node, dict) else None
        if not isinstance(node, dict) or key not in node:
            continue
        value = node[key]
        if isinstance(value, str):
            node[key] = _config_path(value, kind, folder)
        elif isinstance(value, list):
            node[key] = [_config_path(item, kind, folder) if isinstance(item, str) else item for item in value]
    return result


def _config_path(value: str, kind: str, folder: Path) -> str:
    if not value or Path(value).is_absolute() or "://" in value:
        return value
    candidate = folder / value
    explicit = value.startswith(("./", "../", ".\\", "..\\")) or value in (".", "..")
    is_path = (kind == "folder" or explicit or candidate.exists()
               or (kind == "data" and Path(value).suffix in DATA_FILE_SUFFIXES))
    if not is_path:
        return value
    absolute = os.path.abspath(candidate)
    try:
        return os.path.relpath(absolute)
    except ValueError:  # another drive than the working directory's
        return absolute


def _lowercase_choices(values: dict) -> dict:
    """``search.sampler`` and ``search.backend`` are names; ``GP`` means ``gp``, as it always did."""
    search = values.get("search")
    if not isinstance(search, dict):
        return values
    search = {k: v.lower() if k in ("sampler", "backend") and isinstance(v, str) else v for k, v in search.items()}
    return {**values, "search": search}


def _merge(base: dict, update: dict) -> dict:
    merged = _deep_copy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def with_parameters(config: ExperimentConfig, params: dict[str, Any]) -> ExperimentConfig:
    """The config with trial parameters applied; an unknown parameter name is an error."""
    unknown = set(params) - set(PARAMETER_TARGETS)
    if unknown:
        raise ConfigError(
            f"parameter(s) {sorted(unknown)} have no config target; searchable: {sorted(PARAMETER_TARGETS)}"
        )
    values = config.to_dict()
    for name, value in params.items():
        section, key = PARAMETER_TARGETS[name].split(".")
        values[section][key] = value
    return build_section(ExperimentConfig, values)
