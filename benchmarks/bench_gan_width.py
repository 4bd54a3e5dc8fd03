"""Benchmark: seconds per GAN training iteration for the six archs at several widths, on this machine.

Run from the repository root:  PYTHONPATH=. python benchmarks/bench_gan_width.py [--widths 64 16 8]
    [--size 64] [--batch 16] [--iters 5] [--archs simple_gan ...]

An iteration is the original's (``train_gan.py``): one discriminator step, then two generator steps
on the same ``z``, batch 16, Adam (0.9, 0.99) with D lr 1e-4 and G lr 5e-4, the discriminator fed
the CoordConv generator's output before ``tanh`` (``GANPair.fakes_for_discriminator``). Real images
are random tensors of the right shape (data loading is not timed). Per arch and width: two warm-up
iterations, then the median of ``--iters`` timed ones.

Shared machines: each cell records the CPU time other processes took while it ran (``/proc/stat``
against this process's own CPU time). A cell measured while others used more than ``--busy``
(default 5%) of the cores is measured again, up to ``--tries`` times, after waiting for a quiet
spell; the table keeps each cell's quietest measurement and prints the others' share beside it, so
a figure from busy cores is never passed off as an idle one. glibc's allocator is set as
``coorddata train`` sets it (``--malloc default`` leaves it to the environment): at width 64 it
changes the CoordConv generators' speed about twofold.

The figures measured on the development machine are in the README (Training, GANs).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

import torch
import torch.nn.functional as F

from coordconv_data.models import create_model, list_models
from coordconv_data.train.allocator import keep_freed_memory


def _cpu_busy() -> tuple[float, float]:
    """(busy, total) seconds of all cores since boot."""
    with open("/proc/stat") as f:
        fields = [float(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - idle) / tick, sum(fields) / tick


class OthersMeter:
    """The share of all cores that other processes used between ``start()`` and ``stop()``."""

    def start(self) -> None:
        self.busy, self.total = _cpu_busy()
        self.own = time.process_time()

    def stop(self) -> float:
        busy, total = _cpu_busy()
        others = max(0.0, (busy - self.busy) - (time.process_time() - self.own))
        return others / max(total - self.total, 1e-9)


def wait_for_quiet(limit: float, seconds: float = 3.0, timeout: float = 120.0) -> float:
    """Wait (at most ``timeout`` s) until others use less than ``limit`` of the cores over ``seconds``."""
    meter, deadline = OthersMeter(), time.monotonic() + timeout
    while True:
        meter.start()
        time.sleep(seconds)
        share = meter.stop()
        if share < limit or time.monotonic() > deadline:
            return share


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def iteration(model, opt_d, opt_g, real: torch.Tensor, z: torch.Tensor) -> None:
    disc = model.discriminator
    with torch.no_grad():
        fake = model.fakes_for_discriminator(z)
    d_loss = _bce(disc(real), 1.0) + _bce(disc(fake), 0.0)
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()
    disc.requires_grad_(False)
    for _ in range(2):
        g_loss = _bce(disc(model.fakes_for_discriminator(z)), 1.0)
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
    disc.requires_grad_(True)


def seconds_per_iteration(arch: str, width: int, size: int, batch: int, iters: int) -> tuple[float, float]:
    """(median seconds per iteration, others' share of the cores during the timed iterations)."""
    torch.manual_seed(0)
    model = create_model(arch, width=width, size=size).train()
    opt_d = torch.optim.Adam(model.discriminator.parameters(), lr=1e-4, betas=(0.9, 0.99))
    opt_g = torch.optim.Adam(model.generator.parameters(), lr=5e-4, betas=(0.9, 0.99))
    real = torch.rand(batch, model.channels, size, size) * 2 - 1
    times = []
    meter = OthersMeter()
    for i in range(iters + 2):
        if i == 2:
            meter.start()
        z = model.sample_noise(batch)
        start = time.perf_counter()
        iteration(model, opt_d, opt_g, real, z)
        if i >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times), meter.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", nargs="+", default=list_models(task="gan"))
    ap.add_argument("--widths", nargs="+", type=int, default=[64, 16, 8])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--busy", type=float, default=0.05, help="others' share of the cores above which a cell is re-measured")
    ap.add_argument("--tries", type=int, default=4)
    ap.add_argument("--malloc", choices=["train", "default"], default="train",
                    help="train: glibc's allocator set as coorddata train sets it; default: as the environment has it")
    args = ap.parse_args()
    archs = sorted(args.archs, key=lambda a: (not a.startswith("simple"), a))
    # What `coorddata train` runs with: it keeps freed memory (unless the environment chose).
    kept = keep_freed_memory() if args.malloc == "train" else False
    malloc = "as coorddata train (mallopt: freed memory kept)" if kept else {
        k: os.environ.get(k, "default") for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, "
          f"size {args.size}, batch {args.batch}, median of {args.iters} iterations; glibc malloc: {malloc}")
    rows: dict[str, list[tuple[float, float]]] = {}
    for arch in archs:
        rows[arch] = []
        for w in args.widths:
            best = (math.inf, math.inf)
            for _ in range(args.tries):
                wait_for_quiet(args.busy)
                secs, share = seconds_per_iteration(arch, w, args.size, args.batch, args.iters)
                if share < best[1]:
                    best = (secs, share)
                if share < args.busy:
                    break
            rows[arch].append(best)
            print(f"  {arch} width {w}: {best[0]:.3f} s/iter (others used {best[1]:.0%} of the cores)", flush=True)
    print()
    print("| arch | " + " | ".join(f"width {w} (s/iter)" for w in args.widths) + " |")
    print("|---|" + "---|" * len(args.widths))
    for arch, cells in rows.items():
        print(f"| {arch} | " + " | ".join(f"{s:.3f}" + ("" if o < args.busy else f" (busy {o:.0%})") for s, o in cells)
              + " |")
    busy = sum(o >= args.busy for cells in rows.values() for _, o in cells)
    print()
    print(f"cores idle (others under {args.busy:.0%}) for every cell" if not busy else
          f"{busy} cell(s) measured while other processes used the cores (marked busy): not idle figures")


if __name__ == "__main__":
    main()
