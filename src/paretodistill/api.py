"""The Python API: a search, one distillation and a loaded student, with typed results.

``search`` and ``distill`` are the ``paretodistill search`` and ``paretodistill distill`` commands
without a shell: the same settings, built by the same functions in the same layers (preset, config,
the teacher / data / cache arguments, then ``overrides`` as ``--set`` takes them), the same run, and
the same errors, raised instead of printed: a ``ParetodistillError`` for bad input (the command's
exit status 2), a ``RunFailed`` when no student came out (exit 1), an ``EnvironmentFailure`` or
``OSError`` when the machine failed, ``KeyboardInterrupt`` on Ctrl-C (what ran is kept: the same
call continues it). ``Predictor`` (``export.predict``) loads a student once and answers many
questions, with the no-answer threshold the model recorded.

Heavy modules load inside the functions: importing this module costs no torch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from paretodistill.errors import ConfigError, EnvironmentFailure, RunFailed, StudyError

if TYPE_CHECKING:
    from paretodistill.config import ExperimentConfig, StudentSettings
    from paretodistill.trial import TrialResult

Overrides = Mapping[str, Any] | Iterable[str] | None  # {"search.flash.n_trials": 4} or ["search.flash.n_trials=4"]
Log = Callable[[str], None]
Files = Sequence[str | Path]  # SQuAD files or dataset ids (owner/name:split)


# ---------------------------------------------------------------- results
@dataclass(frozen=True)
class TrainedStudent:
    """A student a search trained, as ``pareto.json`` lists it; paths resolved on this machine."""

    stage: str  # "flash", "regular" or "baseline"
    trial_number: int  # within its stage (``paretodistill export --trial``)
    params: dict[str, Any]  # the searched parameters it was trained with
    metrics: dict[str, Any]  # on the validation articles: what the optimizer saw
    test_metrics: dict[str, Any] | None  # on the test articles (regular and baseline trials)
    objective_values: dict[str, float] | None
    num_parameters: int | None
    latency_ms: float | None  # median, batch 1 (the config's [latency] settings)
    checkpoint: Path | None  # a Hugging Face folder: Predictor(student.checkpoint)
    trial_dir: Path | None


@dataclass(frozen=True)
class FrontierMember(TrainedStudent):
    """A student on the search's accuracy / size / latency frontier."""

    flash_trial: int | None = None  # a regular trial's flash trial


@dataclass(frozen=True)
class Baseline(TrainedStudent):
    """The reference student (``search.baseline``), trained once on the regular budget."""

    name: str | None = None
    ok: bool = True
    failure_kind: str | None = None
    failure_reason: str | None = None


@dataclass(frozen=True)
class SearchResult:
    """What a search found: its frontier and baseline, typed, and where its files are."""

    study_dir: Path
    pareto_json: Path
    report: Path | None  # the HTML report, when asked for
    frontier_stage: str  # the stage whose trials the frontier holds ("regular", or "flash" without one)
    frontier: tuple[FrontierMember, ...]
    baseline: Baseline | None
    objectives: tuple[str, ...]  # "metric:direction", the first one first
    thresholds: dict[str, str]
    candidates: tuple[int, ...]  # the flash trials run again on the full budget
    flash_regular_spearman: float | None  # how well the flash stage ranked the candidates
    counts: dict[str, dict]  # per stage: finished, complete, failed, ...
    stopped_early: tuple[dict, ...]  # flash trials stopped early, each with its reason
    split: dict  # the article split (seed, titles)
    pareto: dict = field(repr=False)  # the whole pareto.json document

    @classmethod
    def read(cls, study_dir: str | Path) -> "SearchResult":
        """The result of a search that ran before, from its ``pareto.json`` (no search is run)."""
        import json

        path = Path(study_dir).resolve() / "pareto.json"
        if not path.is_file():
            raise StudyError(f"{path}: no pareto.json; a search writes it when its stages have run")
        return search_result(path.parent, json.loads(path.read_text()))

    def best(self, metric: str | None = None) -> FrontierMember:
        """The frontier member best on ``metric`` (an objective's; default: the first objective) on validation."""
        from paretodistill.search.objectives import Objective

        objectives = {o.metric: o for o in map(Objective.parse, self.objectives)}
        if metric is not None and metric not in objectives:
            raise ConfigError(f"best({metric!r}): not an objective of this search; objectives: {sorted(objectives)}")
        chosen = objectives[metric] if metric is not None else Objective.parse(self.objectives[0])
        if not self.frontier:
            raise RunFailed(f"the search in {self.study_dir} has no frontier", "empty_frontier")
        pick = max if chosen.direction == "maximize" else min
        return pick(self.frontier, key=lambda member: float(member.metrics[chosen.metric]))


@dataclass(frozen=True)
class DistillResult:
    """One distilled student: where it is and how it scored."""

    out: Path  # the trial folder: checkpoint/, metrics.json, curve.json
    checkpoint: Path  # a Hugging Face folder: Predictor(result.checkpoint)
    metrics: dict[str, Any]  # on the validation articles (its no-answer threshold chosen there)
    test_metrics: dict[str, Any] | None  # on the test articles, with test=True
    num_parameters: int
    latency_ms: float | None  # median, batch 1
    curve: tuple[dict, ...]  # one point per evaluation during training
    config: ExperimentConfig = field(repr=False)  # the settings it ran with


# ---------------------------------------------------------------- the calls
def search(config: str | Path | ExperimentConfig | None = None, *, study: str | Path, teacher: str | None = None,
           data: str | None = None, train: Files = (), validation: Files = (), test_files: Files = (),
           preset: str | None = None, overrides: Overrides = None, workers: int | None = None,
           backend: str | None = None, address: str | None = None,
           n_trials: int | None = None, cache_dir: str | None = None, mlflow_uri: str | None = None,
           warm_start: str | Path | None = None, report: bool | str | Path = False, log: Log = print) -> SearchResult:
    """Run (or continue) a search into ``study``, as ``paretodistill search`` does; its result.

    ``config``: a TOML file or an ``ExperimentConfig`` (which holds every setting, so no ``preset``).
    ``data``: a SQuAD file split by article into the parts not given as files; ``train``,
    ``validation``, ``test_files``: your own files (or dataset ids), as ``--train/--validation/--test``.
    ``warm_start``: an earlier study folder whose frontier and best trials are the first flash trials.
    ``report``: also write the HTML report (True: ``study/report.html``; or a path).
    """
    from paretodistill.progress import quiet_libraries
    from paretodistill.search.cli import check_students_found, search_config
    from paretodistill.search.stages import run_search

    quiet_libraries()  # as the command does: no per-load reports or progress bars among the progress lines
    settings = search_config(config, preset=preset, data=data, parts=_parts(train, validation, test_files),
                             teacher=teacher, cache_dir=cache_dir,
                             mlflow_uri=mlflow_uri, warm_start=None if warm_start is None else str(warm_start),
                             overrides=_overrides(overrides))
    pareto = run_search(settings, study, workers=workers, backend=backend, address=address, n_trials=n_trials, log=log)
    check_students_found(pareto, study)
    study_dir = Path(study).resolve()
    written = None
    if report:
        from paretodistill.report.html import build_report

        written = build_report(study_dir, study_dir / "report.html" if report is True else report)
    return search_result(study_dir, pareto, written)


def distill(teacher: str | None = None, *, data: str | None = None, out: str | Path, train: Files = (),
            validation: Files = (), test_files: Files = (),
            student: Mapping[str, Any] | StudentSettings | None = None, config: str | Path | ExperimentConfig | None = None,
            preset: str | None = None, recipe: str | None = None, overrides: Overrides = None, test: bool = False,
            cache_dir: str | None = None, log: Log = print) -> DistillResult:
    """Distil one student from ``teacher`` into ``out``, as ``paretodistill distill`` does; its result.

    ``student``: student settings (``{"num_layers": 4}`` or a ``StudentSettings``), applied as
    ``student.KEY`` overrides before ``overrides``. ``recipe``: ``"sigopt-baseline"`` or ``"sigopt"``.
    ``data``, ``train``, ``validation``, ``test_files``: as in :func:`search`. ``test``: also score
    the test part. A failed run raises ``RunFailed`` (its ``kind``: diverged, ...).
    """
    from paretodistill.distill.cli import distill_config
    from paretodistill.distill.run import run_trial
    from paretodistill.progress import quiet_libraries

    quiet_libraries()
    settings = distill_config(config, preset=preset, teacher=teacher, data=data,
                              parts=_parts(train, validation, test_files), cache_dir=cache_dir, recipe=recipe,
                              overrides=[*_student_overrides(student), *_overrides(overrides)])
    result = run_trial(settings, {}, trial_dir=out, evaluate_test=test, log=log)
    _raise_failure(result)
    metrics = dict(result.metrics)
    return DistillResult(Path(out).resolve(), Path(result.checkpoint).resolve(), metrics, result.test_metrics,
                         int(metrics["num_parameters"]), _number(metrics.get("latency_ms")), tuple(result.curve),
                         settings)


# ---------------------------------------------------------------- helpers
def _parts(train: Files, validation: Files, test_files: Files) -> list[tuple[str, list[str] | None]]:
    """The part files as the commands' part flags set them (``distill.cli.part_overrides``)."""
    return [(key, [str(path) for path in files] or None) for key, files in (
        ("data.extra_train_files", train), ("data.validation_files", validation), ("data.test_files", test_files))]


def search_result(study_dir: Path, pareto: dict, report: Path | None = None) -> SearchResult:
    """The typed result of a ``pareto.json`` document written in ``study_dir``."""
    baseline = pareto.get("baseline")
    return SearchResult(
        study_dir=study_dir,
        pareto_json=study_dir / "pareto.json",
        report=report,
        frontier_stage=pareto["frontier_stage"],
        frontier=tuple(FrontierMember(**_student_fields(entry, study_dir), flash_trial=entry.get("flash_trial"))
                       for entry in pareto["frontier"]),
        baseline=None if baseline is None else Baseline(
            **_student_fields(baseline, study_dir), name=baseline.get("name"), ok=baseline.get("status") == "ok",
            failure_kind=baseline.get("failure_kind"), failure_reason=baseline.get("failure_reason")),
        objectives=tuple(pareto["objectives"]),
        thresholds=dict(pareto.get("thresholds") or {}),
        candidates=tuple(pareto.get("candidates") or ()),
        flash_regular_spearman=pareto.get("flash_regular_spearman"),
        counts=dict(pareto.get("counts") or {}),
        stopped_early=tuple(pareto.get("stopped_early") or ()),
        split=dict(pareto.get("split") or {}),
        pareto=pareto,
    )


def _student_fields(entry: dict, study_dir: Path) -> dict:
    from paretodistill.search.domain import resolve_in_study

    metrics = dict(entry.get("validation") or {})
    size = _number(metrics.get("num_parameters"))
    return dict(
        stage=entry["stage"], trial_number=entry["trial_number"], params=dict(entry.get("params") or {}),
        metrics=metrics, test_metrics=entry.get("test"), objective_values=entry.get("objective_values"),
        num_parameters=None if size is None else int(size), latency_ms=_number(metrics.get("latency_ms")),
        checkpoint=resolve_in_study(study_dir, entry.get("checkpoint")),
        trial_dir=resolve_in_study(study_dir, entry.get("trial_dir")),
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _overrides(overrides: Overrides) -> list:
    """``--set`` overrides: a mapping's values as they are (``(key, value)``), or ``"key=value"`` texts."""
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        return [(str(key), value) for key, value in overrides.items()]
    if isinstance(overrides, str):
        raise ConfigError(f"overrides: expected a mapping or a list of 'key=value' texts, got the text {overrides!r}")
    return list(overrides)


def _student_overrides(student: Mapping[str, Any] | StudentSettings | None) -> list[tuple[str, Any]]:
    if student is None:
        return []
    if not isinstance(student, Mapping):
        import dataclasses

        student = dataclasses.asdict(student)
    return [(f"student.{key}", value) for key, value in student.items()]


def _raise_failure(result: TrialResult) -> None:
    """A failed run as the error kind its failure is (the command prints it and exits 1)."""
    if result.ok:
        return
    if result.failure_kind == "interrupted":
        raise KeyboardInterrupt(result.failure_reason)
    message = f"distillation failed ({result.failure_kind}): {result.failure_reason}"
    if result.failure_kind == "environment":
        raise EnvironmentFailure(message)
    raise RunFailed(message, result.failure_kind or "error")
