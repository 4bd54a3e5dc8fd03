"""Training the registry's models on the generated files (imports torch).

:func:`train` / :func:`resolve` / :func:`evaluate_run` in :mod:`.loop`; per-task batch mapping, loss
and metrics in :mod:`.tasks`; atomic checkpoints in :mod:`.checkpoint`; pictures in :mod:`.plots`.
"""

from .loop import DEFAULTS, OptionError, TrainConfig, TrainError, evaluate_model, evaluate_run, resolve, train

__all__ = ["DEFAULTS", "OptionError", "TrainConfig", "TrainError", "evaluate_model", "evaluate_run", "resolve", "train"]
