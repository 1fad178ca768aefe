"""Which trials may share a study: its identity, recorded with it and checked on every run.

Trials are comparable only when they distilled the same teacher on the same data, with the same
budgets and fixed settings, in the same space, towards the same objectives. A rerun with any of
these changed used to add its trials to the old frontier; now the identity is recorded on every
stage's study (user attribute ``identity``) and a run with another one is refused, naming what
differs, with the command that searches with the new settings: the same one with a new ``--study``
folder. Even a study none of whose trials finished (a setting that failed every trial) is kept as
it is rather than reused: its failed trials count toward the budget and teach the sampler, and an
interrupted one's folder holds training state that a new trial of the same number would resume
with the new settings; so the refusal says that nothing is lost by starting in a new folder. Left out is what
does not change what a trial measures: how many trials, the sampler, its seed and start-up, the
warm start (which trials run first; recorded on the flash study apart, ``search.warm_start``),
whether flash trials are stopped early (like the sampler, it decides which trials finish, not what
a finished one measured), workers, backend, threads, the cache, and where the files are (data and
teacher are known by content: ``distill.engine.check_inputs``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from optuna.trial import TrialState

from paretodistill.config import PARAMETER_TARGETS, ExperimentConfig
from paretodistill.distill.engine import Inputs
from paretodistill.errors import StudyError
from paretodistill.search.domain import STAGES, stage_study_name
from paretodistill.search.plan import SearchPlan

IDENTITY_ATTR = "identity"
FIXED_SECTIONS = ("data", "student", "training", "distillation", "latency")
FILE_KEYS = ("data.split_file", "data.extra_train_files", "data.validation_files", "data.test_files")  # known by content, in "inputs"
SHOWN_DIFFERENCES = 8


def study_identity(config: ExperimentConfig, plan: SearchPlan, inputs: Inputs) -> dict:
    """The identity of the study this run would add trials to, as plain JSON data."""
    values = config.to_dict()
    searched = {PARAMETER_TARGETS[name] for name in plan.space.names}
    fixed = {
        section: {key: value for key, value in values[section].items()
                  if f"{section}.{key}" not in searched and f"{section}.{key}" not in FILE_KEYS}
        for section in FIXED_SECTIONS
    }
    fixed["device"] = values["device"]
    identity = {
        "inputs": {"data": inputs.data, "teacher": inputs.teacher},
        "fixed": fixed,
        "budgets": {"flash": plan.flash_budget, "regular": plan.regular_budget},
        "space": plan.space.to_dict(),
        "objectives": {"search": plan.objectives.describe_objectives(), "thresholds": plan.objectives.describe_thresholds(),
                       "flash": plan.flash_objectives.describe_objectives(),
                       "flash_thresholds": plan.flash_objectives.describe_thresholds()},
        "baseline": None if plan.baseline is None else {"name": plan.baseline.name, "params": plan.baseline.params},
        "trial_function": plan.settings.trial_function,
    }
    return json.loads(json.dumps(identity, sort_keys=True, default=str))  # as the database will return it


def differences(recorded: dict, current: dict) -> list[str]:
    """``key: recorded -> current`` for every dotted key whose value differs.

    A fixed setting the recorded identity lacks and this run has at its default is no difference:
    the setting was added to the package after the study started, and a new setting's default is
    what the package did before it (``config``'s rule), so the study's trials ran with it too.
    """
    old, new = _flatten(recorded), _flatten(current)
    defaults = _flatten(json.loads(json.dumps({"fixed": ExperimentConfig().to_dict()}, default=str)))
    return [f"{key}: {_shown(old.get(key))} -> {_shown(new.get(key))}"
            for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)
            and not (key not in old and key in defaults and new.get(key) == defaults[key])]


def check_identity(storage, name: str, identity: dict, where: str, log=print, study_dir: str | Path | None = None) -> None:
    """Refuse (``StudyError``) when a stage of ``name`` was started with another identity, naming
    each difference and the command that runs these settings (``study_dir``: the study folder it
    was asked to run in); record it on stages started before identities were recorded."""
    studies = {s.study_name: s for s in storage.get_all_studies()}
    for stage in STAGES:
        study = studies.get(stage_study_name(name, stage))
        if study is None:
            continue
        recorded = study.user_attrs.get(IDENTITY_ATTR)
        if recorded is None:
            storage.set_study_user_attr(storage.get_study_id_from_name(study.study_name), IDENTITY_ATTR, identity)
            log(f"[{stage}] the study recorded no identity (an older search); recorded this run's")
            continue
        found = differences(recorded, identity)
        if found:
            more = f"; and {len(found) - SHOWN_DIFFERENCES} more" if len(found) > SHOWN_DIFFERENCES else ""
            raise StudyError(
                f"{where}: search {name!r} was started with other settings, so its trials would not compare with "
                f"this run's: {'; '.join(found[:SHOWN_DIFFERENCES])}{more}. {_way_out(storage, name, study_dir)}"
            )


def _way_out(storage, name: str, study_dir: str | Path | None) -> str:
    """The command that searches with the new settings, and whether the old study had any result."""
    folder = "a new folder" if study_dir is None else _unused_folder(Path(study_dir))
    existing = {study.study_name for study in storage.get_all_studies()}
    trials = [trial for study_name in (stage_study_name(name, stage) for stage in STAGES) if study_name in existing
              for trial in storage.get_all_trials(storage.get_study_id_from_name(study_name), deepcopy=False)]
    if trials and not any(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials):
        return (f"None of its {len(trials)} trial(s) finished with a result (each failed or was interrupted), so "
                f"nothing is lost by starting again in a new --study folder: the same command with --study {folder}")
    return (f"To search with these settings, use a new --study folder: the same command with --study {folder} "
            "(or restore the settings it was started with)")


def _unused_folder(study_dir: Path) -> str:
    """``S-2`` (or ``S-3``...): the first sibling of the study folder that does not exist yet."""
    study_dir = study_dir if study_dir.name else study_dir.resolve()  # "." has no name to add to
    number = 2
    while study_dir.with_name(f"{study_dir.name}-{number}").exists():
        number += 1
    return str(study_dir.with_name(f"{study_dir.name}-{number}"))


def _flatten(values: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(values, dict) and values:
        flat: dict[str, Any] = {}
        for key, value in values.items():
            flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: values}


def _shown(value: Any) -> str:
    if isinstance(value, str) and len(value) == 64 and all(c in "0123456789abcdef" for c in value):
        return f"sha256 {value[:12]}"
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."
