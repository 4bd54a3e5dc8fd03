"""Sort-of-Clevr generation, end to end, as a user runs it.

    python benchmarks/bench_sort_of_clevr.py [--repeats 3] [--big 200000] [--compression]

Times `coorddata sort-of-clevr --n 50000` as a subprocess (interpreter start included) with
--workers 1 and 2, the original layout, and a larger --n to show that memory does not grow with it.
Peak RSS is the whole process tree's (parent and workers), sampled from /proc, and at least
getrusage's RUSAGE_CHILDREN maximum; each run gets its own wrapper-free measurement. CPU is the user +
system seconds of the processes getrusage sees (with --workers 2, the parent alone), a figure that a
busy shared machine disturbs less than wall time. With --compression, compares storage choices for
the images on 10240 default images.

Targets (issue 3): under 10 s wall on 2 cores and under 500 MB for --n 50000, memory flat in --n.
For scale: the original generator took 5.7 s and 1.05 GB of memory for 5000 images.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from _common import coorddata, isolated  # noqa: E402


def bench_cli(repeats: int, big: int) -> None:
    print(f"{'command':<62} {'runs':>4} {'median s':>9} {'min s':>7} {'max s':>7} {'CPU s':>6} {'peak RSS MB':>12}"
          f" {'file MB':>8}")
    cases = [
        ("sort-of-clevr --n 50000 --workers 1", ["--n", "50000", "--workers", "1"], repeats),
        ("sort-of-clevr --n 50000 --workers 2", ["--n", "50000", "--workers", "2"], repeats),
        (f"sort-of-clevr --n {big} --workers 1", ["--n", str(big), "--workers", "1"], 1),
        ("sort-of-clevr --n 50000 --layout original --workers 1", ["--n", "50000", "--layout", "original"], 1),
        ("sort-of-clevr --n 50000 --layout original --workers 2",
         ["--n", "50000", "--layout", "original", "--workers", "2"], 1),
    ]
    for label, args, runs in cases:
        with tempfile.TemporaryDirectory() as d:
            results = [isolated(coorddata() + ["sort-of-clevr", "--force", "-q", "--out", "s.h5", *args], d)
                       for _ in range(runs)]
            size = (Path(d) / "s.h5").stat().st_size
        walls = [w for w, _, _ in results]
        print(f"{label:<62} {runs:4d} {statistics.median(walls):9.2f} {min(walls):7.2f} {max(walls):7.2f} "
              f"{statistics.median(c for _, _, c in results):6.1f} {max(r for _, r, _ in results):12.0f} "
              f"{size / 1e6:8.2f}")


def bench_compression(repeats: int) -> None:
    import h5py
    import numpy as np

    from coordconv_data.generate import sort_of_clevr as soc

    spec = soc.SortOfClevrSpec(n=10240, test_fraction=0)
    images = soc.generate(spec)["images"]
    print(f"\n{images.shape[0]} default images, {images.nbytes / 1e6:.0f} MB raw; median of {repeats} writes")
    print(f"{'stored as':<32} {'chunk':>5} {'write s':>8} {'read s':>7} {'size MB':>8}")
    cases = [
        ("uint8 none", np.uint8, {}),
        ("uint8 lzf", np.uint8, {"compression": "lzf"}),
        ("uint8 gzip-1", np.uint8, {"compression": "gzip", "compression_opts": 1}),
        ("uint8 gzip-3 (chosen)", np.uint8, {"compression": "gzip", "compression_opts": 3}),
        ("uint8 gzip-4", np.uint8, {"compression": "gzip", "compression_opts": 4}),
        ("uint8 gzip-6", np.uint8, {"compression": "gzip", "compression_opts": 6}),
        ("float32 gzip-1", np.float32, {"compression": "gzip", "compression_opts": 1}),
        ("float32 gzip-1 shuffle", np.float32, {"compression": "gzip", "compression_opts": 1, "shuffle": True}),
        ("float32 gzip-3 shuffle (chosen)", np.float32, {"compression": "gzip", "compression_opts": 3, "shuffle": True}),
        ("float32 lzf shuffle", np.float32, {"compression": "lzf", "shuffle": True}),
    ]
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "c.h5"
        for label, dtype, opts in cases:
            data = images if dtype == np.uint8 else (images[:2560] / 127.5 - 1).astype(dtype)
            codec = soc.image_codec(spec, "native" if dtype == np.uint8 else "original")
            writes = []
            for _ in range(repeats):
                t = time.perf_counter()
                with h5py.File(p, "w") as f:
                    ds = f.create_dataset("x", shape=data.shape, dtype=dtype, chunks=(codec.rows,) + data.shape[1:],
                                          **opts)
                    for s in range(0, len(data), 1024):
                        ds[s : s + 1024] = data[s : s + 1024]
                writes.append(time.perf_counter() - t)
            t = time.perf_counter()
            with h5py.File(p) as f:
                f["x"][...]
            read = time.perf_counter() - t
            scale = len(images) / len(data)  # float rows are timed on a quarter, reported per 10240 images
            print(f"{label:<32} {codec.rows:5d} {statistics.median(writes) * scale:8.2f} {read * scale:7.2f} "
                  f"{p.stat().st_size * scale / 1e6:8.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--big", type=int, default=200000, help="the larger --n for the memory check")
    ap.add_argument("--compression", action="store_true", help="also compare storage choices")
    ap.add_argument("--no-cli", action="store_true", help="skip the end-to-end runs")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, load average {load:.2f} at start")
    if not args.no_cli:
        bench_cli(args.repeats, args.big)
    if args.compression:
        bench_compression(args.repeats)


if __name__ == "__main__":
    main()
