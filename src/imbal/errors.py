"""The user-error types. The CLI prints a :class:`UserError` on one line and exits with code 2;
any other exception is a bug and keeps its traceback (see ``imbal.cli.main``), except a
:class:`NonFiniteLossError`, which stops a run (exit code 1).

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


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN/inf loss; the run folder keeps the last good checkpoint.

    Not a user error; it lives here so that the CLI catches it without importing the trainer.
    """
