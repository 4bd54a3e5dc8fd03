"""Helpers shared by the benchmark scripts: run the CLI as a user would and measure it."""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(entry))
    return kids


def _tree_rss_mb(root: int) -> float:
    """Resident memory of a process and all its descendants (Linux /proc), in MB."""
    kids, todo, total = _children(), [root], 0
    while todo:
        pid = todo.pop()
        todo.extend(kids.get(pid, ()))
        try:
            with open(f"/proc/{pid}/statm") as f:
                total += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            pass
    return total / 2**20


def timed(cmd: list[str], cwd: str) -> tuple[float, float, float]:
    """Wall seconds, peak resident memory (MB) and CPU seconds of one subprocess run.

    Memory is the larger of two readings: the process tree's summed RSS sampled every 20 ms
    (parent, forkserver and workers together) and getrusage(RUSAGE_CHILDREN).ru_maxrss (the largest
    single process, exact). CPU counts only the processes that getrusage sees (not the workers,
    which the forkserver reaps).
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, _tree_rss_mb(proc.pid))
        time.sleep(0.02)
    wall = time.perf_counter() - t
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return wall, max(peak, after.ru_maxrss / 1024), cpu


def isolated(cmd: list[str], cwd: str) -> tuple[float, float, float]:
    """:func:`timed` in a fresh interpreter, so that getrusage's maximum belongs to this run alone."""
    code = f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import _common as b; " \
           "print(*b.timed(sys.argv[1:], '.'))"
    out = subprocess.run([sys.executable, "-c", code, *cmd], cwd=cwd, capture_output=True, text=True, check=True)
    wall, rss, cpu = out.stdout.split()
    return float(wall), float(rss), float(cpu)


def coorddata() -> list[str]:
    exe = shutil.which("coorddata")
    if exe and not os.environ.get("PYTHONPATH"):
        return [exe]
    return [sys.executable, "-m", "coordconv_data"]


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):8.2f} {min(values):7.2f} {max(values):7.2f}"


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"{os.cpu_count()} cores, load average {one:.1f} (1 min) {five:.1f} (5 min) at start"
