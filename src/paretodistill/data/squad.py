"""Reading SQuAD v1.1 / v2.0 data, checked on load.

A wrong offset or an answerable flag that disagrees with its answers silently teaches a model the
wrong span, so every file is validated when read and every problem names the question ids.
Official JSON files (plain or gzip) are read directly; a Hugging Face dataset id is read through
the optional ``datasets`` package, imported only when used.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from paretodistill.errors import DataFormatError

SUPPORTED_VERSIONS = ("1.1", "v2.0")
MAX_IDS_IN_MESSAGE = 10


@dataclass(frozen=True)
class Answer:
    text: str
    start: int  # character offset into the context


@dataclass(frozen=True)
class Example:
    """One question about one context paragraph."""

    id: str
    title: str
    context: str
    question: str
    answers: tuple[Answer, ...]
    is_impossible: bool


@dataclass(frozen=True)
class SquadData:
    """The examples of one or more SQuAD files, in file order, with the raw articles for scoring."""

    examples: tuple[Example, ...]
    articles: tuple[dict, ...]  # the raw "data" list, as the official scorer reads it
    version: str
    source: str  # a path or dataset id
    fingerprint: str  # sha256 of the content, keys caches and is recorded with results

    @property
    def titles(self) -> list[str]:
        return [article["title"] for article in self.articles]

    def select_titles(self, titles: set[str] | list[str]) -> "SquadData":
        """The examples and articles of the given articles only (order kept)."""
        wanted = set(titles)
        unknown = wanted - set(self.titles)
        if unknown:
            raise DataFormatError(f"{self.source}: no article titled {sorted(unknown)[:5]}")
        return SquadData(
            examples=tuple(e for e in self.examples if e.title in wanted),
            articles=tuple(a for a in self.articles if a["title"] in wanted),
            version=self.version,
            source=self.source,
            fingerprint=self.fingerprint,
        )


def _describe_ids(ids: list[str]) -> str:
    shown = ", ".join(ids[:MAX_IDS_IN_MESSAGE])
    more = len(ids) - MAX_IDS_IN_MESSAGE
    return shown + (f" and {more} more" if more > 0 else "")


def _string(value, what: str) -> str:
    """``value`` when it is a string; titles and ids are compared, hashed and printed as text downstream."""
    if not isinstance(value, str):
        raise DataFormatError(f"{what} must be a string, got {type(value).__name__} {_short(value)}")
    try:
        value.encode("utf-8")  # JSON's "\\ud800" decodes to a lone surrogate, which no tokenizer takes
    except UnicodeEncodeError as error:
        raise DataFormatError(f"{what} holds a lone surrogate ({value[error.start]!r} at character {error.start}), "
                              "not text") from None
    return value


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _answer(raw: dict, context: str, where: str) -> Answer:
    """An answer whose text is not empty and whose start lies inside the context.

    An empty text matches the context at any offset, even past its end, and the feature builder
    would then train it as "no answer": such an answer is a broken file, not an unanswerable question.
    """
    text = _string(raw["text"], f"{where}: an answer text")
    start = raw["answer_start"]
    if isinstance(start, bool) or not isinstance(start, int):
        raise DataFormatError(f"{where}: answer_start must be an integer, got {type(start).__name__} {_short(start)}")
    if not text.strip():
        raise DataFormatError(f"{where}: an answer has empty text (at answer_start {start}); "
                              "an unanswerable question has no answers")
    if not 0 <= start < len(context):
        raise DataFormatError(f"{where}: answer_start {start} lies outside the context ({len(context)} characters)")
    return Answer(text, start)


def read_json_file(path: str | Path) -> tuple[dict, bytes]:
    """The parsed JSON object of a plain or gzip file, and its raw bytes (for hashing)."""
    path = Path(path)
    if not path.exists():
        raise DataFormatError(f"{path}: no such file")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as error:
            raise DataFormatError(f"{path}: not a readable gzip file ({error})") from None
    if not raw.strip():
        raise DataFormatError(f"{path}: the file is empty")
    try:
        return json.loads(raw.decode("utf-8")), raw
    except UnicodeDecodeError as error:
        raise DataFormatError(f"{path}: not UTF-8 text ({error})") from None
    except json.JSONDecodeError as error:
        raise DataFormatError(
            f"{path}: malformed JSON at line {error.lineno}, column {error.colno}: {error.msg}"
        ) from None
    except RecursionError:
        raise DataFormatError(f"{path}: JSON nested too deeply to read") from None


def parse_squad(document: dict, source: str, fingerprint: str) -> SquadData:
    """Validate a SQuAD document and turn it into examples; raise DataFormatError on any problem.

    A user's own SQuAD-format file may leave out ``version`` (then it is v2.0 when a question has
    no answers, else 1.1) and ``is_impossible`` (then a question without answers is unanswerable);
    ids and titles are any strings, and several articles may share a title (they stay together).
    """
    if not isinstance(document, dict) or "data" not in document:
        raise DataFormatError(f"{source}: not a SQuAD file (no top-level 'data' list)")
    if "version" in document and document["version"] not in SUPPORTED_VERSIONS:
        raise DataFormatError(
            f"{source}: unsupported SQuAD version field {document['version']!r}; expected one of {SUPPORTED_VERSIONS}"
        )
    articles = document["data"]
    if not isinstance(articles, list) or not articles:
        raise DataFormatError(f"{source}: the file holds no articles")
    version = document.get("version") or _inferred_version(articles)
    examples: list[Example] = []
    problems: dict[str, list[str]] = {"duplicate": [], "offset": [], "flag": []}
    seen_ids: set[str] = set()
    try:
        for number, article in enumerate(articles, 1):
            title = _string(_field(article, "title", f"{source}: article {number}"), f"{source}: article {number}: the title")
            for paragraph in _field(article, "paragraphs", f"{source}: article {title!r}"):
                context = _string(_field(paragraph, "context", f"{source}: a paragraph of article {title!r}"),
                                  f"{source}: article {title!r}: a context")
                for qa in _field(paragraph, "qas", f"{source}: a paragraph of article {title!r}"):
                    example = _example(qa, title, context, version, source, problems)
                    if example.id in seen_ids:
                        problems["duplicate"].append(example.id)
                    seen_ids.add(example.id)
                    examples.append(example)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise DataFormatError(f"{source}: malformed SQuAD structure ({type(error).__name__}: {error})") from None
    if not examples:
        raise DataFormatError(f"{source}: the file holds no questions")
    _raise_problems(source, problems)
    return SquadData(tuple(examples), tuple(articles), version, source, fingerprint)


def _inferred_version(articles: list) -> str:
    """The version of a file that does not say: v2.0 when any question has no answers."""
    try:
        unanswerable = any(not qa.get("answers") or qa.get("is_impossible") for article in articles
                           for paragraph in article["paragraphs"] for qa in paragraph["qas"])
    except (KeyError, TypeError, AttributeError):
        return "v2.0"  # the full check below names what is malformed
    return "v2.0" if unanswerable else "1.1"


def _field(mapping, key: str, where: str):
    """``mapping[key]``, or one line naming the missing field and where it was expected."""
    if not isinstance(mapping, dict):
        raise DataFormatError(f"{where}: expected a JSON object with {key!r}, got {type(mapping).__name__} {_short(mapping)}")
    if key not in mapping:
        raise DataFormatError(f"{where}: no {key!r} field")
    return mapping[key]


def _example(qa, title: str, context: str, version: str, source: str, problems: dict[str, list[str]]) -> Example:
    """One question, its answers checked against the context; disagreements are collected in ``problems``."""
    where = f"{source}: a question of article {title!r}"
    raw_id = _field(qa, "id", where)
    qid = _string(raw_id, f"{source}: question id {raw_id!r} (article {title!r}): the id")
    question = _string(_field(qa, "question", f"{source}: question {qid}"), f"{source}: question {qid}: the question")
    raw_answers = _field(qa, "answers", f"{source}: question {qid}")
    answers = tuple(
        _answer({"text": _field(a, "text", f"{source}: question {qid}: an answer"),
                 "answer_start": _field(a, "answer_start", f"{source}: question {qid}: an answer")},
                context, f"{source}: question {qid}")
        for a in raw_answers
    )
    if any(context[a.start : a.start + len(a.text)] != a.text for a in answers):
        problems["offset"].append(qid)
    impossible = bool(qa.get("is_impossible", not answers))  # absent: no answers means unanswerable
    if impossible == bool(answers) or (version == "1.1" and not answers):
        problems["flag"].append(qid)
    return Example(qid, title, context, question, answers, impossible)


def _raise_problems(source: str, problems: dict[str, list[str]]) -> None:
    if problems["duplicate"]:
        raise DataFormatError(f"{source}: duplicate question ids: {_describe_ids(problems['duplicate'])}")
    if problems["offset"]:
        raise DataFormatError(
            f"{source}: answer_start does not point at the answer text in the context for "
            f"{len(problems['offset'])} question(s): {_describe_ids(problems['offset'])}"
        )
    if problems["flag"]:
        raise DataFormatError(
            f"{source}: is_impossible disagrees with the answers (an unanswerable question with answers, "
            f"or an answerable one without) for {len(problems['flag'])} question(s): {_describe_ids(problems['flag'])}"
        )


def load_squad(source: str | Path, split: str = "validation") -> SquadData:
    """Read a SQuAD JSON file (plain or .gz), or a Hugging Face dataset id such as
    ``rajpurkar/squad_v2:validation``.

    A path that exists (or looks like a file name) is read as a file; anything else is taken to be
    a dataset id, optionally with ``:split`` (default ``split``, which the data's callers set to
    the part it is read for), which needs the optional ``datasets`` package and a network
    connection, or the dataset in the Hugging Face cache (then ``HF_HUB_OFFLINE=1`` works).
    """
    path = Path(source)
    if path.exists() or path.suffix in {".json", ".gz"}:
        document, raw = read_json_file(path)
        return parse_squad(document, str(path), hashlib.sha256(raw).hexdigest())
    return _load_hub_dataset(*parse_dataset_id(str(source), split))


def parse_dataset_id(source: str, default_split: str = "validation") -> tuple[str, str]:
    """``squad_v2:train`` -> (``squad_v2``, ``train``); without ``:split``, the default split."""
    dataset_id, colon, split = source.partition(":")
    if not colon:
        return source, default_split
    if not dataset_id or not split or ":" in split:
        raise DataFormatError(f"{source!r}: a dataset id takes one split, as in squad_v2:train")
    return dataset_id, split


def _load_hub_dataset(dataset_id: str, split: str) -> SquadData:
    """Convert a Hugging Face SQuAD-style dataset (id, title, context, question, answers) to SquadData."""
    try:
        import datasets  # optional: only users with a network read from the hub
    except ImportError:
        raise DataFormatError(
            f"{dataset_id!r} is not a file, and reading it as a Hugging Face dataset id needs the "
            "'datasets' package: pip install 'paretodistill[hub]'"
        ) from None
    rows = _hub_rows(datasets, dataset_id, split)
    by_title: dict[str, dict[str, dict]] = {}
    has_impossible = False
    for row in rows:
        paragraphs = by_title.setdefault(row["title"], {})
        paragraph = paragraphs.setdefault(row["context"], {"context": row["context"], "qas": []})
        answers = [
            {"text": text, "answer_start": start}
            for text, start in zip(row["answers"]["text"], row["answers"]["answer_start"])
        ]
        has_impossible = has_impossible or not answers
        paragraph["qas"].append(
            {"id": row["id"], "question": row["question"], "answers": answers, "is_impossible": not answers}
        )
    articles = [{"title": title, "paragraphs": list(paragraphs.values())} for title, paragraphs in by_title.items()]
    version = "v2.0" if has_impossible or "v2" in dataset_id else "1.1"
    if version == "1.1":
        for article in articles:
            for paragraph in article["paragraphs"]:
                for qa in paragraph["qas"]:
                    del qa["is_impossible"]
    document = {"version": version, "data": articles}
    fingerprint = hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()
    return parse_squad(document, f"{dataset_id}[{split}]", fingerprint)


def _hub_rows(datasets, dataset_id: str, split: str):
    """The rows of one split: from the Hugging Face cache when the dataset's files are there (no
    network needed: ``datasets`` itself refuses a hub id offline), else through ``datasets``, which
    downloads them into that cache."""
    from huggingface_hub import snapshot_download  # comes with datasets

    try:
        folder = snapshot_download(dataset_id, repo_type="dataset", local_files_only=True)
    except Exception:  # not in the cache (the library raises several types): download it below
        folder = None
    cached_error = None
    if folder is not None:
        try:
            return datasets.load_dataset(folder, split=split)
        except Exception as error:  # a partial download or another split: try the hub, else say this
            cached_error = error
    try:
        return datasets.load_dataset(dataset_id, split=split)
    except Exception as error:  # network, unknown id, unknown split: the library raises many types
        shown = cached_error or error
        first_line = str(shown).strip().splitlines()[0] if str(shown).strip() else type(shown).__name__
        where = " (its copy in the Hugging Face cache)" if cached_error else ""
        raise DataFormatError(f"could not load dataset {dataset_id!r} split {split!r}{where}: {first_line}") from None


def combine(datasets_: list[SquadData]) -> SquadData:
    """Several training files as one, de-duplicated by article title (first occurrence wins).

    The SQuAD 2.0 train slice repeats articles of the SQuAD 1.1 train set; keeping the first copy
    lets a user list the file with unanswerable questions first and have it take precedence.
    """
    if len(datasets_) == 1:
        return datasets_[0]
    seen: set[str] = set()
    examples: list[Example] = []
    articles: list[dict] = []
    for data in datasets_:
        new_titles = {title for title in data.titles if title not in seen}
        articles.extend(a for a in data.articles if a["title"] in new_titles)
        examples.extend(e for e in data.examples if e.title in new_titles)
        seen |= new_titles
    fingerprint = hashlib.sha256("|".join(d.fingerprint for d in datasets_).encode()).hexdigest()
    version = "v2.0" if any(d.version == "v2.0" for d in datasets_) else "1.1"
    return SquadData(tuple(examples), tuple(articles), version, "+".join(d.source for d in datasets_), fingerprint)
