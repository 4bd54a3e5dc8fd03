"""Not-so-Clevr generation, end to end, as a user runs it.

    python benchmarks/bench_not_so_clevr.py [--repeats 5] [--compression]

Times `coorddata not-so-clevr --split both` (interpreter start included) and `coorddata --help`
as subprocesses, with each run's peak resident memory, and, with --compression, measures the
storage choices for both layouts. Targets (issue 2): under 2 s for both splits, under 0.5 s for
--help. For scale: the original generator, ported to Python 3, took 11.4 s and 1.6 GB and wrote 1 GB.
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
from _common import coorddata, isolated, load_note  # noqa: E402


def bench_cli(repeats: int) -> None:
    print(f"{'command':<56} {'median s':>9} {'min s':>7} {'max s':>7} {'peak RSS MB':>12}")
    for label, args in (
        ("coorddata not-so-clevr --split both", ["not-so-clevr", "--split", "both", "--force", "-q"]),
        ("coorddata not-so-clevr --split both --layout original",
         ["not-so-clevr", "--split", "both", "--force", "-q", "--layout", "original"]),
        ("coorddata --help", ["--help"]),
    ):
        with tempfile.TemporaryDirectory() as d:
            runs = [isolated(coorddata() + args, d) for _ in range(repeats)]
            sizes = sum(p.stat().st_size for p in Path(d).glob("*.h5"))
        walls = [w for w, _, _ in runs]
        print(f"{label:<56} {statistics.median(walls):9.3f} {min(walls):7.3f} {max(walls):7.3f} "
              f"{max(r for _, r, _ in runs):12.0f}" + (f"   files {sizes / 1e6:.2f} MB" if sizes else ""))


def bench_compression() -> None:
    from coordconv_data.generate import not_so_clevr as nsc

    print(f"\n{'layout':<9} {'compression':<22} {'write s':>8} {'read s':>7} {'size MB':>9}")
    native0, original0 = dict(nsc.NATIVE_COMPRESSION), dict(nsc.ORIGINAL_COMPRESSION)
    choices = {
        "none": ({"images": None, "onehots": None}, {"compression": None}),
        "gzip-4 (native default)": ({"images": "gzip", "onehots": "gzip"}, {"compression": "gzip", "level": 4}),
        "gzip-1 no shuffle": ({}, {"compression": "gzip", "level": 1, "shuffle": False}),
        "lzf": ({"images": "lzf", "onehots": "lzf"}, {"compression": "lzf"}),
    }
    import h5py

    try:
        with tempfile.TemporaryDirectory() as d:
            for label, (native, original) in choices.items():
                for layout in ("native", "original"):
                    if layout == "native" and not native:
                        continue
                    nsc.NATIVE_COMPRESSION.update(native0 | native)
                    nsc.ORIGINAL_COMPRESSION = original
                    p = Path(d) / f"{layout}.h5"
                    t = time.perf_counter()
                    nsc.write_file(nsc.NotSoClevrSpec("uniform"), p, layout=layout, force=True)
                    w = time.perf_counter() - t
                    t = time.perf_counter()
                    with h5py.File(p) as f:
                        f.visititems(lambda _, o: o[...] if isinstance(o, h5py.Dataset) else None)
                    r = time.perf_counter() - t
                    print(f"{layout:<9} {label:<22} {w:8.3f} {r:7.3f} {os.path.getsize(p) / 1e6:9.2f}")
    finally:
        nsc.NATIVE_COMPRESSION.update(native0)
        nsc.ORIGINAL_COMPRESSION = original0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--compression", action="store_true", help="also compare storage choices (uniform split)")
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, {load_note()}")
    bench_cli(args.repeats)
    if args.compression:
        bench_compression()


if __name__ == "__main__":
    main()
