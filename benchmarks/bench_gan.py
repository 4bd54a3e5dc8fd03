"""GANs on Sort-of-Clevr: seconds per epoch of each arch, and both archs' scores after a fixed budget.

    PYTHONPATH=. python benchmarks/bench_gan.py [--iters 8] [--work bench_runs] [--n 1800] [--epochs 8]
                                                [--eval-samples 500] [--skip-speed] [--skip-budget]

Speed: the paper's iteration (one discriminator step, two generator steps, minibatch 16, 64x64,
``z_dim`` 256) timed in this process after two warm-up iterations, then scaled to an epoch of the
default file (45,000 train images: 2,812 iterations); plus the per-epoch evaluation (generate and
score 1,000 images). Budget: ``coorddata train`` of both archs on the same file for the same number
of iterations with the paper's hyperparameters, then the geometry score per epoch from each run's
metrics.csv, and ``coorddata interpolate`` pictures. A run already in ``--work`` with fewer epochs is
resumed to ``--epochs`` (the same as running it at once). The script re-runs itself with the
README's allocator settings.
"""

from __future__ import annotations

import argparse
import csv
import os
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import coorddata, load_note  # noqa: E402

ENV = {"MALLOC_MMAP_THRESHOLD_": "268435456", "MALLOC_TRIM_THRESHOLD_": "1073741824"}
ARCHS = ("clevr_gan", "clevr_coordconv_in_gd")
DEFAULT_TRAIN = 45000  # train images of `coorddata sort-of-clevr` at its defaults
BATCH = 16


def speed(data: Path, iters: int) -> None:
    import torch

    from coordconv_data.datasets import SortOfClevr
    from coordconv_data.models import create_model
    from coordconv_data.train import TrainConfig, resolve, task_for
    from coordconv_data.train.tasks import fixed_latents, gan_iteration

    real, _ = SortOfClevr(data, "all", task="gan").encode(range(BATCH))
    steps = DEFAULT_TRAIN // BATCH
    print(f"\n## Seconds per epoch ({load_note()}, torch {torch.__version__}, {torch.get_num_threads()} threads)\n")
    print("| arch | s / iteration (median of {}) | s / epoch of 45,000 images ({} iterations) | eval: generate + score 1,000 |"
          .format(iters, steps))
    print("|---|---|---|---|")
    for arch in ARCHS:
        task = task_for(resolve(TrainConfig(arch=arch, data=str(data))))
        torch.manual_seed(0)
        model = create_model(arch)
        optimizers = task.optimizers(model)
        nets = task.networks(model, lambda m: m)
        times = []
        for i in range(iters + 2):
            t = time.perf_counter()
            gan_iteration(nets, optimizers, real, model.sample_noise(BATCH))
            if i >= 2:
                times.append(time.perf_counter() - t)
        t = time.perf_counter()
        samples = task.generate(model, fixed_latents(1000, model.z_dim, 0), "cpu")
        gen = time.perf_counter() - t
        t = time.perf_counter()
        task.score(samples)
        score = time.perf_counter() - t
        per = statistics.median(times)
        print(f"| {arch} | {per:.2f} (min {min(times):.2f}, max {max(times):.2f}) | {per * steps:,.0f} s "
              f"({per * steps / 3600:.2f} h) | {gen:.1f} s + {score:.2f} s |", flush=True)


def budget(work: Path, data: Path, epochs: int, eval_samples: int) -> None:
    runs = {}
    for arch in ARCHS:
        out = work / f"gan-{arch}"
        cmd = [*coorddata(), "train", "--arch", arch, "--data", str(data), "--epochs", str(epochs),
               "--eval-samples", str(eval_samples), "--out", str(out), "-q"]
        done = 0
        if (out / "metrics.csv").is_file():
            with open(out / "metrics.csv") as f:
                done = max(int(r["epoch"]) for r in csv.DictReader(f))
        if done < epochs:  # a new run, or a longer budget: resume the run (identical to running it at once)
            run_cmd = cmd if done == 0 else [*coorddata(), "train", "--resume", str(out), "--epochs", str(epochs), "-q"]
            subprocess.run(run_cmd, check=True)
        for name, ck in (("interp", "best"), ("interp-last", "last")):
            png = work / f"{name}-{arch}.png"
            subprocess.run([*coorddata(), "interpolate", str(out), "--out", str(png), "--checkpoint", ck,
                            "--rows", "6", "--steps", "8", "--force", "-q"], check=True)
        with open(out / "metrics.csv") as f:
            runs[arch] = (cmd, list(csv.DictReader(f)))
    first = next(iter(runs.values()))[1]
    real = next(r for r in first if r["split"] == "real")
    import h5py

    with h5py.File(data, "r") as f:
        n_train = len(f["train/images"])
        iters = epochs * (n_train // BATCH)
    print(f"\n## Scores after {epochs} epochs of {n_train} images ({iters} iterations of {BATCH}), {eval_samples} "
          f"samples scored ({load_note()})\n")
    print(f"Real held-out images (the ceiling): geometry {float(real['geometry']):.3f}, position_tv "
          f"{float(real['position_tv']):.3f}\n")
    print("| arch | command | epoch | geometry | position_tv | missing | extra | malformed | stray | d_loss | g_loss "
          "| D(real) | D(fake) | train s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")

    def fmt(row: dict[str, str], key: str, digits: int = 3) -> str:
        return f"{float(row[key]):.{digits}f}" if row.get(key) not in (None, "") else "-"

    for arch, (cmd, rows) in runs.items():
        train = {r["epoch"]: r for r in rows if r["split"] == "train"}
        for r in (r for r in rows if r["split"] == "generated"):
            t = train[r["epoch"]]
            shown = shlex.join(["coorddata", *cmd[cmd.index("train"):]]) if r["epoch"] == "1" else ""
            cells = [fmt(r, k) for k in ("geometry", "position_tv", "missing", "extra", "malformed", "stray")]
            cells += [fmt(t, "d_loss"), fmt(t, "g_loss"), fmt(t, "d_real", 2), fmt(t, "d_fake", 2), fmt(t, "seconds", 0)]
            print(f"| {arch} | {'`' + shown + '`' if shown else ''} | {r['epoch']} | " + " | ".join(cells) + " |")
        total = sum(float(r["seconds"]) for r in rows if r["split"] == "train")
        print(f"| {arch} | all epochs | | | | | | | | | | | | {total:.0f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=8, help="timed iterations per arch")
    ap.add_argument("--work", type=Path, default=Path("bench_runs"))
    ap.add_argument("--n", type=int, default=1800, help="images of the budget run's file (90%% train)")
    ap.add_argument("--epochs", type=int, default=8, help="epochs of the budget runs")
    ap.add_argument("--eval-samples", type=int, default=500)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-budget", action="store_true")
    args = ap.parse_args()
    if any(os.environ.get(k) != v for k, v in ENV.items()):
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, **ENV})
    args.work.mkdir(parents=True, exist_ok=True)
    data = args.work / f"sort_of_clevr_{args.n}.h5"
    if not data.is_file():
        subprocess.run([*coorddata(), "sort-of-clevr", "--n", str(args.n), "--out", str(data), "-q"], check=True)
    if not args.skip_speed:
        speed(data, args.iters)
    if not args.skip_budget:
        budget(args.work, data, args.epochs, args.eval_samples)


if __name__ == "__main__":
    main()
