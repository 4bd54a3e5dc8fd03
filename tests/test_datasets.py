"""The torchvision-shaped datasets: (input, target) as the engine trains on them, transforms, files made on
first use, one-line errors, DataLoader workers, batched reads, lazy package exports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from coordconv_data.datasets import Lanes, NotSoClevr, SortOfClevr, val_partition
from coordconv_data.errors import CoordDataError, InvalidParameter
from coordconv_data.generate.lanes import LanesSpec
from coordconv_data.generate.lanes import write_file as write_lanes
from coordconv_data.generate.not_so_clevr import NotSoClevrSpec
from coordconv_data.generate.not_so_clevr import write_file as write_nsc
from coordconv_data.generate.sort_of_clevr import SortOfClevrSpec
from coordconv_data.generate.sort_of_clevr import write_file as write_soc
from coordconv_data.store import StoreError
from coordconv_data.transforms import AddCoordChannels

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("ds")
    write_nsc(NotSoClevrSpec(split="quadrant"), d / "not_so_clevr_quadrant.h5")
    write_nsc(NotSoClevrSpec(split="uniform"), d / "uniform.h5", layout="original")
    write_lanes(LanesSpec(n=20, test_n=6, size=32, seed=3), d / "lanes.h5")
    write_soc(SortOfClevrSpec(n=30, seed=4), d / "soc.h5")
    return {"nsc": d / "not_so_clevr_quadrant.h5", "nsc_original": d / "uniform.h5", "lanes": d / "lanes.h5",
            "soc": d / "soc.h5", "folder": d}


def _raw(path: Path, split: str, name: str) -> np.ndarray:
    with h5py.File(path, "r") as f:
        return f[f"{split}/{name}"][...]


# -- the samples, against the file's arrays ----------------------------------------------------------

def test_not_so_clevr_tasks_match_the_file(files):
    loc = _raw(files["nsc"], "test", "locations")
    images = _raw(files["nsc"], "test", "images")
    for i in (0, 5, 728):
        x, y = NotSoClevr(files["nsc"], "test", task="classification")[i]
        assert x.dtype == torch.float32 and x.shape == (2,)
        torch.testing.assert_close(x, torch.tensor(loc[i] / 63 * 2 - 1, dtype=torch.float32))
        assert y.dtype == torch.int64 and int(y) == loc[i, 1] * 64 + loc[i, 0]
        _, mask = NotSoClevr(files["nsc"], "test", task="rendering")[i]
        assert mask.shape == (1, 64, 64) and torch.equal(mask[0], torch.from_numpy(images[i, ..., 0] == 255).float())
        hot, target = NotSoClevr(files["nsc"], "test", task="regression")[i]
        assert hot.shape == (1, 64, 64) and hot.sum() == 1 and hot[0, loc[i, 1], loc[i, 0]] == 1
        torch.testing.assert_close(target, x)
        gray, none = NotSoClevr(files["nsc"], "test", task="gan")[i]
        assert none == {} and gray.unique().tolist() == pytest.approx([0.0, 128 / 255])


def test_lanes_and_sort_of_clevr_match_the_file(files):
    x, y = Lanes(files["lanes"], "test")[3]
    assert x.shape == (3, 32, 32) and y.shape == (32, 32) and y.dtype == torch.int64
    assert torch.equal((x * 255).round().to(torch.uint8).permute(1, 2, 0), torch.from_numpy(_raw(files["lanes"], "test", "images")[3]))
    assert torch.equal(y, torch.from_numpy(_raw(files["lanes"], "test", "masks")[3]).long())
    x, objects = SortOfClevr(files["soc"], "test", task="objects")[1]
    assert x.shape == (3, 64, 64) and 0 <= x.min() and x.max() <= 1
    assert objects["centers"].tolist() == _raw(files["soc"], "test", "centers")[1].tolist()
    assert objects["colors"].tolist() == [0, 1] and objects["shapes"].dtype == torch.int64
    g, _ = SortOfClevr(files["soc"], "test")[1]  # the default task: the GAN's image
    torch.testing.assert_close(g, x * 2 - 1)


def test_the_engine_trains_on_exactly_these_samples(files):
    # The trainer's data come from these classes: the batch it steps on is the datasets' samples.
    from coordconv_data.train import TrainConfig, resolve, task_for
    from coordconv_data.train.data import RunData

    cfg = resolve(TrainConfig(arch="coordconv_regressor", data=str(files["nsc"])))
    data = task_for(cfg).setup(RunData.open(files["nsc"]))
    ds = NotSoClevr(files["nsc"], "train", task="regression")
    xb, yb = next(iter(DataLoader(data["train"], batch_size=7)))
    for i in range(7):
        x, y = ds[i]
        assert torch.equal(xb[i], x) and torch.equal(yb[i], y)
    assert len(data["val"]) == len(NotSoClevr(files["nsc"], "val"))


def test_original_layout_files_serve_the_same_samples(files, tmp_path):
    write_nsc(NotSoClevrSpec(split="uniform"), tmp_path / "native.h5")
    for task in ("classification", "rendering", "regression"):
        a = NotSoClevr(files["nsc_original"], "test", task=task)
        b = NotSoClevr(tmp_path / "native.h5", "test", task=task)
        assert len(a) == len(b) == 768
        for i in (0, 100):
            assert all(torch.equal(u, v) for u, v in zip(a[i], b[i])), task


# -- splits -----------------------------------------------------------------------------------------

def test_splits_are_disjoint_and_cover_the_file(files):
    train, val, test, every = (NotSoClevr(files["nsc"], s) for s in ("train", "val", "test", "all"))
    assert (len(train), len(val), len(test), len(every)) == (2166, 241, 729, 3136)
    key = lambda ds: {tuple(ds[i][0].tolist()) for i in range(len(ds))}  # noqa: E731
    a, b, c = key(train), key(val), key(test)
    assert not (a & b) and not (a & c) and not (b & c) and len(a | b | c) == 3136
    whole = NotSoClevr(files["nsc"], "train", val_fraction=0)
    assert len(whole) == 2407
    tr, va = val_partition(2407, 0.1)
    assert len(va) == 241 and np.array_equal(np.sort(np.concatenate([tr, va])), np.arange(2407))
    assert np.array_equal(val_partition(2407, 0.1)[1], va)  # fixed: the same for every run


# -- transforms, repr, batched reads --------------------------------------------------------------------

def test_transforms_and_repr(files):
    ds = NotSoClevr(files["nsc"], "test", task="regression", transform=AddCoordChannels(),
                    target_transform=lambda t: t * 2)
    x, y = ds[0]
    plain_x, plain_y = NotSoClevr(files["nsc"], "test", task="regression")[0]
    assert x.shape == (3, 64, 64) and torch.equal(x[0], plain_x[0]) and torch.equal(y, plain_y * 2)
    assert x[1, 0, 0] == -1 and x[1, 0, -1] == 1 and x[2, 0, 0] == -1 and x[2, -1, 0] == 1  # x, then y
    text = repr(ds)
    for part in ("NotSoClevr", "Number of datapoints: 729", "not_so_clevr_quadrant.h5", "quadrant holdout",
                 "Split: test", "Task: regression", "Transform: AddCoordChannels(rank=2, with_r=False)", "Target transform"):
        assert part in text, text
    assert "val_fraction 0.1" in repr(NotSoClevr(files["nsc"], "train"))


def test_add_coord_channels_on_numpy_and_batches():
    t = AddCoordChannels(with_r=True)
    out = t(np.zeros((1, 4, 6), np.uint8))
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (4, 4, 6)
    np.testing.assert_allclose(out[1, 0], np.linspace(-1, 1, 6), atol=1e-6)
    np.testing.assert_allclose(out[2, :, 0], np.linspace(-1, 1, 4), atol=1e-6)
    np.testing.assert_allclose(out[3], np.sqrt(out[1] ** 2 + out[2] ** 2), atol=1e-6)
    batch = torch.zeros(2, 3, 5, 5, dtype=torch.float64)
    assert t(batch).shape == (2, 6, 5, 5) and t(batch).dtype == torch.float64
    with pytest.raises(InvalidParameter):
        AddCoordChannels(rank=4)


@pytest.mark.parametrize("cls,key,task", [(NotSoClevr, "nsc", "rendering"), (Lanes, "lanes", "segmentation"),
                                          (SortOfClevr, "soc", "objects")])
def test_getitems_equals_per_index_reads(files, cls, key, task):
    for memory_limit in (2**40, 0):  # read into memory, and sample by sample from the file
        ds = cls(files[key], "train", task=task, memory_limit=memory_limit)
        assert ds.in_memory is (memory_limit > 0)
        idx = [3, 0, len(ds) - 1, 3]
        batch = ds.__getitems__(idx)
        for i, (x, y) in zip(idx, batch):
            x1, y1 = ds[i]
            assert torch.equal(x, x1)
            assert (all(torch.equal(y[k], y1[k]) for k in y) if isinstance(y, dict) else torch.equal(y, y1))
        assert torch.equal(ds[-1][0], ds[len(ds) - 1][0])
        with pytest.raises(IndexError):
            ds[len(ds)]


@pytest.mark.parametrize("memory_limit", [2**40, 0])
def test_two_workers_give_the_batches_of_none(files, memory_limit):
    ds = Lanes(files["lanes"], "train", memory_limit=memory_limit)

    def batches(workers: int) -> list:
        g = torch.Generator().manual_seed(5)
        return list(DataLoader(ds, batch_size=5, shuffle=True, generator=g, num_workers=workers))

    a, b = batches(0), batches(2)
    assert len(a) == len(b) == 4  # 18 train samples (20 less the 2 held out for validation)
    for (xa, ya), (xb, yb) in zip(a, b):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


# -- files made on first use, and refused ones ----------------------------------------------------------

def test_generate_makes_the_default_file_once(tmp_path, capfd):
    ds = NotSoClevr(tmp_path, "test")
    assert (tmp_path / "not_so_clevr_quadrant.h5").is_file() and len(ds) == 729
    err = capfd.readouterr().err
    assert err.count("\n") == 1 and "coorddata not-so-clevr --split quadrant" in err
    stamp = (tmp_path / "not_so_clevr_quadrant.h5").stat().st_mtime_ns
    again = NotSoClevr(tmp_path, "train", task="regression")
    assert len(again) == 2166 and capfd.readouterr().err == ""
    assert (tmp_path / "not_so_clevr_quadrant.h5").stat().st_mtime_ns == stamp
    NotSoClevr(tmp_path, "test", holdout="uniform")
    assert (tmp_path / "not_so_clevr_uniform.h5").is_file() and "--split uniform" in capfd.readouterr().err


def test_generate_false_and_wrong_files_are_one_line_errors(files, tmp_path):
    with pytest.raises(StoreError, match="no such file.*generate=True") as e:
        NotSoClevr(tmp_path, generate=False)
    assert "\n" not in str(e.value)
    with pytest.raises(StoreError, match="lanes data, not not-so-clevr"):
        NotSoClevr(files["lanes"])
    with pytest.raises(StoreError, match="uniform split, not the quadrant"):
        NotSoClevr(files["nsc_original"], holdout="quadrant")
    with pytest.raises(StoreError, match="folder .* does not exist"):
        Lanes(tmp_path / "no" / "lanes.h5")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(StoreError, match="not an HDF5 file"):
        SortOfClevr(tmp_path / "junk.h5")
    for kwargs, field in (({"task": "nope"}, "task"), ({"split": "dev"}, "split"), ({"val_fraction": 1.0}, "val_fraction"),
                          ({"holdout": "half"}, "holdout")):
        with pytest.raises(InvalidParameter) as e:
            NotSoClevr(files["nsc"], **kwargs)
        assert e.value.field == field and "\n" not in str(e.value)
    with pytest.raises(InvalidParameter, match="val_fraction > 0"):
        NotSoClevr(files["nsc"], "val", val_fraction=0)
    assert issubclass(StoreError, CoordDataError)


def test_a_file_with_malformed_arrays_is_refused(files, tmp_path):
    bad = tmp_path / "bad.h5"
    with h5py.File(files["nsc"], "r") as f, h5py.File(bad, "w") as g:
        for k, v in f.attrs.items():
            g.attrs[k] = v
        for split in ("train", "test"):
            for name, d in f[split].items():
                data = d[...]
                if name == "locations":
                    data = np.concatenate([data, data[:, :1]], axis=1)  # (N, 3)
                g.create_dataset(f"{split}/{name}", data=data)
    with pytest.raises(StoreError, match="locations"):
        NotSoClevr(bad)


# -- the package root ------------------------------------------------------------------------------------

def test_lazy_exports_and_no_torch_on_import():
    code = ("import sys, coordconv_data; assert 'torch' not in sys.modules, 'torch imported'; "
            "from coordconv_data import NotSoClevr, create_model, CoordConv2d, AddCoordChannels, __version__; "
            "assert 'torch' in sys.modules; print(NotSoClevr.__name__, create_model.__name__)")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["NotSoClevr", "create_model"]
    import coordconv_data

    with pytest.raises(AttributeError):
        coordconv_data.Nope  # noqa: B018
