"""Cost of coordinates in the Lanes FCN: forward+backward time of the three FCN-VGG9 variants.

Run from the repository root::

    PYTHONPATH=. python benchmarks/bench_models.py                 # defaults: batch 8, 128x128
    PYTHONPATH=. python benchmarks/bench_models.py --repeats 15 --no-malloc

Each timed step is ``zero_grad, forward, cross-entropy, backward`` on a float32 CPU batch. The
variants are timed round-robin (one step of each in turn) so that load from other processes on the
machine spreads over all of them; the table reports the median, the interquartile range, the
overhead of each variant's median over plain ``fcn_vgg9``, and the median of the same-round ratios
("paired", the more robust figure on a shared machine). A second table times single layers
(``nn.Conv2d`` against ``CoordBiasConv2d`` and ``CoordConv2d``).

glibc's allocator returns large freed blocks to the OS and maps fresh ones on every step unless told
otherwise; with ``--malloc`` (the default) the script re-runs itself in a child process with
``MALLOC_MMAP_THRESHOLD_=268435456 MALLOC_TRIM_THRESHOLD_=1073741824`` in its environment (glibc reads
them when the process starts, so they cannot be set from inside Python) and prints both results.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from coordconv_data.models import CoordBiasConv2d, CoordConv2d, create_model

MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": "268435456", "MALLOC_TRIM_THRESHOLD_": "1073741824"}
MODELS = ("fcn_vgg9", "fcn_vgg9_coordbias", "fcn_vgg9_coordconv")


def quartiles(xs: list[float]) -> tuple[float, float, float]:
    q1, q2, q3 = statistics.quantiles(xs, n=4, method="inclusive")
    return q1, q2, q3


def time_round_robin(steps: dict[str, Callable[[], None]], warmup: int, repeats: int) -> dict[str, list[float]]:
    for _ in range(warmup):
        for step in steps.values():
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            t0 = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t0)
    return times


def model_steps(batch: int, size: int) -> tuple[dict[str, Callable[[], None]], dict[str, int]]:
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 3, size, size, generator=gen)
    target = torch.randint(0, 4, (batch, size, size), generator=gen)
    steps, params = {}, {}
    for name in MODELS:
        torch.manual_seed(0)
        model = create_model(name).train()
        params[name] = sum(p.numel() for p in model.parameters())

        def step(model: nn.Module = model) -> None:
            model.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), target).backward()

        steps[name] = step
    return steps, params


def layer_steps(batch: int, size: int, channels: int = 64) -> dict[str, Callable[[], None]]:
    x = torch.rand(batch, channels, size, size, requires_grad=True)
    layers = {
        "nn.Conv2d": nn.Conv2d(channels, channels, 3, padding=1),
        "CoordBiasConv2d": CoordBiasConv2d(channels, channels, 3, padding=1),
        "CoordConv2d": CoordConv2d(channels, channels, 3, padding=1),
    }
    steps = {}
    for name, layer in layers.items():

        def step(layer: nn.Module = layer) -> None:
            layer.zero_grad(set_to_none=True)
            x.grad = None
            layer(x).sum().backward()

        steps[name] = step
    return steps


def measure(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    steps, params = model_steps(args.batch, args.size)
    result = {
        "models": time_round_robin(steps, args.warmup, args.repeats),
        "params": params,
    }
    if args.layers:
        result["layers"] = time_round_robin(layer_steps(args.batch, args.size), args.warmup, args.repeats)
    return result


def print_table(title: str, times: dict[str, list[float]], baseline: str, params: dict[str, int] | None = None) -> None:
    print(title)
    header = f"  {'':22s} {'median ms':>10s} {'IQR ms':>15s} {'min ms':>8s} {'overhead':>9s} {'paired':>8s}"
    if params:
        header += f" {'params':>11s}"
    print(header)
    base = statistics.median(times[baseline])
    for name, ts in times.items():
        q1, med, q3 = quartiles(ts)
        # Same-round ratios: a burst of load from elsewhere hits both steps of a round alike.
        paired = statistics.median(t / b for t, b in zip(ts, times[baseline]))
        row = (
            f"  {name:22s} {med * 1e3:10.1f} {q1 * 1e3:7.1f}-{q3 * 1e3:<7.1f} {min(ts) * 1e3:8.1f}"
            f" {(med / base - 1) * 100:+8.1f}% {(paired - 1) * 100:+7.1f}%"
        )
        if params:
            row += f" {params[name]:11,d}"
        print(row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=128, help="image side (a multiple of 8)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--malloc", action=argparse.BooleanOptionalAction, default=True,
                        help="also run in a child process with the glibc malloc thresholds set")
    parser.add_argument("--layers", action=argparse.BooleanOptionalAction, default=True,
                        help="also time single 64-channel layers")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)  # child mode
    args = parser.parse_args()

    if args.json:
        print(json.dumps(measure(args)))
        return

    env_set = {k: os.environ.get(k) for k in MALLOC_ENV}
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}, {args.size}x{args.size}, "
          f"float32 CPU, {args.warmup} warm-up + {args.repeats} timed steps per variant, round-robin")
    print(f"malloc env in this process: {env_set}")
    result = measure(args)
    print()
    print_table("forward+backward step (cross-entropy), this process:", result["models"], "fcn_vgg9", result["params"])
    if args.layers:
        print()
        print_table(f"single layer 64->64 3x3, forward+backward, {args.batch}x64x{args.size}x{args.size}:",
                    result["layers"], "nn.Conv2d")

    if args.malloc and any(os.environ.get(k) != v for k, v in MALLOC_ENV.items()):
        cmd = [sys.executable, os.path.abspath(__file__), "--json", "--no-malloc", "--no-layers",
               f"--batch={args.batch}", f"--size={args.size}", f"--warmup={args.warmup}",
               f"--repeats={args.repeats}", f"--threads={args.threads}"]
        child = subprocess.run(cmd, env={**os.environ, **MALLOC_ENV}, capture_output=True, text=True, check=True)
        tuned = json.loads(child.stdout.strip().splitlines()[-1])
        print()
        print_table("same, child process with " + " ".join(f"{k}={v}" for k, v in MALLOC_ENV.items()) + ":",
                    tuned["models"], "fcn_vgg9")
        print()
        print("  effect of the malloc thresholds (median, default -> tuned):")
        for name in MODELS:
            a, b = statistics.median(result["models"][name]), statistics.median(tuned["models"][name])
            print(f"  {name:22s} {a * 1e3:8.1f} -> {b * 1e3:8.1f} ms ({(b / a - 1) * 100:+.1f}%)")
        print("  note: glibc reads these variables at process start; export them before running python"
              " (setting os.environ inside the interpreter has no effect).")


if __name__ == "__main__":
    main()
