"""Generation on a Dask cluster (--shards N --dask ADDRESS|local): the one-machine file, whatever happens.

Every test runs a LocalCluster of 2 worker processes of one thread, bound to 127.0.0.1, and shuts it
down; the tests take turns (conftest's one_cluster_at_a_time: a lock shared by pytest-xdist's workers), so
at most 2 Dask workers run.
A worker killed mid-shard (Lanes and Sort-of-Clevr), a task that fails once, an interrupt: the file ends
equal to the one-machine file, or the run stops leaving no partial shard under a shard's name and no process behind.
"""

from __future__ import annotations

import filecmp
import functools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import pytest

pytest.importorskip("distributed")

from blockfns import always_fail, fail_once, kill_worker_once  # noqa: E402
from conftest import assert_one_line_error  # noqa: E402
from test_interrupts import alive, descendants  # noqa: E402
from coordconv_data.cli import main  # noqa: E402
from coordconv_data.cluster import ClusterError, generate_on_cluster, shards_folder  # noqa: E402
from coordconv_data.generate import lanes as lanes_gen  # noqa: E402
from coordconv_data.generate import sort_of_clevr as soc_gen  # noqa: E402
from coordconv_data.generate.shards import Shard, shard_file_name  # noqa: E402
from coordconv_data.store import summarize  # noqa: E402

OPTIONS = ["--n", "300", "--test-n", "130", "--size", "32"]
SPEC = lanes_gen.LanesSpec(n=300, test_n=130, size=32)
SOC_SPEC = soc_gen.SortOfClevrSpec(n=700, size=32, block_size=64)  # blocks of 64: 3 shards of 3 or 4 train blocks


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    p = tmp_path_factory.mktemp("whole") / "lanes.h5"
    lanes_gen.write_file(SPEC, p, workers=2)
    return p


@pytest.fixture(scope="module")
def whole_soc(tmp_path_factory):
    p = tmp_path_factory.mktemp("whole_soc") / "sort_of_clevr.h5"
    soc_gen.write_file(SOC_SPEC, p, workers=2)
    return p


def assert_same_arrays(merged: Path, whole: Path) -> None:
    with h5py.File(merged, "r") as f, h5py.File(whole, "r") as g:
        for split in g:
            assert sorted(f[split]) == sorted(g[split])
            for name in g[split]:
                a, b = f[split][name], g[split][name]
                assert a.dtype == b.dtype and a.shape == b.shape
                assert a[...].tobytes() == b[...].tobytes(), (split, name)


def no_temporaries(folder: Path) -> bool:
    return not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


def test_a_local_cluster_writes_the_one_machine_file(one_cluster_at_a_time, whole, tmp_path, runner):
    out = tmp_path / "lanes.h5"
    r = runner.invoke(main, ["lanes", *OPTIONS, "--shards", "3", "--dask", "local", "--workers", "2", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert f"wrote {out}: merged from 3 shards in {tmp_path / 'lanes-shards'}/, train 300, test 130" in r.output
    assert_same_arrays(out, whole)
    folder = shards_folder(out)
    assert sorted(p.name for p in folder.iterdir()) == [shard_file_name("lanes.h5", Shard(k, 3)) for k in range(3)]
    # each shard is byte for byte the one `--shard K/3` writes on one machine
    for k in range(3):
        here = tmp_path / "here" / f"{k}.h5"
        here.parent.mkdir(exist_ok=True)
        lanes_gen.write_file(SPEC, here, shard=Shard(k, 3))
        assert filecmp.cmp(here, folder / shard_file_name("lanes.h5", Shard(k, 3)), shallow=False)
    # run again: the valid shards are kept, the merge written anew
    r = runner.invoke(main, ["lanes", *OPTIONS, "--shards", "3", "--dask", "local", "--workers", "2", "--out", str(out),
                             "--force"])
    assert r.exit_code == 0, r.output
    assert "kept 3 of 3 shards" in r.output
    assert_same_arrays(out, whole)
    # a shard of other options in the folder is written again, and the log says so
    other = lanes_gen.LanesSpec(n=300, test_n=130, size=32, seed=1)
    lanes_gen.write_file(other, folder / shard_file_name("lanes.h5", Shard(1, 3)), shard=Shard(1, 3), force=True)
    r = runner.invoke(main, ["lanes", *OPTIONS, "--shards", "3", "--dask", "local", "--workers", "2", "--out", str(out),
                             "--force"])
    assert r.exit_code == 0, r.output
    assert "kept 2 of 3 shards" in r.output
    assert f"writing 1 shard again in {folder}: the files there are not this dataset's" in r.output
    assert_same_arrays(out, whole)


def test_a_worker_killed_mid_shard_still_ends_in_the_same_file(one_cluster_at_a_time, whole, tmp_path):
    out = tmp_path / "lanes.h5"
    marks = tmp_path / "marks"
    marks.mkdir()
    task = functools.partial(kill_worker_once, str(marks), 1)
    result = generate_on_cluster("lanes", SPEC, out, shards=3, address="local", workers=2, task=task)
    assert (marks / "killed-1").exists()  # the worker writing shard 1 did die, halfway
    assert result.written == 3 and result.lengths == {"train": 300, "test": 130}
    assert_same_arrays(out, whole)
    assert no_temporaries(result.folder)  # the dead attempt's temporary file was removed by the next


def test_sort_of_clevr_on_a_local_cluster_is_the_one_machine_file_even_with_a_worker_killed(one_cluster_at_a_time,
                                                                                           whole_soc, tmp_path):
    out = tmp_path / "sort_of_clevr.h5"
    marks = tmp_path / "marks"
    marks.mkdir()
    task = functools.partial(kill_worker_once, str(marks), 2)
    result = generate_on_cluster("sort-of-clevr", SOC_SPEC, out, shards=3, address="local", workers=2, task=task)
    assert (marks / "killed-2").exists()
    assert result.written == 3 and result.lengths == {"train": 630, "test": 70}
    assert_same_arrays(out, whole_soc)
    assert no_temporaries(result.folder)


def test_a_failed_task_is_retried_and_one_failing_for_good_stops_the_run(one_cluster_at_a_time, whole, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    out = tmp_path / "a" / "lanes.h5"
    out.parent.mkdir()
    generate_on_cluster("lanes", SPEC, out, shards=3, address="local", workers=2,
                        task=functools.partial(fail_once, str(marks), 2))
    assert (marks / "failed-2").exists()
    assert_same_arrays(out, whole)
    out = tmp_path / "b" / "lanes.h5"
    out.parent.mkdir()
    with pytest.raises(ClusterError, match=r"shard 1 of 3 failed after 2 retries: ValueError: no luck"):
        generate_on_cluster("lanes", SPEC, out, shards=3, address="local", workers=2, task=always_fail)
    assert not out.exists()
    folder = shards_folder(out)
    for p in folder.iterdir():  # whatever is under a shard's name is a whole shard
        assert not p.name.endswith(".tmp")
        assert summarize(p).attrs["shard_index"] in (0, 2)


@pytest.mark.slow
def test_ctrl_c_cancels_the_tasks_and_leaves_no_partial_shard(one_cluster_at_a_time, tmp_path):
    out = tmp_path / "lanes.h5"
    folder = shards_folder(out)
    cmd = [sys.executable, "-m", "coordconv_data", "lanes", "--n", "2000", "--size", "48", "--shards", "24",
           "--dask", "local", "--workers", "2", "--out", str(out), "-q"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:  # until the first shards are in place
            if folder.is_dir() and len([p for p in folder.iterdir() if p.name.endswith(".h5")]) >= 2:
                break
            time.sleep(0.05)
        assert proc.poll() is None, proc.communicate()
        workers = descendants(proc.pid)
        assert workers  # the local cluster's worker processes
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal: the whole foreground group
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert err.decode().strip().splitlines()[-1] == "Aborted!"
    assert "Traceback" not in err.decode()
    for _ in range(100):  # the workers end with the run (bounded wait: they may still be exiting)
        if not any(alive(p) for p in workers):
            break
        time.sleep(0.1)
    assert not any(alive(p) for p in workers)
    assert not out.exists()
    shards = sorted(folder.iterdir())
    assert 2 <= len(shards) < 24  # stopped before the end
    for p in shards:  # no temporary file left, and each shard under its name whole
        assert not p.name.endswith(".tmp"), p
        s = summarize(p)
        assert s.attrs["shard_count"] == 24 and "shard_digest" in s.attrs


def test_a_scheduler_that_cannot_be_reached_is_one_line(one_cluster_at_a_time, tmp_path, runner, monkeypatch):
    from coordconv_data import cluster

    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT", "1s")
    out = tmp_path / "lanes.h5"
    r = runner.invoke(main, ["lanes", "--n", "10", "--shards", "2", "--dask", "tcp://127.0.0.1:9", "--out", str(out)])
    assert_one_line_error(r, "cannot reach the Dask scheduler at tcp://127.0.0.1:9", "--dask")
    assert r.exit_code == 1
    assert not any(tmp_path.iterdir())  # nor its shards' folder
