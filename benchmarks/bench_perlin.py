"""Benchmark: coordconv_data's vectorised Perlin noise against per-pixel ``noise.pnoise2`` calls.

Run from the repository root:  PYTHONPATH=. python benchmarks/bench_perlin.py [--repeats 5]

One 128x128 field, pixel (i, j) = pnoise2((j + ox) / scale, (i + oy) / scale, octaves, 0.5, 2.0,
1024, 1024, 0), computed four ways:
  reference    a Python loop calling noise.pnoise2 per pixel (a lean list comprehension with
               positional arguments: the fastest plain loop)
  elementwise  coordconv_data's pnoise2 on the 128x128 coordinate arrays
  single       perlin_fields for one field
  batched      perlin_fields for --batch fields in one call (time per field)
and, for one octave, batched fields at whole-pixel offsets with a power-of-two scale (what Lanes
draws): assembled from cached cell patches (the patterns are computed before timing).
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
    rows = []
    for octaves in octave_list:
        ref = reference_field(ox, oy, args.scale, octaves)
        kw = dict(scale=args.scale, octaves=octaves)
        checks = {
            "elementwise": pnoise2(xs, ys, octaves),
            "single": perlin_fields(1, H, W, offsets=offsets[:1], **kw)[0],
            "batched": perlin_fields(4, H, W, offsets=offsets[:4], **kw)[0],
        }
        for name, got in checks.items():
            assert np.array_equal(got.view(np.uint32), ref.view(np.uint32)), (name, octaves)
        t = {"reference": [], "elementwise": [], "single": [], "batched": []}
        for _ in range(args.repeats):
            t["reference"].append(timed(lambda: reference_field(ox, oy, args.scale, octaves))[0])
            t["elementwise"].append(timed(lambda: pnoise2(xs, ys, octaves))[0])
            t["single"].append(timed(lambda: perlin_fields(1, H, W, offsets=offsets[:1], **kw))[0])
            dt, _ = timed(lambda: perlin_fields(args.batch, H, W, offsets=offsets, **kw))
            t["batched"].append(dt / args.batch)
        rows.append((octaves, {k: statistics.median(v) * 1e3 for k, v in t.items()}))

    head = (f"{'octaves':>7} | {'reference loop':>14} | {'elementwise':>18} | "
            f"{'single field':>18} | {'batched, per field':>18}")
    print(head)
    print("-" * len(head))
    for octaves, ms in rows:
        ref = ms["reference"]
        cells = [f"{ms[k]:8.3f} ms {ref / ms[k]:5.0f}x" for k in ("elementwise", "single", "batched")]
        print(f"{octaves:>7} | {ref:11.2f} ms | " + " | ".join(f"{c:>18}" for c in cells))
    if 1 in octave_list and float(args.scale).is_integer():
        whole = np.floor(offsets)
        ref = reference_field(whole[0, 0], whole[0, 1], args.scale, 1)
        got = perlin_fields(4, H, W, offsets=whole[:4], scale=args.scale)[0]
        assert np.array_equal(got.view(np.uint32), ref.view(np.uint32)), "whole-pixel offsets"
        perlin_fields(args.batch, H, W, offsets=whole, scale=args.scale)  # the cell patterns, once
        ref_t, fast_t = [], []
        for _ in range(args.repeats):
            ref_t.append(timed(lambda: reference_field(whole[0, 0], whole[0, 1], args.scale, 1))[0])
            fast_t.append(timed(lambda: perlin_fields(args.batch, H, W, offsets=whole, scale=args.scale))[0]
                          / args.batch)
        r, f = statistics.median(ref_t) * 1e3, statistics.median(fast_t) * 1e3
        print(f"whole-pixel offsets, 1 octave: reference {r:.2f} ms, batched {f:.3f} ms per field, {r / f:.0f}x")
    print("all results bit-identical to noise.pnoise2")


if __name__ == "__main__":
    main()
