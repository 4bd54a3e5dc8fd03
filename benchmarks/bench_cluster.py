"""Beyond one machine, measured as ratios in one run: the Dask engine's overhead, reading a merged file,
and samples drawn on the fly beside a training step.

    python benchmarks/bench_cluster.py [--work bench_runs/cluster] [--n 20000] [--shards 8,32] [--repeats 3]

1. Generation: `coorddata lanes --n N --workers 2` against `coorddata lanes --n N --shards S --dask local
   --workers 2` (a LocalCluster of 2 one-thread workers, one task per shard, then the virtual merge),
   alternated, `--repeats` times each; wall seconds (median) and the ratio. The shards' folder is removed
   before every Dask run (else its shards would be kept). The two files are then compared array by array.
2. Reading: a `Lanes` dataset over the one-machine file and over the merged (virtual) file, both read per
   sample (`memory_limit=0`, as a file larger than memory is), shuffled batches of 16 through a DataLoader
   (0 workers), samples per second; and whole 64-image slices of `train/images` through h5py, MB/s.
3. On the fly: `Lanes.from_spec(spec)` (the same spec) against the file, shuffled batches of 16 through a
   DataLoader with 0 and 2 workers, samples per second, beside a training step of the Lanes FCN
   (`fcn_vgg9_coordbias`, forward, loss, backward, SGD) at the study's batch of 1 and at 16. Loaders run
   with one torch thread (what a DataLoader worker has), the step with two.

The machine has 2 cores, shared with other jobs while this runs: the load average is printed with the
figures, and each comparison alternates its two sides so that a change of load hits both.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import coorddata, load_note, timed  # noqa: E402


def generation(work: Path, n: int, shards: list[int], repeats: int) -> tuple[Path, Path]:
    one, merged = work / "one.h5", work / "dask.h5"
    env_cmd = coorddata()
    runs: dict[str, list[float]] = {"--workers 2": []}
    runs.update({f"--shards {s} --dask local --workers 2": [] for s in shards})
    for _ in range(repeats):
        for label in runs:
            if label.startswith("--shards"):
                s = label.split()[1]
                out = work / f"dask{s}.h5"
                shutil.rmtree(work / f"dask{s}-shards", ignore_errors=True)
                cmd = env_cmd + ["lanes", "--n", str(n), *label.split(), "--out", str(out), "--force", "-q"]
            else:
                cmd = env_cmd + ["lanes", "--n", str(n), "--workers", "2", "--out", str(one), "--force", "-q"]
            wall, rss, _ = timed(cmd, str(work))
            runs[label].append(wall)
            print(f"  lanes --n {n} {label}: {wall:.1f} s (peak {rss:.0f} MB)", flush=True)
    base = statistics.median(runs["--workers 2"])
    images = n + n // 2
    print(f"\n| `coorddata lanes --n {n}` | median s | images/s | against --workers 2 |")
    print("|---|---|---|---|")
    for label, walls in runs.items():
        m = statistics.median(walls)
        print(f"| {label} | {m:.1f} | {images / m:,.0f} | {m / base:.2f}x |")
    last = shards[-1]
    shutil.move(str(work / f"dask{last}.h5"), merged)  # the merge names its shards relative to its folder
    _same(one, merged)
    return one, merged


def _same(a: Path, b: Path) -> None:
    import h5py
    import numpy as np

    with h5py.File(a, "r") as f, h5py.File(b, "r") as g:
        for split in f:
            for name in f[split]:
                x, y = f[split][name], g[split][name]
                for s in range(0, x.shape[0], 2048):
                    assert np.array_equal(x[s : s + 2048], y[s : s + 2048]), (split, name)
    print(f"\n{b.name} equals {a.name} array for array (every sample compared)")


def loader_rate(ds, workers: int, batches: int, batch: int = 16) -> float:
    import torch
    from torch.utils.data import DataLoader

    loader = DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers,
                        generator=torch.Generator().manual_seed(0))
    it = iter(loader)
    next(it)  # start-up not counted
    t = time.perf_counter()
    n = 0
    for _ in range(batches):
        x, _ = next(it)
        n += len(x)
    return n / (time.perf_counter() - t)


def slice_rate(path: Path, slices: int) -> float:
    import h5py
    import numpy as np

    with h5py.File(path, "r") as f:
        ds = f["train/images"]
        starts = np.random.default_rng(0).integers(0, ds.shape[0] // 64, size=slices) * 64
        t = time.perf_counter()
        nbytes = 0
        for s in starts.tolist():
            nbytes += ds[s : s + 64].nbytes
    return nbytes / 2**20 / (time.perf_counter() - t)


def alternate(fns: dict[str, callable], repeats: int) -> dict[str, float]:
    got: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            got[k].append(fn())
    return {k: statistics.median(v) for k, v in got.items()}


def step_rate(batch: int, ds, steps: int) -> float:
    import torch
    from torch.utils.data import DataLoader

    from coordconv_data.train import TrainConfig, resolve, task_for

    cfg = resolve(TrainConfig(arch="fcn_vgg9_coordbias", batch_size=batch))
    task = task_for(cfg)
    torch.manual_seed(0)
    model = task.build_model().to(memory_format=torch.channels_last)
    optimizers = task.optimizers(model)
    nets = task.networks(model, lambda m: m)
    batches = iter(DataLoader(ds, batch_size=batch, shuffle=True))
    task.train_step(nets, next(batches), optimizers, torch.device("cpu"))  # warm-up
    t = time.perf_counter()
    n = 0
    for _ in range(steps):
        b = next(batches)
        task.train_step(nets, b, optimizers, torch.device("cpu"))
        n += len(b[0])
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("bench_runs/cluster"))
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--shards", default="8,32", help="shard counts of the Dask runs, comma-separated")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batches", type=int, default=60)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--keep", action="store_true", help="keep the files in --work (removed by default: GBs)")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"# bench_cluster ({load_note()})\n")
    print("## 1. generation: Dask LocalCluster against --workers 2\n")
    one, merged = generation(args.work, args.n, [int(s) for s in args.shards.split(",")], args.repeats)

    import torch

    from coordconv_data.datasets import Lanes
    from coordconv_data.generate.lanes import LanesSpec
    from coordconv_data.train.allocator import keep_freed_memory

    keep_freed_memory()
    # Loaders measured with one torch thread, as in a DataLoader worker: on these 2 shared cores a batch's
    # small conversions ran 17x slower with 2 threads (OpenMP threads waiting on busy cores) than with 1.
    torch.set_num_threads(1)
    print(f"\n## 2. reading: the merged (virtual) file against the one-machine file ({load_note()})\n")
    files = {"one-machine file": Lanes(one, memory_limit=0), "merged virtual file": Lanes(merged, memory_limit=0)}
    rates = alternate({k: (lambda d=d: loader_rate(d, 0, args.batches)) for k, d in files.items()}, args.repeats)
    mbs = alternate({"one-machine file": lambda: slice_rate(one, 40), "merged virtual file": lambda: slice_rate(merged, 40)},
                    args.repeats)
    print("| file | DataLoader samples/s (batch 16, shuffled, per-sample reads) | h5py 64-image slices, MB/s |")
    print("|---|---|---|")
    for k in files:
        print(f"| {k} | {rates[k]:,.0f} | {mbs[k]:,.0f} |")
    print(f"| merged / one-machine | {rates['merged virtual file'] / rates['one-machine file']:.2f}x | "
          f"{mbs['merged virtual file'] / mbs['one-machine file']:.2f}x |")

    print(f"\n## 3. on the fly against the file, beside a Lanes FCN step ({load_note()})\n")
    spec = LanesSpec(n=args.n, test_n=args.n // 2)
    drawn = Lanes.from_spec(spec)
    read = files["one-machine file"]
    cases = {f"{name}, {w} workers": (lambda d=d, w=w: loader_rate(d, w, args.batches))
             for w in (0, 2) for name, d in (("file", read), ("on the fly", drawn))}
    rates = alternate(cases, args.repeats)
    torch.set_num_threads(2)  # the step as training runs it here: both cores
    steps = {b: step_rate(b, drawn, args.steps * (8 if b == 1 else 1)) for b in (1, 16)}
    print("| source | samples/s (batch 16, shuffled) |")
    print("|---|---|")
    for k, v in rates.items():
        print(f"| {k} | {v:,.0f} |")
    for b, v in steps.items():
        print(f"| training step of fcn_vgg9_coordbias, batch {b} | {v:,.1f} |")
    fly = rates["on the fly, 0 workers"]
    print(f"\non the fly / file (0 workers): {fly / rates['file, 0 workers']:.2f}x; on the fly (0 workers) / "
          f"training step: {fly / steps[1]:,.0f}x at batch 1, {fly / steps[16]:,.0f}x at batch 16")
    if not args.keep:
        shutil.rmtree(args.work)


if __name__ == "__main__":
    main()
