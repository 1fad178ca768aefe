"""A stage's finished trials as a small JSON file: a table anyone can replay without the database.

A sampler replay (``benchmarks/sampler_replay.py``) or an early-stopping replay
(``benchmarks/early_stop_replay.py``) needs each trial's parameters and their distributions, its
state, objective and constraint values, metrics, learning curve, failure kind and reason and its
duration, plus the study's objectives and thresholds and the baseline student's metrics. That is
all a table file holds: no weights, no paths, no config (a config can hold a database password).
Floats pass through JSON unchanged (Python writes the shortest text that reads back as the same
number), so a replay from the file gives the figures a replay from the study gives.
"""

from __future__ import annotations

import json
from pathlib import Path

import optuna
from optuna.distributions import distribution_to_json, json_to_distribution
from optuna.trial import FrozenTrial, TrialState

from paretodistill.errors import ConfigError
from paretodistill.search.domain import BASELINE, STAGES, stage_study_name
from paretodistill.search.results import Attr, StoredTrial

FORMAT = "paretodistill-table"
VERSION = 1
# a row's fields that are a trial's user attributes, under the same names
TRIAL_ATTRS = (Attr.METRICS, Attr.CURVE, Attr.FAILURE_KIND, Attr.FAILURE_REASON, Attr.DURATION_S)
_KEPT_STATES = (TrialState.COMPLETE, TrialState.FAIL)


def study_fields(study: optuna.Study, baseline: dict | None = None) -> dict:
    """What a table file says besides its trials: the study's name, objectives and thresholds, and
    ``baseline``, the reference student's metrics."""
    return {"study": study.study_name, "objectives": study.user_attrs.get("objectives"),
            "thresholds": study.user_attrs.get("thresholds", {}), "baseline": baseline}


def table_of(trials: list[FrozenTrial], fields: dict) -> dict:
    """The finished ``trials`` and the table's ``fields`` (:func:`study_fields`) as plain data."""
    kept = [t for t in trials if t.state in _KEPT_STATES]
    distributions: dict[str, str] = {}
    for t in kept:
        for name, d in t.distributions.items():
            distributions.setdefault(name, distribution_to_json(d))
    return {
        "format": FORMAT,
        "version": VERSION,
        **{key: fields.get(key) for key in ("study", "objectives", "thresholds", "baseline")},
        "distributions": {name: json.loads(text) for name, text in distributions.items()},
        "trials": [_trial_record(t, distributions) for t in kept],
    }


def _trial_record(t: FrozenTrial, shared: dict[str, str]) -> dict:
    stored = StoredTrial.of(t)
    record = {
        "number": t.number,
        "state": t.state.name,
        "params": dict(t.params),
        "values": None if t.values is None else list(t.values),
        "constraints": dict(t.constraints),
        "metrics": stored.metrics,
        "curve": list(stored.curve),
        "failure_kind": stored.failure.kind if stored.failure else None,
        "failure_reason": stored.failure.reason if stored.failure else None,
        "duration_s": stored.duration_s,
    }
    own = {name: distribution_to_json(d) for name, d in t.distributions.items()}
    if any(shared.get(name) != text for name, text in own.items()):  # another space than the first trial's
        record["distributions"] = {name: json.loads(text) for name, text in own.items()}
    return record


def write_table(path: str | Path, table: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(table, indent=1) + "\n")


def read_table(path: str | Path) -> tuple[list[FrozenTrial], dict]:
    """The trials of a table file as Optuna trials, and the table's own fields (objectives, baseline...)."""
    try:
        table = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise ConfigError(f"{path}: not a readable table file ({type(error).__name__}: {error})") from None
    if not isinstance(table, dict) or table.get("format") != FORMAT or table.get("version") != VERSION:
        raise ConfigError(f"{path}: not a {FORMAT} file of version {VERSION}")
    shared = {name: json_to_distribution(json.dumps(d)) for name, d in table["distributions"].items()}
    trials = []
    for record in table["trials"]:
        own = record.get("distributions")
        distributions = {name: json_to_distribution(json.dumps(d)) for name, d in own.items()} if own else shared
        state = TrialState[record["state"]]
        trial = optuna.trial.create_trial(
            state=state,
            values=record["values"] if state == TrialState.COMPLETE else None,
            params=record["params"],
            distributions={name: distributions[name] for name in record["params"]},
            user_attrs={key: record[key] for key in TRIAL_ATTRS},
            constraints=record["constraints"] or None,
        )
        trial.number = record["number"]
        trials.append(trial)
    return trials, {key: table.get(key) for key in ("study", "objectives", "thresholds", "baseline")}


def stored_baseline(storage, study_name: str) -> dict | None:
    """The metrics of the baseline student of the search ``study_name`` belongs to (``<name>-<stage>``):
    its ``<name>-baseline`` study's last completed trial, as ``pareto.json`` reports it; None without one."""
    prefix, _, stage = study_name.rpartition("-")
    if stage not in STAGES:
        return None
    wanted = stage_study_name(prefix, BASELINE)
    if wanted not in {s.study_name for s in storage.get_all_studies()}:
        return None
    study = optuna.load_study(study_name=wanted, storage=storage)
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    return StoredTrial.of(complete[-1]).metrics if complete else None


def is_table_file(source: str) -> bool:
    """A table given as a file (``runs/table.json``) rather than a storage URL (``sqlite:///...``)."""
    return "://" not in source and source.endswith(".json")
