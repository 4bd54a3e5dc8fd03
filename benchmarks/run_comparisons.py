"""Run the CoordConv paper's comparisons with `coorddata train` and print a Markdown results table.

    PYTHONPATH=. python benchmarks/run_comparisons.py [--work DIR] [--only NAME ...] [--lanes-n 1000] [--lanes-size 64]

Each comparison runs the CLI in a subprocess (with the allocator settings of the README), then reads
the run's metrics.csv: the table shows the last epoch's train and test metric, the best test value,
and the wall time of the whole command (data loading, training, per-epoch evaluation, files).
Nothing in the table is typed in by hand except the paper's figures beside the measurements.
"""

from __future__ import annotations

import argparse
import csv
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

ENV = {"MALLOC_MMAP_THRESHOLD_": "268435456", "MALLOC_TRIM_THRESHOLD_": "1073741824"}

# name, arch, data key, extra options, paper's figure
COMPARISONS = [
    ("cc-cls-quadrant-2ep", "coordconv_classification", "quadrant", ["--epochs", "2"], "100% test, seconds"),
    ("cc-cls-quadrant", "coordconv_classification", "quadrant", ["--epochs", "4"], "100% test"),
    ("cc-cls-uniform", "coordconv_classification", "uniform", ["--epochs", "4"], "100% test"),
    ("deconv-cls-quadrant", "deconv_classification", "quadrant", ["--epochs", "10"], "~0% test"),
    ("deconv-cls-uniform", "deconv_classification", "uniform", ["--epochs", "10"], "<=86% test"),
    ("cc-reg-quadrant", "coordconv_regressor", "quadrant", ["--epochs", "20"], "<1 px test (generalises)"),
    ("conv-reg-quadrant", "conv_regressor", "quadrant", ["--epochs", "20"], "markedly worse on the held-out quadrant"),
    ("cc-reg-uniform", "coordconv_regressor", "uniform", ["--epochs", "20"], "<1 px test"),
    ("conv-reg-uniform", "conv_regressor", "uniform", ["--epochs", "20"], "generalises on uniform"),
    ("cc-render-uniform", "coordconv_rendering", "uniform", ["--epochs", "3", "--lr", "0.005", "--l2", "0.001"], "IoU ~1 (CoordConv)"),
    ("cc-render-uniform-lr1e-3", "coordconv_rendering", "uniform", ["--epochs", "3", "--lr", "0.001", "--l2", "0"],
     "IoU ~1 (CoordConv)"),
    ("cc-render-uniform-6ep", "coordconv_rendering", "uniform", ["--epochs", "6"], "IoU ~1 (CoordConv)"),
    ("deconv-render-uniform", "deconv_rendering", "uniform", ["--epochs", "10"], "deconv IoU well below CoordConv"),
    ("cc-render-quadrant-6ep", "coordconv_rendering", "quadrant", ["--epochs", "6"], "IoU ~1 (CoordConv)"),
    ("deconv-render-quadrant", "deconv_rendering", "quadrant", ["--epochs", "10"], "deconv IoU far lower on the held-out quadrant"),
    ("lanes-fcn", "fcn_vgg9", "lanes", ["--epochs", "3"], "per-class recall 0.43-0.57 on position classes"),
    ("lanes-coordbias", "fcn_vgg9_coordbias", "lanes", ["--epochs", "3"], "per-class recall ~0.99"),
]
PRIMARY = {"classification": "accuracy", "rendering": "iou", "regression": "px_error", "segmentation": "mean_iou"}


def run(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, env=env, check=True)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, default=Path("bench_runs"))
    ap.add_argument("--only", nargs="*", default=None, help="names of comparisons to run")
    ap.add_argument("--lanes-n", type=int, default=1000, help="Lanes training images (test: half)")
    ap.add_argument("--lanes-size", type=int, default=64, help="Lanes image side (the study's: 128)")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **ENV}
    py = [sys.executable, "-m", "coordconv_data"]
    data = {"quadrant": args.work / "not_so_clevr_quadrant.h5", "uniform": args.work / "not_so_clevr_uniform.h5",
            "lanes": args.work / f"lanes_{args.lanes_n}_{args.lanes_size}.h5"}
    chosen = [c for c in COMPARISONS if args.only is None or c[0] in args.only]
    needed = {c[2] for c in chosen}
    for split in ("quadrant", "uniform"):
        if split in needed and not data[split].exists():
            run(py + ["not-so-clevr", "--split", split, "--out", str(data[split]), "-q"], env)
    if "lanes" in needed and not data["lanes"].exists():
        run(py + ["lanes", "--n", str(args.lanes_n), "--size", str(args.lanes_size), "--out", str(data["lanes"]), "-q"], env)

    rows = []
    for name, arch, key, extra, paper in chosen:
        out = args.work / name
        if out.exists():
            import shutil

            shutil.rmtree(out)
        cmd = ["coorddata", "train", "--arch", arch, "--data", str(data[key]), *extra, "--out", str(out), "-q"]
        wall = run(py + cmd[1:], env)
        with open(out / "metrics.csv") as f:
            history = list(csv.DictReader(f))
        task = next(t for t, m in PRIMARY.items() if m in history[0])
        metric = PRIMARY[task]
        last = {r["split"]: r for r in history[-2:]}
        tests = [float(r[metric]) for r in history if r["split"] == "test"]
        best = (min if metric == "px_error" else max)(tests)
        fmt = (lambda v: f"{float(v):.3f} px") if metric == "px_error" else (lambda v: f"{100 * float(v):.1f}%")
        if task == "segmentation":
            recalls = [k for k in history[0] if k.startswith("recall_")]
            detail = "test recall " + ", ".join(f"{k[7:]} {float(last['test'][k]):.2f}" for k in recalls)
        else:
            detail = ""
        row = (f"| {name} | `{shlex.join(cmd)}` | {metric} | {fmt(last['train'][metric])} | {fmt(last['test'][metric])} "
               f"| {fmt(best)} | {wall:.0f} s | {paper} | {detail} |")
        print(row, flush=True)
        rows.append(row)
    print()
    print("| comparison | command | metric | train (last) | test (last) | test (best) | wall | paper | detail |")
    print("|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
