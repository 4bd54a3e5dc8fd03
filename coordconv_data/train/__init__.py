"""Training the registry's models on the generated files.

One engine: :func:`train` starts a run, :func:`resume` continues one, :func:`evaluate_run` scores
one; :func:`~.fit.fit` is the one loop they share, and each task kind is one class in :mod:`.tasks`.
The options are described in :mod:`.options` (no torch), their per-arch defaults and checks in
:mod:`.config`, the run folder in :mod:`.run`, processes under torchrun in :mod:`.distributed`.

Importing this package imports no torch: the names below are loaded on first use, so the command
line can read :mod:`.options` and :mod:`.experiments` cheaply.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "TrainConfig": ".options",
    **dict.fromkeys(("defaults_for", "resolve", "trainable_archs"), ".config"),
    "TrainError": ".errors",
    **dict.fromkeys(("Diverged", "FitSummary", "evaluate_run", "fit", "load_run_model", "resume", "train"), ".fit"),
    **dict.fromkeys(("RunDir", "load_checkpoint"), ".run"),
    **dict.fromkeys(("TASKS", "Task", "task_for"), ".tasks"),
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
