"""The exception types a user's mistake (or a run that cannot go on) raises.

The CLI catches :class:`AekitError` and prints its message as one line on stderr with the
error's ``exit_code`` (2 for a mistake in the input; 3 when training diverged); anything else
is a bug and keeps its traceback.
"""


class AekitError(Exception):
    """A problem with the user's input, data or environment, with a message that says what to do."""

    exit_code = 2


class DataError(AekitError, ValueError):
    """A data file is missing, corrupt, or not what it claims to be."""


class ConfigError(AekitError, ValueError):
    """A configuration key or value is not allowed."""


class TrainingDiverged(AekitError, ArithmeticError):
    """The loss became NaN or infinite: training stopped at once, and nothing claims success."""

    exit_code = 3
