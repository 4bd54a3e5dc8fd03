"""coorddata train --logger tensorboard: the run's scalars, hyperparameters and pictures as TensorBoard events,
read back with TensorBoard's own readers; a resumed run appends without duplicate steps."""

from __future__ import annotations

import csv
import importlib.util
import os
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("tensorboard")

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402
from tensorboard.backend.event_processing.event_file_loader import EventFileLoader  # noqa: E402
from tensorboard.plugins.hparams import plugin_data_pb2  # noqa: E402

from conftest import assert_one_line_error  # noqa: E402
from coordconv_data.cli import main  # noqa: E402
from coordconv_data.generate.sort_of_clevr import SortOfClevrSpec  # noqa: E402
from coordconv_data.generate.sort_of_clevr import write_file as write_soc  # noqa: E402

from test_train import shrink  # noqa: E402


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, Path]:
    from coordconv_data.generate.not_so_clevr import NotSoClevrSpec
    from coordconv_data.generate.not_so_clevr import write_file as write_nsc

    d = tmp_path_factory.mktemp("tb")
    write_nsc(NotSoClevrSpec(split="quadrant"), d / "full.h5")
    write_soc(SortOfClevrSpec(n=24, seed=5), d / "soc.h5")
    return {"nsc": shrink(d / "full.h5", d / "nsc.h5", 64, 32), "soc": d / "soc.h5"}


def _train(runner, *args):
    return runner.invoke(main, ["train", *map(str, args)])


def _accumulator(run: Path) -> EventAccumulator:
    acc = EventAccumulator(str(run), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    return acc


def _events(run: Path) -> Counter:
    """(tag, step) -> how many records of it the run folder's event files hold, all files together."""
    seen: Counter = Counter()
    for path in sorted(run.glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                seen[(value.tag, int(event.step))] += 1
    return seen


def _csv(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv") as f:
        return list(csv.DictReader(f))


def test_every_figure_the_options_and_the_pictures(runner, data, tmp_path):
    run = tmp_path / "run"
    r = _train(runner, "--arch", "coordconv_regressor", "--data", data["nsc"], "--epochs", 2, "--logger", "tensorboard",
               "--out", run, "-q")
    assert r.exit_code == 0, r.output
    acc = _accumulator(run)
    scalars = set(acc.Tags()["scalars"])
    rows = _csv(run)
    for row in rows:  # every figure of metrics.csv, at its epoch
        for column, text in row.items():
            if column in ("epoch", "split") or text == "":
                continue
            events = {e.step: e.value for e in acc.Scalars(f"{row['split']}/{column}")}
            assert events[int(row["epoch"])] == pytest.approx(float(text), rel=1e-5, abs=1e-12), (row["split"], column)
    assert {"train/loss", "train/px_error", "train/lr", "val/px_error", "test/px_error"} <= scalars
    # The selected epoch's figures, epoch by epoch.
    best = [e.value for e in acc.Scalars("selected/epoch")]
    assert len(best) == 2 and best[-1] in (1.0, 2.0)
    chosen = next(r for r in rows if r["split"] == "test" and int(r["epoch"]) == int(best[-1]))
    assert acc.Scalars("selected/test/px_error")[-1].value == pytest.approx(float(chosen["px_error"]), rel=1e-5)
    # The pictures: predictions.png of the selected epoch.
    images = acc.Images("predictions")
    assert images and images[-1].width > 0 and images[-1].encoded_image_string.startswith(b"\x89PNG")
    # The options as hyperparameters, the selected figures as their metrics.
    content = acc.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["arch"].string_value == "coordconv_regressor"
    assert start.hparams["lr"].number_value == 0.001 and start.hparams["epochs"].number_value == 2
    assert start.hparams["hparams.with_r"].bool_value is False
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    metrics = {m.name.tag for m in experiment.metric_infos}
    assert {"selected/val/px_error", "selected/test/px_error", "selected/epoch"} <= metrics and metrics <= scalars
    # In the run folder itself (tensorboard --logdir runs names the run by its folder), plain files only.
    assert [n for n in os.listdir(run) if n.startswith("events.out.tfevents.")] and all(p.is_file() for p in run.iterdir())


def test_gan_samples_and_the_real_ceiling(runner, data, tmp_path):
    run = tmp_path / "gan"
    r = _train(runner, "--arch", "clevr_gan", "--data", data["soc"], "--epochs", 2, "--batch-size", 12,
               "--eval-samples", 4, "--z-dim", 8, "--width", 4, "--logger", "tensorboard", "--out", run, "-q")
    assert r.exit_code == 0, r.output
    acc = _accumulator(run)
    assert [e.step for e in acc.Images("samples")] == [1, 2]
    assert [e.step for e in acc.Scalars("real/geometry")] == [0]
    assert [e.step for e in acc.Scalars("generated/geometry")] == [1, 2]
    assert {"train/d_loss", "train/g_loss", "selected/generated/geometry"} <= set(acc.Tags()["scalars"])


def test_resume_appends_without_duplicate_steps(runner, data, tmp_path):
    run = tmp_path / "r"
    common = ["--arch", "coordconv_classification", "--data", data["nsc"], "--out", run, "-q"]
    assert _train(runner, *common, "--epochs", 1, "--logger", "tensorboard").exit_code == 0
    r = _train(runner, "--resume", run, "--epochs", 3, "-q")  # the run's own logger goes on
    assert r.exit_code == 0, r.output
    seen = _events(run)
    assert len(list(run.glob("events.out.tfevents.*"))) == 2
    assert max(seen.values()) == 1, [k for k, n in seen.items() if n > 1]
    assert sorted(step for tag, step in seen if tag == "val/accuracy") == [1, 2, 3]
    assert sorted(step for tag, step in seen if tag == "_hparams_/experiment") == [0]


def test_a_resumed_run_fills_in_what_the_event_files_miss(runner, data, tmp_path):
    """A run started without TensorBoard (or killed between last.pt and the flush) gets every epoch written."""
    run = tmp_path / "late"
    r = _train(runner, "--arch", "coordconv_regressor", "--data", data["nsc"], "--epochs", 2, "--out", run, "-q")
    assert r.exit_code == 0 and not list(run.glob("events.out.tfevents.*"))  # csv: no event files
    r = _train(runner, "--resume", run, "--epochs", 3, "--logger", "tensorboard", "-q")
    assert r.exit_code == 0, r.output
    seen = _events(run)
    assert max(seen.values()) == 1
    assert sorted(step for tag, step in seen if tag == "test/px_error") == [1, 2, 3]
    assert sorted(step for tag, step in seen if tag == "selected/val/px_error") == [1, 2, 3]


def test_tensorboard_missing_is_one_line_before_any_work(runner, data, tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    r = _train(runner, "--arch", "coordconv_regressor", "--data", data["nsc"], "--logger", "tensorboard",
               "--out", tmp_path / "x")
    assert r.exit_code == 1
    assert_one_line_error(r, "tensorboard package", "coordconv_data[tensorboard]", "without --logger tensorboard")
    assert not (tmp_path / "x").exists()
