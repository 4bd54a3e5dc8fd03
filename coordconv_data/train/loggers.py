"""TensorBoard: a run's figures, options and pictures as event files in its folder (``--logger tensorboard``).

``metrics.csv`` is always written; this logger adds, in the run folder itself (so ``tensorboard
--logdir runs`` shows every run side by side, named by its folder):

* every figure of ``metrics.csv`` as a scalar ``<split>/<column>`` at step = epoch (a GAN's ``real``
  row, the ceiling, at step 0);
* ``selected/<split>/<metric>``: after each epoch, the figures of the epoch selected so far (the one
  ``best.pt`` holds), and ``selected/epoch``;
* the run's options as hyperparameters (TensorBoard's HParams dashboard), with the ``selected/...``
  figures as their metrics;
* the pictures the run makes (``predictions``, a GAN's ``samples``) as images at their epoch.

Event files are TensorBoard's own append-only record files (each record carries a CRC, so a
reader stops cleanly at a record a kill cut short); the writer flushes after every epoch. A resumed
run appends a new event file and writes no (tag, step) that an earlier one of the folder holds: it
reads them back first, writes what they miss of the history (a kill between ``last.pt`` and the
flush loses nothing), and tells TensorBoard to drop anything past the checkpoint's epoch.

Needs the ``tensorboard`` package (the ``[tensorboard]`` extra): :func:`~.config.resolve` refuses the
logger up front where it is missing.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["TensorBoardLogger", "EVENT_PREFIX", "recorded_steps", "picture_tag"]

from .run import EVENT_FILES as EVENT_PREFIX  # TensorBoard's name for an event file
HPARAMS_TAG = "_hparams_/experiment"
SKIPPED = ("epoch", "split")  # metrics.csv columns that are not figures


def picture_tag(name: str) -> str:
    """The image tag of a run picture: ``predictions.png`` -> ``predictions``, ``samples_007.png`` -> ``samples``."""
    return re.sub(r"_\d+$", "", Path(name).stem)


def recorded_steps(folder: str | Path) -> dict[str, set[int]]:
    """tag -> the steps the folder's event files hold (read with TensorBoard's own event file loader)."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    found: dict[str, set[int]] = {}
    for path in sorted(Path(folder).glob(EVENT_PREFIX + "*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                found.setdefault(value.tag, set()).add(int(event.step))
    return found


def _figure(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


class TensorBoardLogger:
    """Writes a run's event files into ``folder`` (rank 0's run folder); ``task`` is the run's task."""

    def __init__(self, folder: str | Path, task: Any) -> None:
        self.folder, self.task = Path(folder), task
        self.writer: Any = None
        self.have: dict[str, set[int]] = {}

    # -- life ----------------------------------------------------------------------------------------

    def start(self, history: list[dict[str, Any]]) -> None:
        """Open a new event file; write what earlier ones of the folder miss of ``history`` (a resumed run's)."""
        from torch.utils.tensorboard import SummaryWriter

        done = max((int(r["epoch"]) for r in history), default=0)
        self.have = recorded_steps(self.folder)
        later = any(step > done for tag, steps in self.have.items() if tag != HPARAMS_TAG for step in steps)
        if later:  # written after the checkpoint a resumed run starts from: TensorBoard drops them
            self.have = {tag: {s for s in steps if s <= done} for tag, steps in self.have.items()}
        self.writer = SummaryWriter(log_dir=str(self.folder), purge_step=done + 1 if later else None)
        selection = self.task.selection()
        for epoch in sorted({int(r["epoch"]) for r in history}):
            rows = [r for r in history if int(r["epoch"]) == epoch]
            if epoch > 0:
                selection.update(epoch, rows)
            self._epoch_figures(epoch, rows, history, selection.best_epoch)
        self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    # -- an epoch ------------------------------------------------------------------------------------

    def epoch(self, epoch: int, rows: list[dict[str, Any]], history: list[dict[str, Any]], best_epoch: int | None,
              pictures: dict[str, np.ndarray]) -> None:
        """Record a finished epoch: its figures, the selected epoch's, its pictures; then flush."""
        self._epoch_figures(epoch, rows, history, best_epoch)
        for name, picture in pictures.items():
            self._image(picture_tag(name), picture, epoch)
        self.writer.flush()

    def _new(self, tag: str, step: int) -> bool:
        steps = self.have.setdefault(tag, set())
        if step in steps:
            return False
        steps.add(step)
        return True

    def _scalar(self, tag: str, value: Any, step: int) -> None:
        number = _figure(value)
        if number is not None and self._new(tag, step):
            self.writer.add_scalar(tag, number, step)

    def _image(self, tag: str, picture: np.ndarray, step: int) -> None:
        if self._new(tag, step):
            image = picture if picture.ndim == 3 else picture[..., None]
            self.writer.add_image(tag, np.ascontiguousarray(image), step, dataformats="HWC")

    def _selected(self, history: list[dict[str, Any]], best_epoch: int | None) -> dict[str, float]:
        """``selected/<split>/<metric>`` of the epoch ``best_epoch`` (every split but train: what it was
        selected on and what it is reported on), and ``selected/epoch``."""
        if best_epoch is None:
            return {}
        out = {"selected/epoch": float(best_epoch)}
        for row in history:
            if int(row["epoch"]) == best_epoch and row["split"] != "train":
                for key, value in row.items():
                    number = _figure(value)
                    if key not in SKIPPED and key != "seconds" and number is not None:
                        out[f"selected/{row['split']}/{key}"] = number
        return out

    def _epoch_figures(self, epoch: int, rows: list[dict[str, Any]], history: list[dict[str, Any]],
                       best_epoch: int | None) -> None:
        for row in rows:
            for key, value in row.items():
                if key not in SKIPPED:
                    self._scalar(f"{row['split']}/{key}", value, epoch)
        if epoch == 0:
            return
        selected = self._selected(history, best_epoch)
        if selected and HPARAMS_TAG not in self.have:
            self._hparams(sorted(selected))
        for tag, value in selected.items():
            self._scalar(tag, value, epoch)

    def _hparams(self, metrics: list[str]) -> None:
        """The run's options as hyperparameters, once per run folder, with ``metrics`` as their metrics."""
        from torch.utils.tensorboard.summary import hparams

        options: dict[str, Any] = {}
        for key, value in self.task.cfg.as_dict().items():
            if key == "hparams":
                options.update({f"hparams.{k}": v for k, v in value.items()})
            elif key != "out":
                options[key] = value
        clean = {k: v for k, v in options.items()
                 if isinstance(v, (bool, int, str)) or (isinstance(v, float) and math.isfinite(v))}
        clean.setdefault("logger", "tensorboard")
        for summary in hparams(clean, {m: 0.0 for m in metrics}):
            self.writer.file_writer.add_summary(summary)
        self.have.setdefault(HPARAMS_TAG, set()).add(0)
