"""The one family of errors the library raises for a person to read.

Every message is one line that says what is wrong and what is allowed. Two branches:

* :class:`InvalidParameter`: a value the caller chose is not allowed (a spec field, a training
  option, a model hyperparameter). ``field`` names it as the library knows it (``n``, ``test_n``,
  ``batch_size``); the CLI turns the field into its flag (``--n``, ``--test-n``) in one place and
  exits 2, as for any usage error.
* everything else (a file of the wrong kind, a corrupt or missing file, a full disk, a run folder
  in use): a runtime failure; the CLI exits 1.

An error may say what to do about it in a ``hint`` that names parameters as ``{name}`` (``"choose
another {out}"``): the library writes the parameter's own name (``choose another out``), the CLI its
option (``choose another --out``). So no library message names a flag, and the CLI adds the flags in
one place (:meth:`CoordDataError.render`).

This module imports nothing, so any part of the package can raise these errors.
"""

from __future__ import annotations

from typing import Any, Callable

__all__ = ["CoordDataError", "InvalidParameter"]


class _Options(dict):  # type: ignore[type-arg]
    def __init__(self, option: Callable[[str], str]) -> None:
        super().__init__()
        self.option = option

    def __missing__(self, name: str) -> str:
        return self.option(name)


class CoordDataError(Exception):
    """Base of every error meant for the user; ``str(error)`` is one line.

    Args:
        message: what is wrong.
        field: the parameter the error is about (a Python name), if one is.
        hint: what to do, naming parameters as ``{name}``; appended after ``"; "``.
    """

    def __init__(self, message: str = "", *, field: str | None = None, hint: str | None = None) -> None:
        super().__init__(message)
        self.message, self.field, self.hint = message, field, hint

    def render(self, option: Callable[[str], str] = str) -> str:
        """The message and its hint, each parameter the hint names written as ``option(name)``."""
        if not self.hint:
            return self.message
        return f"{self.message}; {self.hint.format_map(_Options(option))}"

    def __str__(self) -> str:
        return self.render()

    def __reduce__(self) -> tuple[Any, ...]:  # pickles (e.g. sent between processes) whole
        return (_rebuild, (type(self), self.message, self.field, self.hint, self.__dict__))


def _rebuild(cls: type, message: str, field: str | None, hint: str | None, state: dict[str, Any]) -> CoordDataError:
    error = Exception.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class InvalidParameter(CoordDataError, ValueError):
    """A parameter value that is not allowed; ``field`` names the parameter (a Python name).

    The message names the field too, so it reads well outside the CLI: ``n must be at least 1, got 0``.
    """

    def __init__(self, field: str, message: str, *, hint: str | None = None) -> None:
        super().__init__(message, field=field, hint=hint)
