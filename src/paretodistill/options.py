"""The command-line options every command shares, each defined once so that it is spelled, read and
defaulted alike everywhere (the table in docs/guide.md, "One spelling per option"; a test walks the
parser to keep it so).

* ``--study DIR``: the study folder. ``status``, ``report`` and ``export`` took it as a positional
  argument first; that form still works, with a one-line note on stderr, so scripts keep running.
* ``--teacher`` names a checkpoint in the teacher role; ``--model`` the checkpoint a command
  evaluates, analyses, serves or converts; ``--base`` the encoder a teacher is fine-tuned from.
* ``--batch-size``: training windows per optimizer step; ``--eval-batch-size``: windows per
  inference pass (``predict --batch-size`` is kept as an alias of the latter, with a note).
* ``--device``: ``auto`` (CUDA when available, else the CPU) on every command that runs a PyTorch model.
"""

from __future__ import annotations

import argparse
import sys

from paretodistill.errors import ConfigError

DEFAULT_DEVICE = "auto"
DEVICE_HELP = "auto (CUDA when available, else the CPU), cpu, cuda or cuda:N"
LEGACY_STUDY_DEST = "legacy_study"


def deprecation_note(command: str, old: str, new: str) -> None:
    """One line on stderr: the old spelling still works, the new one is the one documented."""
    print(f"paretodistill {command}: note: {old} is deprecated; use {new} (the old form still works)", file=sys.stderr)


def add_study(parser: argparse.ArgumentParser, help_text: str, positional_alias: bool = False) -> None:
    """``--study DIR``; with ``positional_alias`` the older positional form too, hidden from the help."""
    parser.add_argument("--study", metavar="DIR", help=help_text)
    if positional_alias:
        parser.add_argument(LEGACY_STUDY_DEST, nargs="?", help=argparse.SUPPRESS)


def study_folder(args: argparse.Namespace) -> str:
    """The study folder given with ``--study`` or, noted as deprecated, as the positional argument."""
    legacy = getattr(args, LEGACY_STUDY_DEST, None)
    if legacy is not None and args.study is not None and legacy != args.study:
        raise ConfigError(f"two study folders given: {legacy} and --study {args.study}; give --study DIR once")
    if legacy is not None and args.study is None:
        deprecation_note(args.command, "the positional study folder", f"--study {legacy}")
        return legacy
    if args.study is None:
        raise ConfigError("give the study folder: --study DIR")
    return args.study


def add_device(parser: argparse.ArgumentParser, from_config: bool = False) -> None:
    """``--device``; ``from_config``: a config-driven command, where the flag overrides the config's
    ``device`` (whose own default is ``auto``) only when given."""
    if from_config:
        parser.add_argument("--device", help=f"{DEVICE_HELP} (sets device; default: the config's, auto)")
    else:
        parser.add_argument("--device", default=DEFAULT_DEVICE, help=DEVICE_HELP)


class _DeprecatedAlias(argparse.Action):
    """An older spelling of an option: stores into the new one's destination, with a note."""

    def __init__(self, *args, new_spelling: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.new_spelling = new_spelling

    def __call__(self, parser, namespace, values, option_string=None):
        deprecation_note(parser.prog.split()[-1], option_string, self.new_spelling)
        setattr(namespace, self.dest, values)


def add_eval_batch_size(parser: argparse.ArgumentParser, default: int, old_spelling: str | None = None) -> None:
    """``--eval-batch-size``: windows per inference pass (no gradient); ``old_spelling`` stays an alias."""
    parser.add_argument("--eval-batch-size", type=int, default=default, help="windows per inference pass")
    if old_spelling:
        parser.add_argument(old_spelling, type=int, dest="eval_batch_size", action=_DeprecatedAlias,
                            new_spelling="--eval-batch-size", help=argparse.SUPPRESS)


def add_train_batch_size(parser: argparse.ArgumentParser, default: int) -> None:
    """``--batch-size``: training windows per optimizer step."""
    parser.add_argument("--batch-size", type=int, default=default, help="training windows per optimizer step")
