"""coorddata export: time and size of each format against the HDF5 file, and how fast the export reads back.

    python benchmarks/bench_export.py [--work bench_export] [--repeats 2] [--batches 200]

Files (made in --work if missing, reused otherwise, so the script can be rerun): the paper's
`sort_of_clevr.h5` (50,000 64x64 images) and `lanes.h5` at `--n 5000` (7,500 128x128 images).
For each file and format: wall time, CPU time and peak memory of `coorddata export FILE --format F
--force` (a fresh process each time, PNG encoding on every core), and the export's size on disk
against the HDF5 file's. Then samples per second reading Sort-of-Clevr's train split:

* through Hugging Face `datasets` from the Parquet export: `load_dataset("parquet", data_dir=...)`
  (its one-off conversion into datasets' Arrow cache timed apart), then batches of 64 decoded to
  uint8 arrays, in order (`Dataset.iter`) and shuffled (a torch DataLoader over `with_format("torch")`);
* through `webdataset` from the tar shards (in order, PNGs decoded to arrays);
* through the project's own `SortOfClevr` dataset (task `gan`: float CHW tensors) in a DataLoader,
  shuffled, from the HDF5 file.

Loaders run in the main process (num_workers=0), timed after the first batch. The machine's load is
printed with the figures: on a shared machine they move with it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import coorddata, load_note, timed  # noqa: E402

BATCH = 64
FILES = {"sort_of_clevr.h5": ["sort-of-clevr"], "lanes.h5": ["lanes", "--n", "5000"]}


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


def rate(batches, n_batches: int) -> float:
    it = iter(batches)
    next(it)  # the first batch (opening, caches) not counted
    t, n = time.perf_counter(), 0
    for _ in range(n_batches):
        try:
            n += next(it)
        except StopIteration:
            break
    return n / (time.perf_counter() - t)


def read_rates(work: Path, n_batches: int) -> None:
    import numpy as np
    import torch
    from torch.utils.data import DataLoader

    os.environ["HF_DATASETS_CACHE"] = str(work / "hf_cache")
    os.environ["HF_HUB_OFFLINE"] = "1"
    shutil.rmtree(work / "hf_cache", ignore_errors=True)
    import datasets

    datasets.disable_progress_bars()
    t = time.perf_counter()
    train = datasets.load_dataset("parquet", data_dir=str(work / "sort_of_clevr_parquet"), split="train")
    print(f"  datasets: load_dataset(\"parquet\") of the export (conversion into its Arrow cache): "
          f"{time.perf_counter() - t:.1f} s for {train.num_rows} train rows")

    def hf_in_order():
        for batch in train.with_format("numpy").iter(batch_size=BATCH):
            yield len(batch["image"])

    def hf_shuffled():
        loader = DataLoader(train.with_format("torch"), batch_size=BATCH, shuffle=True,
                            generator=torch.Generator().manual_seed(0))
        for batch in loader:
            yield len(batch["image"])

    def wds_in_order():
        import io

        import webdataset as wds
        from PIL import Image

        def png(key, data):
            return np.asarray(Image.open(io.BytesIO(data))) if key.endswith("png") else None

        shards = sorted(str(p) for p in (work / "sort_of_clevr_webdataset" / "train").glob("*.tar"))
        data = wds.WebDataset(shards, shardshuffle=False).decode(png).to_tuple("png", "json").batched(BATCH)
        for images, _ in data:
            yield len(images)

    def ours_shuffled():
        from coordconv_data import SortOfClevr

        ds = SortOfClevr(str(work / "sort_of_clevr.h5"), split="train", task="gan", generate=False)
        for x, _ in DataLoader(ds, batch_size=BATCH, shuffle=True, generator=torch.Generator().manual_seed(0)):
            yield len(x)

    cases = [("datasets, Parquet export, in order (Dataset.iter, numpy)", hf_in_order),
             ("datasets, Parquet export, shuffled (DataLoader, torch format)", hf_shuffled),
             ("webdataset, tar shards, in order (PNG -> numpy)", wds_in_order),
             ("SortOfClevr (this project), HDF5, shuffled (DataLoader)", ours_shuffled)]
    for name, make in cases:
        rates = [rate(make(), n_batches) for _ in range(2)]
        print(f"  {name:<64} {statistics.median(rates):9.0f} samples/s  (runs: {', '.join(f'{r:.0f}' for r in rates)})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", type=Path, default=Path("bench_export"))
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--batches", type=int, default=200, help="batches of 64 timed per reader")
    args = ap.parse_args()
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    exe = coorddata()
    print(f"bench_export: {load_note()}")
    for name, command in FILES.items():
        if not (work / name).is_file():
            subprocess.run([*exe, *command, "--out", name, "-q"], cwd=work, check=True)
    print(f"{'file':<18} {'format':<11} {'wall s (median, min, max)':>27} {'CPU s':>6} {'peak MB':>8} "
          f"{'export size':>12} {'HDF5 size':>10} {'ratio':>6}")
    for name in FILES:
        h5 = (work / name).stat().st_size
        for fmt in ("parquet", "webdataset"):
            out = work / f"{Path(name).stem}_{fmt}"
            runs = [timed([*exe, "export", name, "--format", fmt, "--out", out.name, "--force", "-q"], str(work))
                    for _ in range(args.repeats)]
            walls = [w for w, _, _ in runs]
            size = folder_bytes(out)
            print(f"{name:<18} {fmt:<11} {statistics.median(walls):9.2f} {min(walls):7.2f} {max(walls):7.2f}"
                  f"{'':>3} {statistics.median([c for _, _, c in runs]):6.1f} {max(r for _, r, _ in runs):8.0f} "
                  f"{mib(size):>12} {mib(h5):>10} {size / h5:6.2f}")
    print(f"reading Sort-of-Clevr's train split, batches of {BATCH}, {args.batches} batches timed, median of 2 "
          f"({load_note()}):")
    read_rates(work, args.batches)


if __name__ == "__main__":
    main()
