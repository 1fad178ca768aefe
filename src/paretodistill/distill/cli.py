"""``paretodistill distill``: one distillation run from the command line.

The config is built in layers, each overriding the one before: the preset (``--preset smoke``),
the config file (``--config``), the ``--teacher``/``--data`` flags, a named recipe of trial
parameters (``--recipe sigopt-baseline``), then ``--set key=value``: so a recipe can be varied one
setting at a time (``--recipe sigopt-baseline --set distillation.soft_weight=0``).
Heavy modules are imported inside the command so ``paretodistill --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from paretodistill.options import add_device

PART_FLAGS_HELP = {  # the flags of the data parts, the same in distill, search and teacher
    "--data": "SQuAD file to split by article into the parts not given as files (e.g. dev-v2.0.json; "
              "sets data.split_file)",
    "--train": "a training file of your own (repeatable; sets data.extra_train_files)",
    "--validation": "your own validation file: it IS the validation part (repeatable; sets data.validation_files)",
    "--test": "your own test file: it IS the test part (repeatable; sets data.test_files)",
}



def add_part_flags(parser: argparse.ArgumentParser, test: bool = True) -> None:
    """``--data``, ``--train``, ``--validation`` and (unless the command has its own) ``--test``.
    Each is a SQuAD JSON file (plain or .gz) or a dataset id with its split, ``owner/name:split``."""
    for flag in ("--data", "--train", "--validation", "--test")[: 4 if test else 3]:
        parser.add_argument(flag, metavar="FILE", help=PART_FLAGS_HELP[flag],
                            **({} if flag == "--data" else {"action": "append"}))


def part_overrides(args: argparse.Namespace) -> list[tuple[str, object]]:
    """The config keys the part flags set, as ``(key, value)``; None where a flag was not given."""
    test_files = [path for path in (args.test or ()) if path] if isinstance(args.test, list) else None
    return [("data.split_file", args.data), ("data.extra_train_files", args.train),
            ("data.validation_files", args.validation), ("data.test_files", test_files or None)]


def distill_config(config=None, *, preset: str | None = None, teacher: str | None = None, data: str | None = None,
                   parts=(), cache_dir: str | None = None, recipe: str | None = None, device: str | None = None,
                   overrides=()):
    """One run's settings, in the command's layers (this module's docstring), its inputs checked:
    the teacher, the seed checkpoint and each data file, before any model is loaded. ``parts``:
    the ``(key, value)`` pairs of the other part flags (:func:`part_overrides`).
    ``paretodistill distill`` and ``paretodistill.distill`` both build them here."""
    from paretodistill.config import ExperimentConfig, load_config, with_parameters
    from paretodistill.data.layout import check_layout
    from paretodistill.distill.engine import data_fingerprints
    from paretodistill.distill.presets import PRESETS, RECIPES, recipe_parameters
    from paretodistill.distill.run import check_seed_checkpoint
    from paretodistill.errors import ConfigError
    from paretodistill.models.student import resolve_teacher

    if recipe is not None and recipe not in RECIPES:
        raise ConfigError(f"recipe {recipe!r} is not one of {RECIPES}")
    base: dict = {}
    if preset:
        if preset not in PRESETS:
            raise ConfigError(f"preset {preset!r} is not one of {sorted(PRESETS)}")
        base = PRESETS[preset](data, teacher, cache_dir)
    if isinstance(config, ExperimentConfig):  # a settings object takes the config file's place, and holds every setting
        if preset:
            raise ConfigError(f"preset {preset!r} with a settings object: the object holds every setting already; "
                              "give the preset with a TOML file, or no preset")
        config, base = None, config.to_dict()
    # The flags go in as the first overrides (JSON strings are TOML strings): after the config
    # file, before --set.
    flags = [f"{key}={json.dumps(value)}" for key, value in (
        ("teacher.path", teacher), ("data.split_file", data), *parts, ("cache_dir", cache_dir), ("device", device),
    ) if value]
    settings = load_config(config, flags, base=base)
    if not settings.teacher.path:
        raise ConfigError("no teacher: pass --teacher DIR (a QA checkpoint), or --preset smoke for a tiny one")
    resolve_teacher(settings.teacher.path)  # a missing hub id or an unsupported family: one line, exit 2
    if overrides and recipe:  # the recipe may read a setting (student.init_from) that --set gives
        settings = load_config(None, overrides, base=settings.to_dict())
    if recipe:
        settings = with_parameters(settings, recipe_parameters(recipe, settings))
    if overrides:
        settings = load_config(None, overrides, base=settings.to_dict())
    check_seed_checkpoint(settings, resolve_teacher(settings.teacher.path))  # a seed whose tokenizer differs: exit 2
    check_layout(settings.data)  # no data, or no part to test on: one line
    data_fingerprints(settings.data)  # a malformed file: one line, exit 2, before any model is loaded
    return settings


def cmd_distill(args: argparse.Namespace) -> int:
    from paretodistill.distill.run import run_trial
    from paretodistill.distill.trial_files import CHECKPOINT_DIR, CURVE_FILE, METRICS_FILE

    config = distill_config(args.config, preset=args.preset, teacher=args.teacher, data=args.data,
                            parts=part_overrides(args)[1:], cache_dir=args.cache_dir, recipe=args.recipe,
                            device=args.device, overrides=args.set or ())

    def log(message: str) -> None:
        print(message, flush=True)

    run = open_mlflow_run(args, config) if args.mlflow_uri else None
    watching = {"should_stop": curve_logger(run)} if run is not None else {}
    result = run_trial(config, {}, trial_dir=args.out, evaluate_test=bool(args.test), log=log, **watching)
    if run is not None:
        close_mlflow_run(run, result, Path(args.out))
    if not result.ok:
        print(f"distillation failed ({result.failure_kind}): {result.failure_reason}")
        return 1
    keys = ("exact", "f1", "HasAns_f1", "NoAns_f1", "na_threshold", "num_parameters", "latency_ms",
            "train_seconds", "examples_per_second")
    print(json.dumps({key: result.metrics[key] for key in keys if key in result.metrics}, indent=1))
    if result.test_metrics:
        print("test:", json.dumps({k: result.test_metrics[k] for k in ("exact", "f1")}))
    print(f"results: {args.out}/{METRICS_FILE}, curve: {args.out}/{CURVE_FILE}, model: {args.out}/{CHECKPOINT_DIR}")
    return 0


# ---------------------------------------------------------------- --mlflow-uri
MLFLOW_EXPERIMENT = "distill"
MLFLOW_FILES = ("metrics.json", "curve.json", "failure.json", "stopped.json")  # distill.trial_files' outcome files


def open_mlflow_run(args: argparse.Namespace, config):
    """The run of this distillation in the MLflow experiment ``distill``, named after ``--out``:
    the parameters it runs with and its config (``config.json``, secrets redacted). A URI MLflow
    cannot use is one line (exit 2) before any training."""
    from paretodistill.distill.run import effective_parameters
    from paretodistill.redaction import redact_config
    from paretodistill.tracking import MlflowStore

    store = MlflowStore(args.mlflow_uri, MLFLOW_EXPERIMENT, setting="--mlflow-uri", log=print)
    tags = {"command": "distill", **{name: value for name, value in (("preset", args.preset), ("recipe", args.recipe)) if value}}
    run = store.start_run(Path(args.out).name, tags)
    if run is not None:
        run.log_params(effective_parameters(config))
        run.log_json(redact_config(config.to_dict()), "config.json")
    return run


def curve_logger(run):
    """``should_stop`` that stops nothing: it logs each evaluation point to ``run`` as training reaches it."""
    def log_point(point) -> None:
        run.log_curve_point({**point.metrics, "step": point.step})

    return log_point


def close_mlflow_run(run, result, out: Path) -> None:
    """The outcome: metrics, test metrics (``test_``), the last curve point, the trial folder's
    outcome files; FINISHED, KILLED (interrupted) or FAILED with the failure's kind and reason."""
    run.log_outcome(result.metrics, result.test_metrics, result.curve)
    for name in MLFLOW_FILES:
        if (out / name).is_file():
            run.log_file(out / name)
    if not result.ok:
        run.set_tags({"failure_kind": result.failure_kind, "failure_reason": result.failure_reason})
    run.finish("FINISHED" if result.ok else "KILLED" if result.failure_kind == "interrupted" else "FAILED")


def register(commands) -> None:
    """Add the ``distill`` subcommand to the ``paretodistill`` parser."""
    parser = commands.add_parser("distill", help="distil one student from a QA teacher (a single trial)")
    parser.add_argument("--teacher", help="teacher QA checkpoint folder (optional with --preset smoke)")
    add_part_flags(parser, test=False)
    parser.add_argument("--out", required=True, help="trial folder: checkpoint/, curve.json, metrics.json")
    parser.add_argument("--config", help="TOML config file")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="dotted override, e.g. student.num_layers=3 (repeatable)")
    parser.add_argument("--preset", choices=("smoke",), help="smoke: the whole run in seconds on a tiny teacher")
    parser.add_argument("--recipe", choices=("sigopt-baseline", "sigopt"),
                        help="sigopt-baseline: the 2020 SigOpt baseline student and its training settings, seeded from "
                             "the teacher; sigopt: the same settings on the whole DistilBERT of student.init_from")
    parser.add_argument("--test", action="append", nargs="?", const="", metavar="FILE",
                        help="also score the test part (at the validation threshold); with FILE, your own test file "
                             "IS the test part (repeatable; sets data.test_files)")
    parser.add_argument("--cache-dir", help="feature/teacher-logit cache (default $PARETODISTILL_CACHE or ~/.cache/paretodistill)")
    parser.add_argument("--mlflow-uri", help="also log the run to MLflow (experiment 'distill'): the curve as it trains, the "
                        "metrics, config.json and the outcome files; e.g. runs/mlflow (a folder: a sqlite database in "
                        "it), sqlite:///runs/mlflow.db or http://host:5000; needs paretodistill[mlflow]")
    add_device(parser, from_config=True)
    parser.set_defaults(run=cmd_distill)
