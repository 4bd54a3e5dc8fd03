"""Benchmark: the geometry score on a batch of Sort-of-Clevr and of Not-so-Clevr images, as a GAN trainer calls it.

Run from the repository root:  PYTHONPATH=. python benchmarks/bench_geometry.py [--n 1000] [--repeats 5]

Times ``score_images`` and ``inspect_images`` on ``--n`` default (paper) images, on one core
(OpenCV limited to one thread; run under ``taskset -c 0`` to pin numpy too), medians over
``--repeats`` runs after one warm-up call (which builds the colour table once per palette, about
0.2 s). Also prints the score of the real images (the ceiling) and of mildly blurred ones, then
the same for ``--n`` grey Not-so-Clevr images (one 9x9 square, the simple GANs' data).
"""

from __future__ import annotations

import argparse
import statistics
import time

import cv2
import numpy as np

from coordconv_data import geometry as geo
from coordconv_data.generate import not_so_clevr as nsc
from coordconv_data.generate import sort_of_clevr as soc


def _time(fns, n: int, repeats: int) -> None:
    for name, fn in fns:
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        print(f"{name:<15} {n} images: median {statistics.median(times):.3f} s, min {min(times):.3f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    spec = soc.SortOfClevrSpec(n=args.n, test_fraction=0, seed=1)
    images = soc.generate(spec)["images"]
    reference = soc.generate(soc.SortOfClevrSpec(n=10000, test_fraction=0, seed=2))["centers"].reshape(-1, 2)
    scene = geo.SceneSpec.from_spec(spec)

    start = time.perf_counter()
    geo.score_images(images[:1], scene, reference)
    print(f"first call (colour table): {time.perf_counter() - start:.3f} s")
    _time([("score_images", lambda: geo.score_images(images, scene, reference)),
           ("inspect_images", lambda: geo.inspect_images(images, scene))], args.n, args.repeats)
    print("real:        ", geo.score_images(images, scene, reference).as_dict())
    blurred = np.stack([cv2.GaussianBlur(im, (0, 0), 0.7) for im in images])
    print("blurred 0.7: ", geo.score_images(blurred, scene, reference).as_dict())

    print("\nNot-so-Clevr (grey, one 9x9 square on black):")
    split = nsc.splits(nsc.NotSoClevrSpec())
    locations = np.concatenate([split["train"].locations, split["test"].locations])
    masks = np.concatenate([split["train"].masks, split["test"].masks])
    grey = (masks[np.arange(args.n) % len(masks)] * np.uint8(255))[..., None]
    square = geo.SceneSpec.not_so_clevr()
    start = time.perf_counter()
    geo.score_images(grey[:1], square, locations)
    print(f"first call (colour table): {time.perf_counter() - start:.3f} s")
    _time([("score_images", lambda: geo.score_images(grey, square, locations)),
           ("inspect_images", lambda: geo.inspect_images(grey, square))], args.n, args.repeats)
    print("real:        ", geo.score_images(grey, square, locations).as_dict())
    blurred = np.stack([cv2.GaussianBlur(im, (0, 0), 0.7) for im in grey])[..., None]
    print("blurred 0.7: ", geo.score_images(blurred, square, locations).as_dict())


if __name__ == "__main__":
    main()
