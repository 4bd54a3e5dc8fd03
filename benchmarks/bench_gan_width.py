"""Benchmark: seconds per GAN training iteration for the six archs at several widths, on this machine.

Run from the repository root:  PYTHONPATH=. python benchmarks/bench_gan_width.py [--widths 64 16 8]
    [--size 64] [--batch 16] [--iters 5] [--archs simple_gan ...]

An iteration is the original's (``train_gan.py``): one discriminator step, then two generator steps
on the same ``z``, batch 16, Adam (0.9, 0.99) with D lr 1e-4 and G lr 5e-4, the discriminator fed
the CoordConv generator's output before ``tanh`` (``GANPair.fakes_for_discriminator``). Real images
are random tensors of the right shape (data loading is not timed). Per arch and width: two warm-up
iterations, then the median of ``--iters`` timed ones.

Also prints whether the cores were idle: the CPU time other processes took while the timings ran
(from ``/proc/stat`` against this process's own CPU time), and the glibc allocator settings (DESIGN
notes: ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` change CPU training speed a lot).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
import torch.nn.functional as F

from coordconv_data.models import create_model, list_models


def _cpu_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all cores since boot."""
    with open("/proc/stat") as f:
        fields = [float(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


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


def seconds_per_iteration(arch: str, width: int, size: int, batch: int, iters: int) -> float:
    torch.manual_seed(0)
    model = create_model(arch, width=width, size=size).train()
    opt_d = torch.optim.Adam(model.discriminator.parameters(), lr=1e-4, betas=(0.9, 0.99))
    opt_g = torch.optim.Adam(model.generator.parameters(), lr=5e-4, betas=(0.9, 0.99))
    real = torch.rand(batch, model.channels, size, size) * 2 - 1
    times = []
    for i in range(iters + 2):
        z = model.sample_noise(batch)
        start = time.perf_counter()
        iteration(model, opt_d, opt_g, real, z)
        if i >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", nargs="+", default=list_models(task="gan"))
    ap.add_argument("--widths", nargs="+", type=int, default=[64, 16, 8])
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--iters", type=int, default=5)
    args = ap.parse_args()
    archs = sorted(args.archs, key=lambda a: (not a.startswith("simple"), a))
    malloc = {k: os.environ.get(k, "default") for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")}
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, "
          f"size {args.size}, batch {args.batch}, median of {args.iters} iterations; glibc malloc: {malloc}")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    busy0, total0 = _cpu_busy()
    own0 = time.process_time()
    rows = {}
    for arch in archs:
        rows[arch] = [seconds_per_iteration(arch, w, args.size, args.batch, args.iters) for w in args.widths]
    busy1, total1 = _cpu_busy()
    own = time.process_time() - own0
    tick = os.sysconf("SC_CLK_TCK")
    others = max(0.0, (busy1 - busy0) / tick - own)
    wall_cores = (total1 - total0) / tick
    print()
    print("| arch | " + " | ".join(f"width {w} (s/iter)" for w in args.widths) + " |")
    print("|---|" + "---|" * len(args.widths))
    for arch, secs in rows.items():
        print(f"| {arch} | " + " | ".join(f"{s:.3f}" for s in secs) + " |")
    print()
    share = others / wall_cores if wall_cores else 0.0
    verdict = "idle" if share < 0.05 else "NOT idle"
    print(f"other processes used {others:.1f} core-seconds of {wall_cores:.1f} ({share:.0%}) while this ran: cores "
          f"{verdict}; load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
