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
                        "stored_bytes": int(ds.id.get_storage_size()),
                        "raw_bytes": int(ds.size * ds.dtype.itemsize),
                    }
                )
            stats = kind.statistics(f, summary)
    except OSError as e:
        raise StoreError(f"{summary.path} is corrupt: {str(e).splitlines()[0]}") from None
    params = {k: _cut(v) for k, v in kind.display_params(summary.params).items()}
    seed = summary.seed if "seed" in params or not summary.params else None
    extra = {k: _cut(v) for k, v in summary.attrs.items() if k not in _GENERIC_ATTRS}
    return {
        "path": str(summary.path),
        "dataset": summary.kind,
        "layout": summary.layout,
        "schema_version": summary.schema_version,
        "generator": summary.attrs.get("generator"),
        "seed": seed,
        "params": params,
        "attributes": extra,
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
            f"{format_bytes(a['stored_bytes'])} of {format_bytes(a['raw_bytes'])}"
        )
    for split, stats in d["statistics"].items():
        lines.append(f"  {split} statistics: " + ", ".join(f"{k} {v}" for k, v in stats.items()))
    return "\n".join(lines)
