"""The trainer's two kinds of user-facing failure, each with a one-line message."""

from __future__ import annotations

from ..errors import CoordDataError

__all__ = ["TrainError", "OptionError"]


class TrainError(CoordDataError):
    """A runtime problem (wrong file, missing split, unusable run dir); the message is one line."""


class OptionError(ValueError):
    """A bad option value: ``option`` names it (e.g. ``--fs``), the message says why."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option
