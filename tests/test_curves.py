"""curves.png is matplotlib's drawing of the run's history: one panel per figure, the selected epoch marked."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from coordconv_data.cli import main
from coordconv_data.generate.sort_of_clevr import SortOfClevrSpec
from coordconv_data.generate.sort_of_clevr import write_file as write_soc
from coordconv_data.train import plots
from coordconv_data.train.run import RunDir
from coordconv_data.train.tasks import task_for

from test_train import shrink


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    from coordconv_data.generate.not_so_clevr import NotSoClevrSpec
    from coordconv_data.generate.not_so_clevr import write_file as write_nsc

    d = tmp_path_factory.mktemp("curves")
    write_nsc(NotSoClevrSpec(split="quadrant"), d / "full.h5")
    write_soc(SortOfClevrSpec(n=24, seed=5), d / "soc.h5")
    return {"nsc": shrink(d / "full.h5", d / "nsc.h5", 64, 32), "soc": d / "soc.h5"}


def _read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _redraw(run: Path, selected: int | None | str = "recorded") -> np.ndarray:
    """What the task draws from the run's own history (last.pt holds it unrounded) and selected epoch."""
    ck = torch.load(run / "last.pt", weights_only=True)
    task = task_for(RunDir.read_only(run).options())
    return task.curves(ck["history"], ck["best_epoch"] if selected == "recorded" else selected)


def test_supervised_curves_are_matplotlibs_drawing_with_the_selected_epoch(runner, data, tmp_path, monkeypatch):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    drawn = []
    real_draw = FigureCanvasAgg.draw
    monkeypatch.setattr(FigureCanvasAgg, "draw", lambda self: (drawn.append(1), real_draw(self))[1])
    run = tmp_path / "run"
    r = runner.invoke(main, ["train", "--arch", "coordconv_regressor", "--data", str(data["nsc"]), "--epochs", "3",
                             "--lr-policy", "step", "--lr-step-every", "2", "--out", str(run), "-q"])
    assert r.exit_code == 0, r.output
    assert len(drawn) == 3  # one matplotlib drawing per epoch
    picture = _read_rgb(run / "curves.png")
    # loss, px_error and the stepped learning rate: three panels in a row
    columns = 3
    assert picture.shape == (round(plots.PANEL_INCHES[1] * plots.DPI + 35), columns * plots.PANEL_INCHES[0] * plots.DPI, 3)
    assert np.array_equal(picture, _redraw(run))
    assert not np.array_equal(picture, _redraw(run, selected=None))  # the selected epoch is marked
    ck = torch.load(run / "last.pt", weights_only=True)
    other = 1 if ck["best_epoch"] != 1 else 2
    assert not np.array_equal(picture, _redraw(run, selected=other))  # ... at the epoch best.pt holds


def test_gan_curves_are_matplotlibs_drawing(runner, data, tmp_path):
    run = tmp_path / "gan"
    r = runner.invoke(main, ["train", "--arch", "clevr_gan", "--data", str(data["soc"]), "--epochs", "2",
                             "--batch-size", "12", "--eval-samples", "4", "--z-dim", "8", "--width", "4",
                             "--out", str(run), "-q"])
    assert r.exit_code == 0, r.output
    picture = _read_rgb(run / "curves.png")
    assert picture.shape[1] == 4 * plots.PANEL_INCHES[0] * plots.DPI  # losses, D outputs, geometry, position
    assert np.array_equal(picture, _redraw(run))
    assert not np.array_equal(picture, _redraw(run, selected=None))


def test_one_panel_per_metric_and_a_log_scale_where_the_loss_spans_decades():
    history = [{"epoch": e, "split": s, "loss": 10.0 ** -e, "pixel_accuracy": 0.5, "mean_iou": 0.4,
                **{f"recall_{c}": 0.3 for c in "abcd"}, **{f"iou_{c}": 0.2 for c in "abcd"}, "lr": 0.1}
               for e in (1, 2, 3) for s in ("train", "val", "test")]
    metrics = ["pixel_accuracy", "mean_iou", *(f"recall_{c}" for c in "abcd"), *(f"iou_{c}" for c in "abcd")]
    picture = plots.metric_curves(history, metrics, selected=2, selected_on="val", primary="mean_iou")
    rows = 3  # 11 panels (the loss and 10 metrics), 4 to a row; a constant rate gets none
    assert picture.shape[:2] == (round(plots.PANEL_INCHES[1] * rows * plots.DPI + 35), 4 * plots.PANEL_INCHES[0] * plots.DPI)
    assert plots._needs_log([1.0, 0.001]) and not plots._needs_log([0.5, 0.2]) and not plots._needs_log([0.0, 1.0])
