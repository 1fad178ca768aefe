"""The main job at a quick scale: teacher, flash search, regular search, report.

What a new user runs first to see the whole pipeline on real data in under 20 minutes on a
2-core CPU: take the project's shipped teacher (or one given with ``--teacher``, or a quick one
fine-tuned here with ``--train-teacher``), search students with a short flash budget, distil the
best flash candidates and the 2020 SigOpt baseline with the full budget, score them on test
articles, and write the HTML report.
The scale is set by ``QUICK_*`` below; every value can be changed with ``--set``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from paretodistill.config import DataSettings, FeatureSettings, TrainSettings, load_config
from paretodistill.errors import ConfigError
from paretodistill.progress import format_duration

QUICK_FEATURES = {"max_seq_length": 256, "doc_stride": 96, "max_query_length": 64}
QUICK_DATA = {
    "max_train_questions": 2000,  # the first questions of the split's train articles (half unanswerable)
    "max_eval_articles": 3,  # validation and test: the first three articles of each part
    "features": QUICK_FEATURES,
}
QUICK_TEACHER_TRAINING = TrainSettings(learning_rate=1e-4, warmup_steps=20, weight_decay=0.01, epochs=2.0,
                                       train_batch_size=32, log_every_steps=20)

# Measured on the 2-core AVX2 box (docs/benchmarks.md §3): a 3 x 12 student at batch 8 clears the
# no-answer floor of the validation articles by +4.6 F1 after 100 steps, where 40 steps at batch 16
# left every flash student at the floor; training is cheap at this scale (~10 windows/s on one core),
# evaluation and start-up are not. So: batch 8 everywhere, flash students chosen by span F1 (the
# best-span F1 that the no-answer threshold hides; exact at 40 steps ranks nothing), one
# evaluation per flash trial, then the best candidate and the baseline at 400 steps, each on
# every core (a stage of one trial gets them all).
QUICK_SEARCH = {
    "data": QUICK_DATA,
    "training": {"epochs": 1.0, "train_batch_size": 8, "warmup_steps": 10, "eval_every_steps": 100},
    "latency": {"threads": 1, "repeats": 20, "warmup": 3},
    "search": {
        "name": "quickstart",
        "sampler": "gp",
        "seed": 0,
        "n_startup_trials": 4,
        "objectives": ["exact:maximize", "num_parameters:minimize"],
        "thresholds": {"exact": 50.0},
        "baseline": "sigopt-2020",
        "flash": {"n_trials": 6, "objectives": ["span_f1:maximize", "num_parameters:minimize"],
                  "budget": {"training.max_steps": 40, "training.eval_every_steps": 40}},
        "regular": {"top_k": 1, "budget": {"training.max_steps": 400, "training.eval_every_steps": 200}},
        "space": {
            "num_layers": {"type": "int", "low": 1, "high": "teacher_layers"},
            "heads_per_layer": {"type": "int", "low": 2, "high": "teacher_heads"},
            "intermediate_size": {"type": "categorical",
                                  "choices": ["0.5*teacher_intermediate", "teacher_intermediate"]},
            "learning_rate": {"type": "float", "low": 2e-5, "high": 3e-4, "log": True},
            "soft_weight": {"type": "float", "low": 0.0, "high": 1.0},
            "hard_weight": {"type": "float", "low": 0.0, "high": 1.0},
            "temperature": {"type": "float", "low": 1.0, "high": 6.0},
            "attention_dropout": {"type": "fixed", "value": 0.0},
        },
    },
}


def run_quickstart(data_file: str, out_dir: str | Path, teacher: str | None = None, overrides=(),
                   workers: int = 2, cache_dir: str | None = None, train_teacher: bool = False, log=print) -> dict:
    """Run every stage, log where each result is and how long each stage took, and return their paths.

    The teacher is the project's shipped one unless ``teacher`` names another or ``train_teacher``
    asks for a quick one fine-tuned here (which learns too little to answer: see the README).
    """
    from paretodistill.distill.engine import prepare
    from paretodistill.recipes.shipped_teacher import shipped_teacher_dir
    from paretodistill.recipes.teacher import TeacherRecipe, fine_tune_teacher
    from paretodistill.report.html import build_report
    from paretodistill.search.stages import run_search

    if teacher is not None and train_teacher:
        raise ConfigError("--teacher and --train-teacher exclude each other: give a teacher or train one")
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    data_file = str(Path(data_file).resolve())
    stages: dict[str, float] = {}
    started = time.perf_counter()

    if train_teacher:
        teacher = str(out_dir / "teacher")
        if (Path(teacher) / "metrics.json").exists():
            log(f"[1/3] teacher: reusing {teacher}")
        else:
            log(f"[1/3] teacher: fine-tuning the packaged MiniLM at a quick scale into {teacher}")
            data = DataSettings(split_file=data_file, max_train_questions=QUICK_DATA["max_train_questions"],
                                max_eval_articles=QUICK_DATA["max_eval_articles"],
                                features=FeatureSettings(**QUICK_FEATURES))
            fine_tune_teacher(TeacherRecipe(data=data, training=QUICK_TEACHER_TRAINING), teacher, cache_dir, log)
    else:
        teacher = str(Path(teacher).resolve()) if teacher is not None else str(shipped_teacher_dir())
        log(f"[1/3] teacher: {teacher}")
    teacher_metrics = json.loads((Path(teacher) / "metrics.json").read_text()) if (Path(teacher) / "metrics.json").exists() else {}
    flags = [f"teacher.path={json.dumps(str(teacher))}", f"data.split_file={json.dumps(data_file)}"]
    if cache_dir:
        flags.append(f"cache_dir={json.dumps(str(cache_dir))}")
    config = load_config(None, [*flags, *overrides], base=QUICK_SEARCH)
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


def _lap(started: float, stages: dict[str, float]) -> float:
    """Seconds since the previous stage ended."""
    return time.perf_counter() - started - sum(stages.values())
