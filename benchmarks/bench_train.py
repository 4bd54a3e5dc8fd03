"""Seconds per training epoch through `coorddata train`, for this code or another checkout of it.

    python benchmarks/bench_train.py [--code DIR] [--work bench_runs] [--repeat 2] [--only NAME ...]

Each case runs the CLI in a fresh process (the allocator settings of the README set, as a user would
for timed runs) and reads the run's metrics.csv: the `seconds` of each epoch's train row (the steps
alone) and the whole command's wall time divided by its epochs (steps, evaluation after every epoch,
checkpoints and pictures). `--code DIR` times another checkout (e.g. an older commit in a git
worktree) on the same files, for before/after figures.

Cases: coordconv_classification on the quadrant split (2 epochs); both Sort-of-Clevr GANs at the
paper's size (batch 16, 64x64, width and z_dim of the paper) on a 1,000-image file, 1 epoch, 100
samples scored: seconds per iteration, and an epoch of the default 50,000-image file extrapolated
from it. The GAN epoch of this engine is every image of the file (train and test, as the original
trained on all); an older engine's was the train split.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import load_note  # noqa: E402

ENV = {"MALLOC_MMAP_THRESHOLD_": "268435456", "MALLOC_TRIM_THRESHOLD_": "1073741824"}
GAN_FILE_N = 1000
DEFAULT_IMAGES = 50000  # `coorddata sort-of-clevr` at its defaults
CASES = {
    "coordconv_classification": ("quadrant", ["--epochs", "2"]),
    "clevr_gan": ("soc", ["--epochs", "1", "--eval-samples", "100"]),
    "clevr_coordconv_in_gd": ("soc", ["--epochs", "1", "--eval-samples", "100"]),
}


def run_case(code: Path, arch: str, data: Path, extra: list[str], out: Path) -> dict[str, float]:
    env = {**os.environ, **ENV, "PYTHONPATH": str(code)}
    cmd = [sys.executable, "-m", "coordconv_data", "train", "--arch", arch, "--data", str(data), *extra,
           "--out", str(out), "-q"]
    t = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, cwd=code)
    wall = time.perf_counter() - t
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    train = [float(r["seconds"]) for r in rows if r["split"] == "train"]
    return {"wall": wall, "epochs": len(train), "train": train}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--code", type=Path, default=Path(__file__).resolve().parents[1], help="checkout to time")
    ap.add_argument("--work", type=Path, default=Path("bench_runs"))
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--only", nargs="*", default=None)
    args = ap.parse_args()
    args.work = args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    here = Path(__file__).resolve().parents[1]
    py = [sys.executable, "-m", "coordconv_data"]
    env = {**os.environ, "PYTHONPATH": str(here)}
    data = {"quadrant": args.work / "not_so_clevr_quadrant.h5", "soc": args.work / f"sort_of_clevr_{GAN_FILE_N}.h5"}
    if not data["quadrant"].exists():
        subprocess.run(py + ["not-so-clevr", "--split", "quadrant", "--out", str(data["quadrant"]), "-q"], env=env, check=True)
    if not data["soc"].exists():
        subprocess.run(py + ["sort-of-clevr", "--n", str(GAN_FILE_N), "--out", str(data["soc"]), "-q"], env=env, check=True)
    print(f"## {args.code} ({load_note()})\n")
    print("| arch | data | train s per epoch (median) | wall s per epoch incl. evaluation (median) | s per GAN iteration "
          "| s per epoch of the default 50,000-image file |")
    print("|---|---|---|---|---|---|")
    for arch, (key, extra) in CASES.items():
        if args.only and arch not in args.only:
            continue
        results = []
        for i in range(args.repeat):
            out = args.work / f"bench-train-{arch}-{os.getpid()}-{i}"
            if out.exists():
                import shutil

                shutil.rmtree(out)
            results.append(run_case(args.code, arch, data[key], extra, out))
        train = statistics.median(t for r in results for t in r["train"])
        wall = statistics.median(r["wall"] / r["epochs"] for r in results)
        if key == "soc":
            import h5py

            with h5py.File(data["soc"], "r") as f:
                n_train, n_test = len(f["train/images"]), len(f["test/images"])
            # This engine's epoch is every image; an older one's was the train split: count what ran.
            iterations = (n_train + n_test) // 16 if _engine_uses_all_images(args.code) else n_train // 16
            per = train / iterations
            epoch = per * (DEFAULT_IMAGES if _engine_uses_all_images(args.code) else DEFAULT_IMAGES * 0.9) // 16
            print(f"| {arch} | {data[key].name} | {train:.1f} ({iterations} iterations) | {wall:.1f} | {per:.3f} "
                  f"| {epoch:,.0f} s |", flush=True)
        else:
            print(f"| {arch} | {data[key].name} | {train:.2f} | {wall:.2f} | - | - |", flush=True)


def _engine_uses_all_images(code: Path) -> bool:
    return (code / "coordconv_data" / "train" / "fit.py").is_file()


if __name__ == "__main__":
    main()
