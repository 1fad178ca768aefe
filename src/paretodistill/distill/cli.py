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

from paretodistill.options import add_device


def cmd_distill(args: argparse.Namespace) -> int:
    from paretodistill.config import load_config, with_parameters
    from paretodistill.data.squad import load_squad
    from paretodistill.distill.presets import PRESETS, recipe_parameters
    from paretodistill.distill.run import check_seed_checkpoint, run_trial
    from paretodistill.distill.trial_files import CHECKPOINT_DIR, CURVE_FILE, METRICS_FILE
    from paretodistill.errors import ConfigError
    from paretodistill.models.student import resolve_teacher

    base: dict = {}
    if args.preset:
        if not args.data:
            raise ConfigError(f"--preset {args.preset} needs --data FILE (a SQuAD 2.0 file)")
        base = PRESETS[args.preset](args.data, args.teacher, args.cache_dir)
    # The flags go in as the first overrides (JSON strings are TOML strings): after the config
    # file, before --set.
    flags = [f"{key}={json.dumps(value)}" for key, value in (
        ("teacher.path", args.teacher), ("data.split_file", args.data), ("cache_dir", args.cache_dir),
        ("device", args.device),
    ) if value]
    config = load_config(args.config, flags, base=base)
    if not config.teacher.path:
        raise ConfigError("no teacher: pass --teacher DIR (a QA checkpoint), or --preset smoke for a tiny one")
    resolve_teacher(config.teacher.path)  # a missing hub id or an unsupported family: one line, exit 2
    if args.set and args.recipe:  # the recipe may read a setting (student.init_from) that --set gives
        config = load_config(None, args.set, base=config.to_dict())
    if args.recipe:
        config = with_parameters(config, recipe_parameters(args.recipe, config))
    if args.set:
        config = load_config(None, args.set, base=config.to_dict())
    check_seed_checkpoint(config, resolve_teacher(config.teacher.path))  # a seed whose tokenizer differs: exit 2
    if not config.data.split_file:
        raise ConfigError("no data: pass --data FILE (a SQuAD 2.0 file to split by article)")
    for data_file in (config.data.split_file, *config.data.extra_train_files):
        load_squad(data_file)  # a malformed file: one line, exit 2, before any model is loaded

    def log(message: str) -> None:
        print(message, flush=True)

    result = run_trial(config, {}, trial_dir=args.out, evaluate_test=args.test, log=log)
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


def register(commands) -> None:
    """Add the ``distill`` subcommand to the ``paretodistill`` parser."""
    parser = commands.add_parser("distill", help="distil one student from a QA teacher (a single trial)")
    parser.add_argument("--teacher", help="teacher QA checkpoint folder (optional with --preset smoke)")
    parser.add_argument("--data", help="SQuAD 2.0 file to split by article (e.g. dev-v2.0.json)")
    parser.add_argument("--out", required=True, help="trial folder: checkpoint/, curve.json, metrics.json")
    parser.add_argument("--config", help="TOML config file")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="dotted override, e.g. student.num_layers=3 (repeatable)")
    parser.add_argument("--preset", choices=("smoke",), help="smoke: the whole run in seconds on a tiny teacher")
    parser.add_argument("--recipe", choices=("sigopt-baseline", "sigopt"),
                        help="sigopt-baseline: the 2020 SigOpt baseline student and its training settings, seeded from "
                             "the teacher; sigopt: the same settings on the whole DistilBERT of student.init_from")
    parser.add_argument("--test", action="store_true", help="also score the test articles (at the validation threshold)")
    parser.add_argument("--cache-dir", help="feature/teacher-logit cache (default $PARETODISTILL_CACHE or ~/.cache/paretodistill)")
    add_device(parser, from_config=True)
    parser.set_defaults(run=cmd_distill)
