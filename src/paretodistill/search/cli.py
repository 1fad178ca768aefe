"""``paretodistill search`` and ``paretodistill status``.

Heavy imports (Optuna, torch, Ray) happen inside the command functions so that
``paretodistill --help`` stays instant.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from paretodistill.errors import INTERRUPTED, OK, TERMINATED, ConfigError, RunFailed
from paretodistill.options import add_device, add_study, study_folder
from paretodistill.search.presets import preset_values


def _log(message: str) -> None:
    print(message, flush=True)


def search_config(config=None, *, preset: str | None = None, data: str | None = None, parts=(), teacher: str | None = None,
                  cache_dir: str | None = None, mlflow_uri: str | None = None, warm_start: str | None = None,
                  device: str | None = None, overrides=()):
    """The search's settings, in the command's layers: the preset, the config (a TOML file, or a
    settings object, which holds every setting and so takes no preset), the data (``parts``: the
    other part flags' ``(key, value)`` pairs) / teacher / cache /
    MLflow / warm-start / device flags, then the overrides (``--set``). ``paretodistill search`` and ``paretodistill.search``
    both build them here, so a search started from Python is the command's search."""
    from paretodistill.config import ExperimentConfig, load_config

    if config is None and preset is None:
        raise ConfigError("search: give --config FILE, --preset NAME, or both")
    if isinstance(config, ExperimentConfig):
        if preset:
            raise ConfigError(f"preset {preset!r} with a settings object: the object holds every setting already; "
                              "give the preset with a TOML file, or no preset")
        config, base = None, config.to_dict()
    else:
        base = preset_values(preset, data, teacher, cache_dir) if preset else None
    flags = [f"{key}={json.dumps(value)}" for key, value in (
        ("teacher.path", teacher), ("data.split_file", data), *parts, ("cache_dir", cache_dir),
        ("search.mlflow_uri", mlflow_uri),
        ("search.warm_start", warm_start), ("device", device),
    ) if value]  # after the config file, before --set (as paretodistill distill does)
    return load_config(config, [*flags, *overrides], base=base)


def check_students_found(pareto: dict, study: str | Path) -> None:
    """Raise ``RunFailed`` when every flash trial failed: the search ran, and found no student."""
    flash = (pareto.get("counts") or {}).get("flash") or {}
    if flash.get("finished") and not flash.get("complete"):
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted((flash.get("failed_kinds") or {}).items()))
        raise RunFailed(f"every flash trial failed ({kinds}); no student was found. See paretodistill status --study {study}",
                        "every_flash_trial")


def cmd_search(args: argparse.Namespace) -> int:
    from paretodistill.distill.cli import part_overrides
    from paretodistill.search.runner import sigterm_as_interrupt
    from paretodistill.search.stages import run_search

    study = None if args.plan and args.study is None else study_folder(args)  # --plan: the study is optional
    config = search_config(args.config, preset=args.preset, data=args.data, parts=part_overrides(args)[1:],
                           teacher=args.teacher, cache_dir=args.cache_dir, mlflow_uri=args.mlflow_uri,
                           warm_start=args.warm_start, device=args.device, overrides=args.set or ())
    if args.plan:
        from paretodistill.search.projection import plan_projection

        plan_projection(config, study, workers=args.workers, backend=args.backend, n_trials=args.n_trials,
                        steps=args.plan_steps, log=_log)
        return OK
    with sigterm_as_interrupt() as termination:
        try:  # data, teacher, storage and the study folder are checked inside, before the first trial
            pareto = run_search(config, study, workers=args.workers, backend=args.backend, address=args.address,
                                n_trials=args.n_trials, log=_log)
        except KeyboardInterrupt:
            _log(f"stopped{' by SIGTERM' if termination.received else ''}; the running trials are marked "
                 "interrupted. Run the same command again to continue.")
            return TERMINATED if termination.received else INTERRUPTED
    check_students_found(pareto, study)  # else: one line, exit 1
    return OK


def cmd_status(args: argparse.Namespace) -> int:
    from paretodistill.search.status import study_status

    print(study_status(study_folder(args), args.storage))
    return OK


def register(commands) -> None:
    from paretodistill.distill.cli import add_part_flags

    search = commands.add_parser(
        "search", help="search the accuracy / size / latency frontier of distilled students (flash, then regular)",
        description="Run (or continue) a search: flash trials on a short budget, the best again on the full budget, "
                    "a baseline, then STUDY/pareto.json.",
        epilog="example: paretodistill search --config configs/search-cpu.toml --study runs/search-cpu --workers 2",
    )
    search.add_argument("--config", help="experiment config (TOML) with a [search] section")
    add_study(search, "the study folder: study.db, trials/, pareto.json (required, but with --plan). One search at a time; one "
                      "started with other settings is refused (use a new folder for those)")
    search.add_argument("--workers", type=int, help="trials running at once (default: search.workers or 1)")
    search.add_argument("--backend", choices=("local", "ray", "inline"), help="where trials run (default: local processes)")
    search.add_argument("--address", help="Ray cluster address (with --backend ray; default: a local Ray)")
    search.add_argument("--preset", help="a named whole-search preset, e.g. smoke (a tiny end-to-end search; default: none)")
    add_part_flags(search)
    search.add_argument("--teacher", help="teacher QA checkpoint (sets teacher.path; --preset smoke builds a tiny one)")
    search.add_argument("--cache-dir", help="feature / teacher-logit cache (sets cache_dir; "
                                            "default: $PARETODISTILL_CACHE, else ~/.cache/paretodistill)")
    search.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="config override, e.g. search.flash.n_trials=40 (repeatable; default: none)")
    search.add_argument("--mlflow-uri", help="also log the search and every trial to MLflow here (sets search.mlflow_uri), "
                        "live: e.g. runs/mlflow (a folder: a sqlite database in it), sqlite:///runs/mlflow.db or http://host:5000; "
                        "needs paretodistill[mlflow]")
    search.add_argument("--warm-start", metavar="OLD_STUDY", help="an earlier study folder: its frontier and best trials "
                        "that fit this space are the first flash trials (sets search.warm_start; default: none)")
    add_device(search, from_config=True)
    search.add_argument("--n-trials", type=int, help="flash trials to finish in total (default: search.flash.n_trials)")
    search.add_argument("--plan", action="store_true", help="run no trial: time a few training steps of the baseline "
                        "student on each device here, print the projected trial times, wall clock and device-hours, "
                        "and write them to STUDY/projection.json when --study is given")
    search.add_argument("--plan-steps", type=int, default=5, metavar="N",
                        help="training steps --plan times, after 2 warm-up steps (default: 5)")
    search.set_defaults(run=cmd_search)

    status = commands.add_parser("status", help="where a search stands: trials per stage, failures, frontier",
                                 epilog="example: paretodistill status --study runs/search-cpu")
    add_study(status, "the --study folder of a search (it holds search.json)", positional_alias=True)
    status.add_argument("--storage", help="the database URL of a search on a shared database, with its password "
                        "(search.json records it without; default: the folder's study.db, else search.json's URL)")
    status.set_defaults(run=cmd_status)
