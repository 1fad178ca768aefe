"""Errors a user can act on, and the exit status each one ends a command with.

Every problem with the user's input (a data file, a config, an architecture, a search space, a
study folder) raises a subclass of ``ParetodistillError``; the command line prints its message
as one line and exits with status 2 (``BAD_INPUT``). A failure of the machine rather than of the
input (a full disk, an unreadable file, a database that went away) is an ``EnvironmentFailure``
(or an ``OSError``): one line, exit status 1 (``FAILED``), and so is a search stage whose every
trial failed for one reason (``StageFailure``). Only a bug shows a traceback.
"""

OK = 0
FAILED = 1  # the environment failed (or a bug: then with its traceback); the input may be fine
BAD_INPUT = 2  # the input is wrong: one line naming it; nothing was spent
INTERRUPTED = 130  # Ctrl-C: what ran is kept; the same command continues
TERMINATED = 143  # SIGTERM (128 + 15), taken as Ctrl-C: what ran is kept; the same command continues


class ParetodistillError(Exception):
    """Base class for errors caused by the user's input, shown without a traceback."""


class DataFormatError(ParetodistillError):
    """A SQuAD file that is malformed or inconsistent (offsets, versions, empty files)."""


class ConfigError(ParetodistillError):
    """A config value or override that is unknown, mistyped or out of range."""


class ModelMismatchError(ParetodistillError):
    """A tokenizer, checkpoint or architecture that does not fit what it is combined with."""


class StudyError(ParetodistillError):
    """A study folder that cannot be used as asked: in use by another search, started with other
    settings, not a folder, or holding a database that cannot be read or written."""


class EnvironmentFailure(Exception):
    """The machine failed the run, not the input: a full disk, an unreadable file, a lost database.
    Shown as one line with exit status 1; the work done so far is kept and the same command continues."""


class RunFailed(Exception):
    """A run that ended without a student although its input was fine: every flash trial of a
    search failed, or a distillation diverged or ran out of memory. ``kind`` names the trial
    failure (``trial.FAILURE_KINDS``; ``"every_flash_trial"`` for a search). One line, exit status 1."""

    def __init__(self, message: str, kind: str):
        super().__init__(message)
        self.kind = kind


class StageFailure(RunFailed):
    """Every trial of a search stage failed for one and the same reason, so the search stopped
    before its next stage. Shown as one line with exit status 1: the settings may be fine and the
    machine not (out of memory), or the reverse; the trials and their reasons are kept in the study."""

    def __init__(self, message: str):
        super().__init__(message, "every_trial_of_a_stage")
