"""Training the registry's models on the generated files (imports torch).

One engine: :func:`train` starts a run, :func:`resume` continues one, :func:`evaluate_run` scores
one; :func:`~.fit.fit` is the one loop they share, and each task kind is one class in :mod:`.tasks`.
Options and their defaults are in :mod:`.config`, the run folder in :mod:`.run`, processes under
torchrun in :mod:`.distributed`.
"""

from .config import TrainConfig, defaults_for, resolve, trainable_archs
from .errors import TrainError
from .fit import Diverged, FitSummary, evaluate_run, fit, load_run_model, resume, train
from .run import RunDir, load_checkpoint
from .tasks import TASKS, Task, task_for

__all__ = ["TrainConfig", "TrainError", "Diverged", "FitSummary", "train", "resume", "fit", "evaluate_run",
           "load_run_model", "resolve", "defaults_for", "trainable_archs", "RunDir", "load_checkpoint", "TASKS",
           "Task", "task_for"]
