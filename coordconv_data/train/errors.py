"""The trainer's runtime failure (bad options are :class:`~coordconv_data.errors.InvalidParameter`)."""

from __future__ import annotations

from ..errors import CoordDataError

__all__ = ["TrainError"]


class TrainError(CoordDataError):
    """A runtime problem (a file of the wrong kind, a run folder in use, a diverged run): one line."""
