"""CoordConv paper datasets, layers, models and training.

The package root stays light: importing it (and running ``coorddata --help``) never imports torch.
The common names are re-exported lazily, imported on first use::

    from coordconv_data import NotSoClevr, CoordConv2d, create_model
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> the module that defines it; importing one of these imports torch.
_LAZY = {
    **dict.fromkeys(("NotSoClevr", "SortOfClevr", "Lanes"), "coordconv_data.datasets"),
    "AddCoordChannels": "coordconv_data.transforms",
    **dict.fromkeys(("AddCoords", "CoordConv1d", "CoordConv2d", "CoordConv3d", "CoordBiasConv2d",
                     "create_model", "list_models", "model_info"), "coordconv_data.models"),
    **dict.fromkeys(("CoordDataError", "InvalidParameter"), "coordconv_data.errors"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'coordconv_data' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
