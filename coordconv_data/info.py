"""What a data file holds, for people (``coorddata info``) and scripts (``--json``).

The generic part (kind, parameters, splits, every array's shape, dtype, chunks and compression)
works for every kind the store knows. A kind may add statistics by registering a function in
:data:`STATISTICS`; it receives the open file and the validated summary.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable

import h5py
import numpy as np

from .store import FileSummary, iter_datasets, summarize

StatsFn = Callable[[h5py.File, FileSummary], dict[str, Any]]
STATISTICS: dict[str, StatsFn] = {}


def register_statistics(kind: str) -> Callable[[StatsFn], StatsFn]:
    def deco(fn: StatsFn) -> StatsFn:
        STATISTICS[kind] = fn
        return fn

    return deco


@register_statistics("not-so-clevr")
def _not_so_clevr_stats(f: h5py.File, summary: FileSummary) -> dict[str, Any]:
    out = {}
    for split, arrays in summary.splits.items():
        loc = f[arrays["locations"]][...]
        if len(loc) == 0:
            out[split] = {"samples": 0}
            continue
        out[split] = {
            "x_range": [int(loc[:, 0].min()), int(loc[:, 0].max())],
            "y_range": [int(loc[:, 1].min()), int(loc[:, 1].max())],
            "distinct_positions": int(len(np.unique(loc, axis=0))),
        }
    return out


@register_statistics("lanes")
def _lanes_stats(f: h5py.File, summary: FileSummary) -> dict[str, Any]:
    names = summary.attrs.get("class_names")
    names = json.loads(names) if isinstance(names, str) else list(names or [])
    out = {}
    for split, arrays in summary.splits.items():
        masks = f[arrays["masks"]]
        counts = np.zeros(max(len(names), 1), np.int64)
        step = max(1, (64 << 20) // max(1, int(np.prod(masks.shape[1:]))))  # bounded memory
        for start in range(0, masks.shape[0], step):
            counts += np.bincount(masks[start : start + step].ravel(), minlength=len(counts))[: len(counts)]
        total = int(counts.sum())
        classes = f[arrays["classes"]][...]
        out[split] = {
            "pixel_fraction": {name: round(int(c) / total, 4) if total else 0.0 for name, c in zip(names, counts)},
            "circles_per_class": {name: int((classes == i).sum()) for i, name in enumerate(names)},
        }
    return out


def describe(path: str | os.PathLike) -> dict[str, Any]:
    """A JSON-ready description of a validated data file (raises ``StoreError`` otherwise)."""
    summary = summarize(path)
    with h5py.File(summary.path, "r") as f:
        arrays = []
        for name, ds in iter_datasets(f):
            arrays.append(
                {
                    "name": name,
                    "shape": list(ds.shape),
                    "dtype": str(ds.dtype),
                    "chunks": list(ds.chunks) if ds.chunks else None,
                    "compression": ds.compression,
                    "compression_opts": ds.compression_opts,
                    "stored_bytes": int(ds.id.get_storage_size()),
                    "raw_bytes": int(ds.size * ds.dtype.itemsize),
                }
            )
        stats_fn = STATISTICS.get(summary.kind)
        stats = stats_fn(f, summary) if stats_fn else {}
    extra = {k: v for k, v in summary.attrs.items()
             if k not in {"dataset", "schema_version", "generator", "seed", "params", "layout"}}
    return {
        "path": str(summary.path),
        "dataset": summary.kind,
        "layout": summary.layout,
        "schema_version": summary.schema_version,
        "generator": summary.attrs.get("generator"),
        "seed": summary.seed,
        "params": summary.params,
        "attributes": extra,
        "splits": summary.lengths,
        "arrays": arrays,
        "statistics": stats,
        "file_bytes": os.path.getsize(summary.path),
    }


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def format_text(d: dict[str, Any]) -> str:
    """The human-readable form of :func:`describe`'s result."""
    lines = [
        f"{d['path']}: {d['dataset']} ({d['layout']} layout, schema {d['schema_version'] or 'original script'}), "
        f"{_size(d['file_bytes'])}",
    ]
    if d["generator"]:
        lines.append(f"  generator: {d['generator']}, seed {d['seed']}")
    if d["params"]:
        lines.append("  params: " + ", ".join(f"{k}={v}" for k, v in d["params"].items()))
    for k, v in d["attributes"].items():
        lines.append(f"  {k}: {v}")
    lines.append("  splits: " + ", ".join(f"{k} {v}" for k, v in d["splits"].items()))
    width = max((len(a["name"]) for a in d["arrays"]), default=0)
    lines.append("  arrays:")
    for a in d["arrays"]:
        shape = "x".join(map(str, a["shape"])) or "scalar"
        chunks = "x".join(map(str, a["chunks"])) if a["chunks"] else "contiguous"
        comp = a["compression"] or "none"
        if a["compression"] == "gzip":
            comp += f"-{a['compression_opts']}"
        lines.append(
            f"    {a['name']:<{width}}  {shape:<14} {a['dtype']:<8} chunks {chunks:<14} {comp:<7} "
            f"{_size(a['stored_bytes'])} of {_size(a['raw_bytes'])}"
        )
    for split, stats in d["statistics"].items():
        lines.append(f"  {split} statistics: " + ", ".join(f"{k} {v}" for k, v in stats.items()))
    return "\n".join(lines)


@register_statistics("sort-of-clevr")
def _sort_of_clevr_stats(f: h5py.File, summary: FileSummary) -> dict[str, Any]:
    """Per split: objects per colour and shape, the centres' range and mean, the closest pair of
    centres, and how many images have objects that touch or overlap (a later one covering part of
    an earlier one: the paper's 20 px rule allows it at the corners of squares)."""
    import json

    from .generate.sort_of_clevr import SHAPES, pair_overlaps

    palette = summary.attrs.get("palette")
    names = [p["name"] for p in json.loads(palette)] if isinstance(palette, str) else None
    radius = int(summary.attrs.get("object_size", 21)) // 2
    out: dict[str, Any] = {}
    for split, arrays in summary.splits.items():
        if "centers" not in arrays:  # a file of the original script: images only
            out[split] = {"per-object arrays": "none (images only)"}
            continue
        centers = f[arrays["centers"]][...]
        shapes = f[arrays["shapes"]][...]
        colors = f[arrays["colors"]][...]
        if len(centers) == 0:
            out[split] = {"samples": 0}
            continue
        color_counts = np.bincount(colors.ravel(), minlength=len(names or ()))
        shape_counts = np.bincount(shapes.ravel(), minlength=len(SHAPES))
        stats: dict[str, Any] = {
            "colors": {(names[i] if names and i < len(names) else str(i)): int(c) for i, c in enumerate(color_counts)},
            "shapes": {(SHAPES[i] if i < len(SHAPES) else str(i)): int(c) for i, c in enumerate(shape_counts)},
            "x_range": [int(centers[..., 0].min()), int(centers[..., 0].max())],
            "y_range": [int(centers[..., 1].min()), int(centers[..., 1].max())],
            "mean_center": [round(float(centers[..., 0].mean()), 2), round(float(centers[..., 1].mean()), 2)],
        }
        k = centers.shape[1]
        if k > 1:
            i, j = np.triu_indices(k, 1)
            d = np.sqrt(((centers[:, i] - centers[:, j]) ** 2).sum(-1))
            stats["min_center_distance"] = round(float(d.min()), 2)
            stats["images_with_overlap"] = int(pair_overlaps(centers, shapes, radius).sum())
        out[split] = stats
    return out
