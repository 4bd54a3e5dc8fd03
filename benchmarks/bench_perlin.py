"""Benchmark: coordconv_data's vectorised Perlin noise against per-pixel ``noise.pnoise2`` calls.

Run from the repository root:  PYTHONPATH=. python benchmarks/bench_perlin.py [--repeats 5]

One 128x128 field, pixel (i, j) = pnoise2((j + ox) / scale, (i + oy) / scale, octaves, 0.5, 2.0,
1024, 1024, 0), computed four ways:
  reference    a Python loop calling noise.pnoise2 per pixel (a lean list comprehension with
               positional arguments: the fastest plain loop)
  elementwise  coordconv_data's pnoise2 on the 128x128 coordinate arrays
  single       perlin_fields for one field
  batched      perlin_fields for --batch fields in one call (time per field)
  whole px     perlin_fields for --batch fields at whole-pixel offsets (what Lanes draws), time per
               field against the reference loop at the same offsets: with a power-of-two scale
               and lacunarity 2 every octave is assembled from cached cell patches (the patterns
               are computed before timing); otherwise this is the batched path again.
Times are medians over --repeats interleaved rounds (the machine may be shared); every result is
checked bit-identical to the reference first.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import platform
import statistics
import time

import numpy as np

from coordconv_data.generate import perlin
from coordconv_data.generate.perlin import perlin_fields, pnoise2

try:
    import noise
except ImportError as exc:  # pragma: no cover
    raise SystemExit(f"the reference package 'noise' is needed: {exc}")

H = W = 128


def reference_field(ox, oy, scale, octaves):
    f = noise.pnoise2
    return np.array(
        [[f((j + ox) / scale, (i + oy) / scale, octaves, 0.5, 2.0, 1024, 1024, 0) for j in range(W)]
         for i in range(H)],
        dtype=np.float32,
    )


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--batch", type=int, default=3 * 256, help="fields per batched call")
    ap.add_argument("--scale", type=float, default=32.0)
    ap.add_argument("--octaves", default="1,4,6")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    octave_list = [int(o) for o in args.octaves.split(",")]
    offsets = rng.uniform(0, 4096, (args.batch, 2))
    ox, oy = offsets[0]
    jj, ii = np.meshgrid(np.arange(W), np.arange(H))
    xs, ys = (jj + ox) / args.scale, (ii + oy) / args.scale

    print(f"numpy {np.__version__}, noise {importlib.metadata.version('noise')}, "
          f"{platform.machine()}, scale {args.scale:g}, {H}x{W}, "
          f"median of {args.repeats} rounds, batch {args.batch} fields")
    whole = np.floor(offsets)
    wx, wy = whole[0]
    rows = []
    for octaves in octave_list:
        ref = reference_field(ox, oy, args.scale, octaves)
        ref_whole = reference_field(wx, wy, args.scale, octaves)
        kw = dict(scale=args.scale, octaves=octaves)
        checks = {
            "elementwise": (pnoise2(xs, ys, octaves), ref),
            "single": (perlin_fields(1, H, W, offsets=offsets[:1], **kw)[0], ref),
            "batched": (perlin_fields(4, H, W, offsets=offsets[:4], **kw)[0], ref),
            "whole px": (perlin_fields(4, H, W, offsets=whole[:4], **kw)[0], ref_whole),
        }
        for name, (got, want) in checks.items():
            assert np.array_equal(got.view(np.uint32), want.view(np.uint32)), (name, octaves)
        perlin_fields(args.batch, H, W, offsets=whole, **kw)  # the cell patterns, once
        schedule = perlin._octave_schedule(octaves, 0.5, 2.0, 1024, 1024)
        patched = perlin._patch_plan(schedule, args.scale, whole, H, W) is not None
        t = {"reference": [], "elementwise": [], "single": [], "batched": [], "reference whole": [], "whole px": []}
        for _ in range(args.repeats):
            t["reference"].append(timed(lambda: reference_field(ox, oy, args.scale, octaves))[0])
            t["elementwise"].append(timed(lambda: pnoise2(xs, ys, octaves))[0])
            t["single"].append(timed(lambda: perlin_fields(1, H, W, offsets=offsets[:1], **kw))[0])
            dt, _ = timed(lambda: perlin_fields(args.batch, H, W, offsets=offsets, **kw))
            t["batched"].append(dt / args.batch)
            t["reference whole"].append(timed(lambda: reference_field(wx, wy, args.scale, octaves))[0])
            dt, _ = timed(lambda: perlin_fields(args.batch, H, W, offsets=whole, **kw))
            t["whole px"].append(dt / args.batch)
        rows.append((octaves, patched, {k: statistics.median(v) * 1e3 for k, v in t.items()}))

    head = (f"{'octaves':>7} | {'reference loop':>14} | {'elementwise':>18} | "
            f"{'single field':>18} | {'batched, per field':>18} || {'whole px: loop':>14} | "
            f"{'batched, per field':>18}")
    print(head)
    print("-" * len(head))
    for octaves, patched, ms in rows:
        ref = ms["reference"]
        cells = [f"{ms[k]:8.3f} ms {ref / ms[k]:5.0f}x" for k in ("elementwise", "single", "batched")]
        ref_w = ms["reference whole"]
        whole_cell = f"{ms['whole px']:8.3f} ms {ref_w / ms['whole px']:5.0f}x"
        print(f"{octaves:>7} | {ref:11.2f} ms | " + " | ".join(f"{c:>18}" for c in cells)
              + f" || {ref_w:11.2f} ms | {whole_cell:>18}" + ("" if patched else "  (general path)"))
    print("all results bit-identical to noise.pnoise2")


if __name__ == "__main__":
    main()
