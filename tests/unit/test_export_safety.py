"""Export, report and loading under slips and bad files: each test tries the failure for real.

An ``--out`` aimed at the study or the checkpoint, a file where a folder belongs, a crash halfway,
a checkpoint with a symbolic link out of it, a checkpoint shipping code that writes a marker file
when run, absolute paths on their way into a published card: the study and the user's files stay
intact, the planted code never runs (unless ``--trust-remote-code``), and the command says one line.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/report_fixtures.py
import report_fixtures as fx  # noqa: E402
from conftest import article, fingerprint, qa, write_squad  # noqa: E402
from paretodistill.cli import main  # noqa: E402
from paretodistill.errors import ModelMismatchError  # noqa: E402
from paretodistill.export import students as export_module  # noqa: E402
from paretodistill.export.students import ExportError, export_trial  # noqa: E402
from paretodistill.models import pruned_bert  # noqa: E402
from paretodistill.outputs import OutputRefused  # noqa: E402
from paretodistill.report.paths import public_text  # noqa: E402

M = 1_000_000
SECRET_HOME = "/home/ann/projects/secret"



pytestmark = pytest.mark.usefixtures("quiet_transformers")


def one_line_error(argv: list[str], capsys) -> str:
    capsys.readouterr()  # what building the fixtures printed (progress bars)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, repr(err)
    return err


def plant(folder: Path, module: str, marker: Path, body: str = "") -> None:
    """A Python file in a checkpoint that writes ``marker`` as soon as anything imports it."""
    (folder / f"{module}.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n{body}")


def crafted_pruned(folder: Path, marker: Path) -> Path:
    """A pruned student whose pruned_bert.py (which its auto_map names) also writes the marker."""
    fx.tiny_checkpoint(folder, pruned=True, seed=3)
    plant(folder, "pruned_bert", marker, Path(pruned_bert.__file__).read_text())
    return folder


def crafted_bert(folder: Path, marker: Path, model_type: str = "bert") -> Path:
    """A checkpoint whose config maps the Auto classes to a planted evil.py."""
    fx.tiny_checkpoint(folder)
    plant(folder, "evil", marker, "from transformers import BertConfig, BertForQuestionAnswering\n"
                                  "class Config(BertConfig):\n    model_type = 'evil'\n"
                                  "class Model(BertForQuestionAnswering):\n    config_class = Config\n")
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type=model_type, auto_map={"AutoConfig": "evil.Config", "AutoModelForQuestionAnswering": "evil.Model"})
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def make_study(directory: Path, checkpoints: list[str], split: dict | None = None) -> Path:
    trials = [fx.FakeTrial(70.0 - i, (20 - i) * M, 9.0 - i, params=fx.params_for(i), test_exact=68.0, checkpoint=c)
              for i, c in enumerate(checkpoints)]
    return fx.write_study(directory, fx.HAND_FLASH[:3], trials, fx.HAND_BASELINE, objectives=fx.OBJECTIVES_3D, split=split)


@pytest.fixture
def study(tmp_path) -> Path:
    """Regular trial 0: a plain checkpoint inside the study (absolute path); trial 1: a pruned one (relative)."""
    directory = tmp_path / "study"
    fx.tiny_checkpoint(directory / "trials" / "0" / "checkpoint", metrics={"na_threshold": -1.5})
    fx.tiny_checkpoint(directory / "trials" / "1" / "checkpoint", pruned=True, seed=3)
    return make_study(directory, [str(directory / "trials" / "0" / "checkpoint"), "trials/1/checkpoint"])


# ---------------------------------------------------------------- --out aimed at what the command reads
@pytest.mark.parametrize("where, says", [("study", "is the study"), ("checkpoint", "is the trial's checkpoint"),
                                         ("inside the study", "lies inside the study"),
                                         ("above the study", "holds the study")],
                         ids=["study", "checkpoint", "inside the study", "above the study"])
def test_export_never_writes_over_the_study_or_the_checkpoint(study, capsys, where, says):
    out = {"study": study, "checkpoint": study / "trials" / "0" / "checkpoint",
           "inside the study": study / "trials", "above the study": study.parent}[where]
    before = fingerprint(study)
    err = one_line_error(["export", "--study", str(study), "--trial", "0", "--force", "--out", str(out)], capsys)
    assert f"--out {out} {says} (" in err and "it never writes over its inputs" in err
    assert fingerprint(study) == before


def test_export_out_through_a_link_to_the_study_is_refused(study, tmp_path, capsys):
    link = tmp_path / "looks-harmless"
    link.symlink_to(study, target_is_directory=True)
    before = fingerprint(study)
    one_line_error(["export", "--study", str(study), "--trial", "0", "--force", "--out", str(link)], capsys)
    assert fingerprint(study) == before


def test_export_out_naming_a_file_is_one_line(study, tmp_path, capsys):
    notes = tmp_path / "notes.txt"
    notes.write_text("mine")
    err = one_line_error(["export", "--study", str(study), "--trial", "0", "--force", "--out", str(notes)], capsys)
    assert "is a file; export writes a folder" in err and notes.read_text() == "mine"


def test_force_replaces_only_an_earlier_export(study, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("a year of work")
    with pytest.raises(OutputRefused, match="not an export"):
        export_trial(study, 0, mine, overwrite=True)
    assert (mine / "thesis.tex").read_text() == "a year of work"


def test_a_crash_while_exporting_leaves_the_earlier_export(study, tmp_path, monkeypatch):
    out = tmp_path / "exported"
    export_trial(study, 0, out)
    before = fingerprint(out)

    def crash(info):
        raise RuntimeError("power cut")

    monkeypatch.setattr(export_module, "model_card", crash)  # after the copy, the ONNX check and export.json's data
    with pytest.raises(RuntimeError, match="power cut"):
        export_trial(study, 1, out, overwrite=True)
    assert fingerprint(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exported", "study"]  # no staging folder left behind
    monkeypatch.undo()
    assert export_trial(study, 1, out, overwrite=True)["trial"] == 1


# ---------------------------------------------------------------- symbolic links
def test_a_link_out_of_the_checkpoint_is_not_copied(study, tmp_path):
    secret = tmp_path / "id_rsa"
    secret.write_text("PRIVATE KEY")
    checkpoint = study / "trials" / "0" / "checkpoint"
    (checkpoint / "notes.txt").symlink_to(secret)
    (checkpoint / "home").symlink_to(tmp_path, target_is_directory=True)
    result = export_trial(study, 0, tmp_path / "out")
    out = Path(result["out"])
    assert not (out / "notes.txt").exists() and not (out / "home").exists()
    assert "PRIVATE KEY" not in "".join(p.read_text(errors="replace") for p in out.rglob("*") if p.is_file())
    assert any("symbolic links" in w and "notes.txt" in w and "home" in w for w in result["warnings"])


def test_a_checkpoint_whose_weights_are_a_link_is_refused(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    checkpoint = fx.tiny_checkpoint(tmp_path / "study" / "ckpt")
    elsewhere.mkdir()
    (checkpoint / "model.safetensors").rename(elsewhere / "model.safetensors")
    (checkpoint / "model.safetensors").symlink_to(elsewhere / "model.safetensors")
    study = make_study(tmp_path / "study", ["ckpt"])
    with pytest.raises(ExportError, match="symbolic links are not followed: model.safetensors"):
        export_trial(study, 0, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------- code shipped inside a checkpoint
def test_the_planted_code_is_live(tmp_path, monkeypatch):
    """The controls: the planted files write the marker when run, and the loader runs a foreign one
    when --trust-remote-code is given; so a marker missing below means the code did not run."""
    import runpy

    import transformers.dynamic_module_utils as dynamic

    from paretodistill.models.loading import load_qa_model

    marker = tmp_path / "marker"
    try:
        runpy.run_path(str(crafted_pruned(tmp_path / "pruned", marker) / "pruned_bert.py"))
    finally:  # the planted copy registered its own classes with transformers: put the installed ones back
        from transformers import AutoConfig, AutoModelForQuestionAnswering

        from paretodistill.models import pruned_bert

        AutoConfig.register(pruned_bert.MODEL_TYPE, pruned_bert.PrunedBertConfig, exist_ok=True)
        AutoModelForQuestionAnswering.register(pruned_bert.PrunedBertConfig, pruned_bert.PrunedBertForQuestionAnswering,
                                               exist_ok=True)
    assert marker.exists()
    marker.unlink()
    monkeypatch.setattr(dynamic, "HF_MODULES_CACHE", str(tmp_path / "modules"))  # keep the copy it imports here
    monkeypatch.setattr(sys, "path", list(sys.path))
    load_qa_model(crafted_bert(tmp_path / "foreign", marker, model_type="evil"), trust_remote_code=True)
    assert marker.exists()


def test_export_onnx_does_not_run_or_ship_planted_code(tmp_path):
    pytest.importorskip("onnxruntime")
    marker = tmp_path / "marker"
    crafted_pruned(tmp_path / "study" / "ckpt", marker)
    study = make_study(tmp_path / "study", ["ckpt"])
    result = export_trial(study, 0, tmp_path / "out", onnx=True)
    assert not marker.exists()
    assert result["onnx"]["max_abs_diff"] <= 1e-4
    shipped = (tmp_path / "out" / "pruned_bert.py").read_text()
    assert shipped == Path(pruned_bert.__file__).read_text()  # the installed code, not the planted file


def test_export_onnx_in_a_fresh_process_does_not_run_planted_code(tmp_path):
    """The reported case: `paretodistill export --onnx` in a new Python, where nothing had registered
    the student classes yet, loaded the checkpoint's own pruned_bert.py with trust_remote_code=True."""
    import os
    import subprocess

    import paretodistill

    pytest.importorskip("onnxruntime")
    marker = tmp_path / "marker"
    crafted_pruned(tmp_path / "study" / "ckpt", marker)
    study = make_study(tmp_path / "study", ["ckpt"])
    source = str(Path(paretodistill.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([source, os.environ.get("PYTHONPATH", "")]),
           "HF_MODULES_CACHE": str(tmp_path / "modules")}  # were it imported, its copy stays here
    done = subprocess.run([sys.executable, "-m", "paretodistill.cli", "export", "--study", str(study), "--trial", "0",
                           "--out", str(tmp_path / "out"), "--onnx"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ONNX logits match" in done.stdout and not marker.exists()


def test_export_refuses_a_foreign_auto_map(tmp_path):
    marker = tmp_path / "marker"
    crafted_bert(tmp_path / "study" / "ckpt", marker)
    study = make_study(tmp_path / "study", ["ckpt"])
    with pytest.raises(ExportError, match="--trust-remote-code"):
        export_trial(study, 0, tmp_path / "out", onnx=True)
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_predict_and_evaluate_do_not_run_planted_code(tmp_path, capsys):
    marker = tmp_path / "marker"
    pruned = crafted_pruned(tmp_path / "pruned", marker)
    bert = crafted_bert(tmp_path / "bert", marker)
    context = "the river thames flows through london"
    data = write_squad(tmp_path / "d.json", [article("T", context, [qa("q1", "what flows through london?",
                                                                      [("the river thames", 0)])])])
    for model in (pruned, bert):
        assert main(["predict", "--model", str(model), "--question", "what flows?", "--context", context]) == 0
        assert main(["evaluate", "--model", str(model), "--data", str(data), "--cache-dir", str(tmp_path / "cache")]) == 0
    capsys.readouterr()
    assert not marker.exists()


def test_unknown_model_type_with_code_is_one_line_not_a_prompt(tmp_path, capsys):
    from paretodistill.models.loading import load_qa_model

    marker = tmp_path / "marker"
    model = crafted_bert(tmp_path / "crafted", marker, model_type="evil")
    with pytest.raises(ModelMismatchError, match="--trust-remote-code"):
        load_qa_model(model)
    err = one_line_error(["predict", "--model", str(model), "--question", "who?", "--context", "the city"], capsys)
    assert "--trust-remote-code" in err and not marker.exists()


# ---------------------------------------------------------------- no absolute paths in what is published
def test_the_export_names_no_absolute_path(tmp_path):
    data_file = tmp_path / "data" / "dev-v2.0.json"
    checkpoint = fx.tiny_checkpoint(tmp_path / "study" / "trials" / "0" / "checkpoint", metrics={
        "na_threshold": -1.5, "teacher": {"path": f"{SECRET_HOME}/teacher"},
        "config": {"output_dir": str(tmp_path / "study"), "data": {"split_file": str(data_file)}}})
    split = {"source": str(data_file), "source_fingerprint": "0" * 64, "seed": 13,
             "train": ["A"], "validation": ["D"], "test": ["E"]}
    (checkpoint / "split.json").write_text(json.dumps(split))
    study = make_study(tmp_path / "study", [str(checkpoint)], split={**split, "split_file": f"{SECRET_HOME}/dev.json"})
    out = Path(export_trial(study, 0, tmp_path / "out", int8=False)["out"])
    for name in ("README.md", "export.json", "metrics.json", "split.json"):
        text = (out / name).read_text()
        assert str(tmp_path) not in text and SECRET_HOME not in text, name
    info = json.loads((out / "export.json").read_text())
    assert info["source_checkpoint"] == "trials/0/checkpoint" and info["study_directory"] == "study"
    assert info["name"] == "out" and "path" not in info
    assert json.loads((out / "split.json").read_text())["source"] == "dev-v2.0.json"
    assert 'from_pretrained("out")' in (out / "README.md").read_text()


@pytest.mark.parametrize("text, expected", [
    ("/home/ann/data/dev.json", "dev.json"),
    ("source: /tmp/x/study/trials/3/checkpoint/ (moved)", "source: checkpoint (moved)"),
    ("C:\\Users\\ann\\dev.json and ~/runs/s", "dev.json and s"),
    ("a+/abs/b.json", "a+b.json"),
    ("runs/teacher-minilm, ../shared/data/x.json, https://hf.co/org/model, exact / f1, 2/3", None),
])
def test_public_text_keeps_only_the_last_part_of_absolute_paths(text, expected):
    assert public_text(text) == (text if expected is None else expected)


# ---------------------------------------------------------------- the report's --out
@pytest.fixture
def report_study(tmp_path) -> Path:
    return fx.write_study(tmp_path / "study", fx.HAND_FLASH, baseline=fx.HAND_BASELINE)


def test_report_out_study_db_is_refused_and_the_db_intact(report_study, capsys):
    before = fingerprint(report_study)
    for out in (report_study / "study.db", report_study / "pareto.json", report_study, report_study.parent):
        err = one_line_error(["report", "--study", str(report_study), "--out", str(out)], capsys)
        assert "--out" in err
    assert fingerprint(report_study) == before


def test_report_in_the_study_folder_and_over_an_earlier_report(report_study, capsys):
    out = report_study / "report.html"
    assert main(["report", "--study", str(report_study), "--out", str(out)]) == 0
    assert main(["report", "--study", str(report_study), "--out", str(out)]) == 0  # replaces its own earlier report
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert not list(report_study.glob(".*.tmp"))


# ---------------------------------------------------------------- analysis.json in the report
def test_analysis_values_are_escaped_in_the_report(report_study, tmp_path):
    from paretodistill.report.html import build_report, write_analysis

    analysis = fx.demo_analysis(topics=2, per_topic=5)
    attack = "<script>alert(1)</script>"
    analysis.update(model=attack, rule=attack, categories={k: f"{v}{attack}" for k, v in analysis["categories"].items()})
    analysis["counts"]["missing_predictions"] = attack
    analysis["by_topic"][0]["title"] = attack
    for group in analysis["examples"].values():
        for example in group:
            example.update(question=attack, title=attack, id=attack, prediction=attack, gold=[attack])
            example["context"]["text"] = attack + example["context"]["text"]
    write_analysis(analysis, report_study / "analysis" / "crafted")
    page = build_report(report_study, tmp_path / "report.html").read_text()
    assert attack not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert attack not in (report_study / "analysis" / "crafted" / "analysis.html").read_text()


@pytest.mark.parametrize("content, message", [
    ("{not json", "not an analysis.json paretodistill wrote"),
    ('{"counts": {"errors": "<b>7</b>"}, "categories": {}, "by_topic": [], "examples": {}}', "counts.questions"),
    ("[1, 2]", "not a JSON object"),
])
def test_a_malformed_analysis_is_one_line(report_study, tmp_path, capsys, content, message):
    (report_study / "analysis" / "bad").mkdir(parents=True)
    (report_study / "analysis" / "bad" / "analysis.json").write_text(content)
    err = one_line_error(["report", "--study", str(report_study), "--out", str(tmp_path / "r.html")], capsys)
    assert message in err
