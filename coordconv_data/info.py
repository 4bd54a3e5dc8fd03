"""What a data file holds, for people (``coorddata info``) and scripts (``--json``).

The generic part (kind, parameters, splits, every array's shape, dtype, chunks and compression)
works for every kind; each kind (:mod:`coordconv_data.kinds`) adds its statistics and says which
generation parameters apply to the file. Sizes are in binary units (KiB, MiB), as everywhere. A
parameter or attribute too long to read (a file can hold megabytes in one) is shown cut, with its size.
"""

from __future__ import annotations

import json
import os
from typing import Any

import h5py

from .kinds import get_kind
from .store import StoreError, iter_datasets, summarize
from .writer import format_bytes

_GENERIC_ATTRS = {"dataset", "schema_version", "generator", "seed", "params", "layout"}
_SHARD_ATTRS = {"shard_index", "shard_count", "shard_ranges", "shard_digest"}  # shown as "shard"
_MERGED_ATTRS = {"shards", "virtual_sources"}  # shown as "merged"
LONGEST_VALUE = 500  # characters of a value's JSON text shown; longer ones are cut


def _cut(value: Any) -> Any:
    """``value`` itself when its JSON text is short, else the start of that text and its size."""
    text = json.dumps(value, default=str)
    if len(text) <= LONGEST_VALUE:
        return value
    return f"{text[: LONGEST_VALUE // 2]}... ({format_bytes(len(text.encode()))} in all, cut)"


def describe(path: str | os.PathLike) -> dict[str, Any]:
    """A JSON-ready description of a validated data file (raises ``StoreError`` otherwise)."""
    summary = summarize(path)
    kind = get_kind(summary.kind)
    try:
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
                        "virtual": bool(ds.is_virtual),
                        "stored_bytes": int(ds.id.get_storage_size()),
                        "raw_bytes": int(ds.size * ds.dtype.itemsize),
                    }
                )
            stats = kind.statistics(f, summary)
    except OSError as e:
        raise StoreError(f"{summary.path} is corrupt: {str(e).splitlines()[0]}") from None
    params = {k: _cut(v) for k, v in kind.display_params(summary.params).items()}
    seed = summary.seed if "seed" in params or not summary.params else None
    extra = {k: _cut(v) for k, v in summary.attrs.items() if k not in _GENERIC_ATTRS | _SHARD_ATTRS | _MERGED_ATTRS}
    out_of = {}
    if "shard_index" in summary.attrs:
        try:
            out_of = kind.split_ranges(summary.params, None)
        except Exception:  # a file of an older spec: the shard's own ranges are still shown
            out_of = {}
    shard = None if "shard_index" not in summary.attrs else {
        "index": summary.attrs["shard_index"], "count": summary.attrs["shard_count"],
        "ranges": json.loads(summary.attrs["shard_ranges"]),
        "of": {split: b for split, (_, b) in out_of.items()}, "digest": summary.attrs.get("shard_digest")}
    merged = None
    if "shards" in summary.attrs:
        record = json.loads(summary.attrs["shards"])
        folders = sorted({os.path.dirname(e["file"]) or "." for e in record})
        merged = {"shards": len(record), "folders": folders, "files": [e["file"] for e in record]}
    return {
        "path": str(summary.path),
        "dataset": summary.kind,
        "layout": summary.layout,
        "schema_version": summary.schema_version,
        "generator": summary.attrs.get("generator"),
        "seed": seed,
        "params": params,
        "attributes": extra,
        "shard": shard,
        "merged": None if merged is None else {**merged, "files": _cut(merged["files"])},
        "splits": summary.lengths,
        "arrays": arrays,
        "statistics": stats,
        "file_bytes": os.path.getsize(summary.path),
    }


def format_text(d: dict[str, Any]) -> str:
    """The human-readable form of :func:`describe`'s result."""
    lines = [
        f"{d['path']}: {d['dataset']} ({d['layout']} layout, schema {d['schema_version'] or 'original script'}), "
        f"{format_bytes(d['file_bytes'])}",
    ]
    if d["generator"]:
        lines.append(f"  generator: {d['generator']}" + (f", seed {d['seed']}" if d["seed"] is not None else ""))
    if d["params"]:
        lines.append("  params: " + ", ".join(f"{k}={v}" for k, v in d["params"].items()))
    for k, v in d["attributes"].items():
        lines.append(f"  {k}: {v}")
    shard = d.get("shard")
    if shard:
        held = ", ".join(f"{split} samples {a}..{b - 1}" + (f" of {shard['of'][split]}" if split in shard["of"] else "")
                         if b > a else f"no {split} samples" for split, (a, b) in shard["ranges"].items())
        lines.append(f"  shard: {shard['index']} of {shard['count']} (0..{shard['count'] - 1}): {held}; "
                     f"content {shard['digest']}")
    merged = d.get("merged")
    if merged:
        lines.append(f"  merged: virtual arrays over {merged['shards']} shards in {', '.join(f + '/' for f in merged['folders'])} "
                     "(each checked when the file is opened)")
    lines.append("  splits: " + ", ".join(f"{k} {v}" for k, v in d["splits"].items()))
    width = max((len(a["name"]) for a in d["arrays"]), default=0)
    lines.append("  arrays:")
    for a in d["arrays"]:
        shape = "x".join(map(str, a["shape"])) or "scalar"
        chunks = "x".join(map(str, a["chunks"])) if a["chunks"] else "virtual" if a.get("virtual") else "contiguous"
        comp = a["compression"] or "none"
        if a["compression"] == "gzip":
            comp += f"-{a['compression_opts']}"
        lines.append(
            f"    {a['name']:<{width}}  {shape:<14} {a['dtype']:<8} chunks {chunks:<14} {comp:<7} "
            f"{format_bytes(a['stored_bytes'])} of {format_bytes(a['raw_bytes'])}"
        )
    for split, stats in d["statistics"].items():
        lines.append(f"  {split} statistics: " + ", ".join(f"{k} {v}" for k, v in stats.items()))
    return "\n".join(lines)
