"""The user-error types. The CLI prints a :class:`UserError` on one line and exits with code 2;
any other exception is a bug and keeps its traceback (see ``imbal.cli.main``).

Each type also derives from the built-in exception a library user would catch (``ValueError``,
``FileNotFoundError``), so ``except ValueError`` keeps working for code that imports imbal.
"""

from __future__ import annotations


class UserError(Exception):
    """Something the user gave is wrong (a config value, a data file, a run folder); not a bug."""


class ConfigError(UserError, ValueError):
    """A bad configuration key or value."""


class DataError(UserError, ValueError):
    """Data that cannot be used as given: bad values, labels, shapes or a corrupt file."""


class MissingFileError(UserError, FileNotFoundError):
    """A file or folder the user named does not exist."""


class RunFolderError(UserError, ValueError):
    """A run or study folder that does not match what was asked of it (another run, a changed config)."""


class CellFailed(UserError, RuntimeError):
    """A grid cell's trainer process stopped on a user error; the message is its one line."""


# the exit code of a grid cell's process that stopped on a user error (as the CLI's; a crash exits 1)
USER_ERROR_EXIT = 2
