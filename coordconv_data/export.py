"""Exports of a data file for the tools researchers already use: Parquet for Hugging Face ``datasets``
(and the Hub), WebDataset tar shards, each with a dataset card and a ``SHA256SUMS`` manifest.

Layout of an export folder::

    README.md          the dataset card: the Hub's YAML header, what the data is, its columns, the
                       generation parameters, how to regenerate it byte for byte, how to load it, citations
    SHA256SUMS         sha256sum's format, every other file of the folder (``sha256sum -c SHA256SUMS`` works)
    train/part-00000.parquet ...        Parquet: one folder per split
    train/shard-000000.tar ...          WebDataset: one folder per split

Parquet rows hold each sample's fields (the kind's :meth:`~coordconv_data.kinds.Kind.columns`):
images as PNG bytes in the Hugging Face ``Image`` layout (a ``{bytes, path}`` struct), every other
array as a typed column (fixed-size lists of its dtype; class ids as ``ClassLabel`` with their names).
The Arrow schema carries the ``datasets`` features (its ``huggingface`` metadata), so
``datasets.load_dataset("parquet", data_dir=DIR)`` loads the right features; the card's header
carries them for the Hub. WebDataset shards hold ``NNNNNN.png`` (the image), ``NNNNNN.<name>.png``
(another image field: a Lanes mask, a Not-so-Clevr one-hot map) and ``NNNNNN.json`` (the other
fields) per sample, NNNNNN being the sample's index in its split.

Every field is exact: PNG is lossless and the numbers keep their dtype, so the arrays read back
equal the file's. The same file and version give the same bytes (tar members carry no time or owner;
the card no date). The folder is written as a hidden temporary folder beside the target and renamed
into place when complete; one left by a killed export is removed by the next export into that folder.
A folder is replaced only with ``force`` and only if it is an export (it has ``SHA256SUMS``).

Parquet needs pyarrow (the ``[export]`` extra); WebDataset needs nothing beyond the standard library.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import secrets
import shutil
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import CoordDataError, InvalidParameter

__all__ = ["FORMATS", "MANIFEST", "CARD", "ExportResult", "export_file", "verify_export", "features",
           "dataset_card", "hash_file"]

FORMATS = ("parquet", "webdataset")
MANIFEST = "SHA256SUMS"
CARD = "README.md"
PNG_LEVEL = 6  # zlib's default; level 1 is 1.5-4x faster and 5-40% larger (measured on Lanes and Sort-of-Clevr)
BLOCK = 500  # samples read, encoded and written at a time (a Parquet row group)
SHARD_BYTES = 256 * 2**20  # a split's next Parquet file or tar shard starts past this many bytes
SHARD_SAMPLES = 10000  # ... or, for a tar shard, past this many samples (loaders read shards in parallel)
LICENSE = "mit"  # the data is made by coordconv_data's generators (MIT): no third-party content
_TMP = ".export-"


def _store_error(message: str, **kw: Any) -> CoordDataError:
    from .writer import StoreError

    return StoreError(message, **kw)


@dataclass
class ExportResult:
    """What an export wrote (or a verified export holds): its folder, format, the samples per split, the
    files SHA256SUMS lists and their bytes in all."""

    out: Path
    format: str
    splits: dict[str, int]
    files: list[str] = field(default_factory=list)
    bytes: int = 0


# -- fields -----------------------------------------------------------------------------------------

def _dims(array: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in array.shape[1:])


def features(columns: Any, arrays: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The ``datasets`` features of ``columns`` (``arrays``: name -> an HDF5 dataset or array, for
    dtypes and shapes) as ``(Features.to_dict()-style JSON, the card's YAML feature list)``."""
    import numpy as np

    as_json: dict[str, Any] = {}
    as_yaml: list[dict[str, Any]] = []
    for c in columns:
        if c.image:
            as_json[c.name], entry = {"_type": "Image"}, {"name": c.name, "dtype": "image"}
            as_yaml.append(entry)
            continue
        a = arrays[c.array]
        if c.names:
            leaf_json: dict[str, Any] = {"_type": "ClassLabel", "names": list(c.names)}
            leaf_yaml: Any = {"class_label": {"names": {str(i): n for i, n in enumerate(c.names)}}}
        else:
            dtype = np.dtype(a.dtype).name
            leaf_json, leaf_yaml = {"_type": "Value", "dtype": dtype}, dtype
        node_json, node_yaml = leaf_json, leaf_yaml
        dims = _dims(a)
        for i, d in enumerate(reversed(dims)):
            node_json = {"_type": "Sequence", "feature": node_json, "length": d}
            if i < len(dims) - 1:
                node_yaml = {"sequence": node_yaml, "length": d}
        if not dims:
            entry = {"name": c.name, "dtype": node_yaml}
        else:
            entry = {"name": c.name, "sequence": node_yaml, "length": dims[0]}
        as_json[c.name] = node_json
        as_yaml.append(entry)
    return as_json, as_yaml


def _encode_png(image: Any, level: int = PNG_LEVEL) -> bytes:
    import cv2
    import numpy as np

    img = np.ascontiguousarray(image)
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    elif img.ndim == 3 and img.shape[2] == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, level])
    if not ok:
        raise _store_error("could not encode an image as PNG")
    return buf.tobytes()


def _encoder(workers: int) -> tuple[Callable[[Any], list[bytes]], Callable[[], None]]:
    """``encode(images) -> [png bytes]`` over ``workers`` threads (OpenCV encodes without the GIL), and
    its closer; the bytes do not depend on the number of threads."""
    if workers <= 1:
        return (lambda images: [_encode_png(im) for im in images]), (lambda: None)
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=workers)
    return (lambda images: list(pool.map(_encode_png, images, chunksize=max(1, len(images) // (4 * workers))))), \
        pool.shutdown


def _blocks(f: Any, summary: Any, split: str, columns: Any) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(start, {column name: the block's array})`` over a split, :data:`BLOCK` samples at a time."""
    keys = summary.splits[split]
    n = summary.lengths[split]
    for start in range(0, n, BLOCK):
        yield start, {c.name: f[keys[c.array]][start : start + BLOCK] for c in columns}


# -- Parquet ----------------------------------------------------------------------------------------

def _arrow_type(pa: Any, column: Any, array: Any) -> Any:
    import numpy as np

    if column.image:
        return pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    t = pa.int64() if column.names else pa.from_numpy_dtype(np.dtype(array.dtype))
    for d in reversed(_dims(array)):
        t = pa.list_(t, d)
    return t


def _arrow_column(pa: Any, column: Any, values: Any, pngs: list[bytes] | None, kind: Any) -> Any:
    import numpy as np

    if column.image:
        return pa.StructArray.from_arrays([pa.array(pngs, pa.binary()), pa.nulls(len(pngs), pa.string())],
                                          names=["bytes", "path"])
    flat = np.ascontiguousarray(values).reshape(-1)
    arr = pa.array(flat.astype(np.int64) if column.names else flat)
    for d in reversed(values.shape[1:]):
        arr = pa.FixedSizeListArray.from_arrays(arr, int(d))
    return arr.cast(kind)


def _write_parquet(f: Any, summary: Any, split: str, columns: Any, folder: Path, encode: Callable, advance: Callable,
                   feature_json: dict[str, Any], sizes: dict[str, int]) -> list[Path]:
    """Write a split's Parquet files into ``folder``; ``sizes[split]``: its size in memory as Arrow
    (what ``datasets`` calls the split's ``num_bytes``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    keys = summary.splits[split]
    types = [_arrow_type(pa, c, f[keys[c.array]]) for c in columns]
    schema = pa.schema([pa.field(c.name, t) for c, t in zip(columns, types)],
                       metadata={"huggingface": json.dumps({"info": {"features": feature_json}})})
    files: list[Path] = []
    writer, size = None, 0
    try:
        for start, block in _blocks(f, summary, split, columns):
            pngs = {c.name: encode(block[c.name]) for c in columns if c.image}
            table = pa.Table.from_arrays([_arrow_column(pa, c, block[c.name], pngs.get(c.name), t)
                                          for c, t in zip(columns, types)], schema=schema)
            if writer is None or size > SHARD_BYTES:
                if writer is not None:
                    writer.close()
                files.append(folder / f"part-{len(files):05d}.parquet")
                writer, size = pq.ParquetWriter(files[-1], schema, compression="zstd"), 0
            writer.write_table(table, row_group_size=len(table))
            size += table.nbytes
            sizes[split] = sizes.get(split, 0) + table.nbytes
            advance(len(table))
    finally:
        if writer is not None:
            writer.close()
    return files


# -- WebDataset -------------------------------------------------------------------------------------

def _tar_member(tar: tarfile.TarFile, name: str, data: bytes) -> int:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode, info.uid, info.gid, info.uname, info.gname = len(data), 0, 0o644, 0, 0, "", ""
    tar.addfile(info, io.BytesIO(data))
    return len(data) + 512


def _write_webdataset(f: Any, summary: Any, split: str, columns: Any, folder: Path, encode: Callable,
                      advance: Callable) -> list[Path]:
    n = summary.lengths[split]
    width = max(6, len(str(max(n - 1, 0))))
    images = [c for c in columns if c.image]
    others = [c for c in columns if not c.image]
    files: list[Path] = []
    tar, size, count = None, 0, 0
    try:
        for start, block in _blocks(f, summary, split, columns):
            pngs = {c.name: encode(block[c.name]) for c in images}
            for i in range(len(next(iter(block.values())))):
                if tar is None or size > SHARD_BYTES or count >= SHARD_SAMPLES:
                    if tar is not None:
                        tar.close()
                    files.append(folder / f"shard-{len(files):06d}.tar")
                    tar, size, count = tarfile.open(files[-1], "w", format=tarfile.USTAR_FORMAT), 0, 0
                key = f"{start + i:0{width}d}"
                for j, c in enumerate(images):  # the first image is NNNNNN.png, others NNNNNN.<name>.png
                    size += _tar_member(tar, f"{key}.png" if j == 0 else f"{key}.{c.name}.png", pngs[c.name][i])
                fields = {c.name: block[c.name][i].tolist() for c in others}
                size += _tar_member(tar, f"{key}.json", json.dumps(fields, separators=(",", ":")).encode())
                count += 1
            advance(len(next(iter(block.values()))))
    finally:
        if tar is not None:
            tar.close()
    return files


# -- the card ---------------------------------------------------------------------------------------

def _size_category(n: int) -> str:
    for limit, name in ((1000, "n<1K"), (10**4, "1K<n<10K"), (10**5, "10K<n<100K"), (10**6, "100K<n<1M"),
                        (10**7, "1M<n<10M")):
        if n < limit:
            return name
    return "10M<n<100M"


def _regenerate(summary: Any, kind: Any) -> str | None:
    """The command that writes the file again (None when its parameters name no spec of this version); a
    shard's writes that shard."""
    try:
        command = kind.command(kind.spec_from_params(summary.params), out=summary.path.name)
    except Exception:  # a file of an older version, or of the original script: no spec to rebuild
        return None
    if "shard_index" in summary.attrs:
        command += f" --shard {summary.attrs['shard_index']}/{summary.attrs['shard_count']}"
    return command


def dataset_card(summary: Any, fmt: str, splits: dict[str, list[str]], source_sha256: str,
                 feature_yaml: list[dict[str, Any]], arrow_bytes: dict[str, int], file_bytes: dict[str, int]) -> str:
    """The export's README.md: the Hub's YAML header and the card (``splits``: split -> its files;
    ``arrow_bytes``: each split's size as Arrow in memory, Parquet only; ``file_bytes``: its files' size)."""
    import yaml

    from . import __version__
    from .kinds import get_kind

    kind = get_kind(summary.kind)
    columns = kind.columns(summary.attrs)
    pattern = "*.parquet" if fmt == "parquet" else "*.tar"
    total = sum(summary.lengths[s] for s in splits)
    header: dict[str, Any] = {
        "license": LICENSE,
        "pretty_name": f"{kind.title} ({summary.path.name})",
        "tags": ["coordconv", "synthetic", "coordconv_data", kind.name],
        "size_categories": [_size_category(total)],
        "configs": [{"config_name": "default",
                     "data_files": [{"split": s, "path": f"{s}/{pattern}"} for s in splits]}],
    }
    if fmt == "parquet":
        header["dataset_info"] = {
            "features": feature_yaml,
            "splits": [{"name": s, "num_bytes": arrow_bytes[s], "num_examples": summary.lengths[s]} for s in splits],
            "download_size": sum(file_bytes.values()), "dataset_size": sum(arrow_bytes.values())}
    generator = summary.attrs.get("generator", f"coordconv_data {__version__}")
    lines = ["---", yaml.safe_dump(header, sort_keys=False, allow_unicode=True).rstrip(), "---", "",
             f"# {kind.title}: `{summary.path.name}` as {'Parquet' if fmt == 'parquet' else 'WebDataset shards'}", "",
             kind.about, "",
             f"Exported from `{summary.path.name}` (written by {generator}; seed {summary.seed}) by coordconv_data "
             f"{__version__}. Every field is exact: images are lossless PNG, numbers keep their dtype.", "",
             "## Splits", "", "| split | samples | files |", "|---|---|---|"]
    lines += [f"| {s} | {summary.lengths[s]:,} | {', '.join(f'`{p}`' for p in files)} ({_mib(file_bytes[s])}) |"
              for s, files in splits.items()]
    lines += ["", "## Fields", "", "| field | type | what it is |", "|---|---|---|"]
    with _h5(summary.path) as f:
        arrays = {c.array: f[summary.splits[next(iter(splits))][c.array]] for c in columns}
        for c in columns:
            if c.image:
                a = arrays[c.array]
                kind_text = f"PNG image, {'x'.join(map(str, _dims(a)[:2]))}, {'RGB' if _dims(a)[2:] == (3,) else 'grey'}"
            else:
                dims = _dims(arrays[c.array])
                kind_text = ("class ids" if c.names else str(arrays[c.array].dtype)) + (
                    f", shape {tuple(dims)}" if dims else "")
            names = f" ({', '.join(f'{i} {n}' for i, n in enumerate(c.names))})" if c.names else ""
            where = "`NNNNNN.json`" if not c.image else (
                "`NNNNNN.png`" if c is next(x for x in columns if x.image) else f"`NNNNNN.{c.name}.png`")
            lines.append(f"| `{c.name}` | {kind_text}{' in ' + where if fmt == 'webdataset' else ''} | "
                         f"{c.about}{names} |")
    params = kind.display_params(summary.params)
    lines += ["", "## Generation parameters", "", "| parameter | value |", "|---|---|"]
    lines += [f"| `{k}` | `{json.dumps(v)}` |" for k, v in params.items()]
    command = _regenerate(summary, kind)
    out_flag = f"{summary.path.stem}_{fmt}"
    lines += ["", "## Regenerate it, byte for byte", ""]
    if command is not None and "shards" in summary.attrs:  # a merge: virtual arrays over its shards
        lines += [f"`{summary.path.name}` is a merge of {len(json.loads(summary.attrs['shards']))} shards (virtual "
                  f"arrays over them). The generators are deterministic: with {generator} installed, this command "
                  f"writes the one-machine file, whose arrays are this file's, array for array, and the export "
                  "command writes this folder from it again:", "", "```console", f"$ {command}",
                  f"$ coorddata export {summary.path.name} --format {fmt} --out {out_flag}", "```"]
    elif command is not None:
        lines += [f"The generators are deterministic: with {generator} installed, this command writes "
                  f"`{summary.path.name}` again, byte for byte (SHA-256 `{source_sha256}`), and the export "
                  "command writes this folder from it again:", "", "```console", f"$ {command}",
                  f"$ sha256sum {summary.path.name}", f"{source_sha256}  {summary.path.name}",
                  f"$ coorddata export {summary.path.name} --format {fmt} --out {out_flag}", "```"]
    else:
        lines += [f"`{summary.path.name}` (SHA-256 `{source_sha256}`) records no generation parameters this version "
                  "can rebuild a command from."]
    lines += ["", "## Load it", ""]
    if fmt == "parquet":
        lines += ["```python", "from datasets import load_dataset", "",
                  f'data = load_dataset("parquet", data_dir="{out_flag}")   # or the folder itself, or its Hub repo',
                  f'sample = data["{next(iter(splits))}"][0]                  # a dict of the fields above; images as PIL',
                  "```", "", "With pyarrow or pandas: `pandas.read_parquet(\"" + out_flag + "/train\")` "
                  "(images are `{bytes, path}` structs holding PNG bytes)."]
    else:
        split = next(iter(splits))
        shards = splits[split]
        brace = (f"{split}/shard-{{000000..{len(shards) - 1:06d}}}.tar" if len(shards) > 1 else shards[0])
        lines += ["```python", "import io", "import numpy", "import PIL.Image", "import webdataset as wds", "",
                  "def png(key, data):   # every PNG as a uint8 array, grey ones (masks) kept grey: the file's pixels",
                  "    return numpy.asarray(PIL.Image.open(io.BytesIO(data))) if key.endswith(\"png\") else None", "",
                  f'data = wds.WebDataset("{out_flag}/{brace}", shardshuffle=False).decode(png)',
                  "for sample in data:   # sample[\"png\"]: the image, sample[\"json\"]: the other fields", "    ...",
                  "```"]
    lines += ["", "## Check it", "", "`SHA256SUMS` lists every other file of the folder:", "", "```console",
              f"$ coorddata export --verify {out_flag}      # or: cd {out_flag} && sha256sum -c SHA256SUMS", "```",
              "", "## Licence", "",
              "MIT, as coordconv_data, whose generators made every image (no third-party content).", "",
              "## Citation", "", "```bibtex", *"\n\n".join(kind.citations).splitlines(), "```", ""]
    return "\n".join(lines)


def _mib(n: int) -> str:
    from .writer import format_bytes

    return format_bytes(n)


def _h5(path: Path) -> Any:
    import h5py

    return h5py.File(path, "r")


# -- the folder ----------------------------------------------------------------------------------------

def hash_file(path: str | os.PathLike, chunk: int = 4 * 2**20) -> str:
    """The SHA-256 of a file, hex."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def _manifest(folder: Path) -> tuple[list[str], int]:
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    lines, total = [], 0
    for rel in files:
        lines.append(f"{hash_file(folder / rel)}  {rel}")
        total += (folder / rel).stat().st_size
    (folder / MANIFEST).write_text("\n".join(lines) + "\n")
    return files, total


def _remove_stale(parent: Path, name: str) -> None:
    """Remove temporary export folders of ``name`` whose export is gone (no process holds their lock)."""
    for p in parent.glob(f".{name}{_TMP}*.tmp"):
        if not p.is_dir():
            continue
        try:
            fd = os.open(p, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # a live export's
        finally:
            os.close(fd)
        shutil.rmtree(p, ignore_errors=True)


def _check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise InvalidParameter("out", f"{out} is a file; an export is a folder", hint="choose another {out}")
    if out.is_dir() and any(out.iterdir()):
        if not (out / MANIFEST).is_file():
            raise InvalidParameter("out", f"{out} is a folder that is not an export (no {MANIFEST}); it is never "
                                          "replaced", hint="choose another {out}")
        if not force:
            raise InvalidParameter("out", f"{out} already exists", hint="use {force} to replace it")


def export_file(source: str | os.PathLike, out: str | os.PathLike, *, fmt: str = "parquet", force: bool = False,
                workers: int = 1, progress: Callable[[int], Any] | None = None) -> ExportResult:
    """Export the native data file ``source`` into the folder ``out`` as ``fmt`` (parquet or webdataset).

    The file is validated first (:func:`~coordconv_data.store.summarize`); ``out`` must be new, empty,
    or (with ``force``) an earlier export. ``workers`` threads encode the PNGs (the bytes are the same
    for any number); ``progress(k)`` is called after every ``k`` samples written.
    """
    from .kinds import get_kind
    from .store import summarize
    from .writer import is_disk_full, prepare_folder, remove_empty_folders

    if fmt not in FORMATS:
        raise InvalidParameter("format", f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "parquet":
        import importlib.util

        if importlib.util.find_spec("pyarrow") is None:
            raise CoordDataError("the parquet format needs pyarrow, which is not installed", field="format",
                                 hint="pip install 'coordconv_data[export]', or choose {format} webdataset")
    out = Path(out)
    summary = summarize(source)
    if summary.layout != "native":
        raise _store_error(f"{summary.path} is in the {summary.layout} layout; an export reads native files",
                           hint="write one without {layout} original")
    kind = get_kind(summary.kind)
    columns = kind.columns(summary.attrs)
    splits = [s for s in summary.splits if summary.lengths[s] > 0]
    if not splits:
        raise _store_error(f"{summary.path} holds no samples")
    _check_out(out, force)
    created = prepare_folder(out.parent)
    _remove_stale(out.parent, out.name)
    tmp = out.parent / f".{out.name}{_TMP}{os.getpid()}-{secrets.token_hex(4)}.tmp"
    old: Path | None = None
    lock = None
    encode, close_pool = _encoder(workers)
    try:
        tmp.mkdir()
        lock = os.open(tmp, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        advance = progress or (lambda k: None)
        written: dict[str, list[str]] = {}
        sizes: dict[str, int] = {}
        with _h5(summary.path) as f:
            arrays = {c.array: f[summary.splits[splits[0]][c.array]] for c in columns}
            feature_json, feature_yaml = features(columns, arrays)
            for split in splits:
                (tmp / split).mkdir()
                if fmt == "parquet":
                    files = _write_parquet(f, summary, split, columns, tmp / split, encode, advance, feature_json,
                                           sizes)
                else:
                    files = _write_webdataset(f, summary, split, columns, tmp / split, encode, advance)
                written[split] = [p.relative_to(tmp).as_posix() for p in files]
        source_sha = hash_file(summary.path)
        stored = {s: sum((tmp / p).stat().st_size for p in written[s]) for s in splits}
        (tmp / CARD).write_text(dataset_card(summary, fmt, written, source_sha, feature_yaml, sizes, stored))
        files, total = _manifest(tmp)
        if out.exists():  # empty, or an earlier export replaced with force
            _check_out(out, force)
            old = out.parent / f".{out.name}{_TMP}old-{os.getpid()}-{secrets.token_hex(4)}.tmp"
            os.rename(out, old)
        os.rename(tmp, out)
    except BaseException as e:
        if old is not None and not out.exists():
            os.rename(old, out)  # put the earlier export back
            old = None
        shutil.rmtree(tmp, ignore_errors=True)
        remove_empty_folders(created)
        if isinstance(e, OSError) and is_disk_full(e):
            raise _store_error(f"{out}: disk full (no space left on device); nothing was left behind") from None
        raise
    finally:
        close_pool()
        if lock is not None:
            os.close(lock)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return ExportResult(out, fmt, {s: summary.lengths[s] for s in splits}, files, total)


def verify_export(folder: str | os.PathLike) -> ExportResult:
    """Check every file of an export folder against its ``SHA256SUMS``; raise a one-line
    :class:`~coordconv_data.store.StoreError` naming the first file that is missing, differs, or is
    not listed (hidden files aside)."""
    folder = Path(folder)
    manifest = folder / MANIFEST
    if not folder.is_dir():
        raise _store_error(f"{folder} is not a folder")
    if not manifest.is_file():
        raise _store_error(f"{folder} has no {MANIFEST} (not an export of coordconv_data?)")
    listed: dict[str, str] = {}
    for number, line in enumerate(manifest.read_text().splitlines(), 1):
        if not line.strip():
            continue
        digest, sep, name = line.partition("  ")
        name = name.lstrip("*")
        rel = Path(name)
        if not sep or len(digest) != 64 or rel.is_absolute() or ".." in rel.parts:
            raise _store_error(f"{manifest} is malformed at line {number}")
        listed[rel.as_posix()] = digest.lower()
    total = 0
    for name, digest in listed.items():
        p = folder / name
        if not p.is_file():
            raise _store_error(f"{p} is missing (listed in {MANIFEST})")
        if hash_file(p) != digest:
            raise _store_error(f"{p} is corrupt: its SHA-256 differs from the one in {MANIFEST}")
        total += p.stat().st_size
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if p.is_file() and rel.as_posix() not in listed and rel.as_posix() != MANIFEST and \
                not any(part.startswith(".") for part in rel.parts):
            raise _store_error(f"{p} is not listed in {MANIFEST}")
    return ExportResult(folder, "", {}, list(listed), total)
