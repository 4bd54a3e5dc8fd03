"""The cost of content validation on opening the default files (target: under 0.1 s each).

    python benchmarks/bench_validation.py [--repeats 5] [--keep DIR]

Writes the default files (`coorddata not-so-clevr`, `coorddata sort-of-clevr`, `coorddata lanes
--n 5000`) into a temporary folder (or DIR, reused when present), then times
`coordconv_data.store.summarize` on each (open, structure, and every check by content: shapes,
dtypes, value ranges of small arrays read whole and of large ones by a bounded sample of chunks),
against a bare `h5py.File` open that reads every array's metadata. Cold: the first open after the
file was written (page cache warm: it was just written); warm: the median of the repeats.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from _common import coorddata, load_note  # noqa: E402

FILES = {
    "not_so_clevr_quadrant.h5": ["not-so-clevr", "--split", "quadrant"],
    "not_so_clevr_uniform.h5": ["not-so-clevr", "--split", "uniform"],
    "rectangle_4_uniform.h5": ["not-so-clevr", "--split", "uniform", "--layout", "original",
                               "--out", "rectangle_4_uniform.h5"],
    "sort_of_clevr.h5": ["sort-of-clevr"],
    "lanes.h5": ["lanes", "--n", "5000"],
}


def bare_open(path: Path) -> None:
    import h5py

    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: (obj.shape, obj.dtype) if isinstance(obj, h5py.Dataset) else None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--keep", type=Path, default=None, help="folder for the files (reused when present)")
    args = ap.parse_args()
    from coordconv_data.store import summarize

    print(f"python {sys.version.split()[0]}, {load_note()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for name, cmd in FILES.items():
            if not (folder / name).exists():
                subprocess.run(coorddata() + cmd + ["-q"], cwd=folder, check=True)
        print(f"{'file':<28} {'size MiB':>9} {'summarize cold s':>17} {'warm s':>8} {'bare h5py s':>12}")
        for name in FILES:
            p = folder / name
            t = time.perf_counter()
            summarize(p)
            cold = time.perf_counter() - t
            warm, bare = [], []
            for _ in range(args.repeats):
                t = time.perf_counter()
                summarize(p)
                warm.append(time.perf_counter() - t)
                t = time.perf_counter()
                bare_open(p)
                bare.append(time.perf_counter() - t)
            print(f"{name:<28} {p.stat().st_size / 2**20:9.1f} {cold:17.4f} {statistics.median(warm):8.4f} "
                  f"{statistics.median(bare):12.4f}")


if __name__ == "__main__":
    main()
