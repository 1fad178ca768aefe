"""``pareto.json``: the search's result, written once all stages ran.

It names the frontier of the stage that counts (:func:`search.domain.frontier_stage`), each
frontier trial with its validation and test metrics, the baseline, and the flash/regular rank
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

from paretodistill.search.domain import (
    FLASH,
    FLASH_METRIC_CANDIDATES,
    REGULAR,
    SEARCH_STAGES,
    STAGES,
    correlation_metric,
    frontier_stage,
    pair_flash_regular,
    redact_url,
    spearman,
)
from paretodistill.search.objectives import ObjectiveSet
from paretodistill.search.study import counts, feasible_trials, frontier, is_finished, load_stage, objective_values


def _entry(t, stage: str, objectives: ObjectiveSet) -> dict:
    entry = {
        "stage": stage,
        "trial_number": t.number,
        "params": dict(t.params),
        "objective_values": dict(zip(objectives.metric_names, objective_values(t, objectives))),
        "validation": t.user_attrs.get("metrics", {}),
        "test": t.user_attrs.get("test_metrics"),
        "checkpoint": t.user_attrs.get("checkpoint"),
        "trial_dir": t.user_attrs.get("trial_dir"),
    }
    if "flash_trial" in t.user_attrs:
        entry["flash_trial"] = t.user_attrs["flash_trial"]
    return entry


def flash_metric_correlations(pairs: list, regular_metric: str) -> dict[str, dict]:
    """For each candidate flash metric: Spearman's rho between its flash values and the regular
    stage's ``regular_metric``, over the pairs that report both (None below 3 pairs)."""
    result = {}
    for name in FLASH_METRIC_CANDIDATES:
        values = [((f.user_attrs.get("metrics") or {}).get(name), (r.user_attrs.get("metrics") or {}).get(regular_metric))
                  for f, r in pairs]
        values = [(float(a), float(b)) for a, b in values if _finite(a) and _finite(b)]
        if values:
            rho = spearman([a for a, _ in values], [b for _, b in values])
            result[name] = {"pairs": len(values), "spearman": None if rho is None else round(rho, 6)}
    return result


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def stopped_entries(trials: list, stage: str) -> list[dict]:
    """The trials of a stage stopped early (PRUNED), each with its reason, step and last evaluation."""
    return [{"stage": stage, "trial_number": t.number, "params": dict(t.params),
             "reason": t.user_attrs.get("stop_reason"),
             "step": (t.user_attrs.get("early_stop") or {}).get("step"),
             "validation": t.user_attrs.get("metrics", {}), "trial_dir": t.user_attrs.get("trial_dir")}
            for t in trials if t.state == TrialState.PRUNED]


def build_pareto(storage, name: str, objectives: ObjectiveSet, flash_objectives: ObjectiveSet,
                 candidates: list, split: dict, url: str | None, *, early_stop=None) -> dict:
    """The ``pareto.json`` document (see the study-directory contract in the package docs).

    ``url``: a shared database (written without its password); None for the study folder's own
    study.db, so that the document names no absolute path. Trial folders and checkpoints are as
    the study records them: relative to the study folder. ``early_stop``: the flash stage's
    ``search.early_stop.StopRule`` in this run (None: off).
    """
    studies = {stage: load_stage(storage, name, stage) for stage in STAGES}
    trials = {stage: (s.get_trials(deepcopy=False) if s is not None else []) for stage, s in studies.items()}
    stage_objectives = {FLASH: flash_objectives, REGULAR: objectives}
    frontier_stage_ = frontier_stage(
        {stage: len(feasible_trials(trials[stage], stage_objectives[stage])) for stage in SEARCH_STAGES},
        {stage: sum(1 for t in trials[stage] if is_finished(t)) for stage in SEARCH_STAGES},
    )
    front = frontier(trials[frontier_stage_], stage_objectives[frontier_stage_])

    metric = correlation_metric(objectives.metric_names)
    completed = {stage: [t for t in trials[stage] if t.state == TrialState.COMPLETE] for stage in SEARCH_STAGES}
    pairs, rows = [], []
    for source, t in pair_flash_regular(completed[FLASH], completed[REGULAR]):
        a, b = (source.user_attrs.get("metrics") or {}).get(metric), (t.user_attrs.get("metrics") or {}).get(metric)
        if isinstance(a, (int, float)) and isinstance(b, (int, float)):
            pairs.append((float(a), float(b)))
            rows.append({"flash_trial": source.number, "regular_trial": t.number, "flash": a, "regular": b})
    rho = spearman([a for a, _ in pairs], [b for _, b in pairs])
    candidates_rho = flash_metric_correlations(pair_flash_regular(completed[FLASH], completed[REGULAR]), metric)

    baseline = None
    finished_baseline = [t for t in trials["baseline"] if t.state in (TrialState.COMPLETE, TrialState.FAIL)]
    if finished_baseline:
        chosen = ([t for t in finished_baseline if t.state == TrialState.COMPLETE] or finished_baseline)[-1]
        baseline = {
            **_entry(chosen, "baseline", objectives),
            "name": chosen.user_attrs.get("baseline"),
            "status": "ok" if chosen.state == TrialState.COMPLETE else "failed",
            "failure_kind": chosen.user_attrs.get("failure_kind"),
            "failure_reason": chosen.user_attrs.get("failure_reason"),
        }
        if chosen.state != TrialState.COMPLETE:
            baseline["objective_values"] = None
    return {
        "study": name,
        "storage": None if url is None else redact_url(url),
        "objectives": objectives.describe_objectives(),
        "thresholds": objectives.describe_thresholds(),
        "flash_thresholds": flash_objectives.describe_thresholds(),
        "split": split,
        "frontier_stage": frontier_stage_,
        "frontier": [_entry(t, frontier_stage_, stage_objectives[frontier_stage_]) for t in front],
        "baseline": baseline,
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
