import json
import os

import h5py
import numpy as np
import pytest

from coordconv_data import store
from coordconv_data.store import DatasetWriter, StoreError, chunk_shape, read_split, summarize


def write_minimal(path, *, force=False, n=5, extra=None):
    """A small, consistent Not-so-Clevr file: n squares per split, each centred on its location."""
    from coordconv_data.generate.not_so_clevr import onehot_maps, render_squares

    locations = np.stack([np.arange(10, 10 + n), np.full(n, 20)], axis=1).astype(np.int64)
    hot = onehot_maps(locations, 64)
    with DatasetWriter(path, "not-so-clevr", seed=3, params={"a": 1}, force=force) as w:
        for split in ("train", "test"):
            w.write(f"{split}/images", (render_squares(hot, 9) * 255)[..., None], compression="gzip")
            w.write(f"{split}/onehots", hot[..., None])
            w.write(f"{split}/locations", locations)
        if extra:
            extra(w)


def test_root_attributes_and_summary(tmp_path):
    p = tmp_path / "d.h5"
    write_minimal(p)
    with h5py.File(p) as f:
        assert f.attrs["dataset"] == "not-so-clevr"
        assert f.attrs["schema_version"] == store.SCHEMA_VERSION
        assert f.attrs["generator"].startswith("coordconv_data ")
        assert f.attrs["seed"] == 3
        assert json.loads(f.attrs["params"]) == {"a": 1}
    s = summarize(p, "not-so-clevr")
    assert s.lengths == {"train": 5, "test": 5}
    assert s.seed == 3 and s.params == {"a": 1} and s.layout == "native"
    assert read_split(p, "test")["images"].shape == (5, 64, 64, 1)
    assert read_split(p, "test", stop=2)["images"].shape == (2, 64, 64, 1)


def test_same_content_gives_identical_bytes(tmp_path):
    write_minimal(tmp_path / "a.h5")
    write_minimal(tmp_path / "b.h5")
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()


@pytest.mark.parametrize("shape,itemsize", [((3136, 64, 64, 1), 1), ((50000, 64, 64, 3), 1),
                                            ((10, 64, 64, 3), 8), ((5000, 128, 128, 3), 1), ((7, 2), 8)])
def test_chunks_hold_whole_samples_of_sensible_size(shape, itemsize):
    chunks = chunk_shape(shape, itemsize)
    assert chunks[1:] == shape[1:]
    nbytes = np.prod(chunks) * itemsize
    sample = np.prod(shape[1:]) * itemsize
    # 64 KiB..1 MiB unless the whole array (or one sample) is smaller/larger than that
    assert nbytes <= max(1 << 20, sample)
    assert nbytes >= min(64 << 10, np.prod(shape) * itemsize)


def test_failure_while_writing_leaves_no_file(tmp_path):
    p = tmp_path / "d.h5"

    def boom(w):
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        write_minimal(p, extra=boom)
    assert not p.exists()
    assert os.listdir(tmp_path) == []  # no temporary left behind either


def test_failure_leaves_existing_file_untouched(tmp_path):
    p = tmp_path / "d.h5"
    p.write_bytes(b"precious")

    def boom(w):
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_minimal(p, force=True, extra=boom)
    assert p.read_bytes() == b"precious"
    assert os.listdir(tmp_path) == ["d.h5"]


def test_existing_file_needs_force(tmp_path):
    p = tmp_path / "d.h5"
    p.write_bytes(b"precious")
    with pytest.raises(StoreError, match="already exists; use force to replace it"):
        write_minimal(p)
    assert p.read_bytes() == b"precious"
    write_minimal(p, force=True)
    assert summarize(p).lengths["train"] == 5


def test_file_appearing_during_write_is_not_clobbered(tmp_path):
    p = tmp_path / "d.h5"

    def sneak(w):
        p.write_bytes(b"someone else's")

    with pytest.raises(StoreError, match="already exists"):
        write_minimal(p, extra=sneak)
    assert p.read_bytes() == b"someone else's"
    assert os.listdir(tmp_path) == ["d.h5"]


def test_missing_folder_is_an_error(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        write_minimal(tmp_path / "nope" / "d.h5")


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_text("hello"), "not an HDF5 file"),
        (lambda p: h5py.File(p, "w").close(), "not a coordconv_data dataset"),
    ],
)
def test_reader_rejects_bad_files(tmp_path, make, message):
    p = tmp_path / "x.h5"
    make(p)
    with pytest.raises(StoreError, match=message) as e:
        summarize(p)
    assert "\n" not in str(e.value)


def test_reader_rejects_wrong_kind_version_and_incomplete_files(tmp_path):
    p = tmp_path / "d.h5"
    write_minimal(p)
    with pytest.raises(StoreError, match="holds not-so-clevr data, not lanes"):
        summarize(p, "lanes")
    with h5py.File(p, "a") as f:
        f.attrs["schema_version"] = store.SCHEMA_VERSION + 1
    with pytest.raises(StoreError, match="schema version"):
        summarize(p)
    with h5py.File(p, "a") as f:
        f.attrs["schema_version"] = store.SCHEMA_VERSION
        del f["test/onehots"]
    with pytest.raises(StoreError, match="split 'test' lacks array 'onehots'"):
        summarize(p)
    with h5py.File(p, "a") as f:
        f["test/onehots"] = np.zeros((4, 64, 64, 1), np.uint8)
    with pytest.raises(StoreError, match="differ in length"):
        summarize(p)
    with h5py.File(p, "a") as f:
        f.attrs["dataset"] = "mnist"
    with pytest.raises(StoreError, match="'mnist'"):
        summarize(p)


def test_unknown_layout_is_rejected_and_unknown_kinds_cannot_be_read(tmp_path):
    with DatasetWriter(tmp_path / "a.h5", "mnist", seed=0, params={}) as w:
        w.write("train/images", np.zeros((2, 4), np.uint8))
    with pytest.raises(StoreError, match="'mnist', which this version does not know"):
        summarize(tmp_path / "a.h5")
    with pytest.raises(StoreError, match="unknown layout"):
        DatasetWriter(tmp_path / "a.h5", "not-so-clevr", seed=0, params={}, layout="tf")


def test_written_files_get_ordinary_permissions(tmp_path):
    p = tmp_path / "d.h5"
    write_minimal(p)
    umask = os.umask(0)
    os.umask(umask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~umask
