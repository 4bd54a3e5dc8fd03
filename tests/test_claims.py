"""A claim over seeds, from fixed per-seed numbers: success rate, median and its interval, epochs to
the threshold, figures at the selected and the last epoch."""

from __future__ import annotations

import math

import pytest

from coordconv_data.train.claims import Claim, judge, median_interval


def history(test_by_epoch: list[float], metric: str = "accuracy") -> list[dict]:
    rows = []
    for epoch, value in enumerate(test_by_epoch, 1):
        rows += [{"epoch": epoch, "split": "train", metric: 0.0}, {"epoch": epoch, "split": "val", metric: 1.0},
                 {"epoch": epoch, "split": "test", metric: value}]
    return rows


def test_a_claim_over_seeds():
    claim = Claim("CoordConv classifies the held-out quadrant", ("coordconv-quadrant",), ("accuracy",), ">=", 0.99)
    histories = {
        0: (history([0.2, 0.995, 1.0]), 3),
        1: (history([0.3, 0.5, 0.98]), 2),  # selected at 2 (val said so): fails there, nearly there at the end
        2: (history([1.0, 1.0, 0.7]), 1),
        3: (history([0.1, 0.2, 0.3]), 3),
    }
    r = judge(claim, "coordconv-quadrant", histories)
    assert r.n == 4 and r.held == 2
    assert [s.selected for s in r.seeds] == [1.0, 0.5, 1.0, 0.3]
    assert [s.last for s in r.seeds] == [1.0, 0.98, 0.7, 0.3]
    assert [s.holds for s in r.seeds] == [True, False, True, False]
    assert [s.reached_at for s in r.seeds] == [2, None, 1, None]
    assert r.reached() == [2, 1]
    median, low, high, coverage = r.interval()
    assert median == pytest.approx(0.75) and (low, high) == (0.3, 1.0) and coverage == pytest.approx(1 - 2 / 16)
    assert claim.rule == "test accuracy >= 0.99"


def test_claims_below_a_threshold_and_over_several_metrics():
    reg = Claim("regression", ("r",), ("px_error",), "<=", 0.5)
    assert reg.holds(0.5) and not reg.holds(0.51) and not reg.holds(math.nan)
    lanes = Claim("position classes", ("coordbias",), ("recall_a", "recall_b"), ">=", 0.95)
    assert lanes.figure({"recall_a": 0.99, "recall_b": 0.9}) == 0.9  # each must hold: the least counts
    assert lanes.figure({"recall_a": 0.99}) != lanes.figure({"recall_a": 0.99})  # a missing metric is NaN
    assert lanes.rule == "test min(recall_a, recall_b) >= 0.95"
    some_class_fails = Claim("plain net", ("plain",), ("recall_a", "recall_b"), "<", 0.95)
    assert some_class_fails.holds(some_class_fails.figure({"recall_a": 0.99, "recall_b": 0.9}))
    worst = Claim("worst error", ("d",), ("px_error", "other"), "<", 1.0, reduce="max")
    assert worst.figure({"px_error": 0.2, "other": 3.0}) == 3.0 and worst.rule == "test max(px_error, other) < 1"
    with pytest.raises(ValueError, match="op must be one of"):
        Claim("x", ("r",), ("m",), "==", 1.0)


def test_median_interval_is_distribution_free():
    values = [0.1 * i for i in range(1, 11)]  # ten seeds
    median, low, high, coverage = median_interval(values)
    assert median == pytest.approx(0.55)
    assert (low, high) == (pytest.approx(0.2), pytest.approx(0.9))  # the 2nd and 9th of 10
    assert coverage == pytest.approx(1 - 2 * 11 / 1024)  # 97.9%: the next narrower pair covers only 89%
    assert median_interval([0.3, 0.1, 0.2]) == (0.2, 0.1, 0.3, pytest.approx(0.75))  # too few: the range
    assert median_interval([0.5, math.nan]) == (0.5, 0.5, 0.5, 0.0)  # one value: no interval at all
    assert all(math.isnan(v) for v in median_interval([])[:3])


def test_a_missing_epoch_or_selection_is_not_a_pass():
    claim = Claim("c", ("r",), ("accuracy",), ">=", 0.9)
    r = judge(claim, "r", {5: (history([0.95]), None), 6: ([], None)})
    assert [s.holds for s in r.seeds] == [False, False] and r.seeds[0].reached_at == 1
    assert math.isnan(r.seeds[1].selected) and r.seeds[1].last_epoch is None


def test_a_figure_measured_at_the_selected_epoch_alone_has_no_curve():
    """GAN walks are measured on best.pt only: the report gives the run's epochs, no last-epoch figure
    and no first epoch at the threshold, instead of the selected figure passed off as a curve."""
    claim = Claim("slides", ("g",), ("slide_fraction",), ">=", 0.5, split="walks")
    rows = [{"epoch": e, "split": "generated", "geometry": 0.0} for e in range(1, 11)]
    r = judge(claim, "g", {0: (rows + [{"epoch": 9, "split": "walks", "slide_fraction": 0.5}], 9),
                           1: (rows + [{"epoch": 10, "split": "walks", "slide_fraction": 0.6}], 10),
                           2: (rows[:1] + [{"epoch": 1, "split": "walks", "slide_fraction": 0.2}], 1)})
    assert [s.holds for s in r.seeds] == [True, True, False] and [s.last_epoch for s in r.seeds] == [10, 10, 1]
    for s in r.seeds[:2]:  # selected before the end or at it: one measurement either way
        assert not s.curve and s.reached_at is None
    assert math.isnan(r.seeds[0].last) and r.seeds[1].last == 0.6  # at the last epoch only where selected there
    assert r.seeds[2].curve and r.seeds[2].last == 0.2  # one epoch trained: its only epoch is its last
