"""A paper's claim as a distribution over seeds: how many seeds hold it, the median and its interval.

A :class:`Claim` is a threshold on a figure of a run (``accuracy >= 0.99``, ``px_error <= 0.5``, the
least recall of the position classes ``>= 0.95``). :func:`judge` takes one run's per-seed histories
(``metrics.csv`` rows) and selected epochs and returns a :class:`ClaimResult`: per seed the test figure
at the epoch selected on validation (and at the last epoch), whether it holds, and the first epoch
whose test figure met the threshold; over the seeds the number that hold, the median and a
distribution-free interval for it (:func:`median_interval`). Nothing here selects on test: the
epochs-to-threshold are a description of the training curves, read after selection.

No torch, no files: the report (:mod:`.report`) feeds it what the run folders hold.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from typing import Any, Callable

__all__ = ["Claim", "SeedResult", "ClaimResult", "judge", "median_interval", "COMPARISONS"]

COMPARISONS: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, "<=": operator.le, ">": operator.gt,
                                                           "<": operator.lt}


@dataclass(frozen=True)
class Claim:
    """``figure op threshold`` for the runs named in ``runs`` (each judged on its own).

    The figure is ``metrics[0]`` of a split's row, or with several metrics their ``reduce`` (``min``
    or ``max``), e.g. the least of the three position classes' recalls: ``min >= 0.95`` says each
    class is told apart, ``min < 0.95`` that some class is not. ``split`` is the split the figure is
    read on (``test``; GANs: ``walks``, their latent walks' motion).
    """

    text: str
    runs: tuple[str, ...]
    metrics: tuple[str, ...]
    op: str
    threshold: float
    split: str = "test"
    reduce: str = "min"

    def __post_init__(self) -> None:
        if self.op not in COMPARISONS:
            raise ValueError(f"op must be one of {', '.join(COMPARISONS)}, got {self.op!r}")
        if self.reduce not in ("min", "max"):
            raise ValueError(f"reduce must be min or max, got {self.reduce!r}")

    @property
    def rule(self) -> str:
        what = self.metrics[0] if len(self.metrics) == 1 else f"{self.reduce}({', '.join(self.metrics)})"
        return f"{self.split} {what} {self.op} {self.threshold:g}"

    def figure(self, row: dict[str, Any] | None) -> float:
        """The claim's figure in a row (NaN when the row or a metric is missing)."""
        if not row:
            return math.nan
        try:
            values = [float(row[m]) for m in self.metrics]
        except (KeyError, TypeError, ValueError):
            return math.nan
        return min(values) if self.reduce == "min" else max(values)

    def holds(self, value: float) -> bool:
        return not math.isnan(value) and COMPARISONS[self.op](value, self.threshold)


@dataclass(frozen=True)
class SeedResult:
    seed: int
    selected_epoch: int | None
    selected: float  # the figure at the selected epoch
    last_epoch: int | None  # the run's last epoch
    last: float  # the figure at the last epoch (NaN where it was not measured there)
    holds: bool  # at the selected epoch
    reached_at: int | None  # first epoch whose figure met the threshold (None: never, or no curve)
    curve: bool = True  # measured at every epoch; False: at the selected epoch alone (GAN walks)


@dataclass
class ClaimResult:
    claim: Claim
    run: str
    seeds: list[SeedResult] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.seeds)

    @property
    def held(self) -> int:
        return sum(s.holds for s in self.seeds)

    def interval(self, level: float = 0.95) -> tuple[float, float, float, float]:
        """``(median, low, high, coverage)`` of the selected figures (:func:`median_interval`)."""
        return median_interval([s.selected for s in self.seeds], level)

    def reached(self) -> list[int]:
        return [s.reached_at for s in self.seeds if s.reached_at is not None]


def judge(claim: Claim, run: str, histories: dict[int, tuple[list[dict[str, Any]], int | None]]) -> ClaimResult:
    """The claim over seeds: ``histories`` maps each seed to its rows (``epoch``, ``split`` and metrics)
    and its selected epoch."""
    out = ClaimResult(claim, run)
    for seed in sorted(histories):
        rows, selected = histories[seed]
        by_epoch = {int(r["epoch"]): r for r in rows if r.get("split") == claim.split}
        last = max((int(r["epoch"]) for r in rows), default=None)
        # A figure measured at the selected epoch alone (a GAN's walks) has no curve: no first epoch
        # at the threshold and no last-epoch figure to report, rather than the selected one twice.
        curve = len(by_epoch) > 1 or last in (None, 1)
        value = claim.figure(by_epoch.get(selected)) if selected is not None else math.nan
        reached = next((e for e in sorted(by_epoch) if claim.holds(claim.figure(by_epoch[e]))), None) if curve else None
        out.seeds.append(SeedResult(seed, selected, value, last, claim.figure(by_epoch.get(last)) if last else math.nan,
                                    claim.holds(value), reached, curve))
    return out


def median_interval(values: list[float], level: float = 0.95) -> tuple[float, float, float, float]:
    """The median of ``values`` and a distribution-free interval for the median of what they are drawn
    from: the order statistics ``(k, n + 1 - k)`` with the largest ``k`` whose binomial coverage
    ``1 - 2 P(Bin(n, 1/2) < k)`` is at least ``level``. With too few values for ``level`` (fewer than 6
    for 95%) it is their whole range, whose coverage ``1 - 2 / 2**n`` is returned as it is.

    Returns ``(median, low, high, coverage)``; NaNs are left out (all NaN: NaNs and coverage 0).
    """
    xs = sorted(v for v in values if not math.isnan(v))
    n = len(xs)
    if n == 0:
        return math.nan, math.nan, math.nan, 0.0
    mid = n // 2
    median = xs[mid] if n % 2 else (xs[mid - 1] + xs[mid]) / 2

    def coverage(k: int) -> float:  # P(X_(k) <= median <= X_(n+1-k)) for a continuous distribution
        below = sum(math.comb(n, i) for i in range(k)) / 2**n
        return 1 - 2 * below

    k = 1
    while k + 1 <= (n + 1) // 2 and coverage(k + 1) >= level:
        k += 1
    return median, xs[k - 1], xs[n - k], coverage(k)
