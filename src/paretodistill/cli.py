"""The ``paretodistill`` command line: one thin function per subcommand.

Exit status (``paretodistill.errors``): 0 done; 2 the input is wrong (``ParetodistillError``: one
line naming it); 1 the environment failed (``EnvironmentFailure`` or an ``OSError``: a full disk, an
unreadable file; one line), a run that found no student (``RunFailed``, of which a search stage
whose every trial failed for one reason is ``StageFailure``: one line) or a bug (its
traceback); 130 interrupted (Ctrl-C); 143 a search stopped by
SIGTERM. ``PARETODISTILL_TRACEBACK=1`` shows the traceback of the one-line errors too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from paretodistill.errors import BAD_INPUT, FAILED, EnvironmentFailure, ParetodistillError, RunFailed
from paretodistill.options import add_device, add_eval_batch_size, add_train_batch_size
from paretodistill.progress import quiet_libraries

DEFAULT_DEV_FILE = Path("..") / "shared" / "data" / "squad2" / "dev-v2.0.json"  # beside a clone of this repo


def _log(message: str) -> None:
    print(message, flush=True)


# ---------------------------------------------------------------- score
def cmd_score(args: argparse.Namespace) -> int:
    from paretodistill.evaluation.squad_metric import evaluate_files
    from paretodistill.outputs import SCORES, check_output

    if args.out_file:
        check_output(args.out_file, SCORES, {"the data file": args.data, "the predictions file": args.predictions,
                                             "the no-answer probability file": args.na_prob_file}, flag="--out-file")
    result = evaluate_files(args.data, args.predictions, args.na_prob_file, args.na_prob_thresh)
    if result.missing_ids:
        shown = ", ".join(result.missing_ids[:10])
        print(
            f"WARNING: {len(result.missing_ids)} question(s) have no prediction and are left out of the "
            f"totals, as the official script does: {shown}{' ...' if len(result.missing_ids) > 10 else ''}",
            file=sys.stderr,
        )
    if result.extra_ids:
        print(f"WARNING: {len(result.extra_ids)} prediction(s) for question ids not in {args.data}", file=sys.stderr)
    text = json.dumps(result.metrics, indent=2)
    if args.out_file:
        Path(args.out_file).write_text(text)
    print(text)
    return 1 if (args.strict and result.missing_ids) else 0


# ---------------------------------------------------------------- teacher
def cmd_teacher(args: argparse.Namespace) -> int:
    from paretodistill.config import TrainSettings
    from paretodistill.recipes.teacher import TeacherRecipe, fine_tune_teacher

    settings = TeacherRecipe(
        base=args.base,
        data=_data_settings(args),
        training=TrainSettings(
            learning_rate=args.lr,
            weight_decay=args.weight_decay,
            warmup_steps=args.warmup_steps,
            train_batch_size=args.batch_size,
            eval_batch_size=args.eval_batch_size,
            epochs=args.epochs,
            max_steps=args.max_steps,
            seed=args.seed,
            bf16=not args.no_bf16,
            eval_every_steps=args.eval_every_steps,
            log_every_steps=args.log_every_steps,
        ),
        device=args.device,
        threads=args.threads,
        no_answer_weight=TeacherRecipe.no_answer_weight if args.no_answer_weight is None else args.no_answer_weight,
    )
    fine_tune_teacher(settings, args.out, args.cache_dir, _log)
    return 0


def _data_settings(args: argparse.Namespace):
    from paretodistill.config import DataSettings, FeatureSettings

    return DataSettings(
        split_file=args.data or "",
        extra_train_files=tuple(args.train or ()),
        validation_files=tuple(args.validation or ()),
        test_files=tuple(args.test or ()),
        split_seed=args.split_seed,
        use_split_train=not args.no_split_train,
        split_train_repeats=args.split_train_repeats,
        max_extra_articles=args.max_extra_articles,
        max_eval_articles=args.max_eval_articles,
        max_train_questions=args.max_train_questions,
        synthetic_unanswerable_fraction=args.synthetic_unanswerable_fraction,
        hard_unanswerable_fraction=args.hard_unanswerable_fraction,
        features=FeatureSettings(args.max_seq_length, args.doc_stride, args.max_query_length),
    )


# ---------------------------------------------------------------- evaluate
def cmd_evaluate(args: argparse.Namespace) -> int:
    from paretodistill.recipes.evaluate import evaluate_checkpoint

    metrics = evaluate_checkpoint(
        model_dir=args.model,
        data_file=args.data,
        part=args.part,
        split_file=args.split,
        threshold=args.threshold,
        out_dir=args.out,
        batch_size=args.eval_batch_size,
        cache_dir=args.cache_dir,
        features=_feature_settings(args),
        log=_log,
        trust_remote_code=args.trust_remote_code,
        device=args.device,
    )
    print(json.dumps(metrics, indent=2))
    return 0


def _feature_settings(args: argparse.Namespace):
    """Lengths given on the command line, or None to use the ones recorded with the checkpoint."""
    from paretodistill.config import FeatureSettings

    given = [args.max_seq_length, args.doc_stride, args.max_query_length]
    if all(value is None for value in given):
        return None
    defaults = FeatureSettings()
    return FeatureSettings(*(d if v is None else v for v, d in zip(given, (defaults.max_seq_length,
                                                                        defaults.doc_stride, defaults.max_query_length))))


# ---------------------------------------------------------------- quickstart
def cmd_quickstart(args: argparse.Namespace) -> int:
    from paretodistill.recipes.quickstart import run_quickstart

    overrides = [*([f"device={json.dumps(args.device)}"] if args.device else []), *(args.set or ())]
    run_quickstart(args.data, args.out, teacher=args.teacher, overrides=overrides, workers=args.workers,
                   cache_dir=args.cache_dir, train_teacher=args.train_teacher, smoke=args.smoke, log=_log)
    return 0


# ---------------------------------------------------------------- parser
def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    from paretodistill.config import DataSettings, FeatureSettings
    from paretodistill.distill.cli import add_part_flags

    add_part_flags(parser)  # --data, --train, --validation, --test
    parser.add_argument("--split-seed", type=int, default=DataSettings.split_seed, help="seed of the article split (train/validation/test)")
    parser.add_argument("--no-split-train", action="store_true", help="do not train on the split's train articles")
    parser.add_argument("--split-train-repeats", type=int, default=DataSettings.split_train_repeats,
                        help="repeat the split's train articles")
    parser.add_argument("--max-extra-articles", type=int, help="a seeded sample of the extra files' articles")
    parser.add_argument("--max-eval-articles", type=int, help="quick runs: first N validation/test articles")
    parser.add_argument("--max-train-questions", type=int, help="quick runs: first N training questions")
    parser.add_argument("--synthetic-unanswerable-fraction", type=float, default=DataSettings.synthetic_unanswerable_fraction,
                        help="extra files: ask this share of answerable questions of another paragraph too")
    parser.add_argument("--hard-unanswerable-fraction", type=float, default=DataSettings.hard_unanswerable_fraction,
                        help="extra files: edit this share of answerable questions (number, name, negation, antonym) "
                             "so their own paragraph no longer answers them")
    parser.add_argument("--max-seq-length", type=int, default=FeatureSettings.max_seq_length, help="tokens per window (question + context)")
    parser.add_argument("--doc-stride", type=int, default=FeatureSettings.doc_stride, help="overlap between a long context's windows")
    parser.add_argument("--max-query-length", type=int, default=FeatureSettings.max_query_length, help="question tokens kept")
    parser.add_argument("--cache-dir", help="feature cache (default $PARETODISTILL_CACHE or ~/.cache/paretodistill)")


DESCRIPTION = """Distil extractive question-answering models (SQuAD 2.0) into smaller students and map their
accuracy / size / latency frontier.

First run: paretodistill quickstart --smoke   (the whole main job on a tiny slice, a few minutes)
Then:      paretodistill quickstart           (the main job, ~10-20 minutes on 2 CPU cores)
Every command: paretodistill COMMAND --help (its options, defaults and an example)."""


def build_parser() -> argparse.ArgumentParser:
    """The commands in the order a user meets them: run, inspect, ship, score, then the tools."""
    from paretodistill import __version__
    from paretodistill.distill import cli as distill_cli
    from paretodistill.export import cli as export_cli
    from paretodistill.recipes import cli as recipes_cli
    from paretodistill.report import cli as report_cli
    from paretodistill.search import cli as search_cli

    parser = argparse.ArgumentParser(prog="paretodistill", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"paretodistill {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", title="commands (in the order a run needs them)")
    # Each subsystem's register(commands) imports its heavy dependencies only inside the command
    # function, so `paretodistill --help` stays fast.
    for register in (_add_quickstart, _add_teacher, distill_cli.register, search_cli.register, report_cli.register,
                     export_cli.register, _add_evaluate, _add_score, recipes_cli.register):
        register(commands)
    _document(commands)
    return parser


def _add_score(commands: argparse._SubParsersAction) -> None:
    score = commands.add_parser("score", help="official SQuAD 2.0 (and 1.1) scoring of a predictions file")
    score.add_argument("data", help="the SQuAD 1.1 or 2.0 file the predictions answer")
    score.add_argument("predictions", help="JSON {question id: answer text}; \"\" means no answer")
    score.add_argument("--na-prob-file", "-n", help="JSON {question id: probability of no answer}, as the official script takes")
    score.add_argument("--na-prob-thresh", "-t", type=float, default=1.0,
                       help="answers whose no-answer probability is above this count as no answer")
    score.add_argument("--out-file", "-o", help="also write the metrics JSON here (a new file or an earlier metrics "
                       "file; never an input)")
    score.add_argument("--strict", action="store_true", help="exit 1 when a question has no prediction")
    score.set_defaults(run=cmd_score)


def _add_teacher(commands: argparse._SubParsersAction) -> None:
    from paretodistill.config import TEACHER_TRAINING

    teacher = commands.add_parser("teacher", help="fine-tune a QA teacher from a pretrained encoder")
    teacher.add_argument("--base", default="minilm", help="encoder folder or hub id (default: packaged MiniLM)")
    teacher.add_argument("--out", required=True, help="checkpoint folder (resumes if it holds an unfinished run)")
    _add_data_arguments(teacher)
    teacher.add_argument("--epochs", type=float, default=TEACHER_TRAINING.epochs, help="passes over the training windows")
    teacher.add_argument("--max-steps", type=int, help="stop after this many optimizer steps (overrides --epochs)")
    teacher.add_argument("--lr", type=float, default=TEACHER_TRAINING.learning_rate, help="AdamW peak learning rate (linear decay)")
    teacher.add_argument("--weight-decay", type=float, default=TEACHER_TRAINING.weight_decay, help="AdamW weight decay")
    teacher.add_argument("--warmup-steps", type=int, default=TEACHER_TRAINING.warmup_steps, help="linear warm-up steps")
    add_train_batch_size(teacher, TEACHER_TRAINING.train_batch_size)
    add_eval_batch_size(teacher, TEACHER_TRAINING.eval_batch_size)
    teacher.add_argument("--eval-every-steps", type=int, help="a validation curve point every N steps (default: once per epoch)")
    teacher.add_argument("--log-every-steps", type=int, default=TEACHER_TRAINING.log_every_steps,
                         help="a progress line (loss, speed, ETA) every N steps")
    teacher.add_argument("--seed", type=int, default=TEACHER_TRAINING.seed,
                         help="training seed (initialization of the QA head, batch order)")
    teacher.add_argument("--no-bf16", action="store_true", help="train in float32 even where bf16 is native")
    add_device(teacher)
    teacher.add_argument("--threads", type=int, help="CPU threads (default: PyTorch's, all cores)")
    teacher.add_argument("--no-answer-weight", type=float,
                         help="weight of the windows whose target is \"no answer\", apart from the rest (default 1: none)")
    teacher.set_defaults(run=cmd_teacher)


def _add_evaluate(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser("evaluate", help="score any Hugging Face QA checkpoint on a file or split part")
    evaluate.add_argument("--model", required=True, help="a QA checkpoint folder (or hub id in the local cache)")
    evaluate.add_argument("--data", required=True, help="SQuAD file")
    evaluate.add_argument("--part", choices=("all", "train", "validation", "test"), default="all",
                          help="one part of the article split (needs the model's split.json or --split)")
    evaluate.add_argument("--split", help="split.json (default: the model folder's split.json, if any)")
    evaluate.add_argument("--threshold", type=float,
                          help="no-answer threshold (default: the model's metrics.json threshold, else 0)")
    evaluate.add_argument("--out", help="folder for predictions, no-answer scores and metrics (a new folder or an "
                          "earlier evaluation's; never the model's or a study's)")
    add_eval_batch_size(evaluate, 64)
    add_device(evaluate)
    evaluate.add_argument("--cache-dir", help="feature cache (default $PARETODISTILL_CACHE or ~/.cache/paretodistill)")
    evaluate.add_argument("--max-seq-length", type=int, help="default: the lengths recorded with the checkpoint")
    evaluate.add_argument("--doc-stride", type=int, help="overlap of a long context's windows (default: as recorded)")
    evaluate.add_argument("--max-query-length", type=int, help="question tokens kept (default: as recorded)")
    evaluate.add_argument("--trust-remote-code", action="store_true",
                          help="run Python files shipped in the checkpoint (auto_map); off by default: paretodistill's "
                          "own students load with the installed code. Only for a folder whose code you have read")
    evaluate.set_defaults(run=cmd_evaluate)


def _add_quickstart(commands: argparse._SubParsersAction) -> None:
    quickstart = commands.add_parser(
        "quickstart", help="the main job at a quick scale: teacher, flash and regular search, report "
                           "(--smoke: the same on a tiny slice, a few minutes)")
    quickstart.add_argument("--smoke", action="store_true",
                            help="the whole job on a tiny slice (the smoke preset: ~200 questions, 3 flash trials of 12 "
                                 "steps, 2 regular), a check that everything works, not a model to keep")
    quickstart.add_argument("--data", default=str(DEFAULT_DEV_FILE), help=f"default: {DEFAULT_DEV_FILE}")
    quickstart.add_argument("--out", help="folder for the study, the report and quickstart.json (default: runs/quickstart; "
                            "with --smoke $PARETODISTILL_CACHE/quickstart-smoke)")
    quickstart.add_argument("--teacher", help="a QA checkpoint to distil (default: the shipped teacher, "
                            "teachers/minilm-l6-squad2)")
    quickstart.add_argument("--train-teacher", action="store_true",
                            help="fine-tune a quick teacher here instead (2,000 questions: it learns too little to answer)")
    quickstart.add_argument("--workers", type=int, default=2, help="trials at once, the cores shared between them (default: 2)")
    add_device(quickstart, from_config=True)
    quickstart.add_argument("--cache-dir", help="feature and teacher-logit cache (default $PARETODISTILL_CACHE or ~/.cache/paretodistill)")
    quickstart.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override (repeatable)")
    quickstart.set_defaults(run=cmd_quickstart)


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Each option's default after its help (when it has one worth showing); the example kept as written."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        shown = action.default not in (None, False, argparse.SUPPRESS) and not isinstance(action.default, list)
        if shown and "default" not in text and action.option_strings:
            text += " (default: %(default)s)"
        return text


# One example per command, shown at the end of its --help (paths relative to a clone, beside ../shared).
EXAMPLES = {
    "score": "paretodistill score ../shared/data/squad2/dev-v2.0.json predictions.json --na-prob-file na_prob.json",
    "teacher": "paretodistill teacher --data ../shared/data/squad2/dev-v2.0.json --out $PARETODISTILL_CACHE/teacher \\\n"
               "    --train ../shared/data/squad1/train-v1.1.explorer-rebuilt.json.gz --max-extra-articles 100 \\\n"
               "    --synthetic-unanswerable-fraction 0.5",
    "evaluate": "paretodistill evaluate --model teachers/minilm-l6-squad2 --data ../shared/data/squad2/dev-v2.0.json --part test",
    "quickstart": "paretodistill quickstart --smoke                # a few minutes: every stage on a tiny slice\n"
                  "  paretodistill quickstart --out runs/quickstart  # the main job",
    "distill": "paretodistill distill --teacher teachers/minilm-l6-squad2 --data ../shared/data/squad2/dev-v2.0.json \\\n"
               "    --out runs/baseline --recipe sigopt-baseline --test",
    "search": "paretodistill search --config configs/search-cpu.toml --study runs/search-cpu --workers 2",
    "status": "paretodistill status --study runs/search-cpu",
    "report": "paretodistill report --study runs/search-cpu --out runs/search-cpu/report.html",
    "export": "paretodistill export --study runs/search-cpu --trial 0 --out runs/export/student --onnx --int8",
    "pretrain-distill": "paretodistill pretrain-distill --teacher teachers/minilm-l6-squad2 \\\n"
                        "    --data ../shared/data/squad2/dev-v2.0.json --out $PARETODISTILL_CACHE/pretrained-l3 \\\n"
                        "    --set student.num_layers=3\n  then: paretodistill distill ... --set student.num_layers=3 \\\n"
                        "    --set student.init_from=$PARETODISTILL_CACHE/pretrained-l3",
    "analyze": "paretodistill analyze --model teachers/minilm-l6-squad2 --data ../shared/data/squad2/dev-v2.0.json \\\n"
               "    --part test --out runs/analysis",
    "convert": "paretodistill convert --model minilm --family distilbert --out $PARETODISTILL_CACHE/minilm-distilbert\n"
               "  then: paretodistill distill ... --recipe sigopt --set student.init_from=$PARETODISTILL_CACHE/minilm-distilbert",
    "predict": "paretodistill predict --model teachers/minilm-l6-squad2 --question \"Where does the Rhine rise?\" \\\n"
               "    --context \"The Rhine rises in the Swiss canton of Graubünden.\"",
}


def _document(commands: argparse._SubParsersAction) -> None:
    """Every subcommand's help shows its defaults and ends with its example."""
    for name, command in commands.choices.items():
        command.formatter_class = HelpFormatter
        if name in EXAMPLES:
            command.epilog = f"example:\n  {EXAMPLES[name]}"



def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet_libraries()
    try:
        return args.run(args)
    except ParetodistillError as error:
        return _one_line(args.command, error, BAD_INPUT)
    except (EnvironmentFailure, RunFailed, OSError) as error:
        return _one_line(args.command, error, FAILED)


def _one_line(command: str, error: BaseException, status: int) -> int:
    """The error as one line on stderr (its traceback only when asked for), and the exit status."""
    if os.environ.get("PARETODISTILL_TRACEBACK"):
        raise error
    print(f"paretodistill {command}: error: {' '.join(str(error).split())}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())
