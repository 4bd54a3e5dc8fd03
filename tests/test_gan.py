"""GAN training: the paper's step schedule, the run directory, resume, evaluate, interpolate, errors."""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
import torch

from conftest import assert_one_line_error
from coordconv_data.cli import main
from coordconv_data.generate.not_so_clevr import NotSoClevrSpec
from coordconv_data.generate.not_so_clevr import write_file as write_nsc
from coordconv_data.generate.sort_of_clevr import SortOfClevrSpec
from coordconv_data.generate.sort_of_clevr import write_file as write_soc
from coordconv_data.datasets import SortOfClevr
from coordconv_data.models import create_model, model_info
from coordconv_data.train import TrainConfig, task_for
from coordconv_data.train.interpolate import walk_ends
from coordconv_data.walks import walk_latents
from coordconv_data.train.tasks import GAN, fixed_latents, gan_iteration

FAST = ["--batch-size", "8", "--eval-samples", "12", "--width", "8", "-q"]  # 40 images (train and test): 5 iterations an epoch
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("gan")
    write_soc(SortOfClevrSpec(n=40, seed=5), d / "soc.h5")
    write_soc(SortOfClevrSpec(n=20, seed=6), d / "soc_small.h5")  # 18 train images
    write_soc(SortOfClevrSpec(n=20, size=32, seed=5), d / "soc32.h5")
    write_soc(SortOfClevrSpec(n=20, seed=5), d / "soc_original.h5", layout="original")
    write_soc(SortOfClevrSpec(n=20, objects=3, seed=5), d / "soc3.h5")
    write_soc(SortOfClevrSpec(n=20, test_fraction=0.0, seed=5), d / "soc_no_test.h5")
    write_nsc(NotSoClevrSpec(split="uniform"), d / "nsc.h5")
    return {"soc": d / "soc.h5", "soc_small": d / "soc_small.h5", "soc32": d / "soc32.h5", "nsc": d / "nsc.h5",
            "soc_original": d / "soc_original.h5", "soc3": d / "soc3.h5", "soc_no_test": d / "soc_no_test.h5"}


def _train(runner, *args):
    return runner.invoke(main, ["train", *map(str, args)])


def _rows(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv") as f:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(f)]


@pytest.fixture(scope="module")
def gan_run(files, tmp_path_factory) -> Path:
    from click.testing import CliRunner

    run = tmp_path_factory.mktemp("runs") / "gan"
    r = _train(CliRunner(), "--arch", "clevr_gan", "--data", files["soc"], "--epochs", 2, "--out", run, *FAST)
    assert r.exit_code == 0, r.output
    return run


# -- the step schedule -----------------------------------------------------------------------------------

def _gan_task(arch: str = "clevr_gan", **options) -> GAN:
    return GAN(TrainConfig(arch=arch, **options), model_info(arch))


def test_one_discriminator_and_two_generator_steps():
    torch.manual_seed(0)
    model = create_model("clevr_gan", z_dim=16)
    opt_d = torch.optim.Adam(model.discriminator.parameters(), lr=1e-4)
    opt_g = torch.optim.Adam(model.generator.parameters(), lr=5e-4)
    g0 = {k: v.clone() for k, v in model.generator.state_dict().items()}
    real = torch.rand(4, 3, 64, 64) * 2 - 1
    nets = _gan_task().networks(model, lambda m: m)
    stats = gan_iteration(nets, {"discriminator": opt_d, "generator": opt_g}, real, model.sample_noise(4))
    stats = {k: float(v) for k, v in stats.items()}
    assert set(stats) == {"d_loss", "g_loss", "d_real", "d_fake"} and all(math.isfinite(v) for v in stats.values())
    assert 0 <= stats["d_real"] <= 1 and 0 <= stats["d_fake"] <= 1
    steps = lambda opt: {int(s["step"]) for s in opt.state.values()}  # noqa: E731
    assert steps(opt_d) == {1} and steps(opt_g) == {2}
    assert len(opt_d.state) == len(list(model.discriminator.parameters()))  # every D parameter got a gradient
    assert any(not torch.equal(g0[k], v) for k, v in model.generator.state_dict().items())
    assert all(p.requires_grad for p in model.discriminator.parameters())  # unfrozen after G's steps


@pytest.mark.parametrize("arch,before_tanh", [("clevr_gan", False), ("clevr_coordconv_in_gd", True)])
def test_what_the_discriminator_sees(arch, before_tanh):
    # As the original: the CoordConv generator's last convolution goes to D without tanh; images
    # (samples, scores, interpolations) are always tanh-bounded.
    torch.manual_seed(0)
    model = create_model(arch, z_dim=8).eval()
    z = model.sample_noise(2)
    with torch.no_grad():
        seen, images = model.fakes_for_discriminator(z), model.generator(z)
    assert images.abs().max() <= 1
    if before_tanh:
        torch.testing.assert_close(torch.tanh(seen), images)
        assert not torch.allclose(seen, images)
    else:
        torch.testing.assert_close(seen, images)


def test_a_sample_depends_on_its_own_latent_only():
    # Inference-mode BatchNorm: what makes samples, scores and interpolations independent of batching.
    torch.manual_seed(0)
    model = create_model("clevr_gan", z_dim=8)
    model.train()
    for _ in range(2):  # move the running statistics away from their initial values
        model.generator(model.sample_noise(4))
    z = model.sample_noise(6)
    task = _gan_task()
    whole = task.generate(model, z, "cpu")
    assert model.generator.training  # restored
    parts = np.concatenate([task.generate(model, z[i : i + 1], "cpu") for i in range(6)])
    assert np.abs(whole.astype(int) - parts.astype(int)).max() <= 1  # float reassociation at most


def test_image_conversions_round_trip(files):
    # What the GAN trains on (the dataset's "gan" sample) and what its images become for the score.
    ds = SortOfClevr(files["soc"], "all", task="gan")
    x, _ = ds.encode(range(3))
    assert x.shape == (3, 3, 64, 64) and x.min() >= -1 and x.max() <= 1
    raw = h5py.File(files["soc"], "r")["train/images"][:3]
    assert np.array_equal(_gan_task().to_uint8(x), raw)
    assert _gan_task().to_uint8(torch.full((1, 3, 2, 2), 7.0)).max() == 255  # clamped, not wrapped


def test_fixed_and_walk_latents():
    a = fixed_latents(5, 8, seed=1)
    torch.manual_seed(1)
    assert torch.equal(a, fixed_latents(5, 8, seed=1)) and not torch.equal(a, torch.rand(5, 8) * 2 - 1)
    assert not torch.equal(a, fixed_latents(5, 8, seed=2)) and a.abs().max() <= 1
    ends = walk_ends(8, rows=3, seed=0)
    assert torch.equal(ends, walk_ends(8, rows=3, seed=0)) and not torch.allclose(ends[0, 0], ends[1, 0])
    z = walk_latents(ends, 5, "linear").view(3, 5, 8)
    for row in z:  # evenly spaced points on a straight line
        assert torch.allclose(row[2], (row[0] + row[4]) / 2, atol=1e-6)
        assert torch.allclose(row[1] - row[0], row[4] - row[3], atol=1e-6)


# -- the run directory -----------------------------------------------------------------------------------

def test_run_directory(gan_run, files):
    assert sorted(os.listdir(gan_run)) == ["best.pt", "config.json", "curves.png", "last.pt", "metrics.csv",
                                           "samples_001.png", "samples_002.png"]
    rows = _rows(gan_run)
    assert [(r["epoch"], r["split"]) for r in rows] == [("0", "real"), ("1", "train"), ("1", "generated"),
                                                         ("2", "train"), ("2", "generated")]
    assert float(rows[0]["geometry"]) == 1.0  # real images: the ceiling
    for r in rows[1::2]:
        assert all(math.isfinite(float(r[k])) for k in ("d_loss", "g_loss", "d_real", "d_fake"))
    for r in rows[2::2]:
        assert 0 <= float(r["geometry"]) <= 1 and 0 <= float(r["position_tv"]) <= 1
    record = json.loads((gan_run / "config.json").read_text())
    cfg = record["options"]
    assert (cfg["lr"], cfg["lr2"], cfg["hparams"]["z_dim"], cfg["batch_size"]) == (0.0001, 0.0005, 256, 8)
    assert record["selection"] == "generated" and "validation" not in record
    grid = cv2.imread(str(gan_run / "samples_002.png"))
    assert grid.shape == (2 + 2 * 66, 2 + 10 * 66, 3)  # 12 samples, 10 a row, 2 px black dividers
    ck = torch.load(gan_run / "last.pt", weights_only=True)
    assert set(ck["optimizers"]) == {"discriminator", "generator"} and {"history", "best_value"} <= set(ck)
    assert ck["epoch"] == 2


def test_evaluate_reproduces_the_logged_score(runner, gan_run):
    r = runner.invoke(main, ["evaluate", str(gan_run), "--json"])
    assert r.exit_code == 0, r.output
    result = json.loads(r.output)
    logged = next(x for x in _rows(gan_run) if x["split"] == "generated" and x["epoch"] == str(result["epoch"]))
    assert result["generated"]["n"] == 12 and result["real"]["geometry"] == 1.0
    for k in ("geometry", "position_tv"):
        assert result["generated"][k] == pytest.approx(float(logged[k]), abs=1e-6)
    r = runner.invoke(main, ["evaluate", str(gan_run)])
    assert r.exit_code == 0 and "generated: n 12, geometry" in r.output and "real: " in r.output


def test_interpolate(runner, gan_run, tmp_path):
    out = tmp_path / "interp.png"
    r = runner.invoke(main, ["interpolate", str(gan_run), "--out", str(out), "--rows", "3", "--steps", "4", "-q"])
    assert r.exit_code == 0, r.output
    picture = cv2.imread(str(out))
    assert picture.shape == (2 + 3 * 66, 2 + 4 * 66, 3)
    r2 = runner.invoke(main, ["interpolate", str(gan_run), "--out", str(tmp_path / "again.png"), "--rows", "3",
                              "--steps", "4", "-q"])
    assert r2.exit_code == 0 and (tmp_path / "again.png").read_bytes() == out.read_bytes()  # same seed, same walks
    assert_one_line_error(runner.invoke(main, ["interpolate", str(gan_run), "--out", str(out)]), "exists")
    r = runner.invoke(main, ["interpolate", str(gan_run), "--out", str(out), "--checkpoint", "last", "--scale", "2",
                             "--force", "-q"])
    assert r.exit_code == 0 and cv2.imread(str(out)).shape == (2 + 8 * 130, 2 + 10 * 130, 3)


def test_resume_equals_uninterrupted(runner, files, tmp_path):
    common = ["--arch", "clevr_gan", "--data", files["soc_small"], "--seed", 2, "--batch-size", 6,
              "--eval-samples", 6, "--width", 8, "-q"]
    assert _train(runner, *common, "--epochs", 2, "--out", tmp_path / "a").exit_code == 0
    assert _train(runner, *common, "--epochs", 1, "--out", tmp_path / "b").exit_code == 0
    r = _train(runner, "--resume", tmp_path / "b", "--epochs", 2, "-q")
    assert r.exit_code == 0, r.output
    assert _rows(tmp_path / "a") == _rows(tmp_path / "b")
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    r = _train(runner, "--resume", tmp_path / "b", "--lr2", 0.1)
    assert_one_line_error(r, "--lr2", "resumed")
    r = _train(runner, "--resume", tmp_path / "b", "--z-dim", 64)
    assert_one_line_error(r, "--z-dim", "256")  # names the value the run used (the arch's default)
    r = _train(runner, "--resume", tmp_path / "b", "--z-dim", 256, "--lr2", 0.0005, "--epochs", 3, "-q")
    assert r.exit_code == 0, r.output  # the values it used are no change


def test_coordconv_gan_trains(runner, files, tmp_path):
    run = tmp_path / "cc"
    r = _train(runner, "--arch", "clevr_coordconv_in_gd", "--data", files["soc_small"], "--epochs", 1, "--z-dim", 32,
               "--lr", 2e-4, "--lr2", 1e-3, "--out", run, "--batch-size", "9", "--eval-samples", "4", "--width", 8)
    assert r.exit_code == 0, r.output
    assert "clevr_coordconv_in_gd: 1 epochs" in r.output and "geometry" in r.output and "real images" in r.output
    assert (run / "samples_001.png").is_file()
    cfg = json.loads((run / "config.json").read_text())["options"]
    assert cfg["hparams"]["z_dim"] == 32 and cfg["lr2"] == 0.001


# -- user mistakes ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("args,fragments", [
    (["--arch", "clevr_gan", "--data", "{nsc}"], ("not-so-clevr", "sort-of-clevr")),
    (["--arch", "clevr_gan", "--data", "{soc32}"], ("32x32", "64x64")),
    (["--arch", "clevr_gan", "--data", "{soc_original}"], ("original layout", "native")),
    (["--arch", "clevr_gan", "--data", "{soc}", "--eval-samples", "50001"], ("--eval-samples", "50000")),
    (["--arch", "clevr_gan", "--data", "{soc}", "--lr2", "0"], ("--lr2", "positive")),
    (["--arch", "clevr_gan", "--data", "{soc}", "--lr2", "nan"], ("--lr2",)),
    (["--arch", "clevr_gan", "--data", "{soc}", "--eval-samples", "0"], ("--eval-samples",)),
    (["--arch", "clevr_gan", "--data", "{soc}", "--z-dim", "0"], ("--z-dim", "z_dim")),
    (["--arch", "clevr_gan", "--data", "{soc}", "--mul", "2"], ("--mul", "z_dim")),
    (["--arch", "clevr_gan", "--data", "{soc}", "--batch-size", "100"], ("--batch-size", "40")),
    (["--arch", "coordconv_regressor", "--data", "{nsc}", "--lr2", "0.1"], ("--lr2", "GAN")),
    (["--arch", "coordconv_regressor", "--data", "{nsc}", "--z-dim", "8"], ("--z-dim", "coordconv_regressor")),
    (["--arch", "coordconv_regressor", "--data", "{nsc}", "--eval-samples", "8"], ("--eval-samples", "GAN")),
])
def test_train_errors(runner, files, tmp_path, args, fragments):
    paths = {k: str(v) for k, v in files.items()}
    r = _train(runner, *[a.format(**paths) for a in args], "--out", tmp_path / "out")
    assert_one_line_error(r, *fragments)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("data,fragments", [
    ("soc32", ("32x32",)), ("soc3", ("another scene",)), ("nsc", ("not-so-clevr",)),
])
def test_evaluate_on_other_data_errors(runner, gan_run, files, data, fragments):
    assert_one_line_error(runner.invoke(main, ["evaluate", str(gan_run), "--data", str(files[data])]), *fragments)


def test_evaluate_last_checkpoint(runner, gan_run):
    r = runner.invoke(main, ["evaluate", str(gan_run), "--checkpoint", "last", "--json"])
    assert r.exit_code == 0, r.output
    result = json.loads(r.output)
    logged = next(x for x in _rows(gan_run) if x["split"] == "generated" and x["epoch"] == "2")
    assert result["epoch"] == 2 and result["checkpoint"] == "last"
    assert result["generated"]["geometry"] == pytest.approx(float(logged["geometry"]), abs=1e-6)


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", "truncated"])
def test_unreadable_checkpoint(runner, gan_run, tmp_path, content):
    run = tmp_path / "copy"
    run.mkdir()
    (run / "config.json").write_bytes((gan_run / "config.json").read_bytes())
    data = (gan_run / "best.pt").read_bytes()
    (run / "best.pt").write_bytes(data[: len(data) // 2] if content == "truncated" else content)
    for cmd in (["interpolate", str(run), "--out", str(tmp_path / "i.png")], ["evaluate", str(run)]):
        assert_one_line_error(runner.invoke(main, cmd), "best.pt")
    assert not (tmp_path / "i.png").exists()


def test_interpolate_errors(runner, files, tmp_path):
    assert_one_line_error(runner.invoke(main, ["interpolate", str(tmp_path / "none")]), "not a run folder")
    run = tmp_path / "reg"  # what a regression run leaves (its weights are never read)
    run.mkdir()
    (run / "best.pt").write_bytes(b"")
    (run / "config.json").write_text(json.dumps({"format": "coordconv_data-run-1", "options": {
        "arch": "coordconv_regressor", "data": str(files["nsc"])}}))
    assert_one_line_error(runner.invoke(main, ["interpolate", str(run), "--out", str(tmp_path / "i.png")]),
                          "regression", "GAN")
    assert not (tmp_path / "i.png").exists()
    assert_one_line_error(runner.invoke(main, ["interpolate", str(run), "--steps", "1"]), "--steps")


def test_gan_under_torchrun_writes_one_run_folder(files, tmp_path):
    import subprocess
    import sys

    run = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "coordconv_data",
           "train", "--arch", "clevr_gan", "--data", str(files["soc"]), "--epochs", "2", "--z-dim", "8", "--width", "8",
           "--batch-size", "4", "--eval-samples", "4", "--out", str(run)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.count("clevr_gan: 2 epochs") == 1
    assert sorted(os.listdir(run)) == ["best.pt", "config.json", "curves.png", "last.pt", "metrics.csv",
                                       "samples_001.png", "samples_002.png"]
    assert json.loads((run / "config.json").read_text())["world_size"] == 2
    assert [(r["epoch"], r["split"]) for r in _rows(run)] == [("0", "real"), ("1", "train"), ("1", "generated"),
                                                              ("2", "train"), ("2", "generated")]


def test_a_file_without_a_test_split_trains(runner, files, tmp_path):
    # GANs train on every image of the file (as the original); the ceiling is scored on those images.
    r = _train(runner, "--arch", "clevr_gan", "--data", files["soc_no_test"], "--epochs", 1, "--out", tmp_path / "r", *FAST)
    assert r.exit_code == 0, r.output
    assert float(next(x for x in _rows(tmp_path / "r") if x["split"] == "real")["geometry"]) == 1.0
