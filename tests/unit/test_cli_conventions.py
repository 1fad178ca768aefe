"""One spelling per option across every command (docs/guide.md, "One spelling per option"), checked on the
real parser so that a new command or option cannot drift from it; the older spellings still work, with a note."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import pytest

from paretodistill.cli import build_parser, main
from paretodistill.config import ExperimentConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: report_fixtures
import report_fixtures as fx  # noqa: E402

# The commands that run a PyTorch model. export runs ONNX Runtime on the CPU (its check and its int8
# timing), convert only rewrites weights: neither takes --device.
RUNS_A_MODEL = {"quickstart", "teacher", "distill", "search", "predict", "evaluate", "analyze", "pretrain-distill"}
CONFIG_DRIVEN = {"quickstart", "distill", "search", "pretrain-distill"}  # --device overrides the config's device
READS_A_STUDY = {"search", "status", "report", "export"}
TRAINS = {"teacher"}  # the commands whose own flags set a training batch
POSITIONALS = {"score": ["data", "predictions"]}  # the official scoring script's order
CHECKPOINT_FLAGS = {"--teacher", "--model", "--base"}  # teacher role, the checkpoint worked on, an encoder to fine-tune


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


def options(command: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """Every option string shown in the help, with its action (hidden aliases left out)."""
    return {flag: action for action in command._actions if action.help != argparse.SUPPRESS
            for flag in action.option_strings}


def test_no_command_takes_a_positional_study_or_any_positional_but_scores():
    for name, command in subcommands().items():
        shown = [a.dest for a in command._actions if not a.option_strings and a.help != argparse.SUPPRESS]
        assert shown == POSITIONALS.get(name, []), name


def test_every_command_that_reads_a_study_takes_it_as_study():
    taking = {name for name, command in subcommands().items() if "--study" in options(command)}
    assert taking == READS_A_STUDY
    for name in READS_A_STUDY:
        assert options(subcommands()[name])["--study"].metavar == "DIR", name


def test_every_command_that_runs_a_model_has_device_and_it_defaults_to_auto():
    assert ExperimentConfig().device == "auto"
    having = set()
    for name, command in subcommands().items():
        device = options(command).get("--device")
        if device is None:
            continue
        having.add(name)
        if name in CONFIG_DRIVEN:  # unset: the config's device, whose default is auto (checked above)
            assert device.default is None and "default: the config's, auto" in device.help, name
        else:
            assert device.default == "auto", name
        assert "auto (CUDA when available, else the CPU)" in device.help, name
    assert having == RUNS_A_MODEL


def test_batch_size_flags_are_named_by_what_they_batch():
    for name, command in subcommands().items():
        flags = options(command)
        assert not [f for f in flags if "batch" in f and f not in ("--batch-size", "--eval-batch-size")], name
        if "--batch-size" in flags:
            assert name in TRAINS and flags["--batch-size"].help == "training windows per optimizer step", name
        if "--eval-batch-size" in flags:
            assert flags["--eval-batch-size"].help == "windows per inference pass", name
    assert {name for name, c in subcommands().items() if "--eval-batch-size" in options(c)} == {
        "teacher", "predict", "evaluate", "analyze"}


def test_checkpoints_are_named_by_their_role():
    for name, command in subcommands().items():
        flags = set(options(command))
        assert not [f for f in flags if re.search("model|teacher|checkpoint|encoder", f) and f not in CHECKPOINT_FLAGS
                    and f not in ("--train-teacher", "--no-answer-weight")], name
        assert not {"--teacher", "--model"} <= flags, name  # one role per command


HELP_NOISE = re.compile(r"``|TODO|FIXME|XXX|\bsessions?\b|\bissues?\b|/root/|/work/|/home/|heavy imports|one thin function")


def test_no_help_carries_a_developers_note():
    parser = build_parser()
    assert not HELP_NOISE.search(parser.format_help())
    for name, command in subcommands().items():
        assert not HELP_NOISE.search(command.format_help()), name


def test_the_top_level_help_lists_the_commands_in_a_users_order():
    assert list(subcommands())[:8] == ["quickstart", "teacher", "distill", "search", "status", "report", "export", "predict"]
    assert "paretodistill quickstart --smoke" in build_parser().format_help()


@pytest.fixture
def study(tmp_path) -> Path:
    return fx.demo_study(tmp_path / "study")


def test_the_positional_study_still_works_with_a_one_line_note(study, tmp_path, capsys):
    assert main(["report", "--study", str(study), "--out", str(tmp_path / "new.html")]) == 0
    assert capsys.readouterr().err == ""
    assert main(["report", str(study), "--out", str(tmp_path / "old.html")]) == 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "deprecated" in err and f"--study {study}" in err
    assert (tmp_path / "old.html").stat().st_size > 10_000


def test_two_different_study_folders_or_none_are_one_line_errors(study, tmp_path, capsys):
    assert main(["status", str(study), "--study", str(tmp_path / "other")]) == 2
    assert "two study folders" in capsys.readouterr().err
    assert main(["status"]) == 2
    assert capsys.readouterr().err.strip().endswith("give the study folder: --study DIR")


def test_predict_batch_size_is_an_alias_of_eval_batch_size(capsys):
    args = build_parser().parse_args(["predict", "--model", "m", "--batch-size", "7"])
    assert args.eval_batch_size == 7 and args.device == "auto"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--batch-size is deprecated; use --eval-batch-size" in err
    assert build_parser().parse_args(["predict", "--model", "m", "--eval-batch-size", "5"]).eval_batch_size == 5


def test_device_reaches_the_config_of_a_config_driven_command(tmp_path, monkeypatch):
    """distill --device sets the config's device (it was reachable only by --set before)."""
    from paretodistill.distill import run as distill_run

    seen = {}

    def record(config, params, **kwargs):
        seen["device"] = config.device
        raise SystemExit(0)

    monkeypatch.setattr(distill_run, "run_trial", record)
    data = tmp_path / "d.json"
    from conftest import article, qa, write_squad

    write_squad(data, [article("A", "Paris is in France.", [qa("q", "Where is Paris?", [("France", 12)])])])
    with pytest.raises(SystemExit):
        main(["distill", "--preset", "smoke", "--data", str(data), "--out", str(tmp_path / "t"), "--device", "cpu",
              "--cache-dir", str(tmp_path / "cache")])
    assert seen["device"] == "cpu"
