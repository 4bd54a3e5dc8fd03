"""Samples per second through a DataLoader for each dataset, against a CoordConv training step on them.

    python benchmarks/bench_datasets.py [--work bench_runs] [--batches 40]

For each dataset class and task: a standard `DataLoader(ds, batch_size=64, shuffle=True,
num_workers=W)` for W = 0 and 2, timed over --batches batches after the first (worker start-up not
counted), and a training step of a CoordConv arch on the same batches through the engine's task
(forward, loss, backward, Adam), in samples per second. The loader must not be what limits
training: its rate should be well above the step's. Files: the generators' defaults (Lanes at
--n 1000, 128x128). The 2-core machine's load is printed with the figures.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import load_note  # noqa: E402

BATCH = 64
CASES = [  # dataset class, file, task, a CoordConv arch of that task
    ("NotSoClevr", "not_so_clevr_quadrant.h5", "classification", "coordconv_classification"),
    ("NotSoClevr", "not_so_clevr_quadrant.h5", "regression", "coordconv_regressor"),
    ("NotSoClevr", "not_so_clevr_quadrant.h5", "rendering", "coordconv_rendering"),
    ("SortOfClevr", "sort_of_clevr.h5", "gan", "clevr_coordconv_in_gd"),
    ("Lanes", "lanes.h5", "segmentation", "fcn_vgg9_coordconv"),
]


def loader_rate(ds, workers: int, batches: int) -> float:
    import torch
    from torch.utils.data import DataLoader

    loader = DataLoader(ds, batch_size=BATCH, shuffle=True, num_workers=workers,
                        generator=torch.Generator().manual_seed(0))
    it = iter(loader)
    next(it)  # start-up (workers, first read) not counted
    t = time.perf_counter()
    n = 0
    for _ in range(batches):
        try:
            x, _ = next(it)
        except StopIteration:
            it = iter(loader)
            x, _ = next(it)
        n += len(x)
    return n / (time.perf_counter() - t)


def step_rate(arch: str, path: Path, ds, steps: int) -> float:
    import torch
    from torch.utils.data import DataLoader

    from coordconv_data.train import TrainConfig, resolve, task_for

    hparams = {"width": 16} if arch.startswith("clevr") else {}
    cfg = resolve(TrainConfig(arch=arch, data=str(path), batch_size=BATCH, hparams=hparams))
    task = task_for(cfg)
    torch.manual_seed(0)
    model = task.build_model()
    if task.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizers = task.optimizers(model)
    nets = task.networks(model, lambda m: m)
    batches = iter(DataLoader(ds, batch_size=BATCH, shuffle=True))
    task.train_step(nets, next(batches), optimizers, torch.device("cpu"))  # warm-up
    t = time.perf_counter()
    n = 0
    for _ in range(steps):
        batch = next(batches)
        task.train_step(nets, batch, optimizers, torch.device("cpu"))
        n += len(batch[0])
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("bench_runs"))
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    py = [sys.executable, "-m", "coordconv_data"]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    makes = {"not_so_clevr_quadrant.h5": ["not-so-clevr", "--split", "quadrant"], "sort_of_clevr.h5": ["sort-of-clevr"],
             "lanes.h5": ["lanes", "--n", "1000"]}
    for name, cmd in makes.items():
        if not (args.work / name).exists():
            subprocess.run(py + cmd + ["--out", str(args.work / name), "-q"], env=env, check=True)

    import coordconv_data.datasets as D
    from coordconv_data.train.allocator import keep_freed_memory

    keep_freed_memory()
    print(f"## samples per second, batch {BATCH} ({load_note()})\n")
    print("| dataset | task | DataLoader, 0 workers | DataLoader, 2 workers | training step of | step | loader / step |")
    print("|---|---|---|---|---|---|---|")
    for cls_name, file, task, arch in CASES:
        path = args.work / file
        ds = getattr(D, cls_name)(path, "train", task=task)
        zero, two = loader_rate(ds, 0, args.batches), loader_rate(ds, 2, args.batches)
        step = step_rate(arch, path, ds, args.steps)
        print(f"| {cls_name} | {task} | {zero:,.0f} | {two:,.0f} | `{arch}`{' (width 16)' if arch.startswith('clevr') else ''} "
              f"| {step:,.0f} | {zero / step:,.0f}x |", flush=True)


if __name__ == "__main__":
    main()
