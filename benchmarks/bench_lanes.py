"""Lanes generation end to end, memory against --n, and the storage choices.

    python benchmarks/bench_lanes.py [--repeats 3] [--big 50000] [--compression]

Targets (issue 14): `coorddata lanes --n 5000` (7500 images with the test split) under 2 s wall on
2 idle cores; peak resident memory flat in --n (5000 against 50000). For scale: the study's
generator made 400 images in 7.0 s on this machine (single-octave noise). The `cpu s` column is the
CPU time of the processes getrusage sees (the CLI process; with --workers 1 that is all the work):
on a shared machine it says more than the wall time.
The noise itself: benchmarks/bench_perlin.py. Peak memory is the whole process tree (parent,
forkserver and workers), sampled from /proc.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from _common import coorddata, isolated, load_note, summary  # noqa: E402


def bench_cli(repeats: int, big: int) -> None:
    print(f"{'command':<44} {'runs':>4} {'median s':>8} {'min s':>7} {'max s':>7} {'peak MB':>8} {'images/s':>9} "
          f"{'cpu s':>6}")
    cases = [(5000, w, repeats) for w in (1, 2)] + ([(big, 2, 1)] if big else [])
    for n, workers, reps in cases:
        args = ["lanes", "--n", str(n), "--workers", str(workers), "--force", "-q"]
        with tempfile.TemporaryDirectory() as d:
            runs = [isolated(coorddata() + args, d) for _ in range(reps)]
        walls = [w for w, _, _ in runs]
        total = n + n // 2
        print(f"{'coorddata lanes --n %d --workers %d' % (n, workers):<44} {reps:>4} {summary(walls)} "
              f"{max(r for _, r, _ in runs):8.0f} {total / min(walls):9.0f} {min(c for _, _, c in runs):6.2f}")


def bench_compression(n: int = 1000) -> None:
    import h5py
    import numpy as np

    from coordconv_data.generate import lanes

    spec = lanes.LanesSpec(n=n, test_n=0)
    arrays = lanes.lanes_block(spec, np.random.default_rng(0), n)
    print(f"\n{'array':<8} {'compression':<12} {'write s':>8} {'read s':>7} {'MB':>8} {'saved':>6}")
    with tempfile.TemporaryDirectory() as d:
        for name in ("images", "masks"):
            data = arrays[name]
            chunks = (max(1, (256 << 10) // int(np.prod(data.shape[1:]))),) + data.shape[1:]
            for comp, opts in (("none", {}), ("gzip-1", {"compression": "gzip", "compression_opts": 1}),
                               ("gzip-4", {"compression": "gzip", "compression_opts": 4}),
                               ("lzf", {"compression": "lzf"})):
                p = Path(d) / f"{name}_{comp}.h5"
                t = time.perf_counter()
                with h5py.File(p, "w") as f:
                    f.create_dataset(name, data=data, chunks=chunks, **opts)
                w = time.perf_counter() - t
                t = time.perf_counter()
                with h5py.File(p) as f:
                    f[name][...]
                r = time.perf_counter() - t
                size = p.stat().st_size
                print(f"{name:<8} {comp:<12} {w:8.3f} {r:7.3f} {size / 1e6:8.2f} {1 - size / data.nbytes:6.1%}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--big", type=int, default=50000, help="a large --n to show memory is flat (0: skip)")
    ap.add_argument("--compression", action="store_true", help="compare storage choices on 1000 images")
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, {load_note()}")
    bench_cli(args.repeats, args.big)
    if args.compression:
        bench_compression()


if __name__ == "__main__":
    main()
