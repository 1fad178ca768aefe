"""``paretodistill search`` and ``paretodistill status``.

Heavy imports (Optuna, torch, Ray) happen inside the command functions so that
``paretodistill --help`` stays instant.
"""

from __future__ import annotations

import argparse
import json
import sys

from paretodistill.errors import FAILED, INTERRUPTED, OK, TERMINATED
from paretodistill.options import add_device, add_study, study_folder
from paretodistill.search.presets import preset_values


def _log(message: str) -> None:
    print(message, flush=True)


def cmd_search(args: argparse.Namespace) -> int:
    from paretodistill.config import load_config
    from paretodistill.errors import ConfigError
    from paretodistill.search.runner import sigterm_as_interrupt
    from paretodistill.search.stages import run_search

    if args.config is None and args.preset is None:
        raise ConfigError("search: give --config FILE, --preset NAME, or both")
    study = study_folder(args)
    base = preset_values(args.preset, args.data, args.teacher, args.cache_dir) if args.preset else None
    flags = [f"{key}={json.dumps(value)}" for key, value in (
        ("teacher.path", args.teacher), ("data.split_file", args.data), ("cache_dir", args.cache_dir),
        ("search.mlflow_uri", args.mlflow_uri), ("device", args.device),
    ) if value]  # after the config file, before --set (as paretodistill distill does)
    config = load_config(args.config, [*flags, *(args.set or ())], base=base)
    with sigterm_as_interrupt() as termination:
        try:  # data, teacher, storage and the study folder are checked inside, before the first trial
            pareto = run_search(config, study, workers=args.workers, backend=args.backend, address=args.address,
                                n_trials=args.n_trials, log=_log)
        except KeyboardInterrupt:
            _log(f"stopped{' by SIGTERM' if termination.received else ''}; the running trials are marked "
                 "interrupted. Run the same command again to continue.")
            return TERMINATED if termination.received else INTERRUPTED
    flash = (pareto.get("counts") or {}).get("flash") or {}
    if flash.get("finished") and not flash.get("complete"):
        kinds = ", ".join(f"{kind} {n}" for kind, n in sorted((flash.get("failed_kinds") or {}).items()))
        print(f"paretodistill search: error: every flash trial failed ({kinds}); no student was found. "
              f"See paretodistill status --study {study}", file=sys.stderr)
        return FAILED
    return OK


def cmd_status(args: argparse.Namespace) -> int:
    from paretodistill.search.status import study_status

    print(study_status(study_folder(args), args.storage))
    return OK


def register(commands) -> None:
    search = commands.add_parser(
        "search", help="search the accuracy / size / latency frontier of distilled students (flash, then regular)",
        description="Run (or continue) a search: flash trials on a short budget, the best again on the full budget, "
                    "a baseline, then STUDY/pareto.json.",
        epilog="example: paretodistill search --config configs/search-cpu.toml --study runs/search-cpu --workers 2",
    )
    search.add_argument("--config", help="experiment config (TOML) with a [search] section")
    add_study(search, "the study folder: study.db, trials/, pareto.json (required). One search at a time; one "
                      "started with other settings is refused (use a new folder for those)")
    search.add_argument("--workers", type=int, help="trials running at once (default: search.workers or 1)")
    search.add_argument("--backend", choices=("local", "ray", "inline"), help="where trials run (default: local processes)")
    search.add_argument("--address", help="Ray cluster address (with --backend ray; default: a local Ray)")
    search.add_argument("--preset", help="a named whole-search preset, e.g. smoke (a tiny end-to-end search; default: none)")
    search.add_argument("--data", help="SQuAD 2.0 file to split by article (sets data.split_file; needed by --preset smoke)")
    search.add_argument("--teacher", help="teacher QA checkpoint (sets teacher.path; --preset smoke builds a tiny one)")
    search.add_argument("--cache-dir", help="feature / teacher-logit cache (sets cache_dir; "
                                            "default: $PARETODISTILL_CACHE, else ~/.cache/paretodistill)")
    search.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="config override, e.g. search.flash.n_trials=40 (repeatable; default: none)")
    search.add_argument("--mlflow-uri", help="also log every trial to MLflow here (sets search.mlflow_uri), "
                        "e.g. file:./mlruns or http://host:5000; needs paretodistill[mlflow]")
    add_device(search, from_config=True)
    search.add_argument("--n-trials", type=int, help="flash trials to finish in total (default: search.flash.n_trials)")
    search.set_defaults(run=cmd_search)

    status = commands.add_parser("status", help="where a search stands: trials per stage, failures, frontier",
                                 epilog="example: paretodistill status --study runs/search-cpu")
    add_study(status, "the --study folder of a search (it holds search.json)", positional_alias=True)
    status.add_argument("--storage", help="the database URL of a search on a shared database, with its password "
                        "(search.json records it without; default: the folder's study.db, else search.json's URL)")
    status.set_defaults(run=cmd_status)
