"""Reading a study directory and turning its trials into what the report shows.

Everything here is computed from the study directory alone (``study.db`` and ``pareto.json``),
so a report can be rebuilt anywhere the directory is copied to, long after the search ran.

What a trial means is the search's: each trial is typed once (:class:`search.results.StoredTrial`)
and put in its class by :func:`search.results.classify`, the one classification ``pareto.json``,
``status`` and the choice of candidates use too (frontier, dominated, below_threshold, failed;
interrupted and unfinished trials are not finished). This module keeps the presentation: a
:class:`TrialRecord` per trial with its class and readable reasons, the comparison table, the
hypervolume history and the parameter importances.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import optuna
from optuna.trial import TrialState

from paretodistill.config import DEFAULT_OBJECTIVES
from paretodistill.errors import ConfigError, ParetodistillError
from paretodistill.search.domain import (
    SEARCH_STAGES,
    STAGES,
    correlation_metric,
    frontier_stage,
    pair_flash_regular,
    read_search_meta,
    recorded_storage_url,
    redact_url,
    search_prefixes,
    spearman,
    stage_study_name,
)
from paretodistill.search.objectives import Objective, ObjectiveSet, Threshold, dominates_in, nondominated
from paretodistill.search.objectives import hypervolume_2d as _hypervolume_2d
from paretodistill.search.plan import Baseline
from paretodistill.search.results import (
    BELOW_THRESHOLD,
    DOMINATED,
    FAILED,
    FRONTIER,
    INTERRUPTED_CLASS,
    UNFINISHED,
    Attr,
    Failure,
    StoredTrial,
    recomputed_values,
    threshold_miss,
    verdicts_of,
)
from paretodistill.search.results import FINISHED_CLASSES as CATEGORIES
from paretodistill.search.storage import opened_storage, reading_study

__all__ = ["BELOW_THRESHOLD", "CATEGORIES", "DOMINATED", "FAILED", "FRONTIER", "INTERRUPTED_CLASS", "UNFINISHED",
           "threshold_miss"]  # the search's classes and reasons, which the report's pages show

ACCURACY = "exact"
SIZE = "num_parameters"
LATENCY = "latency_ms"


class ReportError(ParetodistillError):
    """A study directory the report cannot be built from."""


# ---------------------------------------------------------------- objectives and thresholds
def parse_objectives(specs: Sequence[str] | None) -> list[Objective]:
    """``["exact:maximize", "num_parameters:minimize"]`` (the study attr) -> the search's objectives."""
    try:
        return list(ObjectiveSet.from_search({"objectives": list(specs or DEFAULT_OBJECTIVES), "thresholds": None}).objectives)
    except ConfigError as error:
        raise ReportError(f"the study's objectives: {error}") from None


def parse_thresholds(thresholds: dict | None, objectives: Sequence[Objective]) -> list[Threshold]:
    """The study's thresholds as the search parsed them (``ObjectiveSet``): one language for both."""
    try:
        return list(ObjectiveSet.parse([str(o) for o in objectives] or list(DEFAULT_OBJECTIVES), thresholds or {}).thresholds)
    except ConfigError as error:
        raise ReportError(f"the study's thresholds: {error}") from None


def accuracy_floor(thresholds: Iterable[Threshold]) -> float | None:
    """The lowest ``exact >= X`` among ``thresholds`` (where the frontier figure draws its line)."""
    lows = [t.value for t in thresholds if t.metric == ACCURACY and t.operator == ">="]
    return min(lows) if lows else None


# ---------------------------------------------------------------- trials
@dataclass
class TrialRecord:
    """One trial of one stage, with everything the report needs and nothing of Optuna's."""

    stage: str
    number: int
    state: str  # Optuna state name: COMPLETE, FAIL, PRUNED, RUNNING, WAITING
    params: dict[str, Any]
    values: list[float] | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    test_metrics: dict[str, Any] | None = None
    curve: list[dict] = field(default_factory=list)
    checkpoint: str | None = None
    trial_dir: str | None = None
    failure_kind: str | None = None
    failure_reason: str | None = None
    failure_step: int | None = None
    stop_reason: str | None = None  # a trial stopped early: why, and at which step
    stop_step: int | None = None
    flash_trial: int | None = None  # a regular trial's flash trial
    distributions: dict[str, Any] = field(default_factory=dict)  # optuna distributions, by param
    constraints: dict[str, float] = field(default_factory=dict)  # Optuna constraints, <= 0 feasible
    objective_names: list[str] = field(default_factory=list)  # what ``values`` hold, in order
    category: str | None = None
    violations: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.stage} #{self.number}"

    def metric(self, name: str) -> float | None:
        """A metric from the ``metrics`` attr, else from the Optuna value of that objective."""
        value = self.metrics.get(name)
        if value is None and self.values is not None and name in self.objective_names:
            index = self.objective_names.index(name)
            value = self.values[index] if index < len(self.values) else None
        if value is None:
            return None
        try:
            value = float(value)
        except (TypeError, ValueError):
            return None
        return None if math.isnan(value) else value

    def test_metric(self, name: str) -> float | None:
        value = (self.test_metrics or {}).get(name)
        return None if value is None else float(value)

    @property
    def is_failed(self) -> bool:
        return self.category == FAILED

    @property
    def is_feasible(self) -> bool:
        return self.category in (FRONTIER, DOMINATED)


    def stored(self, objectives: ObjectiveSet) -> StoredTrial:
        """The search's typed trial this record shows (what :func:`search.results.classify` judges)."""
        failure = Failure(self.failure_kind, self.failure_reason, self.failure_step) if self.failure_kind else None
        values = tuple(self.values) if self.values is not None else None
        return StoredTrial(number=self.number, state=TrialState[self.state], params=self.params, stage=self.stage,
                           values=values, objective_values=recomputed_values(self.metrics, values, objectives),
                           metrics=self.metrics, failure=failure, stop_reason=self.stop_reason,
                           stop_step=self.stop_step, constraints=self.constraints)


def record_from_trial(trial, stage: str, objectives: Sequence[Objective] = ()) -> TrialRecord:
    """A TrialRecord from an Optuna FrozenTrial, through the search's typed trial."""
    t = StoredTrial.of(trial, stage=stage)
    failure = t.failure or Failure("")
    return TrialRecord(
        stage=stage,
        number=t.number,
        state=t.state.name,
        params=t.params,
        values=list(t.values) if t.values is not None else None,
        metrics=t.metrics,
        test_metrics=t.test_metrics,
        curve=list(t.curve),
        checkpoint=t.checkpoint,
        trial_dir=t.trial_dir,
        failure_kind=failure.kind or None,
        failure_reason=failure.reason,
        failure_step=failure.step,
        stop_reason=t.stop_reason,
        stop_step=t.stop_step,
        flash_trial=t.flash_trial,
        distributions=t.distributions,
        constraints=t.constraints,
        objective_names=[o.metric for o in objectives],
    )


# ---------------------------------------------------------------- classification
def dominates(a: Sequence[float], b: Sequence[float], objectives: Sequence[Objective]) -> bool:
    """``a`` is at least as good as ``b`` on every objective and better on one (the search's definition)."""
    return dominates_in(a, b, [o.direction for o in objectives])


def classify(
    records: Sequence[TrialRecord], objectives: Sequence[Objective], bounds: Sequence[Threshold]
) -> dict[int, str]:
    """Put each record of ONE stage in its class (sets ``record.category``, its violations and, for a
    failed one, why); returns number -> class. The classes are :func:`search.results.classify`'s."""
    judged = ObjectiveSet(tuple(objectives), tuple(bounds))
    for record, verdict in zip(records, verdicts_of([record.stored(judged) for record in records], judged)):
        record.category = verdict.category
        record.violations = list(verdict.violations)
        if verdict.category == FAILED and verdict.failure is not None:
            record.failure_kind = record.failure_kind or verdict.failure.kind
            record.failure_reason = record.failure_reason or verdict.failure.reason
            record.failure_step = record.failure_step if record.failure_step is not None else verdict.failure.step
    return {record.number: record.category for record in records}


def two_d_frontier(records: Iterable[TrialRecord], x: str) -> list[TrialRecord]:
    """Feasible records not dominated on (exact, ``x``) alone, sorted by ``x``: the staircase drawn on a 2-D plot."""
    directions = ["maximize", "minimize"]
    points = [
        (r, [r.metric(ACCURACY), r.metric(x)])
        for r in records
        if r.is_feasible and r.metric(x) is not None and r.metric(ACCURACY) is not None
    ]
    front = [points[i][0] for i in nondominated([v for _, v in points], directions)]
    return sorted(front, key=lambda r: (r.metric(x), -r.metric(ACCURACY)))


# ---------------------------------------------------------------- baseline
@dataclass
class BaselineResult:
    """The baseline student (:class:`search.plan.Baseline`) and what it measured."""

    baseline: Baseline
    validation: dict[str, Any]
    test: dict[str, Any] | None
    source: str  # where it was read from
    record: TrialRecord | None = None

    @property
    def params(self) -> dict[str, Any]:
        return self.baseline.params

    def value(self, name: str) -> float | None:
        value = self.validation.get(name)
        return None if value is None else float(value)

    def test_value(self, name: str) -> float | None:
        if not self.test:
            return None
        value = self.test.get(name)
        if value is None and name in (SIZE, LATENCY):  # size and latency do not depend on the data
            value = self.validation.get(name)
        return None if value is None else float(value)


def baseline_from(records: Sequence[TrialRecord], pareto: dict | None, name: str | None = None) -> BaselineResult | None:
    """The baseline student: the baseline study's last completed trial (as pareto.json picks it),
    completed by pareto.json's entry; None when there is none or it failed. ``name``: the
    baseline's, as its study records it (else pareto.json's)."""
    from_json = (pareto or {}).get("baseline") or None
    if from_json and from_json.get("status") == "failed":
        from_json = None
    name = name or (from_json or {}).get("name") or "custom"
    good = [r for r in records if r.state == "COMPLETE" and not r.failure_kind]
    if good:
        record = good[-1]
        validation = dict(record.metrics)
        if from_json:
            for key, value in (from_json.get("validation") or {}).items():
                validation.setdefault(key, value)
        test = record.test_metrics or (from_json or {}).get("test")
        return BaselineResult(Baseline(name, record.params), validation, test,
                              f"baseline study, trial {record.number}", record)
    if from_json:
        validation = dict(from_json.get("validation") or {})
        for key in (SIZE, LATENCY):  # the size may be stored next to the metrics
            if key in from_json and key not in validation:
                validation[key] = from_json[key]
        return BaselineResult(Baseline(name, dict(from_json.get("params") or {})), validation,
                              from_json.get("test"), "pareto.json")
    return None


# ---------------------------------------------------------------- the teacher
@dataclass(frozen=True)
class TeacherLatency:
    """The teacher timed once per study as its students were (``Attr.TEACHER_LATENCY``): every
    student's latency reads as a fraction of it. Studies from before it was measured have none."""

    median_ms: float
    num_parameters: int | None
    measured: dict  # measure_latency's figures: batch, sequence length, threads, device, runtime, spread

    @classmethod
    def of(cls, recorded: Any) -> "TeacherLatency | None":
        """From the study attribute (or pareto.json's copy); None when absent or not a positive time."""
        figures = recorded.get("latency") if isinstance(recorded, dict) else None
        median = figures.get("median_ms") if isinstance(figures, dict) else None
        if isinstance(median, bool) or not isinstance(median, (int, float)) or not math.isfinite(median) or median <= 0:
            return None
        size = recorded.get("num_parameters")
        return cls(float(median), int(size) if isinstance(size, (int, float)) and not isinstance(size, bool) else None,
                   dict(figures))

    def fraction(self, latency_ms: float | None) -> float | None:
        """A student's latency over the teacher's (0.25: four times as fast)."""
        return None if latency_ms is None else latency_ms / self.median_ms

    def describe(self) -> str:
        m = self.measured
        return (f"{self.median_ms:.2f} ms (batch {m.get('batch_size', '?')}, {m.get('sequence_length', '?')} tokens, "
                f"{m.get('runtime', '?')} {m.get('dtype', '')}, {m.get('device', '?')})")


# ---------------------------------------------------------------- the study directory
@dataclass
class StudyData:
    directory: Path
    name: str
    objectives: list[Objective]
    bounds: list[Threshold]
    thresholds: dict
    config: dict
    split: Any
    stages: dict[str, list[TrialRecord]]  # search stages that exist, in STAGES order
    studies: dict[str, Any]  # stage -> optuna Study
    stage_bounds: dict[str, list[Threshold]]  # each stage's own thresholds (flash may be laxer)
    baseline: BaselineResult | None
    pareto: dict | None
    notes: list[str] = field(default_factory=list)
    teacher: TeacherLatency | None = None  # the teacher's latency, measured as the students'

    @property
    def final_stage(self) -> str | None:
        """The stage whose results count, as the search decides it (:func:`search.domain.frontier_stage`)."""
        if not self.stages:
            return None
        feasible = {stage: sum(r.is_feasible for r in records) for stage, records in self.stages.items()}
        finished = {stage: sum(r.category in CATEGORIES for r in records) for stage, records in self.stages.items()}
        stage = frontier_stage(feasible, finished)
        return stage if stage in self.stages else next(iter(self.stages))

    def records(self, stage: str | None = None) -> list[TrialRecord]:
        if stage is not None:
            return list(self.stages.get(stage, []))
        return [r for records in self.stages.values() for r in records]

    @property
    def has_latency(self) -> bool:
        return any(r.metric(LATENCY) is not None for r in self.records() if r.is_feasible)

    def bounds_of(self, stage: str) -> list[Threshold]:
        return self.stage_bounds.get(stage, self.bounds)


def study_names(storage: str) -> list[str]:
    return list(optuna.study.get_all_study_names(storage=storage))


def resolve_study_name(names: Sequence[str], name: str | None, where: Path) -> str:
    """The ``<name>`` prefix of the ``<name>-<stage>`` studies; asks for --name when ambiguous."""
    prefixes = search_prefixes(names)
    if name is not None:
        if name not in prefixes:
            raise ReportError(f"{where}: no study named {name}-flash/-regular/-baseline; found {prefixes or list(names)}")
        return name
    if not prefixes:
        raise ReportError(
            f"{where}: no <name>-flash, <name>-regular or <name>-baseline study in it (studies: {list(names)})"
        )
    if len(prefixes) > 1:
        raise ReportError(f"{where}: several searches in one database ({prefixes}); pick one with --name")
    return prefixes[0]


def storage_url(directory: Path) -> str:
    """The storage the search in ``directory`` wrote (see :func:`search.domain.recorded_storage_url`)."""
    url = recorded_storage_url(directory)
    if url is None:
        raise ReportError(f"{directory}: no study.db; is this a study directory written by `paretodistill search`?")
    return url


def load_study_dir(directory: str | Path, name: str | None = None) -> StudyData:
    """Every stage's trials, classified, the baseline and pareto.json, from one study directory.

    The database is opened read-only (a study on a read-only disk can be reported on and exported
    from) and checked first; a damaged one is one line (``StudyError``), not a traceback.
    """
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    directory = Path(directory)
    url = storage_url(directory)
    with opened_storage(url, read_only=True) as storage, reading_study(redact_url(url)):
        return _read_study(directory, storage, name)


def _read_study(directory: Path, storage, name: str | None) -> StudyData:
    meta = read_search_meta(directory)
    if name is None and meta:  # the search records its name; use it when the database holds several
        recorded = meta.get("name")
        if isinstance(recorded, str) and any(n.startswith(f"{recorded}-") for n in study_names(storage)):
            name = recorded
    name = resolve_study_name(study_names(storage), name, directory)
    existing = set(study_names(storage))
    pareto = _read_pareto(directory)

    studies: dict[str, Any] = {}
    for stage in STAGES:
        if stage_study_name(name, stage) in existing:
            studies[stage] = optuna.load_study(study_name=stage_study_name(name, stage), storage=storage)
    if not (set(studies) & set(SEARCH_STAGES)):
        raise ReportError(f"{directory}: the search {name!r} has no flash or regular stage yet")
    primary = "regular" if "regular" in studies else "flash"

    def stage_setup(stage: str) -> tuple[list[Objective], dict, list[Threshold]]:
        attrs = studies[stage].user_attrs
        objectives = parse_objectives(attrs.get("objectives") or (pareto or {}).get("objectives"))
        fallback = (pareto or {}).get("flash_thresholds" if stage == "flash" else "thresholds")
        thresholds = attrs.get("thresholds") if attrs.get("thresholds") is not None else (fallback or {})
        return objectives, thresholds, parse_thresholds(thresholds, objectives)

    objectives, thresholds, bounds = stage_setup(primary)
    stages: dict[str, list[TrialRecord]] = {}
    stage_bounds: dict[str, list[Threshold]] = {}
    for stage in SEARCH_STAGES:
        if stage in studies:
            stage_objectives, _, stage_bounds[stage] = stage_setup(stage)
            records = [record_from_trial(t, stage, stage_objectives) for t in studies[stage].get_trials(deepcopy=False)]
            classify(records, stage_objectives, stage_bounds[stage])
            stages[stage] = records
    baseline_records = (
        [record_from_trial(t, "baseline", stage_setup("baseline")[0]) for t in studies["baseline"].get_trials(deepcopy=False)]
        if "baseline" in studies else []
    )
    baseline = baseline_from(baseline_records, pareto,
                             studies["baseline"].user_attrs.get("baseline") if "baseline" in studies else None)
    attrs = studies[primary].user_attrs

    data = StudyData(
        directory=directory,
        name=name,
        objectives=objectives,
        bounds=bounds,
        thresholds=thresholds,
        config=attrs.get("config") or {},
        split=attrs.get("split") or (pareto or {}).get("split"),
        stages=stages,
        studies=studies,
        stage_bounds=stage_bounds,
        baseline=baseline,
        pareto=pareto,
        teacher=TeacherLatency.of(studies["flash"].user_attrs.get(Attr.TEACHER_LATENCY) if "flash" in studies else None)
        or TeacherLatency.of((pareto or {}).get("teacher_latency")),
    )
    _merge_pareto_test_metrics(data)
    data.notes.extend(_check_against_pareto(data))
    if baseline is None:
        data.notes.append("No baseline was found (no baseline study and none in pareto.json): nothing to compare against.")
    elif baseline.record is not None and len([r for r in baseline_records if r.state == "COMPLETE"]) > 1:
        data.notes.append(f"The baseline study has several completed trials; the report uses {baseline.source}.")
    return data


def _read_pareto(directory: Path) -> dict | None:
    path = directory / "pareto.json"
    if not path.exists():
        return None
    try:
        pareto = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ReportError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(pareto, dict):
        raise ReportError(f"{path}: expected the JSON object a search writes, got {type(pareto).__name__}")
    return pareto


def _merge_pareto_test_metrics(data: StudyData) -> None:
    """Test figures a trial lacks but pareto.json has (the search may score test only for the frontier)."""
    for entry in (data.pareto or {}).get("frontier", []):
        for record in data.stages.get(entry.get("stage"), []):
            if record.number == entry.get("trial_number") and not record.test_metrics and entry.get("test"):
                record.test_metrics = dict(entry["test"])


def _check_against_pareto(data: StudyData) -> list[str]:
    """A note when pareto.json's frontier differs from the one recomputed here from the trials."""
    notes = []
    listed: dict[str, set[int]] = {}
    for entry in (data.pareto or {}).get("frontier", []):
        listed.setdefault(entry.get("stage"), set()).add(entry.get("trial_number"))
    for stage, numbers in listed.items():
        if stage not in data.stages:
            continue
        recomputed = {r.number for r in data.stages[stage] if r.category == FRONTIER}
        if numbers != recomputed:
            notes.append(
                f"pareto.json lists {stage} trials {sorted(numbers)} as the frontier; recomputed from the "
                f"study (objectives and thresholds above): {sorted(recomputed)}."
            )
    return notes


def describe_split(split: Any) -> list[str]:
    """Readable lines about the article split: the file, seed, fractions and articles per part.

    Takes the search's description (split_file, split_seed, fractions, ... and the trials'
    split.json under ``articles``) or an ArticleSplit dict (source, seed, train/validation/test).
    """
    if split is None:
        return ["not recorded"]
    if not isinstance(split, dict):
        return [str(split)]
    lines = []
    for key in ("split_file", "source", "split_seed", "seed", "fractions", "source_fingerprint", "max_eval_articles"):
        value = split.get(key)
        if value not in (None, "", [], {}):
            if key == "source_fingerprint":
                value = str(value)[:12]
            elif key == "fractions" and isinstance(value, dict):
                value = ", ".join(f"{k} {v:g}" for k, v in value.items())
            lines.append(f"{key.replace('_', ' ')}: {value}")
    part_files = split.get("files") if isinstance(split.get("files"), dict) else {}  # an ArticleSplit's own parts
    for key, name in (("extra_train_files", "extra training"), ("validation_files", "validation"), ("test_files", "test")):
        files = split.get(key) or part_files.get(name)
        if files:
            lines.append(f"{name} files: {', '.join(map(str, files))}")
    articles = split.get("articles") if isinstance(split.get("articles"), dict) else split
    for part in ("train", "validation", "test"):
        titles = articles.get(part)
        if isinstance(titles, (list, tuple)):
            shown = ", ".join(map(str, titles[:6])) + (", ..." if len(titles) > 6 else "")
            lines.append(f"{part}: {len(titles)} article{'' if len(titles) == 1 else 's'} ({shown})")
    return lines or [json.dumps(split, default=str)[:300]]


# ---------------------------------------------------------------- the comparison table
RETAIN_SIZE = "Retain size, maximize accuracy"
RETAIN_ACCURACY = "Minimize size, retain accuracy"
SMALLEST = "Smallest"
MOST_ACCURATE = "Most accurate"


@dataclass
class ComparisonRow:
    """One chosen student against the baseline; percentages are relative changes, 100 (x - b) / b."""

    label: str
    record: TrialRecord | None
    size: float | None = None
    exact: float | None = None
    test_exact: float | None = None
    size_change_pct: float | None = None
    exact_change_pct: float | None = None
    exact_change_points: float | None = None
    test_exact_change_pct: float | None = None
    note: str = ""


def percent_change(value: float | None, reference: float | None) -> float | None:
    if value is None or reference is None or reference == 0:
        return None
    return 100.0 * (value - reference) / reference


def comparison_table(
    candidates: Sequence[TrialRecord],
    baseline: BaselineResult | None,
) -> list[ComparisonRow]:
    """The SigOpt BERT-distillation table (2020): four chosen students against the baseline.

    Students are chosen on validation figures only (test figures are shown, never used to
    choose). Candidates should be the feasible trials of one stage. Ties go to the other
    objective (smaller, or more accurate), then to the lower trial number.
    """
    pool = [r for r in candidates if r.metric(ACCURACY) is not None and r.metric(SIZE) is not None]

    def acc(r):
        return r.metric(ACCURACY)

    def size(r):
        return r.metric(SIZE)

    def most_accurate(rs):
        return min(rs, key=lambda r: (-acc(r), size(r), r.number)) if rs else None

    def smallest(rs):
        return min(rs, key=lambda r: (size(r), -acc(r), r.number)) if rs else None

    base_size = baseline.value(SIZE) if baseline else None
    base_exact = baseline.value(ACCURACY) if baseline else None
    choices: list[tuple[str, TrialRecord | None, str]] = []
    if baseline is not None and base_size is not None:
        chosen = most_accurate([r for r in pool if size(r) <= base_size])
        choices.append((RETAIN_SIZE, chosen, "" if chosen else "no feasible student is as small as the baseline"))
    if baseline is not None and base_exact is not None:
        chosen = smallest([r for r in pool if acc(r) >= base_exact])
        choices.append((RETAIN_ACCURACY, chosen, "" if chosen else "no feasible student is as accurate as the baseline"))
    choices.append((SMALLEST, smallest(pool), "" if pool else "no feasible student"))
    choices.append((MOST_ACCURATE, most_accurate(pool), "" if pool else "no feasible student"))

    rows = []
    if baseline is not None:
        rows.append(ComparisonRow("Baseline", None, base_size, base_exact, baseline.test_value(ACCURACY)))
    for label, record, note in choices:
        if record is None:
            rows.append(ComparisonRow(label, None, note=note))
            continue
        row = ComparisonRow(label, record, size(record), acc(record), record.test_metric(ACCURACY), note=note)
        if baseline is not None:
            row.size_change_pct = percent_change(row.size, base_size)
            row.exact_change_pct = percent_change(row.exact, base_exact)
            row.exact_change_points = None if base_exact is None else row.exact - base_exact
            row.test_exact_change_pct = percent_change(row.test_exact, baseline.test_value(ACCURACY))
        rows.append(row)
    return rows


# ---------------------------------------------------------------- hypervolume
@dataclass(frozen=True)
class Reference:
    """The fixed reference point of the 2-D hypervolume: exact above ``exact``, size below ``size``."""

    exact: float
    size: float


def exact_size_hypervolume(points: Iterable[tuple[float, float]], reference: Reference) -> float:
    """The search's 2-D hypervolume of (exact, size) points, sizes as fractions of the reference size.

    So the result is in exact points times the share of the reference size saved: at most
    (100 - reference exact), comparable between searches of different teachers.
    """
    scaled = [(exact, size / reference.size) for exact, size in points]
    return _hypervolume_2d(scaled, (reference.exact, 1.0), ("maximize", "minimize"))


def default_reference(data: StudyData) -> Reference:
    """Exact: its lowest threshold over the stages (else 0); size: 1.1 x the largest size seen (trials and baseline)."""
    floor = accuracy_floor(t for bounds in [data.bounds, *data.stage_bounds.values()] for t in bounds)
    exact = 0.0 if floor is None else floor
    sizes = [r.metric(SIZE) for r in data.records() if r.category in (FRONTIER, DOMINATED, BELOW_THRESHOLD)]
    if data.baseline is not None and data.baseline.value(SIZE) is not None:
        sizes.append(data.baseline.value(SIZE))
    sizes = [s for s in sizes if s is not None]
    return Reference(exact, 1.1 * max(sizes) if sizes else 1.0)


def hypervolume_history(records: Sequence[TrialRecord], reference: Reference) -> list[tuple[int, float]]:
    """(finished trials so far, hypervolume of the feasible ones) after each finished trial, in trial order."""
    history, points = [], []
    finished = sorted((r for r in records if r.category in CATEGORIES), key=lambda r: r.number)
    for count, record in enumerate(finished, start=1):
        if record.is_feasible:  # only the front counts: keeping just it keeps each step short
            points.append((record.metric(ACCURACY), record.metric(SIZE)))
            points = [points[i] for i in nondominated(points, ("maximize", "minimize"))]
        history.append((count, exact_size_hypervolume(points, reference)))
    return history


# ---------------------------------------------------------------- flash against regular
MEASURED = (FRONTIER, DOMINATED, BELOW_THRESHOLD)


def flash_regular_pairs(flash: Sequence[TrialRecord], regular: Sequence[TrialRecord]) -> list[tuple[TrialRecord, TrialRecord]]:
    """Each measured regular trial with the measured flash trial of the same student (the search's pairing,
    :func:`search.domain.pair_flash_regular`)."""
    return pair_flash_regular([r for r in flash if r.category in MEASURED], [r for r in regular if r.category in MEASURED])


def flash_regular_correlation(data: "StudyData") -> tuple[str, list[tuple[TrialRecord, TrialRecord]], float | None]:
    """(metric, pairs, Spearman rho) of flash against regular, as ``pareto.json`` computes it."""
    metric = correlation_metric([o.metric for o in data.objectives])
    pairs = [(f, r) for f, r in flash_regular_pairs(data.records("flash"), data.records("regular"))
             if f.metric(metric) is not None and r.metric(metric) is not None]
    return metric, pairs, spearman([f.metric(metric) for f, _ in pairs], [r.metric(metric) for _, r in pairs])


# ---------------------------------------------------------------- parameter importance
MIN_IMPORTANCE_TRIALS = 4


def parameter_importances(data: StudyData, stage: str) -> dict[str, dict[str, float] | str]:
    """Per objective: param -> importance (Optuna's default PED-ANOVA), or a note saying why not.

    Computed on a copy of the stage holding only completed, non-failed trials, with the objective
    values the report uses; maximized objectives are negated because PED-ANOVA treats low
    target values as good.
    """
    records = [r for r in data.records(stage) if r.category in (FRONTIER, DOMINATED, BELOW_THRESHOLD)]
    result: dict[str, dict[str, float] | str] = {}
    if len(records) < MIN_IMPORTANCE_TRIALS:
        note = f"only {len(records)} completed trial(s) in the {stage} stage; importances need at least {MIN_IMPORTANCE_TRIALS}"
        return {o.metric: note for o in data.objectives}
    for objective in data.objectives:
        usable = [r for r in records if r.metric(objective.metric) is not None and r.distributions]
        if len(usable) < MIN_IMPORTANCE_TRIALS:
            result[objective.metric] = f"only {len(usable)} trial(s) measured {objective.metric}"
            continue
        study = optuna.create_study(direction="minimize")
        sign = -1.0 if objective.maximize else 1.0
        study.add_trials(
            optuna.trial.create_trial(
                value=sign * r.metric(objective.metric), params=r.params, distributions=r.distributions
            )
            for r in usable
        )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                importances = optuna.importance.get_param_importances(study)
        except Exception as error:  # optuna raises several types for degenerate studies
            result[objective.metric] = f"could not compute importances: {error}"
            continue
        result[objective.metric] = {k: float(v) for k, v in importances.items()} or "no parameter varied"
    return result
