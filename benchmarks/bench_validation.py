"""The cost of content validation: opening each default file (target: under 0.1 s each), and starting a
one-epoch training run on it (target: the full-content check at most 5% of one epoch).

    python benchmarks/bench_validation.py [--repeats 5] [--keep DIR] [--code DIR] [--steps 20] [--no-train]

Writes the default files (`coorddata not-so-clevr`, `coorddata sort-of-clevr`, `coorddata lanes
--n 5000`) into a temporary folder (or DIR, reused when present). Every measurement runs in a fresh
interpreter importing the package from `--code DIR` (default: this checkout), so another checkout
(e.g. `git archive` of an older commit) is timed on the same files, for before/after figures.

Opening: `coordconv_data.store.summarize` on each file (open, attributes, links, structure, value
ranges of small arrays whole and of large ones by a bounded sample of chunks, the kind's consistency
checks on a few samples), against a bare `h5py.File` open that reads every array's metadata. Cold:
the first open in the process (page cache warm: the file was just written or read); warm: the median
of the repeats.

Training start (not for the original layout, which the trainer does not read): `coordconv_data.train.train`
of the file's arch for one epoch, stopped after `--steps` steps: the seconds from the call to the
first step (options, the data file's validation, the model, the datasets, a GAN's real-image score),
of which `RunData.open` (validation once per run: summarize, fingerprint, and in this version
`store.check_content`, every value and sample), and one epoch estimated from the steps' pace
(median step time times the steps of an epoch). The share is RunData.open's time over that epoch.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from _common import coorddata, load_note  # noqa: E402

FILES = {
    "not_so_clevr_quadrant.h5": ["not-so-clevr", "--split", "quadrant"],
    "not_so_clevr_uniform.h5": ["not-so-clevr", "--split", "uniform"],
    "rectangle_4_uniform.h5": ["not-so-clevr", "--split", "uniform", "--layout", "original",
                               "--out", "rectangle_4_uniform.h5"],
    "sort_of_clevr.h5": ["sort-of-clevr"],
    "lanes.h5": ["lanes", "--n", "5000"],
}
ARCHS = {"not_so_clevr_quadrant.h5": "coordconv_classification", "not_so_clevr_uniform.h5": "coordconv_classification",
         "sort_of_clevr.h5": "clevr_gan", "lanes.h5": "fcn_vgg9"}
ENV = {"MALLOC_MMAP_THRESHOLD_": "268435456", "MALLOC_TRIM_THRESHOLD_": "1073741824"}  # as `coorddata train` sets


# -- measurements (run in a child interpreter with the code under test first on sys.path) --------------

def measure_open(path: str, repeats: int) -> dict[str, float]:
    import time

    import h5py

    from coordconv_data.store import summarize

    def bare() -> None:
        with h5py.File(path, "r") as f:
            f.visititems(lambda name, obj: (obj.shape, obj.dtype) if isinstance(obj, h5py.Dataset) else None)

    t = time.perf_counter()
    summarize(path)
    cold = time.perf_counter() - t
    warm, plain = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        summarize(path)
        warm.append(time.perf_counter() - t)
        t = time.perf_counter()
        bare()
        plain.append(time.perf_counter() - t)
    return {"cold": cold, "warm": statistics.median(warm), "bare": statistics.median(plain)}


class _Stop(Exception):
    pass


def measure_start(path: str, arch: str, steps: int, out: str) -> dict[str, float]:
    import time

    import torch

    from coordconv_data.train import TASKS, TrainConfig, train
    try:  # a version before RunData (87bbd01 and older) validated inside the datasets: no separate figure
        from coordconv_data.train import data as run_data
    except ImportError:
        run_data = None

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    marks: dict[str, float] = {}
    times: list[float] = []
    opened: list[float] = []
    if run_data is not None:
        real_open = run_data.RunData.open.__func__

        def timed_open(cls, *a, **k):
            t = time.perf_counter()
            try:
                return real_open(cls, *a, **k)
            finally:
                opened.append(time.perf_counter() - t)

        run_data.RunData.open = classmethod(timed_open)
    for cls in set(TASKS.values()):
        real = cls.train_step

        def step(self, *a, _real=real, **k):
            now = time.perf_counter()
            marks.setdefault("first", now)
            if times or "last" in marks:
                times.append(now - marks["last"])
            marks["last"] = now
            if len(times) >= steps:
                raise _Stop()
            return _real(self, *a, **k)

        cls.train_step = step

    def progress(total: int, label: str):
        marks["total"] = total

        class Bar:
            def __enter__(self):
                return lambda k: None

            def __exit__(self, *exc):
                return False

        return Bar()

    t0 = time.perf_counter()
    try:
        train(TrainConfig(arch=arch, data=path, epochs=1, out=out, device="cpu"), progress=progress)
    except _Stop:
        pass
    step_s = statistics.median(times)
    return {"start": marks["first"] - t0, "open": sum(opened) if run_data is not None else float("nan"), "step": step_s, "epoch": step_s * marks["total"],
            "steps": marks["total"]}


# -- the table -------------------------------------------------------------------------------------------

def child(code: Path, what: str, *args: str) -> dict[str, float]:
    env = {**os.environ, **ENV, "PYTHONPATH": str(code)}
    out = subprocess.run([sys.executable, __file__, "--child", what, *args], env=env, capture_output=True, text=True,
                         cwd=tempfile.gettempdir())
    if out.returncode:
        raise SystemExit(f"{what} {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        what, args = sys.argv[2], sys.argv[3:]
        result = measure_open(args[0], int(args[1])) if what == "open" else measure_start(args[0], args[1], int(args[2]),
                                                                                       args[3])
        print(json.dumps(result))
        return
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--keep", type=Path, default=None, help="folder for the files (reused when present)")
    ap.add_argument("--code", type=Path, default=Path(__file__).resolve().parents[1], help="checkout to time")
    ap.add_argument("--steps", type=int, default=20, help="training steps timed for the epoch estimate")
    ap.add_argument("--no-train", action="store_true", help="time opening only")
    args = ap.parse_args()

    print(f"python {sys.version.split()[0]}, code {args.code}, {load_note()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for name, cmd in FILES.items():
            if not (folder / name).exists():
                subprocess.run(coorddata() + cmd + ["-q"], cwd=folder, check=True)
        print(f"{'file':<28} {'size MiB':>9} {'summarize cold s':>17} {'warm s':>8} {'bare h5py s':>12}")
        for name in FILES:
            p = folder / name
            r = child(args.code, "open", str(p), str(args.repeats))
            print(f"{name:<28} {p.stat().st_size / 2**20:9.1f} {r['cold']:17.4f} {r['warm']:8.4f} {r['bare']:12.4f}")
        if args.no_train:
            return
        print(f"\n{'file':<28} {'arch':<26} {'to 1st step s':>13} {'validation s':>12} {'step s':>7} "
              f"{'epoch s (est.)':>14} {'share':>6}")
        for name, arch in ARCHS.items():
            out = Path(tmp) / f"run-{arch}-{name}"
            r = child(args.code, "start", str(folder / name), arch, str(args.steps), str(out))
            print(f"{name:<28} {arch:<26} {r['start']:13.2f} {r['open']:12.3f} {r['step']:7.4f} "
                  f"{r['epoch']:14.1f} {r['open'] / r['epoch']:6.1%}")


if __name__ == "__main__":
    main()
