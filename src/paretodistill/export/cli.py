"""The ``export`` and ``predict`` subcommands; heavy imports stay inside the functions.

``export`` ships a study's trial (``export.students``); ``predict`` answers as JSON lines, from one
question, a SQuAD file or stdin.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

from paretodistill.options import add_device, add_eval_batch_size, add_study, study_folder

TRUST_REMOTE_CODE_HELP = ("run Python files shipped in the model folder (auto_map); off by default: paretodistill's "
                          "own students load with the installed code. Only for a folder whose code you have read")


def read_json_lines(stream: TextIO) -> list:
    """Questions given as JSON lines ``{"id", "question", "context"}``.

    A line without an id is answered under its line number. Ids must differ, as answers are echoed
    under them: a repeated id is refused naming both lines. Lines are read as bytes when the stream
    has them, so text that is not UTF-8 is refused naming its line.
    """
    from paretodistill.errors import DataFormatError
    from paretodistill.export.predict import question

    examples, seen = [], {}
    for number, line in enumerate(getattr(stream, "buffer", stream), 1):
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as error:
                raise DataFormatError(f"stdin line {number}: not UTF-8 text ({error.reason} at byte {error.start})") from None
        if not line.strip():
            continue
        row = _json_line(line, number)
        qid = _line_id(row, number)
        if qid in seen:
            raise DataFormatError(f"stdin lines {seen[qid]} and {number}: the same question id {qid!r}; give each "
                                  "question its own id (a line without one is answered under its line number)")
        seen[qid] = number
        examples.append(question(qid, row["question"], row["context"]))
    if not examples:
        raise DataFormatError('no questions on stdin: give JSON lines {"id", "question", "context"}, '
                              "or --question with --context, or --data FILE")
    return examples


def _json_line(line: str, number: int) -> dict:
    from paretodistill.errors import DataFormatError

    try:
        row = json.loads(line)
    except json.JSONDecodeError as error:
        raise DataFormatError(f"stdin line {number}: not JSON ({error.msg})") from None
    except RecursionError:
        raise DataFormatError(f"stdin line {number}: JSON nested too deeply to read") from None
    if not isinstance(row, dict) or not {"question", "context"} <= set(row):
        raise DataFormatError(f'stdin line {number}: expected an object with "question" and "context"')
    return row


def _line_id(row: dict, number: int) -> str:
    """The line's own id as text (a string or an integer), or its line number when it has none."""
    from paretodistill.errors import DataFormatError

    qid = row.get("id")
    if qid is None:
        return str(number)
    if isinstance(qid, bool) or not isinstance(qid, (str, int)):
        raise DataFormatError(f"stdin line {number}: the id must be a string or an integer, got {type(qid).__name__}")
    return str(qid)


def _examples(args: argparse.Namespace) -> list:
    from paretodistill.data.splits import load_part
    from paretodistill.errors import ConfigError
    from paretodistill.export.predict import question

    if args.data is not None:
        if args.question is not None or args.context is not None:
            raise ConfigError("give --data or --question/--context, not both")
        return list(load_part(args.data, args.part, args.split, args.model).examples)
    if args.part != "all":
        raise ConfigError("--part selects from a --data file")
    if (args.question is None) != (args.context is None):
        raise ConfigError("--question and --context go together")
    if args.question is not None:
        return [question("0", args.question, args.context)]
    return read_json_lines(sys.stdin)


def check_predictions_out(args: argparse.Namespace) -> None:
    """``--out`` is neither an input (the model, the data, the split, a file on stdin) nor anything predict did not write."""
    from paretodistill.outputs import PREDICTIONS, check_output

    reads_stdin = args.data is None and args.question is None
    check_output(args.out, PREDICTIONS, {"the model folder": args.model, "the data file": args.data,
                                         "the split file": args.split,
                                         "the file on stdin": "/dev/stdin" if reads_stdin and Path("/dev/stdin").exists() else None})


def cmd_predict(args: argparse.Namespace) -> int:
    from paretodistill.export.predict import Predictor

    if args.out:
        check_predictions_out(args)
    examples = _examples(args)
    predictor = Predictor(args.model, args.runtime, args.int8, args.threshold, args.device, args.eval_batch_size,
                          trust_remote_code=args.trust_remote_code)
    print(f"{predictor.runtime}: {predictor.file}, no-answer threshold {predictor.threshold:g} "
          f"({predictor.threshold_source}), {len(examples)} question(s)", file=sys.stderr)
    answers = predictor.answer_examples(examples)
    out = open(args.out, "w", encoding="utf-8") if args.out else sys.stdout
    try:
        for result in answers:
            out.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
    finally:
        if args.out:
            out.close()
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from paretodistill.export.students import export_trial

    store = _mlflow_store(args) if args.mlflow_uri else None
    result = export_trial(study_folder(args), args.trial, args.out, stage=args.stage, name=args.name, onnx=args.onnx,
                          overwrite=args.force, atol=args.atol, int8=args.int8, data_file=args.data,
                          trust_remote_code=args.trust_remote_code, threads=args.threads)
    print(f"exported {result['stage']} trial {result['trial']} to {result['out']}: {', '.join(result['files'])}")
    if result.get("onnx"):
        print(f"ONNX logits match PyTorch within {result['onnx']['max_abs_diff']:.2e}")
    for name, row in (result.get("variants") or {}).items():
        print(f"{name}: {row['file']} {row['size_mb']:.1f} MB, test exact {row.get('exact', '-')}, "
              f"f1 {row.get('f1', '-')}, {row['latency_ms']:.2f} ms (batch 1)")
    for warning in result.get("warnings", []):
        print(f"WARNING: {warning}")
    if store is not None:
        from paretodistill.search.tracking import log_export

        log_export(store, result, Path(result["out"]))
    return 0


def _mlflow_store(args: argparse.Namespace):
    """The study's MLflow experiment (the study read first: its name is the experiment's)."""
    from paretodistill.report.frontier import load_study_dir
    from paretodistill.search.tracking import open_export_store

    return open_export_store(args.mlflow_uri, load_study_dir(study_folder(args), args.name).name)


def register(commands) -> None:
    export = commands.add_parser("export", help="copy a trial's checkpoint with a model card (and optionally ONNX)",
                                 epilog="example: paretodistill export --study runs/search-cpu --trial 3 --out exported/student-3")
    add_study(export, "the study folder", positional_alias=True)
    export.add_argument("--trial", type=int, required=True, help="trial number within the stage")
    export.add_argument("--stage", default="regular", choices=("flash", "regular"), help="the stage --trial numbers")
    export.add_argument("--out", required=True, help="the export folder (never the study or the trial's checkpoint)")
    export.add_argument("--name", help="which search, when study.db holds several")
    export.add_argument("--onnx", action="store_true", help="also write model.onnx, checked against PyTorch")
    export.add_argument("--atol", type=float, default=1e-4, help="ONNX logit tolerance")
    export.add_argument("--int8", action="store_true",
                        help="also write model.int8.onnx (dynamic int8) and measure it against model.onnx (implies --onnx)")
    export.add_argument("--data", help="--int8: the SQuAD file of the split (default: the split's source file)")
    export.add_argument("--threads", type=int,
                        help="--int8: time both ONNX files on this many threads (default: the study's latency settings)")
    export.add_argument("--force", action="store_true",
                        help="replace an earlier export at --out (a folder holding export.json; nothing else is ever replaced)")
    export.add_argument("--trust-remote-code", action="store_true",
                        help="ship and run Python files found in the checkpoint (auto_map); off by default: a pruned "
                        "student gets the installed model code. Only for a checkpoint whose code you have read")
    export.add_argument("--mlflow-uri", help="also log the export to MLflow, in the study's experiment under its latest "
                        "search run: the model card (README.md), export.json and the student's figures; needs paretodistill[mlflow]")
    export.set_defaults(run=cmd_export)

    predict = commands.add_parser(
        "predict", help="answer questions with a student folder (PyTorch or ONNX); JSON lines out",
        description="Questions from --question/--context, a SQuAD --data file, or JSON lines "
                    '{"id", "question", "context"} on stdin. One JSON line per answer: text ("" = no answer), '
                    "score, no_answer, na_score, threshold, best_span.")
    predict.add_argument("--model", required=True, help="a checkpoint or export folder")
    predict.add_argument("--question", help="one question (with --context)")
    predict.add_argument("--context", help="the paragraph that may hold its answer")
    predict.add_argument("--data", help="a SQuAD file: answer all its questions (or one --part)")
    predict.add_argument("--part", choices=("all", "train", "validation", "test"), default="all",
                         help="with --data: one part of the model's article split")
    predict.add_argument("--split", help="split.json for --part (default: the model folder's)")
    predict.add_argument("--runtime", choices=("torch", "onnx"),
                         help="default: torch, or onnx when the folder has only model.onnx")
    predict.add_argument("--int8", action="store_true", help="run model.int8.onnx (ONNX Runtime)")
    predict.add_argument("--threshold", type=float, help="no-answer threshold (default: the model's recorded one)")
    add_device(predict)  # the torch runtime's; ONNX Runtime runs on the CPU
    add_eval_batch_size(predict, 32, old_spelling="--batch-size")
    predict.add_argument("--out", help="write the JSON lines here instead of stdout (a new file or predict's earlier answers; "
                         "never an input or a file in a model or study folder)")
    predict.add_argument("--trust-remote-code", action="store_true", help=TRUST_REMOTE_CODE_HELP)
    predict.set_defaults(run=cmd_predict)
