"""``paretodistill status``: where a search stands, as text, from its study directory alone."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
from optuna.trial import TrialState

from paretodistill.errors import StudyError
from paretodistill.redaction import redact_url
from paretodistill.search.database_lock import current_holder, supports_database_lock
from paretodistill.search.domain import STAGES, read_search_meta, recorded_storage_url
from paretodistill.search.objectives import ObjectiveSet
from paretodistill.search.projection import projection_line, read_projection
from paretodistill.search.results import StoredTrial, counts, frontier, stored_trials
from paretodistill.search.storage import opened_storage, reading_study
from paretodistill.search.study import load_stage

SHOWN_FAILURES = 5  # the latest failed and stopped trials listed per stage
SHOWN_FRONTIER = 8


def study_status(study_dir: str | Path, storage_url: str | None = None) -> str:
    """Where a search stands, per stage: counts, failures with reasons, frontier, best trials.

    Read from the folder's own ``study.db`` (wherever the folder now is), opened read-only; a
    search on a shared database is read from the URL ``search.json`` records, or ``storage_url``
    when that was recorded without its password.
    """
    study_dir = Path(study_dir)
    if study_dir.exists() and not study_dir.is_dir():
        raise StudyError(f"{study_dir} is a file, not a study folder")
    meta = read_search_meta(study_dir)
    if meta is None:
        raise StudyError(f"{study_dir}: no search.json here; is this a study directory written by paretodistill search?")
    url = storage_url or recorded_storage_url(study_dir)
    if url is None:
        raise StudyError(f"{study_dir}: no study.db here, and search.json records the shared database without its "
                         f"password ({meta['storage']}); give it with --storage URL")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    lines = [f"search {meta['name']!r} in {study_dir} ({redact_url(url) if meta['storage'] else 'study.db'})"]
    with opened_storage(url, read_only=True) as storage, reading_study(redact_url(url)):
        if supports_database_lock(url):
            holder = current_holder(url, meta["name"])
            lines.append(f"running: {holder}" if holder else "running: no search holds its lock on the server")
        stage_trials = {}
        for stage in STAGES:
            study = load_stage(storage, meta["name"], stage)
            lines += [f"{stage:9s}not started"] if study is None else stage_lines(stage, study)
            if study is not None:
                stage_trials[stage] = study.get_trials(deepcopy=False)
    lines.append(pareto_line(study_dir / "pareto.json"))
    projection = read_projection(study_dir)
    if projection is not None:
        lines.append(projection_line(projection, stage_trials))
    return "\n".join(lines)


def stage_lines(stage: str, study: optuna.Study) -> list[str]:
    """One stage: its counts, its latest failed and stopped trials, its frontier."""
    objectives = ObjectiveSet.from_search(
        {"objectives": study.user_attrs.get("objectives"), "thresholds": _thresholds_back(study.user_attrs.get("thresholds"))}
    )
    trials = stored_trials(study.get_trials(deepcopy=False), objectives, stage)
    c = counts(trials)
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(c["failed_kinds"].items()))
    waiting = f", {c['waiting']} waiting" if c["waiting"] else ""
    stopped = f", {c['stopped']} stopped early" if c["stopped"] else ""
    lines = [
        f"{stage:9s}{len(trials)} trials: {c['complete']} complete, {c['running']} running, "
        f"{c['failed']} failed{f' ({kinds})' if kinds else ''}, {c['interrupted']} interrupted{stopped}{waiting}"
    ]
    warm = study.user_attrs.get("warm_start")  # search.warm_start's record on the flash study
    if isinstance(warm, dict):
        lines.append(f"{'':9s}warm start from {warm.get('from')}: {len(warm.get('trials') or [])} trial(s) enqueued, "
                     f"{warm.get('skipped')} skipped")
    failed = [t for t in trials if t.state == TrialState.FAIL][-SHOWN_FAILURES:]
    lines += [f"{'':9s}  #{t.number} {_failure_text(t)}{placement_text(t.placement)}" for t in failed]
    for t in [t for t in trials if t.stopped][-SHOWN_FAILURES:]:
        reason = " ".join((t.stop_reason or "").split())  # "stopped early at 40% of training: ..."
        shown = reason if reason.startswith("stopped") else f"stopped early: {reason}".rstrip(": ")
        lines.append(f"{'':9s}  #{t.number} {shown[:200]}")
    front = frontier(trials, objectives)
    lines.append(f"{'':9s}frontier {len(front)} (thresholds {objectives.describe_thresholds() or 'none'})")
    for t in front[:SHOWN_FRONTIER]:
        shown = ", ".join(f"{m} {_fmt(m, v)}" for m, v in zip(objectives.metric_names, t.values or ()))
        test = t.test_metrics or {}
        extra = f" | test exact {test['exact']:.4g}" if isinstance(test.get("exact"), (int, float)) else ""
        origin = f" (flash #{t.flash_trial})" if t.flash_trial is not None else ""
        lines.append(f"{'':9s}  #{t.number}{origin}: {shown}{extra}{placement_text(t.placement)}")
    return lines


def _failure_text(t: StoredTrial) -> str:
    failure = t.failure
    tag = failure.kind if failure else "error"  # "interrupted", "node_lost" (not counted), or the failure's
    step = failure.step if failure else None
    reason = ((failure.reason if failure else None) or "").splitlines()[:1]
    return f"{tag}{f' at step {step}' if step is not None else ''}: {reason[0][:140] if reason else ''}"


def placement_text(placement: dict | None) -> str:
    """Where a trial ran, as `` [node 37d81981, GPU 1]`` (``Attr.PLACEMENT``); empty when nothing is known."""
    placement = placement or {}
    parts = [f"node {placement['node'][:8]}" if placement.get("node") else "",
             f"GPU {placement['devices']}" if placement.get("devices") else ""]
    shown = ", ".join(part for part in parts if part)
    return f" [{shown}]" if shown else ""


def pareto_line(path: Path) -> str:
    """What ``pareto.json`` says, in one line (or that it is not written yet)."""
    if not path.is_file():
        return "pareto.json: not written yet"
    try:
        doc = json.loads(path.read_text())
    except ValueError as error:
        raise StudyError(f"{path}: not readable as the JSON a search writes ({error})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("frontier", []), list):
        raise StudyError(f"{path}: not the JSON object a search writes (expected {{\"frontier\": [...], ...}}, "
                         f"got {json.dumps(doc)[:60]})")
    return (f"pareto.json: {len(doc.get('frontier', []))} frontier trial(s) from the {doc.get('frontier_stage')} stage, "
            f"flash/regular Spearman {doc.get('flash_regular_spearman')}, written {doc.get('generated')}")


def _thresholds_back(described: dict | None) -> dict:
    return {metric: text for metric, text in (described or {}).items()}


def _fmt(metric: str, value: float) -> str:
    return f"{value / 1e6:.2f}M" if metric == "num_parameters" else f"{value:.4g}"
