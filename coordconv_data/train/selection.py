"""Which epoch ``best.pt`` holds: one split's metric, then a tie-break; never the test split.

A :class:`Selection` is what Lightning's ``ModelCheckpoint(monitor, mode)`` is: the loop gives it each
epoch's rows and it says whether the epoch is the best so far. Each task makes its own
(:meth:`~coordconv_data.train.tasks.Task.selection`): supervised runs select on the validation
split's primary metric, ties (100% twice) going to the later epoch; GANs on their samples' geometry
score, then the closer position histogram; a run without a validation split keeps the last epoch.

Why the later epoch: on the quadrant split the validation split comes from the training quadrants,
so it saturates (100% from the second epoch) while the held-out quadrant is still being learnt; the
lower validation loss picked an earlier, less trained epoch (on tuning seeds 100-104 of
``coordconv_classification``, docs/lab.md), the later one the more trained.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["Selection"]

MODES = ("max", "min")


@dataclass
class Selection:
    """``split``'s ``metric`` (``mode``: ``max`` or ``min``), then ``tie`` (``tie_mode``); ``split=None``:
    every epoch is selected, so the last one is."""

    split: str | None
    metric: str | None = None
    mode: str = "max"
    tie: str | None = None
    tie_mode: str = "min"
    best_value: tuple[float, ...] | None = None
    best_epoch: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES or self.tie_mode not in MODES:
            raise ValueError(f"modes must be one of {', '.join(MODES)}")

    @property
    def name(self) -> str:
        """What it selects on: the split's name, or ``last``."""
        return self.split or "last"

    def value(self, rows: list[dict[str, Any]]) -> tuple[float, ...] | None:
        """The epoch's value, larger is better; ``None`` when the split or its metric is missing or NaN.
        ``tie`` may be ``"epoch"`` (with ``tie_mode="max"``: the later of equal epochs)."""
        row = next((r for r in rows if r["split"] == self.split), None)
        if row is None or self.metric is None or math.isnan(float(row[self.metric])):
            return None
        sign = {"max": 1.0, "min": -1.0}
        value = (sign[self.mode] * float(row[self.metric]),)
        if self.tie is not None:
            value += (sign[self.tie_mode] * float(row.get(self.tie, 0.0)),)
        return value

    def update(self, epoch: int, rows: list[dict[str, Any]]) -> bool:
        """Whether ``epoch`` (with these rows) is the best so far; remembers it if it is."""
        if self.split is None:
            self.best_epoch = epoch
            return True
        value = self.value(rows)
        if value is None or (self.best_value is not None and value <= self.best_value):
            return False
        self.best_value, self.best_epoch = value, epoch
        return True

    def state_dict(self) -> dict[str, Any]:
        return {"best_value": list(self.best_value) if self.best_value is not None else None,
                "best_epoch": self.best_epoch}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        value = state.get("best_value")
        self.best_value = tuple(float(v) for v in value) if value is not None else None
        self.best_epoch = state.get("best_epoch")
