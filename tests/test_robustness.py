"""Nothing hangs, nothing is silently wrong: dead workers, outputs that are not regular files, paths
that mean one thing everywhere, interrupts of the original layout's writer, closed pipes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import assert_one_line_error
from coordconv_data.cli import main
from coordconv_data.generate.blocks import WorkerDied, generate_blocks, worker_pool
from coordconv_data.generate.sort_of_clevr import SortOfClevrSpec
from coordconv_data.generate.sort_of_clevr import write_file as write_soc
from test_interrupts import CLI, alive, default_signals, descendants, start_long_run, temporaries, wait_until

# -- a worker that dies ends the run -----------------------------------------------------------------


def workers_of(pid: int) -> list[int]:
    """The generator's worker processes: the forkserver's children."""
    kids: list[int] = []
    for child in descendants(pid):
        try:
            with open(f"/proc/{child}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if b"forkserver" in cmd:
            kids += [p for p in descendants(child)]
    return kids


@pytest.mark.parametrize("command", ["lanes", "sort-of-clevr"])
def test_a_killed_worker_ends_the_run_in_one_line(tmp_path, command):
    """SIGKILL to one worker (what the out-of-memory killer does): exit 1 within seconds, one line
    naming the worker and the signal, the temporary file removed, no process left."""
    proc = start_long_run(tmp_path, command)
    family = descendants(proc.pid)
    assert wait_until(lambda: len(workers_of(proc.pid)) >= 2, 10)
    victim = workers_of(proc.pid)[0]
    os.kill(victim, signal.SIGKILL)
    try:
        out, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the run did not end within 10 s of its worker's death")
    assert proc.returncode == 1, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("Error: worker process ") and f"{victim}" in lines[0] and "SIGKILL" in lines[0], err
    assert os.listdir(tmp_path) == []
    assert wait_until(lambda: not any(alive(p) for p in family), 10), [p for p in family if alive(p)]


def test_a_worker_that_exits_is_named_with_its_status():
    with worker_pool(_exit_in_block, 2, 100, 10) as pool:
        with pytest.raises(WorkerDied, match=r"worker process \d+ of the test-robustness generator exited with status 3"):
            list(generate_blocks(_exit_in_block, None, 100, seed=0, stream=0, block_size=10, pool=pool))


def _exit_in_block(spec, rng, count):
    if rng.random() < 0.5:
        os._exit(3)
    return {}


# -- interrupts ----------------------------------------------------------------------------------------

def test_sigint_stops_the_original_layout_writer_with_nothing_left(tmp_path):
    """Ctrl-C while the original layout's first file is being written: the command stops there (its
    temporary file removed, no complete file, the second split never started), exit 130."""
    for attempt in range(5):  # on a loaded machine the writer may finish before the signal can land: again
        out_dir = tmp_path / f"try{attempt}"
        out_dir.mkdir()
        proc = subprocess.Popen([*CLI, "not-so-clevr", "--layout", "original", "--out", f"{out_dir}/", "-q"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=default_signals)
        assert wait_until(lambda: temporaries(out_dir) or proc.poll() is not None, 30)
        if proc.poll() is not None:
            continue
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
        if proc.returncode == 0 and not temporaries(out_dir):  # it finished between the look and the signal
            continue
        assert proc.returncode == 130, err
        assert err.strip() == "Aborted!"
        assert os.listdir(out_dir) == []
        return
    pytest.fail("the writer finished before a signal could reach it, five times")


# -- outputs are regular files only --------------------------------------------------------------------

@pytest.fixture(scope="module")
def soc_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("data") / "soc.h5"
    write_soc(SortOfClevrSpec(n=40, seed=5), p)
    return p


@pytest.fixture(scope="module")
def gan_run(soc_file, tmp_path_factory) -> Path:
    from click.testing import CliRunner

    run = tmp_path_factory.mktemp("runs") / "gan"
    r = CliRunner().invoke(main, ["train", "--arch", "clevr_gan", "--data", str(soc_file), "--epochs", "1", "--out",
                                  str(run), "--batch-size", "8", "--eval-samples", "8", "--width", "8", "-q"])
    assert r.exit_code == 0, r.output
    return run


def writing_commands(soc_file: Path, gan_run: Path) -> dict[str, list[str]]:
    """Every command that writes a file, with small options; ``--out`` is added by the caller."""
    return {
        "not-so-clevr": ["not-so-clevr", "--split", "quadrant"],
        "sort-of-clevr": ["sort-of-clevr", "--n", "20", "--workers", "1"],
        "lanes": ["lanes", "--n", "4", "--size", "32", "--workers", "1"],
        "preview": ["preview", str(soc_file), "--n", "2"],
        "interpolate": ["interpolate", str(gan_run), "--rows", "2", "--steps", "2"],
    }


COMMANDS = ["not-so-clevr", "sort-of-clevr", "lanes", "preview", "interpolate"]
DEFAULT_NAMES = {"not-so-clevr": "not_so_clevr_quadrant.h5", "sort-of-clevr": "sort_of_clevr.h5", "lanes": "lanes.h5",
                 "preview": "preview.png", "interpolate": "interp.png"}


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("what", ["fifo", "socket", "link-to-fifo"])
def test_an_output_that_is_not_a_regular_file_is_refused_even_with_force(runner, soc_file, gan_run, tmp_path,
                                                                         command, what):
    target = tmp_path / ("out.png" if command in ("preview", "interpolate") else "out.h5")
    if what == "fifo":
        os.mkfifo(target)
    elif what == "socket":
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(target))
        s.close()
    else:
        os.mkfifo(tmp_path / "fifo")
        target.symlink_to(tmp_path / "fifo")
    before = sorted(os.listdir(tmp_path))
    result = runner.invoke(main, [*writing_commands(soc_file, gan_run)[command], "--out", str(target), "--force"])
    assert_one_line_error(result, str(target), "not a regular file")
    assert sorted(os.listdir(tmp_path)) == before
    assert not target.is_file()


def test_a_device_is_never_replaced(tmp_path):
    """The library refuses a character device before writing a byte (checked on /dev/null, never written)."""
    from coordconv_data.writer import StoreError, atomic_write_bytes, check_target

    with pytest.raises(StoreError, match="/dev/null is a character device, not a regular file"):
        check_target("/dev/null", force=True)
    with pytest.raises(StoreError, match="character device"):
        atomic_write_bytes("/dev/null", b"x")
    assert Path("/dev/null").is_char_device()


@pytest.mark.parametrize("command", COMMANDS)
def test_a_trailing_slash_means_a_folder_in_every_writing_command(runner, soc_file, gan_run, tmp_path, command):
    folder = tmp_path / "made" / "here"
    result = runner.invoke(main, [*writing_commands(soc_file, gan_run)[command], "--out", f"{folder}/", "-q"])
    assert result.exit_code == 0, result.output
    assert os.listdir(folder) == [DEFAULT_NAMES[command]]
    # an existing folder without the slash is the same folder
    again = runner.invoke(main, [*writing_commands(soc_file, gan_run)[command], "--out", str(folder), "-q", "--force"])
    assert again.exit_code == 0, again.output
    assert os.listdir(folder) == [DEFAULT_NAMES[command]]


@pytest.mark.parametrize("command", COMMANDS + ["train", "reproduce"])
def test_an_empty_out_is_refused_everywhere(runner, soc_file, gan_run, tmp_path, command, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = {**writing_commands(soc_file, gan_run), "train": ["train", "--arch", "clevr_gan", "--data", str(soc_file)],
            "reproduce": ["reproduce", "simple-gans"]}[command]
    result = runner.invoke(main, [*args, "--out", ""])
    assert_one_line_error(result, "--out", "must not be empty")
    assert result.exit_code == 2 and os.listdir(tmp_path) == []


def test_a_pictures_format_follows_its_extension(runner, gan_run, tmp_path):
    jpg = tmp_path / "i.jpg"
    assert runner.invoke(main, ["interpolate", str(gan_run), "--out", str(jpg), "--rows", "2", "--steps", "2",
                                "-q"]).exit_code == 0
    assert jpg.read_bytes()[:3] == b"\xff\xd8\xff"  # JPEG, not PNG bytes under a .jpg name
    result = runner.invoke(main, ["interpolate", str(gan_run), "--out", str(tmp_path / "i.xyz")])
    assert_one_line_error(result, "--out", "i.xyz", ".png")
    assert result.exit_code == 2 and not (tmp_path / "i.xyz").exists()


def test_a_second_writer_is_refused_before_it_works(tmp_path):
    """While one run writes lanes.h5, a second one into the same --out (even with --force) is refused at
    once, and the first run is not disturbed."""
    first = start_long_run(tmp_path, "lanes")
    try:
        second = subprocess.run([*CLI, "lanes", "--n", "12000", "--workers", "1", "--out", str(tmp_path / "out.h5"),
                                 "--force"], capture_output=True, text=True, timeout=60)
        assert second.returncode == 1, second.stderr
        assert second.stderr.strip().splitlines() == [
            f"Error: {tmp_path / 'out.h5'} is being written by another process (pid {first.pid}); wait for it, or "
            "choose another --out"]
        assert len(temporaries(tmp_path)) == 1 and first.poll() is None
    finally:
        first.send_signal(signal.SIGTERM)
        first.communicate(timeout=30)
    assert os.listdir(tmp_path) == []


# -- closed pipes --------------------------------------------------------------------------------------

@pytest.mark.parametrize("args", [["models"], ["info", "{soc}", "--json"], ["models", "--json"]])
def test_a_closed_pipe_ends_the_command_quietly(soc_file, args):
    """`coorddata models | head -1`: status 0 and nothing on stderr, as git and ls end."""
    proc = subprocess.Popen([*CLI, *[a.format(soc=soc_file) for a in args]], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader goes away before the command writes (it is still importing)
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0, err
    assert err == b""


DATALOADER_KILL = """
import os, signal, sys, time
import torch
from torch.utils.data import DataLoader
from coordconv_data.datasets import NotSoClevr

ds = NotSoClevr(sys.argv[1], "train", generate=False, memory_limit=0)  # read per sample, in the workers
loader = DataLoader(ds, batch_size=4, num_workers=2, shuffle=False)
it = iter(loader)
next(it)
t = time.monotonic()
try:  # torch's SIGCHLD handler may raise anywhere from here on
    os.kill(it._workers[0].pid, signal.SIGKILL)
    for _ in it:
        pass
except Exception as e:  # torch's "DataLoader worker ... killed", or the dead worker's batch in shared memory
    print(f"raised after {time.monotonic() - t:.1f} s: {type(e).__name__}: {e}", flush=True)
    del it  # torch shuts the other worker down (terminating it if it is stuck on the dead one's lock)
    sys.exit(3)
print("no error")
"""


def test_a_killed_dataloader_worker_raises_promptly(tmp_path):
    """The engine reads batches in its own process; a user who loads our datasets with worker processes
    gets an error from torch when one is killed, not a hang (the dataset opens its file per worker).
    Which error is torch's: RuntimeError "DataLoader worker (pid N) is killed by signal" or "... exited
    unexpectedly", or ConnectionResetError or EOFError when the dead worker had a batch in flight in
    shared memory."""
    from coordconv_data.generate.not_so_clevr import NotSoClevrSpec
    from coordconv_data.generate.not_so_clevr import write_file as write_nsc

    p = tmp_path / "q.h5"
    write_nsc(NotSoClevrSpec(split="quadrant"), p)
    proc = subprocess.Popen([sys.executable, "-c", DATALOADER_KILL, str(p)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=60)  # torch's teardown may wait 5 s for the other worker
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # whatever torch left (nothing, when it cleans up)
        except ProcessLookupError:
            pass
    assert "raised after" in out, (out, err[-2000:])
    assert any(what in out for what in ("DataLoader worker (pid", "ConnectionResetError", "EOFError")), out
    assert float(out.split("raised after ")[1].split(" s")[0]) < 10


STUCK = """
import hashlib, sys
from coordconv_data import cli, writer

@cli.main.command("stuck")
def stuck():
    with writer.DatasetWriter(sys.argv[1], "lanes", seed=0, params={}):
        hashlib.pbkdf2_hmac("sha256", b"p", b"s", 2**31 - 1)  # minutes in one C call that never sees a signal

cli.main(["stuck"], prog_name="coorddata")
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_stops_a_command_stuck_in_a_long_c_call(tmp_path, sig):
    """Python runs a signal's handler only between bytecodes; the deadline ends the command anyway (its
    temporary file removed, its line said, exit 128 + signal) instead of after the C call returns."""
    proc = subprocess.Popen([sys.executable, "-c", STUCK, str(tmp_path / "x.h5")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=default_signals)
    assert wait_until(lambda: temporaries(tmp_path) or proc.poll() is not None, 30), proc.poll()
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("the command was still in its C call 10 s after the signal")
    assert proc.returncode == 128 + sig, err
    assert err.strip() == ("Aborted!" if sig == signal.SIGINT else "Stopped by SIGTERM."), err
    assert os.listdir(tmp_path) == []
