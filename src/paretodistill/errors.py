"""Errors a user can act on.

Every problem with the user's input (a data file, a config, an architecture, a search space)
raises a subclass of ``ParetodistillError``; the command line prints its message and exits with
status 2 instead of showing a traceback.
"""


class ParetodistillError(Exception):
    """Base class for errors caused by the user's input, shown without a traceback."""


class DataFormatError(ParetodistillError):
    """A SQuAD file that is malformed or inconsistent (offsets, versions, empty files)."""


class ConfigError(ParetodistillError):
    """A config value or override that is unknown, mistyped or out of range."""


class ModelMismatchError(ParetodistillError):
    """A tokenizer, checkpoint or architecture that does not fit what it is combined with."""
