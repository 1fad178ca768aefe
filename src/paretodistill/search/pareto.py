"""``pareto.json``: the search's result, written once all stages ran.

It names the frontier of the stage that counts (:func:`search.domain.frontier_stage`), each
frontier trial with its validation and test metrics, the baseline, the teacher's latency measured
as the students' (``teacher_latency``: null for a study from before it was measured), and the flash/regular rank
correlation over the students completed in both stages (:func:`search.domain.pair_flash_regular`),
and that correlation for each candidate flash metric, to choose ``search.flash.objectives`` by.
Flash trials stopped early (``search.flash.early_stop``) are listed with their reasons, beside the
rule they were stopped by. The report reads it back and recomputes the same figures with the same
functions.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import math

from optuna.trial import TrialState

from paretodistill.redaction import redact_url
from paretodistill.search.domain import (
    BASELINE,
    FLASH,
    FLASH_METRIC_CANDIDATES,
    REGULAR,
    SEARCH_STAGES,
    STAGES,
    correlation_metric,
    frontier_stage,
    pair_flash_regular,
    spearman,
)
from paretodistill.search.objectives import ObjectiveSet
from paretodistill.search.results import Attr, StoredTrial, counts, feasible_trials, finished_count, frontier, stored_trials
from paretodistill.search.study import load_stage


def _entry(t: StoredTrial, stage: str, objectives: ObjectiveSet) -> dict:
    entry = {
        "stage": stage,
        "trial_number": t.number,
        "params": dict(t.params),
        "objective_values": dict(zip(objectives.metric_names, t.objective_values or ())),
        "validation": t.metrics,
        "test": t.test_metrics,
        "checkpoint": t.checkpoint,
        "trial_dir": t.trial_dir,
        "placement": t.placement,  # where it trained: Attr.PLACEMENT
    }
    if t.flash_trial is not None:
        entry["flash_trial"] = t.flash_trial
    return entry


def flash_metric_correlations(pairs: list[tuple[StoredTrial, StoredTrial]], regular_metric: str) -> dict[str, dict]:
    """For each candidate flash metric: Spearman's rho between its flash values and the regular
    stage's ``regular_metric``, over the pairs that report both (None below 3 pairs)."""
    result = {}
    for name in FLASH_METRIC_CANDIDATES:
        values = [(f.metrics.get(name), r.metrics.get(regular_metric)) for f, r in pairs]
        values = [(float(a), float(b)) for a, b in values if _finite(a) and _finite(b)]
        if values:
            rho = spearman([a for a, _ in values], [b for _, b in values])
            result[name] = {"pairs": len(values), "spearman": None if rho is None else round(rho, 6)}
    return result


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def stopped_entries(trials: list[StoredTrial], stage: str) -> list[dict]:
    """The trials of a stage stopped early (PRUNED), each with its reason, step and last evaluation."""
    return [{"stage": stage, "trial_number": t.number, "params": dict(t.params), "reason": t.stop_reason,
             "step": t.stop_step, "validation": t.metrics, "trial_dir": t.trial_dir}
            for t in trials if t.stopped]


def flash_regular_rows(trials: dict[str, list[StoredTrial]], metric: str) -> tuple[float | None, list[dict], dict]:
    """(Spearman rho of ``metric``, the pairs it is computed over, each candidate flash metric's rho)
    over the students completed in both stages."""
    completed = {stage: [t for t in trials[stage] if t.complete] for stage in SEARCH_STAGES}
    paired = pair_flash_regular(completed[FLASH], completed[REGULAR])
    pairs, rows = [], []
    for source, t in paired:
        a, b = source.metrics.get(metric), t.metrics.get(metric)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            pairs.append((float(a), float(b)))
            rows.append({"flash_trial": source.number, "regular_trial": t.number, "flash": a, "regular": b})
    rho = spearman([a for a, _ in pairs], [b for _, b in pairs])
    return rho, rows, flash_metric_correlations(paired, metric)


def baseline_entry(trials: list[StoredTrial], objectives: ObjectiveSet) -> dict | None:
    """The baseline study's last completed trial (else its last failed one), or None."""
    finished_baseline = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.FAIL)]
    if not finished_baseline:
        return None
    chosen = ([t for t in finished_baseline if t.complete] or finished_baseline)[-1]
    failure = chosen.failure
    entry = {
        **_entry(chosen, BASELINE, objectives),
        "name": chosen.baseline,
        "status": "ok" if chosen.complete else "failed",
        "failure_kind": failure.kind if failure else None,
        "failure_reason": failure.reason if failure else None,
    }
    if not chosen.complete:
        entry["objective_values"] = None
    return entry


def build_pareto(storage, name: str, objectives: ObjectiveSet, flash_objectives: ObjectiveSet,
                 candidates: list, split: dict, url: str | None, *, early_stop=None) -> dict:
    """The ``pareto.json`` document (see the study-directory contract in the package docs).

    ``url``: a shared database (written without its password); None for the study folder's own
    study.db, so that the document names no absolute path. Trial folders and checkpoints are as
    the study records them: relative to the study folder. ``early_stop``: the flash stage's
    ``search.early_stop.StopRule`` in this run (None: off).
    """
    studies = {stage: load_stage(storage, name, stage) for stage in STAGES}
    stage_objectives = {FLASH: flash_objectives, REGULAR: objectives, BASELINE: objectives}
    trials = {stage: stored_trials(s.get_trials(deepcopy=False) if s is not None else [], stage_objectives[stage], stage)
              for stage, s in studies.items()}
    result_stage = frontier_stage(
        {stage: len(feasible_trials(trials[stage], stage_objectives[stage])) for stage in SEARCH_STAGES},
        {stage: finished_count(trials[stage], stage_objectives[stage]) for stage in SEARCH_STAGES},
    )
    front = frontier(trials[result_stage], stage_objectives[result_stage])
    metric = correlation_metric(objectives.metric_names)
    rho, rows, candidates_rho = flash_regular_rows(trials, metric)
    return {
        "study": name,
        "storage": None if url is None else redact_url(url),
        "objectives": objectives.describe_objectives(),
        "thresholds": objectives.describe_thresholds(),
        "flash_thresholds": flash_objectives.describe_thresholds(),
        "split": split,
        "frontier_stage": result_stage,
        "frontier": [_entry(t, result_stage, stage_objectives[result_stage]) for t in front],
        "baseline": baseline_entry(trials[BASELINE], objectives),
        "teacher_latency": studies[FLASH].user_attrs.get(Attr.TEACHER_LATENCY) if studies[FLASH] is not None else None,
        "candidates": [t.number for t in candidates],
        "flash_regular_spearman": None if rho is None else round(rho, 6),
        "spearman_metric": metric,
        "flash_regular_pairs": rows,
        "flash_metric_correlations": candidates_rho,
        "counts": {stage: counts(ts) for stage, ts in trials.items() if studies[stage] is not None},
        "flash_early_stop": None if early_stop is None else dataclasses.asdict(early_stop),
        "stopped_early": [entry for stage in SEARCH_STAGES for entry in stopped_entries(trials[stage], stage)],
        "generated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
