"""Training: task metrics, loss falls per task, resume, run dir, CLI errors, evaluate, DataLoader, DDP."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from conftest import assert_one_line_error
from coordconv_data.cli import main
from coordconv_data.data import H5SplitDataset
from coordconv_data.generate.lanes import LanesSpec
from coordconv_data.generate.lanes import write_file as write_lanes
from coordconv_data.generate.not_so_clevr import NotSoClevrSpec
from coordconv_data.generate.not_so_clevr import write_file as write_nsc
from coordconv_data.models import create_model
from coordconv_data.train import TrainConfig, resolve, train
from coordconv_data.train import tasks as T

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
    return {
        "nsc": shrink(d / "full_q.h5", d / "nsc.h5", 64, 32),
        "nsc_no_test": shrink(d / "full_q.h5", d / "nsc_no_test.h5", 64, 32, drop=("test",)),
        "lanes": d / "lanes.h5",
    }


# -- metrics on hand-made predictions ----------------------------------------------------------------

def test_classification_accuracy():
    target = torch.tensor([0, 5 * 64 + 3, 4095])
    out = torch.full((3, 1, 64, 64), -5.0)
    for i, t in enumerate(target):
        out[i].view(-1)[t] = 5.0
    assert T.finalize("classification", T.stats("classification", out, target)) == {"accuracy": 1.0}
    out[2].view(-1)[7] = 9.0  # one wrong of three
    assert T.finalize("classification", T.stats("classification", out, target))["accuracy"] == pytest.approx(2 / 3)


def test_classification_batch_mapping():
    batch = {"locations": torch.tensor([[3, 5], [63, 0]])}
    x, y = T.to_inputs_targets("classification", batch)
    assert y.tolist() == [5 * 64 + 3, 63]
    assert torch.allclose(x, torch.tensor([[3 / 63 * 2 - 1, 5 / 63 * 2 - 1], [1.0, -1.0]]))


def test_rendering_iou():
    target = torch.zeros(2, 1, 64, 64)
    target[:, :, 0:4, 0:4] = 1
    perfect = target * 20 - 10
    assert T.finalize("rendering", T.stats("rendering", perfect, target))["iou"] == 1.0
    partial = torch.full((2, 1, 64, 64), -10.0)
    partial[0, :, 0:4, 0:2] = 10  # 8 of 16: IoU 0.5
    partial[1, :, 0:4, 0:8] = 10  # 16 of 32: IoU 0.5
    assert T.finalize("rendering", T.stats("rendering", partial, target))["iou"] == pytest.approx(0.5)


def test_regression_px_error():
    from coordconv_data.models import normalize_coords

    loc = torch.tensor([[10.0, 20.0], [40.0, 50.0]])
    target = normalize_coords(loc, 64)
    assert T.finalize("regression", T.stats("regression", target.clone(), target))["px_error"] == pytest.approx(0, abs=1e-9)
    off = normalize_coords(loc + torch.tensor([[3.0, 4.0], [0.0, 0.0]]), 64)  # 5 px and 0 px
    assert T.finalize("regression", T.stats("regression", off, target))["px_error"] == pytest.approx(2.5)


def test_segmentation_metrics():
    target = torch.tensor([[[0, 1], [2, 3]]])  # (1, 2, 2)
    perfect = torch.nn.functional.one_hot(target, 4).permute(0, 3, 1, 2).float()
    m = T.finalize("segmentation", T.stats("segmentation", perfect, target))
    assert m["pixel_accuracy"] == 1.0 and m["mean_iou"] == 1.0
    assert all(m[f"recall_{c}"] == 1.0 and m[f"iou_{c}"] == 1.0 for c in "0123")
    wrong = perfect.clone()
    wrong[0, :, 1, 1] = torch.tensor([0, 0, 1.0, 0])  # class 3 predicted as 2
    m = T.finalize("segmentation", T.stats("segmentation", wrong, target))
    assert m["pixel_accuracy"] == 0.75
    assert m["recall_3"] == 0.0 and m["recall_2"] == 1.0 and m["iou_2"] == 0.5
    assert m["mean_iou"] == pytest.approx((1 + 1 + 0.5 + 0) / 4)


# -- every task learns --------------------------------------------------------------------------------

@pytest.mark.parametrize("arch,kind", [
    ("coordconv_classification", "nsc"), ("coordconv_rendering", "nsc"),
    ("coordconv_regressor", "nsc"), ("fcn_vgg9_coordbias", "lanes"),
])
def test_loss_falls(files, arch, kind):
    cfg = resolve(TrainConfig(arch=arch, data=str(files[kind])))
    ds = H5SplitDataset(files[kind], "train", names=T.TASK_SPECS[cfg.task].arrays)
    torch.manual_seed(0)
    model = create_model(arch)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    x, y = T.to_inputs_targets(cfg.task, ds.batch(range(16)))
    losses = []
    for _ in range(8):
        loss = T.loss_fn(cfg.task, model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0], losses


# -- the run directory, resume, evaluate --------------------------------------------------------------

def _run(runner, *args):
    return runner.invoke(main, ["train", *map(str, args)])


def _metric_rows(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv") as f:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(f)]


def test_run_dir_and_evaluate(runner, files, tmp_path):
    run = tmp_path / "run"
    r = _run(runner, "--arch", "coordconv_regressor", "--data", files["nsc"], "--epochs", 2, "--out", run)
    assert r.exit_code == 0, r.output
    assert "coordconv_regressor: 2 epochs" in r.output and "px_error" in r.output
    assert sorted(os.listdir(run)) == ["best.pt", "config.json", "curves.png", "last.pt", "metrics.csv", "predictions.png"]
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["options"]["arch"] == "coordconv_regressor" and cfg["options"]["lr"] == 0.001
    assert cfg["data"]["bytes"] == files["nsc"].stat().st_size and cfg["data"]["kind"] == "not-so-clevr"
    assert cfg["data"]["params"]["split"] == "quadrant"
    assert cfg["versions"]["torch"] == torch.__version__
    rows = _metric_rows(run)
    assert [(r["epoch"], r["split"]) for r in rows] == [("1", "train"), ("1", "test"), ("2", "train"), ("2", "test")]
    assert all(float(r["px_error"]) >= 0 for r in rows)

    r = runner.invoke(main, ["evaluate", str(run), "--json"])
    assert r.exit_code == 0, r.output
    result = json.loads(r.output)
    assert set(result) >= {"train", "test", "arch", "epoch"} and result["test"]["px_error"] >= 0
    best_epoch = result["epoch"]
    assert float(next(x for x in rows if x["epoch"] == str(best_epoch) and x["split"] == "test")["px_error"]) \
        == pytest.approx(result["test"]["px_error"], rel=1e-4)
    r = runner.invoke(main, ["evaluate", str(run)])
    assert r.exit_code == 0 and "test: loss" in r.output

    # An existing run directory is refused without --resume.
    r = _run(runner, "--arch", "coordconv_regressor", "--data", files["nsc"], "--out", run)
    assert_one_line_error(r, "--out", "exists")


def test_resume_equals_uninterrupted(runner, files, tmp_path):
    common = ["--arch", "coordconv_classification", "--data", files["nsc"], "--seed", 3, "-q"]
    r = _run(runner, *common, "--epochs", 2, "--out", tmp_path / "a")
    assert r.exit_code == 0, r.output
    r = _run(runner, *common, "--epochs", 1, "--out", tmp_path / "b")
    assert r.exit_code == 0, r.output
    r = _run(runner, "--resume", tmp_path / "b", "--epochs", 2, "-q")
    assert r.exit_code == 0, r.output
    assert _metric_rows(tmp_path / "a") == _metric_rows(tmp_path / "b")
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=False)
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=False)
    assert a["epoch"] == b["epoch"] == 2
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k


def test_resume_refuses_changed_options(runner, files, tmp_path):
    r = _run(runner, "--arch", "coordconv_regressor", "--data", files["nsc"], "--epochs", 1, "--out", tmp_path / "r", "-q")
    assert r.exit_code == 0, r.output
    r = _run(runner, "--resume", tmp_path / "r", "--lr", 0.5)
    assert_one_line_error(r, "--lr", "resumed")
    r = _run(runner, "--resume", tmp_path / "nothing")
    assert_one_line_error(r, "not a run directory")


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
    (["--arch", "coordconv_classification", "--data", "{nsc}", "--opt", "rmsprop"], ("--opt",)),
    (["--arch", "nope", "--data", "{nsc}"], ("--arch", "nope")),
    (["--arch", "clevr_gan", "--data", "{nsc}"], ("not-so-clevr", "sort-of-clevr")),
    (["--data", "{nsc}"], ("--arch",)),
])
def test_train_errors(runner, files, tmp_path, args, fragments):
    paths = {**{k: str(v) for k, v in files.items()}, "missing": str(tmp_path / "missing.h5")}
    r = _run(runner, *[a.format(**paths) for a in args], "--out", tmp_path / "out")
    assert_one_line_error(r, *fragments)
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_cuda(runner, files, tmp_path):
    r = _run(runner, "--arch", "coordconv_classification", "--data", files["nsc"], "--device", "cuda")
    assert_one_line_error(r, "--device", "CUDA")


def test_evaluate_errors(runner, files, tmp_path):
    assert_one_line_error(runner.invoke(main, ["evaluate", str(tmp_path)]), "best.pt")


# -- data ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("in_memory", [True, False])
def test_dataloader_workers_equal(files, in_memory):
    from torch.utils.data import DataLoader

    ds = H5SplitDataset(files["lanes"], "train", names=("images", "masks"), in_memory=in_memory)
    assert ds.in_memory is in_memory and len(ds) == 24

    def batches(workers):
        g = torch.Generator().manual_seed(5)
        return list(DataLoader(ds, batch_size=5, shuffle=True, generator=g, num_workers=workers))

    a, b = batches(0), batches(2)
    assert len(a) == len(b) == 5
    for x, y in zip(a, b):
        assert torch.equal(x["images"], y["images"]) and torch.equal(x["masks"], y["masks"])
    assert a[0]["images"].dtype == torch.uint8 and a[0]["images"].shape == (5, 32, 32, 3)


def test_dataset_original_layout(tmp_path):
    write_nsc(NotSoClevrSpec(split="quadrant"), tmp_path / "o.h5", layout="original")
    ds = H5SplitDataset(tmp_path / "o.h5", "test", names=("locations",))
    assert len(ds) == 729 and ds[0]["locations"].shape == (2,)


# -- distributed ---------------------------------------------------------------------------------------

def test_ddp_two_processes_gloo(files, tmp_path):
    run = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "coordconv_data", "train", "--arch", "coordconv_regressor", "--data", str(files["nsc"]),
           "--epochs", "1", "--out", str(run), "-q"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-3000:]
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["world_size"] == 2
    assert [(r["epoch"], r["split"]) for r in _metric_rows(run)] == [("1", "train"), ("1", "test")]
    assert (run / "best.pt").is_file() and (run / "predictions.png").is_file()


def test_segmentation_run_columns(runner, files, tmp_path):
    run = tmp_path / "seg"
    r = _run(runner, "--arch", "fcn_vgg9_coordbias", "--data", files["lanes"], "--epochs", 1, "--batch-size", 8,
             "--out", run, "-q")
    assert r.exit_code == 0 and r.output == "", r.output
    rows = _metric_rows(run)
    assert {"pixel_accuracy", "mean_iou", "recall_yellow_right", "iou_red_bottom"} <= set(rows[0])
    r = runner.invoke(main, ["evaluate", str(run), "--json"])
    assert r.exit_code == 0 and 0 <= json.loads(r.output)["test"]["mean_iou"] <= 1


def test_per_arch_defaults(files):
    nsc = str(files["nsc"])
    cfg = resolve(TrainConfig(arch="coordconv_rendering", data=nsc))
    assert (cfg.lr, cfg.l2, cfg.batch_size, cfg.opt) == (0.001, 0.0, 16, "adam")
    cfg = resolve(TrainConfig(arch="deconv_classification", data=nsc, lr=0.01, fs=4))
    assert (cfg.lr, cfg.l2, cfg.hparams) == (0.01, 0.001, {"fs": 4})


def test_default_out_and_resume_elsewhere(runner, files, tmp_path, monkeypatch):
    import shutil

    shutil.copy(files["nsc"], tmp_path / "d.h5")
    monkeypatch.chdir(tmp_path)
    r = _run(runner, "--arch", "coordconv_regressor", "--data", "d.h5", "--epochs", 1, "-q")
    assert r.exit_code == 0, r.output
    (run,) = list((tmp_path / "runs").iterdir())
    assert run.name.startswith("coordconv_regressor-not-so-clevr-")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    r = _run(runner, "--resume", run, "--epochs", 2, "-q")
    assert r.exit_code == 0, r.output
    assert [row["epoch"] for row in _metric_rows(run)] == ["1", "1", "2", "2"]
