"""No command writes over its inputs, into a model or a study, or over what paretodistill did not write.

Each test aims a command's output at what it must not replace (its own input, a model's config.json,
a model folder, a user's file, a folder that appears at ``--out`` while an export runs) and checks
the exit status, the one line, and that every byte of what was there is still there. The module
imports only what existed before the guard (``paretodistill.cli``, ``export.students``), so each
test also runs against an older tree and shows what happened there.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/report_fixtures.py
import report_fixtures as fx  # noqa: E402
from conftest import article, fingerprint, qa, write_squad  # noqa: E402
from paretodistill.cli import main  # noqa: E402
from paretodistill.export import students as export_module  # noqa: E402

M = 1_000_000
CONTEXT = "the river thames flows through london . paris is the capital of france ."



def refused(argv: list, capsys, *expected: str) -> str:
    """Exit status 2 and one line on stderr holding each of ``expected``."""
    capsys.readouterr()
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, repr(err)
    for text in expected:
        assert text in err, err
    return err


pytestmark = pytest.mark.usefixtures("quiet_transformers")


@pytest.fixture
def data(tmp_path) -> Path:
    return write_squad(tmp_path / "D.json", [article("T", CONTEXT, [
        qa("q1", "where does the river thames flow ?", [("london", CONTEXT.index("london"))]),
        qa("q2", "what is the capital of spain ?")])])


@pytest.fixture
def predictions(tmp_path) -> Path:
    path = tmp_path / "P.json"
    path.write_text(json.dumps({"q1": "london", "q2": ""}))
    return path


@pytest.fixture(scope="module")
def model(tmp_path_factory, one_torch_thread) -> Path:
    """A tiny checkpoint that records its threshold (what predict reads from metrics.json)."""
    return fx.tiny_checkpoint(tmp_path_factory.mktemp("m") / "student", seed=1, metrics={"na_threshold": -1.5})


@pytest.fixture
def study(tmp_path) -> Path:
    """A study whose regular trial 0 kept a tiny checkpoint."""
    directory = tmp_path / "study"
    checkpoint = fx.tiny_checkpoint(directory / "trials" / "0" / "checkpoint", metrics={"na_threshold": -1.5})
    trial = fx.FakeTrial(70.0, 20 * M, 9.0, params=fx.params_for(0), test_exact=68.0, checkpoint=str(checkpoint))
    return fx.write_study(directory, fx.HAND_FLASH[:3], [trial], fx.HAND_BASELINE, objectives=fx.OBJECTIVES_3D)


# ---------------------------------------------------------------- score
@pytest.mark.parametrize("which", ["data", "predictions", "data by another name", "data by a link", "data by a hard link"])
def test_score_never_writes_over_its_inputs(tmp_path, capsys, data, predictions, which, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    if which == "data by a link":
        (tmp_path / "link.json").symlink_to(data)
    if which == "data by a hard link":
        os.link(data, tmp_path / "hard.json")
    out = {"data": data, "predictions": predictions, "data by another name": "sub/../D.json",
           "data by a link": "link.json", "data by a hard link": "hard.json"}[which]
    before = data.read_bytes(), predictions.read_bytes()
    refused(["score", data, predictions, "-o", out], capsys, "--out-file", "is the ", "never writes over its inputs")
    assert (data.read_bytes(), predictions.read_bytes()) == before


def test_score_replaces_only_its_own_metrics_file(tmp_path, capsys, data, predictions):
    notes = tmp_path / "notes.json"
    notes.write_text('{"mine": "a year of notes"}')
    refused(["score", data, predictions, "-o", notes], capsys, "exists and is not a metrics file")
    assert notes.read_text() == '{"mine": "a year of notes"}'
    out = tmp_path / "metrics.json"
    assert main(["score", str(data), str(predictions), "-o", str(out)]) == 0
    assert main(["score", str(data), str(predictions), "-o", str(out)]) == 0  # its own earlier metrics: replaced
    assert json.loads(out.read_text())["exact"] == 100.0


def test_score_never_writes_into_a_model_folder(capsys, data, predictions, model):
    before = fingerprint(model)
    refused(["score", data, predictions, "-o", model / "scores.json"], capsys, "lies inside", "a model folder")
    assert fingerprint(model) == before


# ---------------------------------------------------------------- predict
def test_predict_out_in_the_model_folder_leaves_the_model_intact(capsys, model):
    before = fingerprint(model)
    for out in (model / "config.json", model / "answers.jsonl", model):
        refused(["predict", "--model", model, "--question", "where ?", "--context", CONTEXT, "--out", out], capsys,
                "--out")
    assert fingerprint(model) == before
    assert main(["predict", "--model", str(model), "--question", "where ?", "--context", CONTEXT]) == 0  # still loads


def test_predict_never_writes_over_its_data_or_a_users_file(tmp_path, capsys, model, data):
    before = data.read_bytes()
    refused(["predict", "--model", model, "--data", data, "--out", data], capsys, "is the data file")
    assert data.read_bytes() == before
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    refused(["predict", "--model", model, "--data", data, "--out", notes], capsys, "exists and is not predict's answers")
    assert notes.read_text() == "mine"
    out = tmp_path / "answers.jsonl"
    for _ in range(2):  # the second run replaces its own earlier answers
        assert main(["predict", "--model", str(model), "--data", str(data), "--out", str(out)]) == 0
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["q1", "q2"]


def test_predict_never_writes_over_the_file_it_reads_on_stdin(tmp_path, capsys, model, monkeypatch):
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"id": "a", "question": "where ?", "context": CONTEXT}) + "\n")
    saved = os.dup(0)
    with open(questions) as stdin:
        os.dup2(stdin.fileno(), 0)
        monkeypatch.setattr(sys, "stdin", stdin)
        try:
            refused(["predict", "--model", model, "--out", questions], capsys, "is the file on stdin")
        finally:
            os.dup2(saved, 0)
            os.close(saved)
    assert json.loads(questions.read_text())["id"] == "a"


# ---------------------------------------------------------------- evaluate
def test_evaluate_out_at_the_model_keeps_its_metrics_and_predict_works(tmp_path, capsys, model, data):
    before = fingerprint(model)
    refused(["evaluate", "--model", model, "--data", data, "--out", model, "--cache-dir", tmp_path / "cache"], capsys,
            "is the model folder")
    assert fingerprint(model) == before
    assert main(["predict", "--model", str(model), "--question", "where ?", "--context", CONTEXT]) == 0


def test_evaluate_never_writes_into_a_study_or_over_a_users_predictions(tmp_path, capsys, model, data, study):
    before = fingerprint(study)
    refused(["evaluate", "--model", model, "--data", data, "--out", study / "trials" / "0"], capsys,
            "lies inside", "a study folder")
    assert fingerprint(study) == before
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "predictions.json").write_text('{"q1": "my own answer"}')
    refused(["evaluate", "--model", model, "--data", data, "--out", mine], capsys, "holds files that are not an evaluation")
    assert (mine / "predictions.json").read_text() == '{"q1": "my own answer"}'
    out = tmp_path / "eval"
    for _ in range(2):  # the second run replaces its own earlier evaluation
        assert main(["evaluate", "--model", str(model), "--data", str(data), "--out", str(out),
                     "--cache-dir", str(tmp_path / "cache")]) == 0
    assert set(json.loads((out / "predictions.json").read_text())) == {"q1", "q2"}


# ---------------------------------------------------------------- report
def test_report_never_replaces_a_page_it_did_not_write(tmp_path, capsys, study, model):
    page = tmp_path / "index.html"
    page.write_text("<!DOCTYPE html><html><body>my own page</body></html>")
    refused(["report", "--study", study, "--out", page], capsys, "exists and is not a report")
    assert "my own page" in page.read_text()
    before = fingerprint(model)
    refused(["report", "--study", study, "--out", model / "report.html"], capsys, "a model folder")
    assert fingerprint(model) == before
    other = fx.write_study(tmp_path / "other", fx.HAND_FLASH[:3])
    refused(["report", "--study", study, "--out", other / "report.html"], capsys, "a study folder")


# ---------------------------------------------------------------- export
def test_a_folder_made_at_out_while_exporting_is_left_as_it_is(study, tmp_path, capsys, monkeypatch):
    """The check at the start found nothing at --out; someone makes the folder before the export is renamed there."""
    out = tmp_path / "exported"
    card = export_module.model_card

    def someone_makes_out_meanwhile(info):
        out.mkdir(exist_ok=True)
        (out / "thesis.tex").write_text("a year of work")
        return card(info)

    monkeypatch.setattr(export_module, "model_card", someone_makes_out_meanwhile)
    refused(["export", "--study", study, "--trial", "0", "--out", out], capsys, "--out")
    assert fingerprint(out) == {"thesis.tex": hashlib.sha256(b"a year of work").hexdigest()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exported", "study"]  # its staging folder removed


def test_an_earlier_export_swapped_for_a_users_folder_while_exporting_is_left_as_it_is(study, tmp_path, capsys,
                                                                                      monkeypatch):
    """--force was given for the earlier export at --out; by the final rename a user's folder stands there instead."""
    out = tmp_path / "exported"
    export_module.export_trial(study, 0, out)
    card = export_module.model_card

    def someone_swaps_out_meanwhile(info):
        shutil.rmtree(out)
        out.mkdir()
        (out / "thesis.tex").write_text("a year of work")
        return card(info)

    monkeypatch.setattr(export_module, "model_card", someone_swaps_out_meanwhile)
    refused(["export", "--study", study, "--trial", "0", "--force", "--out", out], capsys, "is not an export")
    assert fingerprint(out) == {"thesis.tex": hashlib.sha256(b"a year of work").hexdigest()}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exported", "study"]


def test_a_killed_exports_staging_folder_is_removed_by_the_next_export(study, tmp_path, capsys):
    out, ready = tmp_path / "exported", tmp_path / "ready"
    mine, running = tmp_path / ".exported.mine.staging", tmp_path / f".exported.{os.getpid()}.abcdefgh.staging"
    for folder in (mine, running):  # a user's folder, and one of a running export (this process): both kept
        folder.mkdir()
        (folder / "keep").write_text("x")
    code = ("import pathlib, sys, time\nfrom paretodistill.export import students\n"
            f"def hang(info):\n    pathlib.Path({str(ready)!r}).write_text('x')\n    time.sleep(600)\n"
            f"students.model_card = hang\nstudents.export_trial({str(study)!r}, 0, {str(out)!r})\n")
    killed = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 300
    while not ready.exists() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    killed.kill()
    killed.wait()
    assert ready.exists(), "the export never reached its model card"
    left = [p for p in tmp_path.glob(".exported.*.staging") if p not in (mine, running)]
    assert len(left) == 1 and (left[0] / "model.safetensors").is_file()  # what kill -9 leaves
    assert main(["export", "--study", str(study), "--trial", "0", "--out", str(out)]) == 0
    assert not left[0].exists()
    assert (mine / "keep").exists() and (running / "keep").exists()
    assert (out / "export.json").is_file()


def test_the_cards_examples_quote_the_folder_name(study, tmp_path):
    """A folder name with quotes and command substitutions stays one string in every example, and nothing in it runs."""
    name = "st\"u'dent $(touch PWNED) `touch PWNED`"
    export_module.export_trial(study, 0, tmp_path / name, onnx=_has_onnx())
    card = (tmp_path / name / "README.md").read_text()
    blocks = re.findall(r"```(python|bash)\n(.*?)```", card, re.S)
    for body in (body for kind, body in blocks if kind == "python"):
        strings = [node.value for node in ast.walk(ast.parse(body)) if isinstance(node, ast.Constant)]
        assert name in strings, body
    bash = [line for kind, body in blocks if kind == "bash" for line in body.splitlines()]
    assert bash
    for line in bash:  # run with printf in place of the program: the words bash sees
        words = subprocess.run(["bash", "-c", "printf '%s\\n' " + line.split(" ", 1)[1]], cwd=tmp_path,
                               capture_output=True, text=True, check=True).stdout.splitlines()
        assert words == shlex.split(line, comments=True)[1:] and {name, f"{name}/answer.py"} & set(words), line
    assert not (tmp_path / "PWNED").exists()


def _has_onnx() -> bool:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def test_exported_files_get_the_umasks_modes(study, tmp_path):
    weights = study / "trials" / "0" / "checkpoint" / "model.safetensors"
    weights.chmod(0o600)  # as a file written through a private temporary file is left
    previous = os.umask(0o022)
    try:
        out = Path(export_module.export_trial(study, 0, tmp_path / "exported")["out"])
    finally:
        os.umask(previous)
    assert out.stat().st_mode & 0o777 == 0o755
    modes = {p.name: p.stat().st_mode & 0o777 for p in out.iterdir() if p.is_file()}
    assert modes["model.safetensors"] == 0o644 and set(modes.values()) == {0o644}, modes
