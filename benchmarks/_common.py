"""Helpers shared by the benchmark scripts: run the CLI as a user would and measure it."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys


def coorddata() -> list[str]:
    """The installed `coorddata` program, or the module if only the source tree is importable."""
    exe = shutil.which("coorddata")
    return [exe] if exe else [sys.executable, "-m", "coordconv_data"]


def timed(cmd: list[str], cwd: str, env: dict | None = None) -> tuple[float, float]:
    """Wall seconds (interpreter start included) and peak resident memory in MB of one run.

    Peak memory is the largest of the process and its children (worker processes count).
    """
    wrapper = (
        "import resource, subprocess, sys, time;"
        "t = time.perf_counter(); subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL);"
        "dt = time.perf_counter() - t;"
        "print(dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)"
    )
    out = subprocess.run([sys.executable, "-c", wrapper, *cmd], cwd=cwd, capture_output=True, text=True,
                         check=True, env=env)
    wall, rss = out.stdout.split()
    return float(wall), float(rss)


def summary(values: list[float]) -> str:
    return f"{statistics.median(values):8.2f} {min(values):7.2f} {max(values):7.2f}"


def load_note() -> str:
    import os

    one, five, _ = os.getloadavg()
    return f"{os.cpu_count()} cores, load average {one:.1f} (1 min) {five:.1f} (5 min) at start"
