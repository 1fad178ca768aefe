"""Answers from an exported ``model.onnx`` with ONNX Runtime, numpy and the tokenizers library: no torch.

``paretodistill export --onnx`` copies this file into the export as ``answer.py``, so a server
without torch or paretodistill can answer with the student as the search scored it:

    python answer.py [FOLDER] --question "Who was the Norse leader?" --context "..."   # one JSON line

It imports nothing of paretodistill, so it repeats three of its steps on purpose: the doc-stride
windows of ``data/features.py``, the span search of ``evaluation/postprocess.py`` and the
no-answer threshold. The settings they need (window lengths, n-best, longest answer, threshold,
the model's inputs) are read from the ONNX file's metadata, where the export wrote them, so the
two copies cannot drift apart silently; the package's tests check that the answers equal
``paretodistill predict``'s.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnxruntime
from tokenizers import Tokenizer

FORMAT_VERSION = 1
FORMAT_KEY = "answer_format_version"
ONNX_FILE = "model.onnx"
INT8_ONNX_FILE = "model.int8.onnx"
TOKENIZER_FILE = "tokenizer.json"
OUTPUTS = ("start_logits", "end_logits")
NO_SPAN_SCORE = 1e9  # as postprocess: no valid span means answer "" (a finite number keeps JSON standard)
PAD_MULTIPLE = 8  # windows are padded as the package's evaluation batches are
BATCH_SIZE = 32


class AnswerError(Exception):
    """A folder or question this helper cannot answer (missing file, no metadata, empty question)."""


@dataclass(frozen=True)
class AnswerSettings:
    """What answering needs besides the tokenizer; stored as JSON values in the ONNX file's metadata."""

    na_threshold: float  # answer "" when null score minus best span score is above it
    max_seq_length: int
    doc_stride: int
    max_query_length: int
    n_best: int
    max_answer_length: int
    input_names: tuple[str, ...]  # the window inputs the model takes, e.g. no token types for DistilBERT

    def to_metadata(self) -> dict[str, str]:
        return {FORMAT_KEY: json.dumps(FORMAT_VERSION), **{k: json.dumps(v) for k, v in asdict(self).items()}}

    @classmethod
    def from_metadata(cls, metadata: dict[str, str], source: str) -> "AnswerSettings":
        if FORMAT_KEY not in metadata:
            raise AnswerError(f"{source}: no answer settings in its metadata; export it with "
                              "`paretodistill export --onnx`")
        if json.loads(metadata[FORMAT_KEY]) != FORMAT_VERSION:
            raise AnswerError(f"{source}: answer settings of format {metadata[FORMAT_KEY]}, this file reads format "
                              f"{FORMAT_VERSION}: use the answer.py exported with it")
        missing = [name for name in cls.__dataclass_fields__ if name not in metadata]
        if missing:
            raise AnswerError(f"{source}: its metadata lacks {', '.join(missing)}")
        values = {name: json.loads(metadata[name]) for name in cls.__dataclass_fields__}
        return cls(**{**values, "na_threshold": float(values["na_threshold"]), "input_names": tuple(values["input_names"])})


@dataclass(frozen=True)
class Window:
    """One doc-stride window: token ids and types, and character offsets into the context (-1 elsewhere)."""

    input_ids: list[int]
    type_ids: list[int]
    offsets: np.ndarray  # int (tokens, 2)


class WindowTokenizer:
    """The windows ``data/features.py`` builds, made with the tokenizers library alone.

    The question (left-stripped) is cut after ``max_query_length`` tokens by character offset; then
    question and context are encoded as a pair, truncating only the context, with ``doc_stride``
    tokens of overlap between windows (the first encoding, then its overflow, in order). Context
    offsets lose surrounding whitespace (``context_offsets``).
    """

    def __init__(self, path: Path, settings: AnswerSettings):
        self.settings = settings
        self.question = Tokenizer.from_file(str(path))
        self.question.no_truncation()
        self.question.no_padding()
        self.pair = Tokenizer.from_file(str(path))
        self.pair.no_padding()
        self.pair.enable_truncation(settings.max_seq_length, stride=settings.doc_stride, strategy="only_second",
                                    direction="right")

    def truncated_question(self, question: str) -> str:
        question = question.lstrip()
        offsets = self.question.encode(question, add_special_tokens=False).offsets
        limit = self.settings.max_query_length
        return question[: offsets[limit - 1][1]] if len(offsets) > limit else question

    def windows(self, question: str, context: str) -> list[Window]:
        encoding = self.pair.encode(self.truncated_question(question), context)
        return [Window(e.ids, e.type_ids, np.asarray(context_offsets(context, e.sequence_ids, e.offsets),
                                                     dtype=np.int64).reshape(-1, 2))
                for e in (encoding, *encoding.overflowing)]


def context_offsets(context: str, sequence_ids: list, offsets: list) -> list[tuple[int, int]]:
    """Each context token's character span without surrounding whitespace; (-1, -1) for every other token.

    A SentencePiece or byte-level token counts the space before its word; a token of whitespace
    only has no span left and is marked (-1, -1), so it can neither start nor end an answer.
    """
    spans = []
    for sequence, (start, end) in zip(sequence_ids, offsets):
        if sequence != 1:
            spans.append((-1, -1))
            continue
        while start < end and context[start].isspace():
            start += 1
        while end > start and context[end - 1].isspace():
            end -= 1
        spans.append((start, end) if start < end else (-1, -1))
    return spans


def best_span(windows: list[Window], start_logits: list[np.ndarray], end_logits: list[np.ndarray], context: str,
              n_best: int, max_answer_length: int) -> tuple[str, float, float]:
    """Best span text, its score (start + end logit) and the no-answer score, as ``extract_answers``.

    Every window proposes its ``n_best`` start and end context tokens; a span must end after it
    starts and be at most ``max_answer_length`` tokens. The no-answer score is the lowest CLS score
    over the windows minus the best span score.
    """
    best_score, best_text, null_score = -math.inf, "", math.inf
    for window, starts, ends in zip(windows, start_logits, end_logits):
        offsets = window.offsets
        null_score = min(null_score, float(starts[0] + ends[0]))
        in_context = offsets[:, 0] >= 0
        top_starts = _top_context_tokens(starts, in_context, n_best)
        top_ends = _top_context_tokens(ends, in_context, n_best)
        for s in top_starts:
            for e in top_ends:
                if e < s or e - s + 1 > max_answer_length:
                    continue
                score = float(starts[s] + ends[e])
                if score > best_score:
                    best_score = score
                    best_text = context[offsets[s, 0] : offsets[e, 1]]
    if best_score == -math.inf:
        return best_text, -NO_SPAN_SCORE, NO_SPAN_SCORE
    return best_text, best_score, null_score - best_score


def _top_context_tokens(logits: np.ndarray, in_context: np.ndarray, n_best: int) -> np.ndarray:
    """Indices of the ``n_best`` highest logits among context tokens, best first."""
    candidates = np.flatnonzero(in_context)
    if len(candidates) > n_best:
        part = np.argpartition(-logits[candidates], n_best - 1)[:n_best]
        candidates = candidates[part]
    return candidates[np.argsort(-logits[candidates], kind="stable")]


class OnnxAnswerer:
    """An export folder loaded once (ONNX session, tokenizer, settings from the metadata) to answer many questions.

    ``int8`` runs ``model.int8.onnx``; ``threshold`` replaces the recorded no-answer threshold.
    """

    def __init__(self, folder: str | Path, int8: bool = False, threshold: float | None = None,
                 threads: int | None = None):
        folder = Path(folder)
        self.file = folder / (INT8_ONNX_FILE if int8 else ONNX_FILE)
        for path in (self.file, folder / TOKENIZER_FILE):
            if not path.is_file():
                raise AnswerError(f"{folder}: no {path.name}")
        # its own session, not hardware.onnx's onnx_session: this file runs with onnxruntime and tokenizers alone
        options = onnxruntime.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(str(self.file), options, providers=["CPUExecutionProvider"])
        self.settings = AnswerSettings.from_metadata(self.session.get_modelmeta().custom_metadata_map, str(self.file))
        wanted = {i.name for i in self.session.get_inputs()}
        if wanted != set(self.settings.input_names):
            raise AnswerError(f"{self.file}: takes {sorted(wanted)}, its metadata says {list(self.settings.input_names)}")
        self.threshold = self.settings.na_threshold if threshold is None else float(threshold)
        self.tokenizer = WindowTokenizer(folder / TOKENIZER_FILE, self.settings)

    def logits(self, windows: list[Window]) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Start and end logits of each window, unpadded, from batches padded with 0 and masked."""
        starts, ends = [], []
        for first in range(0, len(windows), BATCH_SIZE):
            batch = windows[first : first + BATCH_SIZE]
            width = -(-max(len(w.input_ids) for w in batch) // PAD_MULTIPLE) * PAD_MULTIPLE
            inputs = {name: np.zeros((len(batch), width), dtype=np.int64)
                      for name in ("input_ids", "attention_mask", "token_type_ids")}
            for row, window in enumerate(batch):
                length = len(window.input_ids)
                inputs["input_ids"][row, :length] = window.input_ids
                inputs["token_type_ids"][row, :length] = window.type_ids
                inputs["attention_mask"][row, :length] = 1
            start, end = self.session.run(list(OUTPUTS), {name: inputs[name] for name in self.settings.input_names})
            for row, window in enumerate(batch):
                starts.append(start[row, : len(window.input_ids)])
                ends.append(end[row, : len(window.input_ids)])
        return starts, ends

    def answer(self, question: str, context: str, qid: str = "0") -> dict:
        """``{"id", "text", "score", "no_answer", "na_score", "threshold", "best_span"}``; text "" means no answer."""
        for name, value in (("question", question), ("context", context)):
            if not isinstance(value, str) or not value.strip():
                raise AnswerError(f"question {qid!r}: the {name} is empty")
        windows = self.tokenizer.windows(question, context)
        starts, ends = self.logits(windows)
        span, score, na_score = best_span(windows, starts, ends, context, self.settings.n_best,
                                          self.settings.max_answer_length)
        no_answer = na_score > self.threshold
        return {"id": qid, "text": "" if no_answer else span, "score": score, "no_answer": no_answer,
                "na_score": na_score, "threshold": self.threshold, "best_span": span}


def answer(folder: str | Path, question: str, context: str, int8: bool = False, threshold: float | None = None) -> dict:
    """The exported model's answer to one question about ``context``, at its recorded no-answer threshold."""
    return OnnxAnswerer(folder, int8, threshold).answer(question, context)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Answer a question with an exported model.onnx (onnxruntime and "
                                                 "tokenizers, no torch); prints one JSON line.")
    parser.add_argument("folder", nargs="?", default=str(Path(__file__).resolve().parent),
                        help="the export folder (default: the folder holding this file)")
    parser.add_argument("--question", required=True)
    parser.add_argument("--context", required=True, help="the paragraph that may hold its answer")
    parser.add_argument("--int8", action="store_true", help=f"run {INT8_ONNX_FILE}")
    parser.add_argument("--threshold", type=float, help="no-answer threshold (default: the one recorded in the file)")
    parser.add_argument("--threads", type=int, help="ONNX Runtime intra-op threads")
    args = parser.parse_args(argv)
    try:
        result = OnnxAnswerer(args.folder, args.int8, args.threshold, args.threads).answer(args.question, args.context)
    except AnswerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
