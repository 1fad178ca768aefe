"""Teachers by hub id, offline: a cached id resolves to its snapshot, which gives the tokenizer, the weights
and the teacher fingerprint (a distill run by id uses the teacher's own tokenizer, not the packaged
MiniLM's); a missing id and a family the student builder cannot copy are one-line errors, exit 2."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/report_fixtures.py
import report_fixtures as fx  # noqa: E402
from conftest import article, qa, write_squad  # noqa: E402
from paretodistill.cli import main  # noqa: E402
from paretodistill.distill.teacher_cache import weights_fingerprint  # noqa: E402
from paretodistill.errors import ModelMismatchError  # noqa: E402
from paretodistill.models.student import TEACHER_MODEL_TYPES, resolve_teacher  # noqa: E402

HUB_ID = "org/tiny-qa"


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> tuple[Path, Path]:
    """A hub cache laid out on disk (models--org--tiny-qa/snapshots/abc + refs/main), offline."""
    import huggingface_hub.constants as constants

    source = fx.tiny_checkpoint(tmp_path / "source", seed=4)
    cache = tmp_path / "hub"
    repo = cache / "models--org--tiny-qa"
    shutil.copytree(source, repo / "snapshots" / "abc")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc")
    for name, value in (("HF_HUB_CACHE", str(cache)), ("HF_HUB_OFFLINE", "1")):
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))  # read at import time by huggingface_hub
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return source, repo / "snapshots" / "abc"


def test_cached_id_resolves_to_its_snapshot(hub_cache):
    from paretodistill.distill.run import teacher_tokenizer

    source, snapshot = hub_cache
    assert Path(resolve_teacher(HUB_ID)).resolve() == snapshot.resolve()
    tokenizer = teacher_tokenizer(resolve_teacher(HUB_ID), log=pytest.fail)  # no fallback to MiniLM
    assert len(tokenizer) == len(fx.tiny_tokenizer(source / "again"))
    assert weights_fingerprint(resolve_teacher(HUB_ID)) == weights_fingerprint(source)


def test_missing_id_is_one_line_exit_2(hub_cache, tmp_path, capsys):
    data = write_squad(tmp_path / "d.json", [article(title, "the river", [qa(f"q{title}", "what ?", [("river", 4)])])
                                             for title in "ABCDE"])  # enough articles for every part: the data passes
    assert main(["distill", "--teacher", "org/missing", "--data", str(data), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("paretodistill distill: error: org/missing: no such folder") and "\n" not in err
    assert "not in the Hugging Face cache and HF_HUB_OFFLINE=1 is set" in err
    assert main(["search", "--preset", "smoke", "--teacher", "org/missing", "--data", str(data),
                 "--study", str(tmp_path / "s")]) == 2
    assert "paretodistill search: error: org/missing: no such folder" in capsys.readouterr().err
    assert not (tmp_path / "s" / "study.db").exists()  # refused before any trial
    with pytest.raises(ModelMismatchError, match="not a Hugging Face hub id"):
        resolve_teacher("no/such/folder")


def test_families_without_an_adapter_are_refused_by_name(tmp_path):
    from transformers import DistilBertConfig, GPT2Config

    GPT2Config(vocab_size=50, n_embd=32, n_layer=1, n_head=2).save_pretrained(tmp_path / "gpt2")
    with pytest.raises(ModelMismatchError, match=r"is a 'gpt2' model; paretodistill builds students of the families "
                                                 r"bert, distilbert, roberta, electra, deberta-v2 "):
        resolve_teacher(tmp_path / "gpt2")
    DistilBertConfig(vocab_size=50, dim=32, n_layers=1, n_heads=2, hidden_dim=64).save_pretrained(tmp_path / "distil")
    assert resolve_teacher(tmp_path / "distil") == str(tmp_path / "distil")
    assert {"bert", "paretodistill_bert", "distilbert", "roberta", "electra", "deberta-v2"} <= set(TEACHER_MODEL_TYPES)
    pruned = fx.tiny_checkpoint(tmp_path / "pruned", pruned=True)
    assert resolve_teacher(pruned) == str(pruned)  # a pruned student can teach the next one


def test_distill_run_by_hub_id(hub_cache, tmp_path, one_torch_thread):
    from paretodistill.distill.presets import smoke_config
    from paretodistill.distill.run import run_trial

    _, snapshot = hub_cache
    context = "the river thames flows through london . london is a long city of the empire ."
    articles = [article(f"T{i}", context, [qa(f"{i}a", "what flows through london ?", [("the river thames", 0)]),
                                          qa(f"{i}b", "where does the river flow ?", [("london", 31)]),
                                          qa(f"{i}c", "who won the battle of hastings ?")]) for i in range(5)]
    data = write_squad(tmp_path / "d.json", articles)
    config = smoke_config(str(data), HUB_ID, tmp_path / "cache")
    logs = []
    result = run_trial(config, {}, trial_dir=tmp_path / "trial", log=logs.append)
    assert result.ok, result.failure_reason
    assert not any("has no tokenizer" in line for line in logs)
    record = json.loads((tmp_path / "trial" / "metrics.json").read_text())
    assert record["teacher"]["path"] == HUB_ID and Path(record["teacher"]["resolved"]).resolve() == snapshot.resolve()
    saved = json.loads((Path(result.checkpoint) / "tokenizer.json").read_text())
    assert len(saved["model"]["vocab"]) < 100  # the teacher's tiny tokenizer, not MiniLM's 30522 tokens


def test_smoke_search_by_hub_id(hub_cache, tmp_path, one_torch_thread):
    _, snapshot = hub_cache
    context = "the river thames flows through london . london is a long city of the empire ."
    articles = [article(f"T{i}", context, [qa(f"{i}a", "what flows through london ?", [("the river thames", 0)]),
                                          qa(f"{i}b", "who won the battle of hastings ?")]) for i in range(5)]
    data = write_squad(tmp_path / "d.json", articles)
    study = tmp_path / "s"
    assert main(["search", "--preset", "smoke", "--teacher", HUB_ID, "--data", str(data), "--study", str(study),
                 "--backend", "inline", "--cache-dir", str(tmp_path / "cache")]) == 0
    pareto = json.loads((study / "pareto.json").read_text())
    assert pareto["frontier"], pareto.get("frontier_stage")
    records = [json.loads(p.read_text()) for p in study.glob("trials/*/metrics.json")]
    assert records and all(r["teacher"]["path"] == HUB_ID for r in records)
    assert {Path(r["teacher"]["resolved"]).resolve() for r in records} == {snapshot.resolve()}
