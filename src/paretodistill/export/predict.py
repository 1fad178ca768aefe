"""Answers to questions from a student folder: ``Predictor(model_dir).answer(question, context)``.

The same path as evaluation, so an answer here is the answer the model was scored with: the
project's feature building (doc-stride windows), the runtime's logits, the project's
postprocessing (best span, no-answer score), then the no-answer threshold the model recorded.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Iterable

from paretodistill.data.features import build_features
from paretodistill.data.squad import Example
from paretodistill.errors import DataFormatError
from paretodistill.evaluation.postprocess import Answers, extract_answers
from paretodistill.export.runtime import load_logits, recorded_settings
from paretodistill.models.loading import load_tokenizer


@dataclass(frozen=True)
class Prediction:
    """The model's answer to one question: ``text`` is "" when the model says the question has no answer.

    A prediction, not ``data.squad.Answer`` (a gold answer of the data set).
    """

    id: str
    text: str
    score: float  # start + end logit of the best span
    no_answer: bool
    na_score: float  # null score minus best span score; above ``threshold`` means no answer
    threshold: float
    best_span: str  # the best span even when it is not given as the answer

    def to_dict(self) -> dict:
        return asdict(self)


def question(qid: str, question_text: str, context: str) -> Example:
    """An example with no gold answer, as the feature builder takes it."""
    for name, value in (("question", question_text), ("context", context)):
        if not isinstance(value, str):
            raise DataFormatError(f"question {qid!r}: the {name} must be a string, got {type(value).__name__}")
        if not value.strip():
            raise DataFormatError(f"question {qid!r}: the {name} is empty")
        _check_text(value, f"question {qid!r}: the {name}")
    _check_text(str(qid), "a question id")
    return Example(str(qid), "", context, question_text, (), True)


def _check_text(value: str, what: str) -> None:
    """Refuse a lone surrogate (JSON's ``\\ud800``, or bytes a command line could not decode): the
    tokenizer takes only text that UTF-8 can encode, and an answer must be writable as UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as error:
        raise DataFormatError(f"{what} holds {value[error.start]!r} at character {error.start}, which is not "
                              "text (a lone surrogate, or bytes that are not UTF-8)") from None


class Predictor:
    """A student loaded once (tokenizer, runtime, recorded threshold and window lengths) to answer many questions.

    ``model_dir``: a trial's ``checkpoint/`` or an export folder. ``runtime``: ``"torch"`` or ``"onnx"``
    (default: torch, or onnx when the folder has only ``model.onnx``); ``int8``: its ``model.int8.onnx``.
    ``threshold``: the no-answer threshold (default: the one the model recorded, as ``paretodistill
    predict`` applies). ``device``: torch's ``"auto"`` (CUDA when there is one), ``"cpu"``, ``"cuda:N"``.
    """

    def __init__(self, model_dir: str | Path, runtime: str | None = None, int8: bool = False,
                 threshold: float | None = None, device: str = "auto", batch_size: int = 32,
                 trust_remote_code: bool = False):
        self.model_dir = Path(model_dir)
        recorded = recorded_settings(model_dir)
        self.features = recorded.features
        self.threshold = recorded.na_threshold if threshold is None else float(threshold)
        self.threshold_source = recorded.threshold_source if threshold is None else "given"
        self.tokenizer = load_tokenizer(model_dir, trust_remote_code=trust_remote_code)
        self.runtime, self.file, self._logits = load_logits(model_dir, runtime, int8, device, trust_remote_code)
        self.batch_size = batch_size

    def answer(self, question_text: str, context: str) -> Prediction:
        """The answer to one question about ``context`` ("" and ``no_answer`` when the model finds none)."""
        return self.answer_many([(question_text, context)])[0]

    def answer_many(self, pairs: Iterable[tuple[str, str]]) -> list[Prediction]:
        """One answer per ``(question, context)`` pair, in order, with ids ``"0"``, ``"1"``, ...:
        the windows of all the pairs go through the model in batches of ``batch_size``."""
        return self.answer_examples(question(str(n), *_pair(pair, n)) for n, pair in enumerate(pairs))

    def span_answers(self, examples: list[Example]) -> Answers:
        """The postprocessing's best spans and no-answer scores, before the threshold (what scoring takes)."""
        features = build_features(examples, self.tokenizer, self.features)
        start, end = self._logits(features, self.batch_size)
        return extract_answers(examples, features, start, end)

    def answer_examples(self, examples: Iterable[Example]) -> list[Prediction]:
        """One prediction per example, in order, each under the example's own id.

        Answers are keyed by position while they are worked out, so two questions given the same id
        (or an id that reads like another's line number) can never be given each other's answer.
        """
        examples = list(examples)
        if not examples:
            return []
        keyed = [replace(example, id=str(position)) for position, example in enumerate(examples)]
        answers = self.span_answers(keyed)
        return [self._prediction(e.id, k.id, answers) for e, k in zip(examples, keyed)]

    def _prediction(self, qid: str, key: str, answers: Answers) -> Prediction:
        na_score = answers.na_score[key]
        no_answer = na_score > self.threshold
        span = answers.best_span[key]
        return Prediction(qid, "" if no_answer else span, answers.span_score[key], no_answer, na_score, self.threshold, span)


def _pair(pair: tuple[str, str], position: int) -> tuple[str, str]:
    """A ``(question, context)`` pair, or one line naming what it is instead."""
    if isinstance(pair, (str, bytes)) or not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise DataFormatError(f"pair {position}: expected (question, context), got {type(pair).__name__} {str(pair)[:60]!r}")
    return pair[0], pair[1]


def answer(model_dir: str | Path, question_text: str, context: str, runtime: str | None = None,
           int8: bool = False, threshold: float | None = None) -> Prediction:
    """The model's answer to one question about ``context``, with its saved no-answer threshold applied.
    Loads the model for this one answer: :class:`Predictor` loads it once for many."""
    return Predictor(model_dir, runtime, int8, threshold, device="cpu").answer(question_text, context)
