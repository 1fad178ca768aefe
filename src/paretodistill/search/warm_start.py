"""Warm start: a new search's first flash trials are an earlier search's best students.

``--warm-start OLD`` (``search.warm_start``) reads the study folder ``OLD`` and enqueues, as flash
trials of the new search (``study.enqueue_trial``), before the sampler proposes anything:

1. the old search's frontier, from the stage whose frontier is its result (the regular stage once
   a regular trial is feasible, else the flash stage: ``search.domain.frontier_stage``);
2. then its other completed trials, regular stage first, each stage's feasible trials first, by
   the first objective;

one per student (budget parameters aside), until the queue holds ``search.n_startup_trials``
trials (the frontier is taken whole), never more than ``search.flash.n_trials``. They run on the
new search's flash budget and objectives: a search with a longer budget, another flash metric or
another sampler starts from what the old one found instead of from random points. A trial whose
parameters do not fit the new space (other parameter names, a value outside a range or not among
the choices) is skipped and counted.

The warm start is recorded on the flash study (user attribute ``warm_start``): the same command
again enqueues nothing twice; another ``--warm-start`` for a study under way, or one for a study
started without, is refused (the queue of a study is filled once, before its first trial).
A missing or damaged old study is one line, exit status 2, before anything runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import optuna
from optuna.distributions import BaseDistribution

from paretodistill.errors import StudyError
from paretodistill.redaction import redact_url
from paretodistill.search.domain import (
    FLASH,
    REGULAR,
    SEARCH_STAGES,
    frontier_stage,
    read_search_meta,
    recorded_storage_url,
    student_key,
)
from paretodistill.search.objectives import ObjectiveSet
from paretodistill.search.optuna_adapter import contains
from paretodistill.search.results import StoredTrial, feasible_trials, finished_count, frontier, stored_trials
from paretodistill.search.storage import opened_storage, reading_study
from paretodistill.search.study import load_stage

WARM_START_ATTR = "warm_start"  # on the flash study: where from and what was enqueued; on each enqueued trial: its origin


@dataclass(frozen=True)
class WarmStart:
    """What a warm start enqueues: the old trials (stage, number, params) in order, and how many did not fit."""

    source: str  # the old study folder, as given
    trials: tuple[dict, ...]
    skipped: int

    def record(self) -> dict:
        return json.loads(json.dumps({"from": self.source, "trials": list(self.trials), "skipped": self.skipped}))


def read_warm_start(old_dir: str | Path, study_dir: str | Path, distributions: dict[str, BaseDistribution],
                    limit: int, most: int) -> WarmStart:
    """The warm start from the study folder ``old_dir`` into a search of ``distributions``: its
    frontier, then its best trials up to ``limit`` (the frontier whole), at most ``most``."""
    old = Path(old_dir)
    if old.resolve() == Path(study_dir).resolve():
        raise StudyError(f"--warm-start {old_dir}: that is this search's own --study folder; name an earlier study")
    if not old.is_dir():
        raise StudyError(f"--warm-start {old_dir}: no such study folder")
    meta = read_search_meta(old)
    url = recorded_storage_url(old)
    if meta is None or url is None:
        raise StudyError(f"--warm-start {old_dir}: not a study folder written by paretodistill search "
                         "(no search.json and study.db)")
    with opened_storage(url, read_only=True) as storage, reading_study(f"--warm-start {redact_url(url)}"):
        ordered = ranked_students(storage, meta["name"], old_dir)
    fitting = [(t, on_front) for t, on_front in ordered if fits(t.params, distributions)]
    frontier_size = sum(1 for _, on_front in fitting if on_front)
    taken = [t for t, _ in fitting[: min(most, max(limit, frontier_size))]]
    trials = tuple({"stage": t.stage, "number": t.number, "params": dict(t.params)} for t in taken)
    return WarmStart(str(old_dir), trials, len(ordered) - len(fitting))


def ranked_students(storage, name: str, old_dir: str | Path) -> list[tuple[StoredTrial, bool]]:
    """The old search's completed students, best first (see the module docstring), one per student
    key, each with whether it is on the old frontier."""
    stages = {stage: load_stage(storage, name, stage) for stage in SEARCH_STAGES}
    if all(study is None for study in stages.values()):
        raise StudyError(f"--warm-start {old_dir}: search {name!r} has no flash or regular stage to start from")
    trials, objectives = {}, {}
    for stage, study in stages.items():
        objectives[stage] = recorded_objectives(study)
        trials[stage] = [] if study is None else stored_trials(study.get_trials(deepcopy=False), objectives[stage], stage)
    result = frontier_stage({s: len(feasible_trials(trials[s], objectives[s])) for s in SEARCH_STAGES},
                            {s: finished_count(trials[s], objectives[s]) for s in SEARCH_STAGES})
    front = frontier(trials[result], objectives[result])
    rest = [t for stage in (REGULAR, FLASH) for t in by_first_objective(trials[stage], objectives[stage])]
    ordered, seen = [], set()
    for position, t in enumerate(front + rest):
        key = student_key(t.params)
        if key not in seen:
            seen.add(key)
            ordered.append((t, position < len(front)))
    if not ordered:
        raise StudyError(f"--warm-start {old_dir}: search {name!r} has no completed trial to start from")
    return ordered


def recorded_objectives(study: optuna.Study | None) -> ObjectiveSet | None:
    """The objectives and thresholds a stage recorded (None for a stage that never started)."""
    if study is None:
        return None
    return ObjectiveSet.from_search({"objectives": study.user_attrs.get("objectives"),
                                     "thresholds": dict(study.user_attrs.get("thresholds") or {})})


def by_first_objective(trials: list[StoredTrial], objectives: ObjectiveSet | None) -> list[StoredTrial]:
    """The completed trials, feasible ones first, each group best first by the first objective."""
    complete = [t for t in trials if t.complete and t.objective_values is not None]
    if objectives is None or not complete:
        return []
    feasible = {t.number for t in feasible_trials(complete, objectives)}
    sign = objectives.objectives[0].sign
    return sorted(complete, key=lambda t: (t.number not in feasible, -sign * t.objective_values[0], t.number))


def fits(params: dict, distributions: dict[str, BaseDistribution]) -> bool:
    """The same parameter names as the new space, each value inside its distribution."""
    return set(params) == set(distributions) and all(contains(distributions[k], v) for k, v in params.items())


def enqueue_warm_start(flash: optuna.Study, warm: WarmStart | None, log: Callable[[str], None]) -> None:
    """Enqueue the warm start's trials on the new flash study, once (see the module docstring)."""
    recorded = flash.user_attrs.get(WARM_START_ATTR)
    if warm is None:
        if recorded:
            log(f"[flash] warm-started from {recorded['from']} ({len(recorded['trials'])} trial(s) enqueued)")
        return
    if recorded is None:
        if flash.get_trials(deepcopy=False):
            raise StudyError(f"--warm-start {warm.source}: this study was started without a warm start and has trials "
                             "already; a warm start fills the queue before the first trial: drop --warm-start, or "
                             "use a new --study folder")
        flash.set_user_attr(WARM_START_ATTR, warm.record())
        recorded = warm.record()
    elif not same_warm_start(recorded, warm):
        raise StudyError(f"--warm-start {warm.source}: this study was warm-started from {recorded['from']} with other "
                         "trials; a warm start fills the queue once: drop --warm-start (or give the same), or use a "
                         "new --study folder")
    present = {json.dumps(t.params, sort_keys=True, default=str) for t in flash.get_trials(deepcopy=False)}
    added = 0
    for entry in recorded["trials"]:
        if json.dumps(entry["params"], sort_keys=True, default=str) not in present:
            flash.enqueue_trial(entry["params"], user_attrs={WARM_START_ATTR: {k: entry[k] for k in ("stage", "number")}})
            added += 1
    log(f"[flash] warm start from {recorded['from']}: {len(recorded['trials'])} trial(s) of its frontier and best "
        f"first ({added} enqueued now), {recorded['skipped']} skipped (parameters outside this space)")


def same_warm_start(recorded: dict, warm: WarmStart) -> bool:
    """The same old folder (wherever it was given from), or the same trials to enqueue."""
    try:
        same_folder = Path(recorded["from"]).resolve() == Path(warm.source).resolve()
    except (OSError, TypeError, ValueError):
        same_folder = False
    return same_folder or recorded["trials"] == warm.record()["trials"]
