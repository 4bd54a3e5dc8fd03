"""What a run writes into its folder, epoch by epoch: the loop hands it each epoch and it records it.

Lightning splits this between its checkpoint callback and its loggers; here one :class:`Recorder`
owns the run folder's files: ``config.json`` once, then after every epoch ``best.pt`` (when the
:class:`~.selection.Selection` improved, with the task's pictures of that model, e.g.
``predictions.png``), ``last.pt`` (everything a resumed run needs), ``metrics.csv``, ``curves.png``
(with the selected epoch marked) and the task's per-epoch pictures; with ``logger`` tensorboard, the
same figures and pictures as TensorBoard events too (:mod:`.loggers`). In a process other than rank 0
it writes nothing.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from .run import RunDir
from .selection import Selection

__all__ = ["Recorder"]


class Recorder:
    def __init__(self, run: RunDir | None, task: Any, log: Callable[[str], None] | None = None) -> None:
        self.run, self.task, self.log = run, task, log
        self.tensorboard: Any = None

    def start(self, record: dict[str, Any], history: list[dict[str, Any]] | None = None) -> None:
        """``config.json``, and the loggers opened (``history``: what a resumed run has done already)."""
        if self.run is None:
            return
        self.run.write_json("config.json", record)
        if getattr(self.task.cfg, "logger", None) == "tensorboard":
            from .loggers import TensorBoardLogger

            self.tensorboard = TensorBoardLogger(self.run.path, self.task)
            self.tensorboard.start(list(history or []))

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()
            self.tensorboard = None

    def epoch(self, epoch: int, model: torch.nn.Module, optimizers: dict[str, torch.optim.Optimizer],
              rows: list[dict[str, Any]], history: list[dict[str, Any]], selection: Selection, improved: bool,
              seconds: float, device: torch.device) -> None:
        """Record a finished epoch: checkpoints first (a kill after them loses no epoch), then the rest."""
        run, task, cfg = self.run, self.task, self.task.cfg
        if run is None:
            return
        payload = {"arch": cfg.arch, "task": cfg.task, "hparams": cfg.hparams, "epoch": epoch,
                   "model": model.state_dict(), "metrics": rows}
        if improved:
            run.save_checkpoint("best.pt", payload)
        run.save_checkpoint("last.pt", {**payload, "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
                                        "history": history, **selection.state_dict()})
        run.write_metrics(history, task.columns())
        run.write_picture("curves.png", task.curves(history, selection.best_epoch))
        pictures = task.epoch_pictures(model, epoch, device)
        if improved:
            pictures.update(task.selected_pictures(model, device))
        for name, picture in pictures.items():
            run.write_picture(name, picture)
        if self.tensorboard is not None:
            self.tensorboard.epoch(epoch, rows, history, selection.best_epoch, pictures)
        if self.log:
            self.log(task.log_line(epoch, cfg.epochs, rows, seconds))
