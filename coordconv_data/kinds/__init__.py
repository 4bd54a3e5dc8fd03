"""One object per dataset kind: schema and validation, statistics, preview tiles, class names and
palette, and the generator's entry points, each kind in one module.

``KINDS`` maps a kind's name (the ``dataset`` attribute of its files) to its :class:`Kind`;
:func:`get_kind` looks one up with a one-line error. The store validates every file it opens
against its kind; ``info`` and ``preview`` ask the kind for statistics and tiles; the CLI and
callers reach the generators through ``kind.generator``.
"""

from __future__ import annotations

from ..writer import StoreError
from .base import ArraySpec, Kind, LayoutSpec, MalformedFile
from .lanes import LANES
from .not_so_clevr import NOT_SO_CLEVR
from .sort_of_clevr import SORT_OF_CLEVR

__all__ = ["KINDS", "get_kind", "Kind", "ArraySpec", "LayoutSpec", "MalformedFile",
           "NOT_SO_CLEVR", "SORT_OF_CLEVR", "LANES"]

KINDS: dict[str, Kind] = {k.name: k for k in (NOT_SO_CLEVR, SORT_OF_CLEVR, LANES)}


def get_kind(name: str) -> Kind:
    """The kind called ``name``; :class:`StoreError` naming the known ones otherwise."""
    try:
        return KINDS[name]
    except (KeyError, TypeError):
        raise StoreError(f"unknown dataset kind {name!r}; known: {', '.join(sorted(KINDS))}") from None
