"""The main job at a quick scale: teacher, flash search, regular search, report.

What a new user runs first to see the whole pipeline on real data in under 20 minutes on a
2-core CPU: take the project's shipped teacher (or one given with ``--teacher``, or a quick one
fine-tuned here with ``--train-teacher``), search students with a short flash budget, distil the
best flash candidates and the 2020 SigOpt baseline with the full budget, score them on test
articles, and write the HTML report.
The scale is set by ``configs/quickstart.toml``; every value can be changed with ``--set``.
``--smoke`` runs the same stages, by the same code, on the search's smoke preset (a tiny slice,
3 short flash trials, 2 regular ones): a check, in a few minutes, that a fresh install works.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from paretodistill.config import TEACHER_TRAINING, ExperimentConfig, load_config
from paretodistill.errors import ConfigError
from paretodistill.progress import format_duration
from paretodistill.recipes.shipped_teacher import REPOSITORY

QUICKSTART_CONFIG = REPOSITORY / "configs" / "quickstart.toml"
SMOKE_OUT = "quickstart-smoke"  # --smoke's folder, under the cache: a check's output, not a result to keep
DEFAULT_OUT = Path("runs") / "quickstart"
# The quick teacher (--train-teacher), on the quick search's data: the teacher recipe, shorter.
QUICK_TEACHER_TRAINING = dataclasses.replace(TEACHER_TRAINING, warmup_steps=20, epochs=2.0, log_every_steps=20)


def quickstart_config(overrides=()) -> ExperimentConfig:
    """The quick search: ``configs/quickstart.toml`` under ``overrides`` (``--set`` and the command's flags)."""
    if not QUICKSTART_CONFIG.exists():
        raise ConfigError(f"the quick search's config is not at {QUICKSTART_CONFIG} (it comes with a clone of the "
                          "repository)")
    return load_config(QUICKSTART_CONFIG, overrides)


def smoke_config(data_file: str, teacher: str, cache_dir: str | None, overrides=()) -> ExperimentConfig:
    """``--smoke``: the search's smoke preset (``search --preset smoke``) with this teacher, under ``overrides``."""
    from paretodistill.search.presets import preset_values

    return load_config(None, overrides, base=preset_values("smoke", data_file, teacher, cache_dir))


def default_out(smoke: bool, cache_dir: str | None) -> Path:
    """runs/quickstart, or for ``--smoke`` a folder of its own under the cache."""
    from paretodistill.data.features import default_cache_dir

    return (Path(cache_dir) if cache_dir else default_cache_dir()) / SMOKE_OUT if smoke else DEFAULT_OUT


def run_quickstart(data_file: str, out_dir: str | Path | None, teacher: str | None = None, overrides=(),
                   workers: int = 2, cache_dir: str | None = None, train_teacher: bool = False, smoke: bool = False,
                   log=print) -> dict:
    """Run every stage, log where each result is and how long each stage took, and return their paths.

    The teacher is the project's shipped one unless ``teacher`` names another or ``train_teacher``
    asks for a quick one fine-tuned here (which learns too little to answer: see the README).
    ``smoke``: the smoke preset's scale instead of configs/quickstart.toml; ``out_dir`` None: :func:`default_out`.
    """
    from paretodistill.distill.engine import prepare
    from paretodistill.report.html import build_report
    from paretodistill.search.stages import run_search

    if teacher is not None and train_teacher:
        raise ConfigError("--teacher and --train-teacher exclude each other: give a teacher or train one")
    if smoke and train_teacher:
        raise ConfigError("--smoke and --train-teacher exclude each other: a quick teacher takes longer than the smoke run")
    out_dir = Path(out_dir if out_dir is not None else default_out(smoke, cache_dir)).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    data_file = str(Path(data_file).resolve())
    stages: dict[str, float] = {}
    started = time.perf_counter()

    teacher = _choose_teacher(teacher, train_teacher, smoke, data_file, out_dir, cache_dir, log)
    teacher_metrics = json.loads((Path(teacher) / "metrics.json").read_text()) if (Path(teacher) / "metrics.json").exists() else {}
    config = _job_config(smoke, data_file, teacher, cache_dir, overrides)
    log("[1/3] teacher: its logits over the training and validation windows, once, on every core (cached)")
    prepare(config, teacher_logits=True, log=log)
    stages["teacher"] = _lap(started, stages)
    log(f"[1/3] teacher: {format_duration(stages['teacher'])}")

    log("[2/3] search: flash stage, then the best candidates and the baseline with the full budget "
        "(each finished trial prints the stage's ETA)")
    study_dir = out_dir / "study"
    pareto = run_search(config, study_dir, workers=workers, log=log)
    stages["search"] = _lap(started, stages)
    log(f"[2/3] search: {format_duration(stages['search'])}")

    log("[3/3] report")
    report = build_report(study_dir, out_dir / "report.html")
    stages["report"] = _lap(started, stages)
    minutes = (time.perf_counter() - started) / 60
    summary = {
        "teacher": str(teacher),
        "teacher_test": {k: teacher_metrics.get("test", {}).get(k) for k in ("exact", "f1", "HasAns_f1", "NoAns_exact")},
        "study": str(study_dir),
        "pareto": str(study_dir / "pareto.json"),
        "frontier_size": len(pareto.get("frontier", [])),
        "report": str(report),
        "stage_seconds": {name: round(seconds, 1) for name, seconds in stages.items()},
        "minutes": round(minutes, 1),
    }
    (out_dir / "quickstart.json").write_text(json.dumps(summary, indent=1))
    log(f"done in {minutes:.1f} minutes ({', '.join(f'{k} {format_duration(v)}' for k, v in stages.items())}): "
        f"report {report}, frontier {study_dir / 'pareto.json'}, teacher {teacher}")
    return summary


def _job_config(smoke: bool, data_file: str, teacher: str, cache_dir: str | None, overrides=()) -> ExperimentConfig:
    """The quick search's config (or the smoke preset's) with the teacher, data and cache filled in, then ``overrides``."""
    flags = [f"teacher.path={json.dumps(str(teacher))}", f"data.split_file={json.dumps(data_file)}"]
    if cache_dir:
        flags.append(f"cache_dir={json.dumps(str(cache_dir))}")
    if smoke:
        return smoke_config(data_file, teacher, cache_dir, [*flags, *overrides])
    return quickstart_config([*flags, *overrides])


def _choose_teacher(teacher: str | None, train_teacher: bool, smoke: bool, data_file: str, out_dir: Path,
                    cache_dir: str | None, log) -> str:
    """The given teacher, else a quick one trained here (``train_teacher``), else the smoke preset's tiny random
    one (``smoke``: a wiring check has no use for a real teacher's minutes), else the shipped one."""
    from paretodistill.distill.presets import tiny_teacher
    from paretodistill.recipes.shipped_teacher import shipped_teacher_dir
    from paretodistill.recipes.teacher import TeacherRecipe, fine_tune_teacher

    if teacher is not None:
        teacher = str(Path(teacher).resolve())
    elif train_teacher:
        teacher = str(out_dir / "teacher")
        if (Path(teacher) / "metrics.json").exists():
            log(f"[1/3] teacher: reusing {teacher}")
            return teacher
        log(f"[1/3] teacher: fine-tuning the packaged MiniLM at a quick scale into {teacher}")
        data = dataclasses.replace(quickstart_config().data, split_file=data_file)  # --set changes only the search
        fine_tune_teacher(TeacherRecipe(data=data, training=QUICK_TEACHER_TRAINING), teacher, cache_dir, log)
        return teacher
    elif smoke:
        teacher = str(tiny_teacher(cache_dir))
        log(f"[1/3] teacher: the smoke preset's tiny random teacher, {teacher} (it checks the wiring; it answers nothing)")
        return teacher
    else:
        teacher = str(shipped_teacher_dir())
    log(f"[1/3] teacher: {teacher}")
    return teacher


def _lap(started: float, stages: dict[str, float]) -> float:
    """Seconds since the previous stage ended."""
    return time.perf_counter() - started - sum(stages.values())
