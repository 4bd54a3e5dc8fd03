"""Data drawn on the fly by index: a spec instead of a file, sample i equal to the file's sample i.

Sort-of-Clevr and Lanes datasets built from a spec serve, bit for bit, the samples of the file the
spec writes, at block edges and anywhere, in the main process and in DataLoader workers, under a
DistributedSampler; coorddata train takes a spec's text for --data, records it, and a resumed run ends
with the metrics of an uninterrupted one (a Lanes FCN, a Sort-of-Clevr GAN).
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

from conftest import assert_one_line_error
from coordconv_data.cli import main
from coordconv_data.datasets import Lanes, NotSoClevr, SortOfClevr
from coordconv_data.errors import InvalidParameter
from coordconv_data.generate import lanes as lanes_gen
from coordconv_data.generate import sort_of_clevr as soc_gen
from coordconv_data.kinds import LANES, SORT_OF_CLEVR
from coordconv_data.specs import is_spec_text, parse_spec_text

LANES_SPEC = lanes_gen.LanesSpec(n=300, test_n=130, size=32)  # blocks of 64
SOC_SPEC = soc_gen.SortOfClevrSpec(n=700, size=32, block_size=64)
CASES = {  # dataset class, spec, task
    "lanes": (Lanes, LANES_SPEC, "segmentation"),
    "sort-of-clevr": (SortOfClevr, SOC_SPEC, "objects"),
}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("files")
    lanes_gen.write_file(LANES_SPEC, d / "lanes.h5", workers=2)
    soc_gen.write_file(SOC_SPEC, d / "sort_of_clevr.h5", workers=2)
    return {"lanes": d / "lanes.h5", "sort-of-clevr": d / "sort_of_clevr.h5"}


def _edges_and_random(n: int, block: int, rng: np.random.Generator) -> list[int]:
    edges = {0, n - 1}
    for b in range(0, n, block):
        edges |= {b, b - 1, min(n - 1, b + block - 1)}
    picked = sorted(i for i in edges if 0 <= i < n)
    return picked + rng.integers(0, n, size=12).tolist()


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    return a.dtype == b.dtype and torch.equal(a, b)


@pytest.mark.parametrize("kind", sorted(CASES))
@pytest.mark.parametrize("workers", [0, 2])
def test_sample_i_is_the_files_sample_i(files, kind, workers):
    cls, spec, task = CASES[kind]
    rng = np.random.default_rng(3)
    for split in ("train", "val", "test", "all"):
        drawn = cls.from_spec(spec, split, task=task)
        read = cls(files[kind], split, task=task, memory_limit=0)  # read per sample from the file
        assert len(drawn) == len(read)
        order = _edges_and_random(len(read), spec.block_size, rng)
        loaders = [DataLoader(ds, batch_size=5, sampler=order, num_workers=workers) for ds in (drawn, read)]
        batches = 0
        for (xa, ya), (xb, yb) in zip(*loaders):
            assert _same(xa, xb) and _same(ya, yb), (split, batches)
            batches += 1
        assert batches == -(-len(order) // 5)
    # the raw arrays too (what the encoding does not show: noise offsets, radii, ...)
    drawn = cls.from_spec(spec)
    import h5py

    with h5py.File(files[kind], "r") as f:
        for split in ("train", "test"):
            n = f[split]["images"].shape[0]
            rows = np.array(_edges_and_random(n, spec.block_size, rng))
            got = drawn.summary.sampler.samples(split, rows)
            assert sorted(got) == sorted(f[split])
            for name, a in got.items():
                assert a.dtype == f[split][name].dtype and np.array_equal(a, f[split][name][...][rows]), name


def test_distributed_ranks_draw_the_files_batches(files):
    drawn = Lanes.from_spec(LANES_SPEC, "train")
    read = Lanes(files["lanes"], "train")
    for rank in range(2):
        batches = []
        for ds in (drawn, read):
            sampler = DistributedSampler(ds, num_replicas=2, rank=rank, shuffle=True, seed=7)
            sampler.set_epoch(1)
            batches.append(list(DataLoader(ds, batch_size=8, sampler=sampler, num_workers=2 if ds is drawn else 0)))
        assert len(batches[0]) == len(batches[1]) > 0
        for (xa, ya), (xb, yb) in zip(*batches):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_a_spec_text_names_what_the_kinds_command_writes():
    kind, spec = parse_spec_text("lanes:n=1000,seed=3")
    assert kind is LANES and spec == lanes_gen.LanesSpec(n=1000, test_n=500, seed=3)  # --test-n: n/2
    assert parse_spec_text("lanes:n=1000,test-n=7,scale=none")[1].test_n == 7
    kind, spec = parse_spec_text("sort-of-clevr:n=64,background=0,0,0,objects=3")
    assert kind is SORT_OF_CLEVR and spec.background == (0, 0, 0) and spec.objects == 3 and spec.n == 64
    assert parse_spec_text("sort-of-clevr:background=black")[1].background == (0, 0, 0)
    for spec in (lanes_gen.LanesSpec(n=96, test_n=11, size=40, seed=4), lanes_gen.LanesSpec()):
        assert parse_spec_text(LANES.spec_text(spec))[1] == spec  # the recorded text reads back
    assert LANES.spec_text(parse_spec_text("lanes:n=96,scale=10")[1]) == "lanes:n=96,scale=10"
    assert is_spec_text("lanes:n=3") and not is_spec_text("lanes.h5") and not is_spec_text("data/lanes:x.h5")
    for bad, fragment in (("lanes:x=1", "not 'x'"), ("lanes:n=-1", "n must be an integer >= 0"),
                          ("lanes:n=abc", "n must be an integer >= 0, got 'abc'"),
                          ("lanes:n=1,n=2", "gives n twice"), ("lanes:7", "not an option=value pair"),
                          ("not-so-clevr:", "fixed size")):
        with pytest.raises(InvalidParameter, match=fragment) as e:
            parse_spec_text(bad)
        assert e.value.field == "data"
    with pytest.raises(InvalidParameter, match="fixed size"):
        NotSoClevr.from_spec(LANES_SPEC)


def _rows(run) -> list[dict]:
    with open(run / "metrics.csv") as f:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(f)]


def test_a_run_on_the_fly_resumes_to_the_metrics_of_an_uninterrupted_one(runner, tmp_path, monkeypatch):
    from coordconv_data.train import data as run_data

    made = []
    real = run_data.spec_summary
    monkeypatch.setattr(run_data, "spec_summary", lambda *a: made.append(a) or real(*a))
    data = "lanes:n=48,test-n=16,size=32,seed=2"
    common = ["--arch", "fcn_vgg9", "--data", data, "--batch-size", "8", "-q"]
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert runner.invoke(main, ["train", *common, "--epochs", "2", "--out", str(whole)]).exit_code == 0
    assert len(made) == 1  # the spec's data made (checked, fingerprinted) once per run
    assert runner.invoke(main, ["train", *common, "--epochs", "1", "--out", str(part)]).exit_code == 0
    made.clear()
    r = runner.invoke(main, ["train", "--resume", str(part), "--epochs", "2", "-q"])
    assert r.exit_code == 0, r.output
    assert len(made) == 1
    assert _rows(part) == _rows(whole) and len(_rows(whole)) == 6
    record = json.loads((whole / "config.json").read_text())
    assert record["options"]["data"] == "lanes:n=48,test_n=16,size=32,seed=2"
    assert record["data"]["spec"] == record["options"]["data"]
    assert record["data"]["params"] == json.loads(json.dumps(lanes_gen.LanesSpec(n=48, test_n=16, size=32,
                                                                                 seed=2).params()))
    made.clear()
    r = runner.invoke(main, ["evaluate", str(part), "--json"])
    assert r.exit_code == 0, r.output
    assert len(made) == 1
    result = json.loads(r.output)
    assert result["data"] == record["options"]["data"]
    last = {row["split"]: row for row in _rows(whole) if row["epoch"] == "2"}
    assert f"{result['test']['mean_iou']:.6g}" == last["test"]["mean_iou"]


def test_a_gan_run_on_a_sort_of_clevr_spec_resumes_to_the_metrics_of_an_uninterrupted_one(runner, tmp_path):
    common = ["--arch", "clevr_gan", "--data", "sort-of-clevr:n=20,size=32,seed=6", "--seed", "2", "--batch-size", "6",
              "--image-size", "32", "--eval-samples", "6", "--width", "4", "--z-dim", "8", "-q"]
    whole, part = tmp_path / "whole", tmp_path / "part"
    assert runner.invoke(main, ["train", *common, "--epochs", "2", "--out", str(whole)]).exit_code == 0
    assert runner.invoke(main, ["train", *common, "--epochs", "1", "--out", str(part)]).exit_code == 0
    r = runner.invoke(main, ["train", "--resume", str(part), "--epochs", "2", "-q"])
    assert r.exit_code == 0, r.output
    assert _rows(part) == _rows(whole) and {row["epoch"] for row in _rows(whole)} == {"0", "1", "2"}
    a = torch.load(whole / "last.pt", weights_only=True)["model"]
    b = torch.load(part / "last.pt", weights_only=True)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert json.loads((part / "config.json").read_text())["data"]["spec"].startswith("sort-of-clevr:n=20")


def test_a_spec_drawn_otherwise_by_this_version_is_refused_on_resume(runner, tmp_path):
    run = tmp_path / "run"
    args = ["train", "--arch", "fcn_vgg9", "--data", "lanes:n=16,test-n=8,size=32", "--batch-size", "8", "-q"]
    assert runner.invoke(main, [*args, "--epochs", "1", "--out", str(run)]).exit_code == 0
    record = json.loads((run / "config.json").read_text())
    record["data"]["sample_hash"] = "0" * 16  # what another generator would have drawn
    (run / "config.json").write_text(json.dumps(record))
    r = runner.invoke(main, ["train", "--resume", str(run), "--epochs", "2"])
    assert_one_line_error(r, "draws other samples for lanes:n=16,size=32", "generator changed")
    r = runner.invoke(main, ["evaluate", str(run)])
    assert_one_line_error(r, "draws other samples")


def test_a_bad_spec_for_train_names_the_option(runner, tmp_path):
    r = runner.invoke(main, ["train", "--arch", "fcn_vgg9", "--data", "lanes:n=10,bogus=1", "--out", str(tmp_path / "r")])
    assert_one_line_error(r, "--data", "not 'bogus'")
    assert r.exit_code == 2
    r = runner.invoke(main, ["train", "--arch", "fcn_vgg9", "--data", "sort-of-clevr:n=100", "--out", str(tmp_path / "r")])
    assert_one_line_error(r, "names sort-of-clevr data, not lanes")
    assert not (tmp_path / "r").exists()


def test_a_gan_trains_on_a_sort_of_clevr_spec(runner, tmp_path):
    run = tmp_path / "gan"
    r = runner.invoke(main, ["train", "--arch", "clevr_gan", "--data", "sort-of-clevr:n=32", "--epochs", "1",
                             "--batch-size", "8", "--width", "4", "--z-dim", "8", "--eval-samples", "8",
                             "--out", str(run), "-q"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["evaluate", str(run), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["real"]["n"] == 8


@pytest.mark.slow
def test_two_torchrun_processes_train_on_a_spec(tmp_path):
    """Under torchrun rank 0 checks the spec and sends it to the other process; each draws its own shard
    of every epoch (a DistributedSampler), and no file is read or written but the run folder."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    run = tmp_path / "ddp"
    env = {**os.environ, "PYTHONPATH": str(repo), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "coordconv_data", "train", "--arch", "fcn_vgg9", "--data", "lanes:n=32,test-n=8,size=32",
           "--epochs", "1", "--batch-size", "4", "--out", str(run)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-3000:]
    record = json.loads((run / "config.json").read_text())
    assert record["world_size"] == 2 and record["data"]["spec"] == "lanes:n=32,test_n=8,size=32"
    assert [(r["epoch"], r["split"]) for r in _rows(run)] == [("1", "train"), ("1", "val"), ("1", "test")]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp"]  # no data file anywhere


def test_a_dataset_on_the_fly_pickles_as_spawned_workers_and_other_ranks_receive_it(files):
    import pickle

    drawn = Lanes.from_spec(LANES_SPEC, "test")
    drawn[5]  # its cache holds a block now: never sent
    copy = pickle.loads(pickle.dumps(drawn))
    assert copy.summary.sampler._cache == {} and copy.summary.sampler.kind is LANES
    x, y = copy[5]
    xb, yb = Lanes(files["lanes"], "test")[5]
    assert torch.equal(x, xb) and torch.equal(y, yb)
