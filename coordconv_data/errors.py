"""The one family of errors the library raises for a person to read.

Every message is one line that says what is wrong and what is allowed. Two branches:

* :class:`InvalidParameter`: a value the caller chose is not allowed (a spec field, a training
  option, a model hyperparameter). ``field`` names it as the library knows it (``n``, ``test_n``,
  ``batch_size``); the CLI turns the field into its flag (``--n``, ``--test-n``) in one place and
  exits 2, as for any usage error.
* everything else (a file of the wrong kind, a corrupt or missing file, a full disk, a run folder
  in use): a runtime failure; the CLI exits 1.

This module imports nothing, so any part of the package can raise these errors.
"""

from __future__ import annotations

__all__ = ["CoordDataError", "InvalidParameter"]


class CoordDataError(Exception):
    """Base of every error meant for the user; ``str(error)`` is one line."""


class InvalidParameter(CoordDataError, ValueError):
    """A parameter value that is not allowed; ``field`` names the parameter (a Python name).

    The message names the field too, so it reads well outside the CLI: ``n must be at least 1, got 0``.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field

    def __reduce__(self) -> tuple:  # pickles (e.g. sent between processes) with its field
        return (type(self), (self.field, str(self)))
