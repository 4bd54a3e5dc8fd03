"""The training engine: task metrics, every arch through the engine, selection on validation, the run
folder (claiming, resume, NaN, planted checkpoints), data identity, the CLI's errors, torchrun."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import pytest
import torch

from conftest import assert_one_line_error
from coordconv_data.cli import main
from coordconv_data.generate.lanes import LanesSpec
from coordconv_data.generate.lanes import write_file as write_lanes
from coordconv_data.generate.not_so_clevr import NotSoClevrSpec
from coordconv_data.generate.not_so_clevr import write_file as write_nsc
from coordconv_data.generate.sort_of_clevr import SortOfClevrSpec
from coordconv_data.generate.sort_of_clevr import write_file as write_soc
from coordconv_data.models import list_models, model_info, normalize_coords
from coordconv_data.train import TrainConfig, defaults_for, resolve, trainable_archs
from coordconv_data.train.data import RunData
from coordconv_data.train import tasks as T
from coordconv_data.train.distributed import Dist
from coordconv_data.train.fit import fit
from coordconv_data.train.run import FORMAT, RunDir

REPO = Path(__file__).resolve().parents[1]


def shrink(src: Path, dst: Path, n_train: int, n_test: int | None, drop: tuple[str, ...] = ()) -> Path:
    """A copy of ``src`` with only the first samples of each split (and no group in ``drop``)."""
    with h5py.File(src, "r") as f, h5py.File(dst, "w") as g:
        for k, v in f.attrs.items():
            g.attrs[k] = v
        for split, n in (("train", n_train), ("test", n_test)):
            if split in drop or split not in f:
                continue
            for name, d in f[split].items():
                g.create_dataset(f"{split}/{name}", data=d[:n])
    return dst


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("data")
    write_nsc(NotSoClevrSpec(split="quadrant"), d / "full_q.h5")
    write_lanes(LanesSpec(n=24, test_n=8, size=32, seed=1), d / "lanes.h5")
    write_soc(SortOfClevrSpec(n=24, seed=5), d / "soc.h5")
    return {
        "nsc": shrink(d / "full_q.h5", d / "nsc.h5", 64, 32),
        "nsc_no_test": shrink(d / "full_q.h5", d / "nsc_no_test.h5", 64, 32, drop=("test",)),
        "lanes": d / "lanes.h5",
        "soc": d / "soc.h5",
    }


def _task(name: str) -> T.Task:
    arch = next(a for a in trainable_archs() if model_info(a).task == name)
    return T.TASKS[name](None, model_info(arch))


def _finalize(task: T.SupervisedTask, out: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    return task.finalize({"n": torch.tensor(float(len(target)), dtype=torch.float64), **task.stats(out, target)})


# -- metrics on hand-made predictions ----------------------------------------------------------------

def test_classification_accuracy():
    task = _task("classification")
    target = torch.tensor([0, 5 * 64 + 3, 4095])
    out = torch.full((3, 1, 64, 64), -5.0)
    for i, t in enumerate(target):
        out[i].view(-1)[t] = 5.0
    assert _finalize(task, out, target) == {"accuracy": 1.0}
    out[2].view(-1)[7] = 9.0  # one wrong of three
    assert _finalize(task, out, target)["accuracy"] == pytest.approx(2 / 3)


def test_rendering_iou():
    task = _task("rendering")
    target = torch.zeros(2, 1, 64, 64)
    target[:, :, 0:4, 0:4] = 1
    assert _finalize(task, target * 20 - 10, target)["iou"] == 1.0
    partial = torch.full((2, 1, 64, 64), -10.0)
    partial[0, :, 0:4, 0:2] = 10  # 8 of 16: IoU 0.5
    partial[1, :, 0:4, 0:8] = 10  # 16 of 32: IoU 0.5
    assert _finalize(task, partial, target)["iou"] == pytest.approx(0.5)


def test_regression_px_error():
    task = _task("regression")
    loc = torch.tensor([[10.0, 20.0], [40.0, 50.0]])
    target = normalize_coords(loc, 64)
    assert _finalize(task, target.clone(), target)["px_error"] == pytest.approx(0, abs=1e-9)
    off = normalize_coords(loc + torch.tensor([[3.0, 4.0], [0.0, 0.0]]), 64)  # 5 px and 0 px
    assert _finalize(task, off, target)["px_error"] == pytest.approx(2.5)


def test_segmentation_metrics():
    task = _task("segmentation")
    task.class_names = list("0123")
    target = torch.tensor([[[0, 1], [2, 3]]])  # (1, 2, 2)
    perfect = torch.nn.functional.one_hot(target, 4).permute(0, 3, 1, 2).float()
    m = _finalize(task, perfect, target)
    assert m["pixel_accuracy"] == 1.0 and m["mean_iou"] == 1.0
    assert all(m[f"recall_{c}"] == 1.0 and m[f"iou_{c}"] == 1.0 for c in "0123")
    wrong = perfect.clone()
    wrong[0, :, 1, 1] = torch.tensor([0, 0, 1.0, 0])  # class 3 predicted as 2
    m = _finalize(task, wrong, target)
    assert m["pixel_accuracy"] == 0.75
    assert m["recall_3"] == 0.0 and m["recall_2"] == 1.0 and m["iou_2"] == 0.5
    assert m["mean_iou"] == pytest.approx((1 + 1 + 0.5 + 0) / 4)


def test_every_registered_task_is_trainable():
    assert {model_info(a).task for a in list_models()} <= set(T.TASKS)


# -- every arch through the engine ---------------------------------------------------------------------

SMALL_HPARAMS = {"gan": {"z_dim": 8, "width": 4}}


@pytest.mark.parametrize("arch", trainable_archs())
def test_every_arch_trains_a_batch_and_evaluates(files, tmp_path, arch):
    info = model_info(arch)
    data = {"not-so-clevr": files["nsc"], "lanes": files["lanes"], "sort-of-clevr": files["soc"]}[info.dataset]
    hparams = {k: v for k, v in SMALL_HPARAMS.get(info.task, {}).items() if k in info.hparams}
    options = dict(epochs=1, batch_size=24 if info.task == "gan" else 64, eval_samples=2) if info.task == "gan" \
        else dict(epochs=1, batch_size=64, val_fraction=0.5)
    cfg = resolve(TrainConfig(arch=arch, data=str(data), hparams=hparams, **options))
    with RunDir.create(tmp_path / "run") as run:
        cfg.out = str(run.path)
        summary = fit(cfg, RunData.open(data), run, Dist(1, 0, torch.device("cpu")))
    assert summary.best_epoch == 1 and summary.epochs == 1
    rows = _metric_rows(tmp_path / "run")
    task = T.TASKS[info.task]
    primary = task.primary
    splits = [r["split"] for r in rows]
    if info.task == "gan":
        assert splits == ["real", "train", "generated"]
        assert 0 <= float(rows[-1]["geometry"]) <= 1
    else:
        assert splits == ["train", "val", "test"]
        assert all(r[primary] not in ("", None) for r in rows)
        assert summary.best["val"][primary] == pytest.approx(float(rows[1][primary]), rel=1e-5)


# -- model selection ------------------------------------------------------------------------------------

def test_best_epoch_is_chosen_on_validation_not_test(files, tmp_path, monkeypatch):
    # A hand-made history: validation is best at epoch 2, test at epoch 3.
    made = {1: (0.2, 0.1), 2: (0.9, 0.3), 3: (0.5, 0.99)}
    epoch = iter([1, 2, 3])

    def fake_evaluate(self, model, device, dist):
        val, test = made[next(epoch)]
        return [{"split": "val", "loss": 1.0, "accuracy": val}, {"split": "test", "loss": 1.0, "accuracy": test}]

    monkeypatch.setattr(T.Classification, "evaluate", fake_evaluate)
    cfg = resolve(TrainConfig(arch="coordconv_classification", data=str(files["nsc"]), epochs=3, batch_size=32))
    with RunDir.create(tmp_path / "run") as run:
        summary = fit(cfg, RunData.open(files["nsc"]), run, Dist(1, 0, torch.device("cpu")))
    assert summary.best_epoch == 2 and summary.selected_on == "val"
    assert summary.best["test"]["accuracy"] == 0.3 and summary.last["test"]["accuracy"] == 0.99
    assert torch.load(tmp_path / "run" / "best.pt", weights_only=True)["epoch"] == 2


def test_equal_validation_figures_select_the_later_epoch():
    from coordconv_data.train.selection import Selection

    sel = T.Classification(resolve(TrainConfig(arch="coordconv_classification")), model_info("coordconv_classification")
                           ).selection()
    rows = {1: 0.8, 2: 1.0, 3: 1.0, 4: 0.9, 5: 1.0}
    improved = [sel.update(e, [{"epoch": e, "split": "val", "loss": 0.1 * e, "accuracy": a}]) for e, a in rows.items()]
    assert improved == [True, True, True, False, True] and sel.best_epoch == 5
    again = Selection("val", "px_error", "min", "epoch", "max")  # lower is better, ties to the later
    for e, v in ((1, 3.0), (2, 0.5), (3, 0.5), (4, 0.7)):
        again.update(e, [{"epoch": e, "split": "val", "px_error": v}])
    assert again.best_epoch == 3


def test_val_fraction_zero_selects_the_last_epoch(runner, files, tmp_path):
    r = _run(runner, "--arch", "coordconv_regressor", "--data", files["nsc"], "--epochs", 2, "--val-fraction", 0,
             "--out", tmp_path / "r")
    assert r.exit_code == 0, r.output
    assert "selected epoch 2 (the last: no validation split)" in r.output
    assert [row["split"] for row in _metric_rows(tmp_path / "r")] == ["train", "test"] * 2
    assert json.loads((tmp_path / "r" / "config.json").read_text())["selection"] == "last"


def test_validation_carve_out_is_recorded_and_disjoint(runner, files, tmp_path):
    from coordconv_data.datasets import NotSoClevr

    r = _run(runner, "--arch", "coordconv_classification", "--data", files["nsc"], "--epochs", 1, "--out",
             tmp_path / "r", "-q")
    assert r.exit_code == 0, r.output
    record = json.loads((tmp_path / "r" / "config.json").read_text())
    assert record["validation"]["fraction"] == 0.1 and record["validation"]["samples"] == 6  # round(64 * 0.1)
    train = NotSoClevr(files["nsc"], "train")
    val = NotSoClevr(files["nsc"], "val")
    seen = {tuple(train[i][0].tolist()) for i in range(len(train))}
    assert len(train) == 58 and not any(tuple(val[i][0].tolist()) in seen for i in range(len(val)))


# -- the command, from an empty folder ---------------------------------------------------------------------

def _run(runner, *args):
    return runner.invoke(main, ["train", *map(str, args)])


def _metric_rows(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv") as f:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(f)]


def test_train_arch_alone_makes_the_default_file(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = _run(runner, "--arch", "conv_regressor", "--epochs", 1)
    assert r.exit_code == 0, r.output
    assert "not_so_clevr_quadrant.h5 was missing: generated it as `coorddata not-so-clevr --split quadrant`" in r.output
    (run,) = list((tmp_path / "runs").iterdir())
    assert run.name.startswith("conv_regressor-not-so-clevr-")
    record = json.loads((run / "config.json").read_text())
    assert record["data"]["path"] == str(tmp_path / "not_so_clevr_quadrant.h5")
    assert record["data"]["params"]["split"] == "quadrant"
    # A second run reuses the file and says nothing about it.
    r = _run(runner, "--arch", "conv_regressor", "--epochs", 1, "-q", "--out", "again")
    assert r.exit_code == 0 and r.output == "", r.output


def test_default_file_of_another_kind_is_refused(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_lanes(LanesSpec(n=4, test_n=2, size=32), tmp_path / "not_so_clevr_quadrant.h5")
    before = (tmp_path / "not_so_clevr_quadrant.h5").read_bytes()
    assert_one_line_error(_run(runner, "--arch", "coordconv_regressor", "--epochs", 1), "lanes", "not-so-clevr")
    assert (tmp_path / "not_so_clevr_quadrant.h5").read_bytes() == before  # never replaced
    assert not (tmp_path / "runs").exists()


def test_run_folder_and_evaluate(runner, files, tmp_path):
    run = tmp_path / "run"
    r = _run(runner, "--arch", "coordconv_regressor", "--data", files["nsc"], "--epochs", 2, "--out", run)
    assert r.exit_code == 0, r.output
    assert "coordconv_regressor: 2 epochs" in r.output and "on val: val px_error" in r.output
    assert sorted(os.listdir(run)) == ["best.pt", "config.json", "curves.png", "last.pt", "metrics.csv", "predictions.png"]
    record = json.loads((run / "config.json").read_text())
    assert record["format"] == FORMAT and record["options"]["arch"] == "coordconv_regressor"
    assert record["options"]["lr"] == 0.001 and record["options"]["hparams"] == {"with_r": False}
    assert record["data"]["path"] == str(files["nsc"].resolve()) and record["data"]["kind"] == "not-so-clevr"
    assert record["versions"]["torch"] == torch.__version__
    rows = _metric_rows(run)
    assert [(r["epoch"], r["split"]) for r in rows] == [(e, s) for e in "12" for s in ("train", "val", "test")]

    r = runner.invoke(main, ["evaluate", str(run), "--json"])
    assert r.exit_code == 0, r.output
    result = json.loads(r.output)
    assert set(result) >= {"train", "val", "test", "arch", "epoch"}
    logged = {x["split"]: float(x["px_error"]) for x in rows if x["epoch"] == str(result["epoch"])}
    assert result["test"]["px_error"] == pytest.approx(logged["test"], rel=1e-4)
    assert result["val"]["px_error"] == pytest.approx(logged["val"], rel=1e-4)
    r = runner.invoke(main, ["evaluate", str(run)])
    assert r.exit_code == 0 and "test: loss" in r.output and "val: loss" in r.output


def test_segmentation_run_columns(runner, files, tmp_path):
    run = tmp_path / "seg"
    r = _run(runner, "--arch", "fcn_vgg9_coordbias", "--data", files["lanes"], "--epochs", 1, "--batch-size", 8,
             "--out", run, "-q")
    assert r.exit_code == 0 and r.output == "", r.output
    rows = _metric_rows(run)
    assert {"pixel_accuracy", "mean_iou", "recall_yellow_right", "iou_red_bottom"} <= set(rows[0])
    r = runner.invoke(main, ["evaluate", str(run), "--json"])
    assert r.exit_code == 0 and 0 <= json.loads(r.output)["test"]["mean_iou"] <= 1


# -- resume ---------------------------------------------------------------------------------------------

def test_resume_equals_uninterrupted(runner, files, tmp_path):
    common = ["--arch", "coordconv_classification", "--data", files["nsc"], "--seed", 3, "-q"]
    assert _run(runner, *common, "--epochs", 3, "--out", tmp_path / "a").exit_code == 0
    assert _run(runner, *common, "--epochs", 1, "--out", tmp_path / "b").exit_code == 0
    r = _run(runner, "--resume", tmp_path / "b", "--epochs", 3, "-q")
    assert r.exit_code == 0, r.output
    assert _metric_rows(tmp_path / "a") == _metric_rows(tmp_path / "b")
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 3 and a["best_epoch"] == b["best_epoch"]
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_a_run_recorded_before_l2_locate_resumes_with_its_one_l2(runner, files, tmp_path):
    """A rendering run whose config.json predates --l2-locate decayed both stages with its --l2: it
    resumes so (equal to an uninterrupted run at --l2-locate = --l2), not with today's default."""
    common = ["--arch", "coordconv_rendering", "--data", files["nsc"], "--l2", 0.01, "--l2-locate", 0.01, "--seed", 1, "-q"]
    assert _run(runner, *common, "--epochs", 2, "--out", tmp_path / "a").exit_code == 0
    assert _run(runner, *common, "--epochs", 1, "--out", tmp_path / "old").exit_code == 0
    config = json.loads((tmp_path / "old" / "config.json").read_text())
    assert config["options"].pop("l2_locate") == 0.01  # as the older version would have written it
    (tmp_path / "old" / "config.json").write_text(json.dumps(config))
    assert RunDir.read_only(tmp_path / "old").options().l2_locate == 0.01
    r = _run(runner, "--resume", tmp_path / "old", "--epochs", 2, "-q")
    assert r.exit_code == 0, r.output
    assert _metric_rows(tmp_path / "a") == _metric_rows(tmp_path / "old")


def test_resume_refusals(runner, files, tmp_path):
    r = _run(runner, "--arch", "coordconv_regressor", "--data", files["nsc"], "--epochs", 2, "--out", tmp_path / "r", "-q")
    assert r.exit_code == 0, r.output
    assert_one_line_error(_run(runner, "--resume", tmp_path / "r", "--lr", 0.5), "--lr", "resumed")
    assert_one_line_error(_run(runner, "--resume", tmp_path / "r", "--mul", 2), "--mul")
    assert_one_line_error(_run(runner, "--resume", tmp_path / "nothing"), "not a run folder")
    config = (tmp_path / "r" / "config.json").read_text()
    for epochs in (1, 2):  # not more than the epochs done: refused, and config.json is left as it was
        assert_one_line_error(_run(runner, "--resume", tmp_path / "r", "--epochs", epochs), "--epochs", "2 epochs")
        assert (tmp_path / "r" / "config.json").read_text() == config
    # The same values it used are no change.
    r = _run(runner, "--resume", tmp_path / "r", "--lr", 0.001, "--without-r", "--epochs", 3, "-q")
    assert r.exit_code == 0, r.output


def test_resume_from_another_folder_uses_the_recorded_file(runner, files, tmp_path, monkeypatch):
    shutil.copy(files["nsc"], tmp_path / "d.h5")
    monkeypatch.chdir(tmp_path)
    assert _run(runner, "--arch", "coordconv_regressor", "--data", "d.h5", "--epochs", 1, "--out", "run", "-q").exit_code == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(files["lanes"], elsewhere / "d.h5")  # a different file under the same relative name
    monkeypatch.chdir(elsewhere)
    r = runner.invoke(main, ["evaluate", str(tmp_path / "run"), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["data"] == str(tmp_path / "d.h5")
    r = _run(runner, "--resume", tmp_path / "run", "--epochs", 2, "-q")
    assert r.exit_code == 0, r.output
    assert [row["epoch"] for row in _metric_rows(tmp_path / "run")] == ["1"] * 3 + ["2"] * 3
    # A changed file is refused, naming what changed.
    write_nsc(NotSoClevrSpec(split="uniform"), tmp_path / "d.h5", force=True)
    assert_one_line_error(runner.invoke(main, ["evaluate", str(tmp_path / "run")]), "d.h5", "changed", "split")
    assert_one_line_error(_run(runner, "--resume", tmp_path / "run", "--epochs", 3), "changed")
    (tmp_path / "d.h5").unlink()
    assert_one_line_error(runner.invoke(main, ["evaluate", str(tmp_path / "run")]), "gone", "--data")
    # --data stays the explicit way to score another file.
    r = runner.invoke(main, ["evaluate", str(tmp_path / "run"), "--data", str(files["nsc"]), "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["data"] == str(files["nsc"].resolve())


# -- failures -------------------------------------------------------------------------------------------

def test_nan_loss_stops_cleanly(runner, files, tmp_path, monkeypatch):
    calls = {"n": 0}
    real_loss = T.Regression.training_loss

    def training_loss(self, output, target, x):
        calls["n"] += 1
        objective, loss, out = real_loss(self, output, target, x)
        return (objective * float("nan") if calls["n"] == 3 else objective), loss, out

    monkeypatch.setattr(T.Regression, "training_loss", training_loss)
    # 58 train samples at batch 32: 2 steps an epoch; the third step is epoch 2's first.
    r = _run(runner, "--arch", "coordconv_regressor", "--data", files["nsc"], "--epochs", 3, "--out", tmp_path / "r",
             "--batch-size", 32)
    assert_one_line_error(r, "nan", "epoch 2, step 1", "last.pt holds epoch 1", "--lr")
    ck = torch.load(tmp_path / "r" / "last.pt", weights_only=True)
    assert ck["epoch"] == 1 and (tmp_path / "r" / "best.pt").is_file()
    assert [row["epoch"] for row in _metric_rows(tmp_path / "r")] == ["1"] * 3


def test_a_second_run_into_a_live_folder_is_refused(runner, files, tmp_path):
    with RunDir.create(tmp_path / "busy"):
        r = _run(runner, "--arch", "coordconv_regressor", "--data", files["nsc"], "--epochs", 1, "--out", tmp_path / "busy")
        assert_one_line_error(r, "in use")
    assert not (tmp_path / "busy" / "config.json").exists()


def test_a_run_that_died_in_its_first_epoch_can_be_resumed_or_reused(runner, files, tmp_path):
    r = _run(runner, "--arch", "coordconv_regressor", "--data", files["nsc"], "--epochs", 1, "--out", tmp_path / "a", "-q")
    assert r.exit_code == 0
    for name in ("last.pt", "best.pt", "metrics.csv", "curves.png", "predictions.png"):
        (tmp_path / "a" / name).unlink()  # what a kill in the first epoch leaves: config.json only
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    r = _run(runner, "--resume", tmp_path / "a", "-q")
    assert r.exit_code == 0, r.output
    assert [row["epoch"] for row in _metric_rows(tmp_path / "a")] == ["1"] * 3
    r = _run(runner, "--arch", "coordconv_classification", "--data", files["nsc"], "--epochs", 1, "--out", tmp_path / "b", "-q")
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "b" / "config.json").read_text())["options"]["arch"] == "coordconv_classification"
    # A finished run or a folder with other files is not reused.
    assert_one_line_error(_run(runner, "--arch", "coordconv_regressor", "--data", files["nsc"], "--out", tmp_path / "a"),
                          "holds a run", "--resume")
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "notes.txt").write_text("mine")
    assert_one_line_error(_run(runner, "--arch", "coordconv_regressor", "--data", files["nsc"], "--out", tmp_path / "c"),
                          "not an empty folder")


class Planted:
    """A pickle payload that would write a marker file when unpickled."""

    marker = ""

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "ran"))


@pytest.mark.parametrize("name", ["best.pt", "last.pt"])
def test_a_planted_checkpoint_runs_no_code(runner, files, tmp_path, name):
    soc_run = tmp_path / "gan"
    r = _run(runner, "--arch", "clevr_gan", "--data", files["soc"], "--epochs", 1, "--batch-size", 24,
             "--eval-samples", 2, "--z-dim", 8, "--width", 4, "--out", soc_run, "-q")
    assert r.exit_code == 0, r.output
    marker = tmp_path / "ran.txt"
    payload = Planted()
    payload.marker = str(marker)
    torch.save({"format": FORMAT, "arch": "clevr_gan", "model": payload, "epoch": 1}, soc_run / name)
    checkpoint = name[:-3]
    commands = [["evaluate", str(soc_run), "--checkpoint", checkpoint],
                ["interpolate", str(soc_run), "--checkpoint", checkpoint, "--out", str(tmp_path / "i.png")]]
    if name == "last.pt":
        commands.append(["train", "--resume", str(soc_run), "--epochs", "2"])
    for cmd in commands:
        assert_one_line_error(runner.invoke(main, cmd), name, "refused")
        assert not marker.exists()
    assert not (tmp_path / "i.png").exists()


def test_checkpoints_that_are_not_ours(runner, files, tmp_path):
    r = _run(runner, "--arch", "coordconv_regressor", "--data", files["nsc"], "--epochs", 1, "--out", tmp_path / "r", "-q")
    assert r.exit_code == 0
    torch.save({"model": {}}, tmp_path / "r" / "best.pt")  # no format, no arch
    assert_one_line_error(runner.invoke(main, ["evaluate", str(tmp_path / "r")]), "best.pt", "not a checkpoint")
    other = torch.load(tmp_path / "r" / "last.pt", weights_only=True)
    torch.save({**other, "arch": "conv_regressor"}, tmp_path / "r" / "best.pt")
    assert_one_line_error(runner.invoke(main, ["evaluate", str(tmp_path / "r")]), "best.pt", "conv_regressor")
    (tmp_path / "r" / "best.pt").write_bytes(b"truncated")
    assert_one_line_error(runner.invoke(main, ["evaluate", str(tmp_path / "r")]), "best.pt", "checkpoint")


# -- user mistakes -------------------------------------------------------------------------------------

@pytest.mark.parametrize("args,fragments", [
    (["--arch", "coordconv_classification", "--data", "{lanes}"], ("lanes", "not-so-clevr")),
    (["--arch", "fcn_vgg9", "--data", "{nsc}"], ("not-so-clevr", "lanes")),
    (["--arch", "coordconv_classification", "--data", "{missing}"], ("missing.h5",)),
    (["--arch", "coordconv_classification", "--data", "{nsc_no_test}"], ("'test'",)),
    (["--arch", "coordconv_regressor", "--data", "{nsc}", "--fs", "3"], ("--fs", "coordconv_regressor")),
    (["--arch", "fcn_vgg9", "--data", "{lanes}", "--mul", "2"], ("--mul",)),
    (["--arch", "coordconv_classification", "--data", "{nsc}", "--epochs", "0"], ("--epochs",)),
    (["--arch", "coordconv_classification", "--data", "{nsc}", "--lr", "-1"], ("--lr",)),
    (["--arch", "coordconv_classification", "--data", "{nsc}", "--lr", "nan"], ("--lr",)),
    (["--arch", "coordconv_classification", "--data", "{nsc}", "--opt", "rmsprop"], ("--opt",)),
    (["--arch", "coordconv_classification", "--data", "{nsc}", "--val-fraction", "1"], ("--val-fraction",)),
    (["--arch", "coordconv_classification", "--data", "{nsc}", "--val-fraction", "0.999"], ("--val-fraction", "none")),
    (["--arch", "nope", "--data", "{nsc}"], ("--arch", "nope", "coordconv_regressor")),
    (["--arch", "clevr_gan", "--data", "{nsc}"], ("not-so-clevr", "sort-of-clevr")),
    (["--arch", "clevr_gan", "--data", "{soc}", "--val-fraction", "0.1"], ("--val-fraction", "supervised")),
    (["--arch", "coordconv_regressor", "--data", "{nsc}", "--lr2", "0.1"], ("--lr2", "GAN")),
    (["--arch", "deconv_rendering", "--data", "{nsc}", "--interm-loss", "mse"], ("--interm-loss", "coordconv_rendering")),
    (["--arch", "coordconv_classification", "--data", "{nsc}", "--l2-locate", "0.1"], ("--l2-locate", "coordconv_rendering")),
    (["--arch", "coordconv_rendering", "--data", "{nsc}", "--l2-locate", "-1"], ("--l2-locate", "0 or more")),
    (["--arch", "coordconv_regressor", "--data", "{nsc}", "--lr-step-every", "0"], ("--lr-step-every",)),
    (["--arch", "coordconv_regressor", "--data", "{nsc}", "--lr-step-ratio", "2"], ("--lr-step-ratio",)),
    (["--data", "{nsc}"], ("--arch",)),
])
def test_train_errors(runner, files, tmp_path, args, fragments):
    paths = {**{k: str(v) for k, v in files.items()}, "missing": str(tmp_path / "missing.h5")}
    r = _run(runner, *[a.format(**paths) for a in args], "--out", tmp_path / "out")
    assert_one_line_error(r, *fragments)
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_cuda(runner, files):
    assert_one_line_error(_run(runner, "--arch", "coordconv_classification", "--data", files["nsc"], "--device", "cuda"),
                          "--device", "cuda")


def test_evaluate_errors(runner, tmp_path):
    assert_one_line_error(runner.invoke(main, ["evaluate", str(tmp_path)]), "not a run folder")


def test_recipes_are_the_originals(files):
    nsc = str(files["nsc"])
    cfg = resolve(TrainConfig(arch="coordconv_classification", data=nsc))
    # l2: a measured departure (0.1 against the README's 0.001: the held-out quadrant on 9 of 9 tuning seeds, not 3 of 5)
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.l2, cfg.opt, cfg.lr_policy) == (100, 16, 0.005, 0.1, "adam", "constant")
    cfg = resolve(TrainConfig(arch="coordconv_rendering", data=nsc))
    # l2 0 on the painter: the other value of the sweep; 0.1 on the locating stage: measured (docs/lab.md)
    assert (cfg.lr, cfg.l2, cfg.l2_locate, cfg.interm_loss) == (0.005, 0.0, 0.1, "softmax")
    cfg = resolve(TrainConfig(arch="deconv_classification", data=nsc, lr=0.02, hparams={"fs": 4}))
    assert (cfg.lr, cfg.l2, cfg.hparams, cfg.epochs) == (0.02, 0.001, {"mul": 2, "fs": 4}, 1000)
    assert (cfg.lr_policy, cfg.lr_step_every, cfg.lr_step_ratio, cfg.lr_max_steps) == ("step", 200, 0.1, 4)
    for arch in ("conv_regressor", "conv_regressor_fc"):
        cfg = resolve(TrainConfig(arch=arch, data=nsc))
        assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.l2) == (100, 256, 0.01, 1e-5), arch
    cfg = resolve(TrainConfig(arch="coordconv_regressor", data=nsc))  # lr: a measured departure
    assert (cfg.epochs, cfg.batch_size, cfg.lr, cfg.l2) == (100, 256, 0.001, 1e-5)
    assert defaults_for("clevr_gan")["lr2"] == 0.0005 and defaults_for("clevr_gan")["hparams"]["z_dim"] == 256
    from coordconv_data.train.config import recipe_source

    assert all(recipe_source(a) for a in trainable_archs())


def test_every_registered_arch_has_a_recipe():
    assert trainable_archs() == list_models()


def test_optimizers_use_the_original_betas(files):
    cfg = resolve(TrainConfig(arch="coordconv_classification", data=str(files["nsc"])))
    task = T.task_for(cfg)
    model = task.build_model()
    (opt,) = task.optimizers(model).values()
    assert isinstance(opt, torch.optim.Adam) and opt.defaults["betas"] == (0.9, 0.99) and opt.defaults["weight_decay"] == 0


def test_l2_adds_exactly_l2_sum_of_squared_kernels():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.ReLU(), torch.nn.Flatten(),
                                torch.nn.Linear(2 * 4 * 4, 3))
    params = T.l2_parameters(model)
    assert [p.shape for p in params] == [model[0].weight.shape, model[4].weight.shape]
    by_hand = 0.01 * (model[0].weight.detach().square().sum() + model[4].weight.detach().square().sum())
    torch.testing.assert_close(T.l2_penalty(params, 0.01).detach(), by_hand)
    # One SGD step: the penalty moves each kernel by lr * 2 * l2 * w and nothing else.
    x = torch.randn(4, 1, 6, 6)
    after = {}
    for l2 in (0.0, 0.01):
        m = __import__("copy").deepcopy(model)
        opt = torch.optim.SGD(m.parameters(), lr=0.1)
        loss = m(x).square().mean() + T.l2_penalty(T.l2_parameters(m), l2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        after[l2] = dict(m.named_parameters())
    for name, p in model.named_parameters():
        moved = after[0.0][name].detach() - after[0.01][name].detach()
        expected = 0.1 * 2 * 0.01 * p.detach() if name in ("0.weight", "4.weight") else torch.zeros_like(p)
        torch.testing.assert_close(moved, expected, atol=1e-7, rtol=1e-5)


def test_interm_loss_reaches_the_stage_one_logits(files):
    from coordconv_data.models import create_model

    x, y = __import__("coordconv_data.datasets", fromlist=["NotSoClevr"]).NotSoClevr(files["nsc"], "train", task="rendering").encode(range(8))
    grads = {}
    for interm in ("none", "softmax", "mse"):
        cfg = resolve(TrainConfig(arch="coordconv_rendering", data=str(files["nsc"]), interm_loss=interm))
        task = T.task_for(cfg)
        torch.manual_seed(0)
        model = create_model("coordconv_rendering")
        objective, _, _ = task.training_loss(task.training_module(model)(x), y, x)
        objective.backward()
        grads[interm] = sum(p.grad.norm() for p in model.locate.parameters())
        if interm != "none":  # the added term is the original's, on the logits before the softmax
            final, centre = model.forward_stages(x)
            index = ((x + 1) / 2 * 63).round().long()
            index = index[:, 1] * 64 + index[:, 0]
            extra = objective - task.loss(final, y)
            expected = (torch.nn.functional.cross_entropy(centre.flatten(1), index) if interm == "softmax" else
                        (centre.flatten(1) - torch.nn.functional.one_hot(index, 4096)).square().mean())
            torch.testing.assert_close(extra, expected)
    assert grads["softmax"] > 100 * grads["none"] and grads["mse"] > grads["none"]


def test_l2_locate_decays_the_locating_stage_and_l2_the_painter(files):
    """--l2-locate weighs the locating stage's kernels, --l2 the painter's; without it one --l2 for both
    (the original's single value)."""
    from coordconv_data.models import create_model, kernel_parameters

    torch.manual_seed(0)
    model = create_model("coordconv_rendering")
    locate, paint = kernel_parameters(model.locate), kernel_parameters(model.paint)
    square = lambda ps: float(sum(p.detach().square().sum() for p in ps))
    for l2, l2_locate, expected in ((0.0, 0.1, 0.1 * square(locate)), (0.01, 0.1, 0.1 * square(locate) + 0.01 * square(paint)),
                                    (0.01, None, 0.01 * (square(locate) + square(paint)))):
        cfg = resolve(TrainConfig(arch="coordconv_rendering", data=str(files["nsc"]), l2=l2, l2_locate=l2_locate))
        if l2_locate is None:
            cfg.l2_locate = None  # the original's single value for both stages
        task = T.task_for(cfg)
        groups = task.penalties(model)
        assert sum(len(ps) for _, ps in groups) == len(locate) + len(paint)
        total = sum(float(torch.as_tensor(T.l2_penalty(ps, w)).detach()) for w, ps in groups)
        assert total == pytest.approx(expected, rel=1e-6), (l2, l2_locate)


def test_step_schedule_changes_the_rate_at_the_named_epochs(files, tmp_path, runner):
    from coordconv_data.train.config import learning_rate

    cfg = resolve(TrainConfig(arch="deconv_classification", data=str(files["nsc"])))
    rates = [learning_rate(0.01, e, cfg) for e in (1, 200, 201, 400, 401, 801, 1000)]
    assert rates == pytest.approx([0.01, 0.01, 0.001, 0.001, 0.0001, 1e-6, 1e-6])
    r = _run(runner, "--arch", "coordconv_regressor", "--data", files["nsc"], "--epochs", 5, "--lr-policy", "step",
             "--lr-step-every", 2, "--lr-step-ratio", 0.5, "--lr-max-steps", 1, "--out", tmp_path / "r", "-q")
    assert r.exit_code == 0, r.output
    with open(tmp_path / "r" / "metrics.csv") as f:
        lrs = [float(row["lr"]) for row in csv.DictReader(f) if row["split"] == "train"]
    assert lrs == pytest.approx([0.001, 0.001, 0.0005, 0.0005, 0.0005])


def test_models_command(runner):
    r = runner.invoke(main, ["models", "--json"])
    assert r.exit_code == 0, r.output
    entries = {e["arch"]: e for e in json.loads(r.output)}
    assert sorted(entries) == trainable_archs()
    assert entries["coordconv_classification"]["parameters"] == 7553
    assert entries["coordconv_regressor"]["default_data"] == "not_so_clevr_quadrant.h5"
    assert entries["fcn_vgg9"]["task"] == "segmentation" and entries["fcn_vgg9"]["default_data"] == "lanes.h5"
    r = runner.invoke(main, ["models"])
    assert r.exit_code == 0 and "coordconv_regressor" in r.output and "906" in r.output
    r = runner.invoke(main, ["train", "--help"])
    assert all(arch in r.output for arch in trainable_archs())


# -- distributed ---------------------------------------------------------------------------------------

def _torchrun(*args: str, timeout: int = 180) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "coordconv_data", "train", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def test_ddp_two_processes_gloo(files, tmp_path):
    run = tmp_path / "ddp"
    p = _torchrun("--arch", "coordconv_regressor", "--data", str(files["nsc"]), "--epochs", "1", "--out", str(run))
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.count("coordconv_regressor: 1 epochs") == 1  # rank 0 reports
    record = json.loads((run / "config.json").read_text())
    assert record["world_size"] == 2
    assert [(r["epoch"], r["split"]) for r in _metric_rows(run)] == [("1", "train"), ("1", "val"), ("1", "test")]
    assert (run / "best.pt").is_file() and (run / "predictions.png").is_file()


# -- the data file is validated once per run ---------------------------------------------------------

@pytest.mark.parametrize("arch, data, extra", [
    ("coordconv_classification", "nsc", ["--batch-size", "32"]),
    ("fcn_vgg9", "lanes", ["--batch-size", "8"]),
    ("clevr_gan", "soc", ["--batch-size", "8", "--width", "4", "--z-dim", "8", "--eval-samples", "8"]),
])
def test_a_run_validates_its_data_file_once(runner, files, tmp_path, monkeypatch, arch, data, extra):
    from coordconv_data import store

    calls = []
    real = store._summarize
    monkeypatch.setattr(store, "_summarize", lambda p, f, kind: calls.append(p) or real(p, f, kind))
    run = tmp_path / "run"
    r = runner.invoke(main, ["train", "--arch", arch, "--data", str(files[data]), "--epochs", "1", "--out", str(run),
                             "-q", *extra])
    assert r.exit_code == 0, r.output
    assert len(calls) == 1, calls
    calls.clear()
    assert runner.invoke(main, ["evaluate", str(run)]).exit_code == 0
    assert len(calls) == 1, calls
    calls.clear()
    assert runner.invoke(main, ["train", "--resume", str(run), "--epochs", "2", "-q"]).exit_code == 0
    assert len(calls) == 1, calls
