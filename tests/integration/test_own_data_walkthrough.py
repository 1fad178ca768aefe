"""The README's "Your own data" walk-through, run as written: a user's own train, validation and test
files (a small real slice of the SQuAD 2.0 dev set, with titles and ids of their own and no
``is_impossible``) go through the smoke search command of the README's code block, parsed from
README.md so that the test breaks when the README drifts."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from paretodistill.cli import build_parser, main

pytestmark = pytest.mark.integration

README = Path(__file__).resolve().parents[2] / "README.md"
PROGRAM = ".venv/bin/paretodistill"
# The test's only change to the README's command: one flash trial, scored on the test part too,
# and no regular stage, so that it runs in seconds (the files and flags are the README's).
FAST = ["--set", "search.flash.n_trials=1", "--set", "search.flash.evaluate_test=true", "--set", "search.regular.top_k=0"]


def readme_commands() -> list[list[str]]:
    """The commands of the code block under "## Your own data", continuation lines joined."""
    section = README.read_text(encoding="utf-8").split("\n## Your own data\n", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [shlex.split(line) for line in block.replace("\\\n", " ").splitlines() if line.strip()]
    assert commands and all(command[0] == PROGRAM for command in commands), commands
    return [command[1:] for command in commands]


def write_own_files(folder: Path, dev_v2: Path) -> dict[str, int]:
    """Two training articles (60 questions each), one validation and one test article (30 each), from
    the dev set's first four articles, renamed as a user's own; returns the questions per file."""
    articles = json.loads(dev_v2.read_text(encoding="utf-8"))["data"][:4]
    folder.mkdir()
    counts = {}
    for name, chosen, per_article in (("train", articles[:2], 60), ("validation", articles[2:3], 30), ("test", articles[3:4], 30)):
        data = [{"title": f"{name} handbook {a}", "paragraphs": []} for a in range(len(chosen))]
        for own, source in zip(data, chosen):
            questions = [(paragraph["context"], q) for paragraph in source["paragraphs"] for q in paragraph["qas"]][:per_article]
            for context in dict.fromkeys(c for c, _ in questions):
                own["paragraphs"].append({"context": context, "qas": [
                    {"id": f"{name}-{n}", "question": q["question"], "answers": q["answers"]}  # no is_impossible
                    for n, (c, q) in enumerate(questions) if c == context]})
        for n, own in enumerate(data):  # ids unique across the file
            for paragraph in own["paragraphs"]:
                for q in paragraph["qas"]:
                    q["id"] = f"{q['id']}-{n}"
        (folder / f"{name}.json").write_text(json.dumps({"data": data}))
        counts[name] = sum(len(p["qas"]) for own in data for p in own["paragraphs"])
    return counts


def test_every_readme_command_parses():
    parser = build_parser()
    for command in readme_commands():
        parser.parse_args(command)  # a flag the README shows and the command line lacks exits here


def test_the_readme_smoke_search_runs_on_a_users_own_files(tmp_path, monkeypatch, dev_v2, cache_dir):
    counts = write_own_files(tmp_path / "own", dev_v2)
    assert counts == {"train": 120, "validation": 30, "test": 30}
    smoke = [command for command in readme_commands() if "--preset" in command and "smoke" in command]
    assert len(smoke) == 1
    monkeypatch.chdir(tmp_path)  # the README's own/ and runs/ paths, under tmp_path
    assert main([*smoke[0], "--cache-dir", str(cache_dir), *FAST]) == 0

    study = tmp_path / smoke[0][smoke[0].index("--study") + 1]
    record = json.loads((study / "trials" / "flash-0" / "metrics.json").read_text())
    data = record["data"]
    assert {part: data[part]["questions"] for part in counts} == counts  # each part is its file, whole
    assert data["validation"]["unanswerable"] > 0 and data["test"]["unanswerable"] > 0  # no is_impossible: from the answers
    assert data["validation_files"] == ["own/validation.json"] and data["test_files"] == ["own/test.json"]
    assert record["split"]["files"] == {"validation": ["own/validation.json"], "test": ["own/test.json"]}
    assert 0 <= record["exact"] <= 100 and record["total"] == counts["validation"]  # validation metrics
    assert 0 <= record["test"]["exact"] <= 100 and record["test"]["total"] == counts["test"]  # test metrics
