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


def cmd_distill(args: argparse.Namespace) -> int:
    from paretodistill.config import load_config, with_parameters
    from paretodistill.data.layout import check_layout
    from paretodistill.distill.engine import data_fingerprints
    from paretodistill.distill.presets import PRESETS, recipe_parameters
    from paretodistill.distill.run import check_seed_checkpoint, run_trial
    from paretodistill.distill.trial_files import CHECKPOINT_DIR, CURVE_FILE, METRICS_FILE
    from paretodistill.errors import ConfigError
    from paretodistill.models.student import resolve_teacher

    base: dict = {}
    if args.preset:
        base = PRESETS[args.preset](args.data, args.teacher, args.cache_dir)
    # The flags go in as the first overrides (JSON strings are TOML strings): after the config
    # file, before --set.
    flags = [f"{key}={json.dumps(value)}" for key, value in (
        ("teacher.path", args.teacher), *part_overrides(args), ("cache_dir", args.cache_dir)
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
    check_layout(config.data)  # no data, or no part to test on: one line
    data_fingerprints(config.data)  # a malformed file: one line, exit 2, before any model is loaded

    def log(message: str) -> None:
        print(message, flush=True)

    result = run_trial(config, {}, trial_dir=args.out, evaluate_test=bool(args.test), log=log)
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
    parser.set_defaults(run=cmd_distill)
