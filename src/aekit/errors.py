"""The one exception type a user's mistake raises.

The CLI catches :class:`AekitError` and prints its message as one line on stderr
with exit code 2; anything else is a bug and keeps its traceback.
"""


class AekitError(Exception):
    """A problem with the user's input, data or environment, with a message that says what to do."""


class DataError(AekitError, ValueError):
    """A data file is missing, corrupt, or not what it claims to be."""


class ConfigError(AekitError, ValueError):
    """A configuration key or value is not allowed."""
