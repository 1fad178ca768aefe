"""The ``analyze`` and ``pretrain-distill`` subcommands; the recipes (and torch) are imported only
when they run, so that ``paretodistill --help`` stays instant."""

from __future__ import annotations

import argparse
import json

from paretodistill.options import add_device, add_eval_batch_size


def cmd_analyze(args: argparse.Namespace) -> int:
    from paretodistill.recipes.analyze import analyze

    analysis = analyze(
        args.data, model_dir=args.model, predictions_file=args.predictions, part=args.part, split_file=args.split,
        threshold=args.threshold, out_dir=args.out, batch_size=args.eval_batch_size, cache_dir=args.cache_dir,
        examples_per_category=args.examples, device=args.device,
    )
    counts = analysis["counts"]
    summary = {k: counts[k] for k in ("questions", "correct", "errors", *analysis["categories"])}
    print(json.dumps(summary, indent=2))
    if args.out:
        print(f"analysis written to {args.out}/analysis.json and {args.out}/analysis.html")
    return 0


# beside a clone of this repository: the SQuAD 1.1 articles, none of which is in the SQuAD 2.0 dev set
DEFAULT_TEXT_FILES = ("../shared/data/squad1/train-v1.1.explorer-rebuilt.json.gz",
                      "../shared/data/squad1/dev-v1.1-extra13.explorer-rebuilt.json.gz")


def cmd_pretrain_distill(args: argparse.Namespace) -> int:
    from paretodistill.config import load_config
    from paretodistill.recipes.pretrain_distill import pretrain_distill

    flags = [f"{key}={json.dumps(value)}" for key, value in (
        ("teacher.path", args.teacher), ("data.split_file", args.data), ("data.validation_files", args.validation),
        ("data.test_files", args.test), ("cache_dir", args.cache_dir), ("pretrain.text_files", args.text),
        ("device", args.device),
    ) if value]
    config = load_config(args.config, flags + list(args.set or ()))
    if not config.pretrain.text_files:
        config = load_config(None, [f"pretrain.text_files={json.dumps(list(DEFAULT_TEXT_FILES))}"], base=config.to_dict())
    if not config.teacher.path:
        from paretodistill.errors import ConfigError

        raise ConfigError("no teacher: pass --teacher DIR (a QA checkpoint)")
    record = pretrain_distill(config, args.out, log=lambda message: print(message, flush=True))
    print(json.dumps({"student_heldout": record["student_heldout"], "teacher_head": record["teacher_head"]["heldout_after"],
                      "pretrain_seconds": record["pretrain_seconds"]}, indent=1))
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from paretodistill.recipes.convert import convert_checkpoint

    record = convert_checkpoint(args.model, args.family, args.out, log=lambda message: print(message, flush=True))
    print(json.dumps(record, indent=1))
    return 0


def register(commands) -> None:
    analyze = commands.add_parser(
        "analyze", help="error analysis of a student's answers (four error categories)",
        epilog="example: paretodistill analyze --model runs/search-cpu/trials/regular-0/checkpoint "
               "--data ../shared/data/squad2/dev-v2.0.json --part test --out runs/search-cpu/analysis/regular-0",
    )
    source = analyze.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="a QA checkpoint folder to run")
    source.add_argument("--predictions", help="or an existing predictions.json (question id -> answer, \"\" = none)")
    analyze.add_argument("--data", required=True, help="the SQuAD file the questions come from")
    analyze.add_argument("--part", choices=("all", "train", "validation", "test"), default="all",
                         help="which part of the article split to analyse (default: all, the whole file)")
    analyze.add_argument("--split", help="split.json (default: the model folder's split.json)")
    analyze.add_argument("--threshold", type=float, help="no-answer threshold (default: the model's metrics.json na_threshold)")
    analyze.add_argument("--out", help="folder for analysis.json, analysis.html and the predictions (default: print only)")
    analyze.add_argument("--examples", type=int, default=6, help="examples shown per category (default: 6)")
    add_eval_batch_size(analyze, 64)
    add_device(analyze)
    analyze.add_argument("--cache-dir", help="feature cache (default: $PARETODISTILL_CACHE, else ~/.cache/paretodistill)")
    analyze.set_defaults(run=cmd_analyze)

    convert = commands.add_parser(
        "convert", help="rewrite a pretrained encoder as another family's (e.g. the packaged MiniLM as a DistilBERT)",
    )  # its example, with the distill run that starts from it, is in cli.EXAMPLES
    convert.add_argument("--model", required=True, help="a checkpoint folder, a hub id, or minilm (the packaged MiniLM)")
    convert.add_argument("--family", required=True, choices=("bert", "distilbert", "roberta", "electra"),
                         help="the family to write it as")
    convert.add_argument("--out", required=True, help="the folder: a base model of that family with the tokenizer")
    convert.set_defaults(run=cmd_convert)

    pretrain = commands.add_parser(
        "pretrain-distill", help="task-agnostic distillation of a student on unlabeled text (DistilBERT's losses)",
    )  # its example, with the distill run that starts from it, is in cli.EXAMPLES
    pretrain.add_argument("--teacher", help="teacher QA checkpoint folder (the one `distill` will use)")
    pretrain.add_argument("--data", help="the SQuAD file evaluation is split from: its articles are left out of the text")
    pretrain.add_argument("--validation", action="append", metavar="FILE",
                          help="your own validation file (repeatable): its articles are left out of the text too")
    pretrain.add_argument("--test", action="append", metavar="FILE",
                          help="your own test file (repeatable): its articles are left out of the text too")
    pretrain.add_argument("--out", required=True, help="the student folder (resumes when re-run)")
    pretrain.add_argument("--text", action="append",
                          help="SQuAD-format file whose paragraphs are the text (repeatable; default: the SQuAD 1.1 files "
                               "in ../shared/data/squad1)")
    pretrain.add_argument("--config", help="TOML config file: the same one `distill` will use ([student], [pretrain])")
    pretrain.add_argument("--set", action="append", metavar="KEY=VALUE",
                          help="dotted override, e.g. student.num_layers=3 or pretrain.training.max_steps=500 (repeatable)")
    pretrain.add_argument("--cache-dir", help="default $PARETODISTILL_CACHE or ~/.cache/paretodistill")
    add_device(pretrain, from_config=True)
    pretrain.set_defaults(run=cmd_pretrain_distill)
