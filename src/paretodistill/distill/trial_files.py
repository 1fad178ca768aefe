"""What a trial writes in its folder, and how a finished folder is read back.

A trial folder holds ``checkpoint/`` (a Hugging Face folder with the tokenizer, the split and a
copy of the metrics, loadable without paretodistill), ``curve.json`` and ``metrics.json``, written
last through a temporary file and a rename: a folder with a ``metrics.json`` always holds a
complete result. A failed trial leaves ``failure.json`` instead, a stopped one ``curve.json`` and
``stopped.json``; ``.state/`` is the training loop's resumable state while a trial runs.

Every write that a reader might see half-done goes through a staging name and a rename.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from pathlib import Path
from typing import Any

import torch

from paretodistill.models.saving import save_with_code
from paretodistill.models.student import count_parameters
from paretodistill.trial import TrialResult

METRICS_FILE = "metrics.json"
FAILURE_FILE = "failure.json"
STOPPED_FILE = "stopped.json"
CURVE_FILE = "curve.json"
CHECKPOINT_DIR = "checkpoint"
STATE_DIR = ".state"  # the training loop's resumable state (training/loop.py)
OUTCOME_FILES = (METRICS_FILE, FAILURE_FILE, STOPPED_FILE)


def open_trial_dir(trial_dir: str | Path | None) -> Path | None:
    """The trial's folder, created, with any earlier outcome removed (a re-run replaces it)."""
    if trial_dir is None:
        return None
    folder = Path(trial_dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    for stale in OUTCOME_FILES:
        (folder / stale).unlink(missing_ok=True)
    return folder


def state_dir(trial_dir: Path | None) -> Path | None:
    return trial_dir / STATE_DIR if trial_dir is not None else None


def write_json_atomically(path: Path, values: Any) -> None:
    """Write to a temporary file in the same folder, then rename: readers see all of it or nothing."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(values, indent=1, default=str))
    os.replace(temporary, path)


def teacher_record(config, teacher_path: str, teacher, seed_path: str | None) -> dict:
    """The teacher as ``metrics.json`` records it (and which checkpoint seeded the student)."""
    return {
        "path": str(config.teacher.path),
        "resolved": teacher_path,
        "num_parameters": count_parameters(teacher),
        "layers": teacher.config.num_hidden_layers,
        "hidden_size": teacher.config.hidden_size,
        "heads": teacher.config.num_attention_heads,
        "model_type": teacher.config.model_type,
        "student_seed": str(config.student.init_from) if seed_path else "teacher",
    }


def environment_record() -> dict:
    """The software a trial ran on and when it finished."""
    return {"torch": torch.__version__, "python": platform.python_version(),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z")}


def write_finished(trial_dir: Path, student, tokenizer, split, record: dict, curve: list[dict]) -> Path:
    """A finished trial: the checkpoint, the curve, then ``metrics.json`` (last: it marks the
    trial complete); the training state is dropped. Returns the checkpoint folder."""
    checkpoint = _save_checkpoint(student, tokenizer, split, record, trial_dir)
    (trial_dir / CURVE_FILE).write_text(json.dumps(curve, indent=1))
    shutil.rmtree(trial_dir / STATE_DIR, ignore_errors=True)
    write_json_atomically(trial_dir / METRICS_FILE, record)
    return checkpoint


def write_stopped(trial_dir: Path, result: TrialResult) -> None:
    """A trial its ``should_stop`` check ended: the curve and ``stopped.json``."""
    (trial_dir / CURVE_FILE).write_text(json.dumps(result.curve, indent=1))
    shutil.rmtree(trial_dir / STATE_DIR, ignore_errors=True)
    write_json_atomically(trial_dir / STOPPED_FILE, result.to_dict())


def write_failure(trial_dir: Path, result: TrialResult, details: str) -> None:
    """A failed trial: ``failure.json`` with the traceback. Only an interrupted trial keeps its
    training state: it is the only one worth resuming."""
    if result.failure_kind != "interrupted":
        shutil.rmtree(trial_dir / STATE_DIR, ignore_errors=True)
    write_json_atomically(trial_dir / FAILURE_FILE, {**result.to_dict(), "traceback": details})


def _save_checkpoint(student, tokenizer, split, record: dict, trial_dir: Path) -> Path:
    """Save into a staging folder and rename it into place, so no reader sees half a checkpoint.

    ``split.json`` and a copy of the metrics (with ``na_threshold``) go in too, which is what
    ``paretodistill evaluate --model DIR --part test`` reads to score with the right threshold.
    """
    staging = trial_dir / f".{CHECKPOINT_DIR}-staging"
    final = trial_dir / CHECKPOINT_DIR
    shutil.rmtree(staging, ignore_errors=True)
    save_with_code(student, staging)
    tokenizer.save_pretrained(staging)
    split.save(staging / "split.json")
    (staging / METRICS_FILE).write_text(json.dumps(record, indent=1, default=str))
    shutil.rmtree(final, ignore_errors=True)
    os.rename(staging, final)
    return final


def searched_parameters(record: dict) -> dict[str, Any]:
    """The parameters the search set, from a trial's ``metrics.json`` (older records hold them
    under ``params``, beside the effective ``parameters``)."""
    if "params" in record:
        return dict(record["params"])
    parameters = record.get("parameters") or {}
    return {name: parameters[name] for name in record.get("searched", ()) if name in parameters}


def load_trial(trial_dir: str | Path) -> TrialResult | None:
    """The outcome recorded in a trial folder: ok (metrics.json), failed (failure.json), stopped
    (stopped.json) or None (unfinished)."""
    trial_dir = Path(trial_dir)
    if (trial_dir / METRICS_FILE).exists():
        record = json.loads((trial_dir / METRICS_FILE).read_text())
        curve = json.loads((trial_dir / CURVE_FILE).read_text()) if (trial_dir / CURVE_FILE).exists() else []
        numeric = {k: v for k, v in record.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
        return TrialResult("ok", searched_parameters(record), metrics=numeric, curve=curve,
                           checkpoint=str(trial_dir / record.get("checkpoint", CHECKPOINT_DIR)),
                           test_metrics=record.get("test"))
    if (trial_dir / FAILURE_FILE).exists():
        record = json.loads((trial_dir / FAILURE_FILE).read_text())
        record.pop("traceback", None)
        return TrialResult.from_dict(record)
    if (trial_dir / STOPPED_FILE).exists():
        return TrialResult.from_dict(json.loads((trial_dir / STOPPED_FILE).read_text()))
    return None
