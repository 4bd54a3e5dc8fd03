"""Compress HDF5 chunks in worker processes, so that ``--workers`` also parallelises compression.

h5py compresses in the writing process, one chunk at a time; for a big image array that is most of
the run. Here a block function encodes its own chunks (optional dtype conversion, HDF5's byte
shuffle, zlib: exactly the ``gzip`` filter pipeline HDF5 applies) and the parent stores the bytes
with ``write_direct_chunk``. Any HDF5 reader decompresses them as usual; a test reads them back.

Chunks lie on a fixed grid of ``rows`` samples from the start of the dataset. A block of samples
starting at ``offset + k * block_size`` (``block_size`` a multiple of ``rows``) begins ``offset % rows``
samples past a grid line, the same for every block of a stream, so the worker knows which of its
samples form whole chunks without knowing its position: it encodes those, and hands the loose
samples at its two ends back raw. The parent (:class:`ChunkAssembler`) joins loose samples of
neighbouring blocks into whole chunks and encodes them with the same code, so the file's bytes do
not depend on which process encoded what.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:  # workers unpickle codecs; they need not import h5py
    import h5py


CHUNK_BYTES = 256 * 1024  # the store's chunk target (64 KiB to 1 MiB)


def chunk_rows(block_size: int, sample_bytes: int) -> int:
    """Samples per chunk: the largest divisor of the block size within :data:`CHUNK_BYTES` (so
    that blocks start on chunk boundaries and workers encode whole chunks)."""
    best = 1
    for rows in range(1, block_size + 1):
        if block_size % rows == 0 and rows * sample_bytes <= CHUNK_BYTES:
            best = rows
    return best


@dataclass(frozen=True)
class ChunkCodec:
    """How one array is stored: chunk ``rows``, stored dtype, conversion, gzip level and shuffle.

    Stored values are ``raw`` cast to ``dtype``, or ``raw / divisor + offset`` computed in float64
    and then cast, when ``divisor`` is set. ``level=None`` stores chunks uncompressed.
    """

    rows: int
    sample_shape: tuple[int, ...]
    dtype: str
    level: int | None = 4
    shuffle: bool = False
    divisor: float | None = None
    offset: float = 0.0

    def __post_init__(self) -> None:
        if self.rows < 1:
            raise ValueError("chunk rows must be at least 1")

    @property
    def stored_dtype(self) -> np.dtype:
        return np.dtype(self.dtype).newbyteorder("<")

    def convert(self, raw: np.ndarray) -> np.ndarray:
        if self.divisor is None:
            return np.ascontiguousarray(raw, dtype=self.stored_dtype)
        if raw.dtype == np.uint8 and raw.size and self.stored_dtype.itemsize <= 4:
            # A 256-entry table of the same float64 expression, applied by OpenCV: equal values,
            # a third less time than converting every pixel through float64.
            import cv2

            table = (np.arange(256) / np.float64(self.divisor) + np.float64(self.offset)).astype(self.stored_dtype)
            flat = np.ascontiguousarray(raw).reshape(len(raw), -1)
            return cv2.LUT(flat, table.reshape(1, 256)).reshape(raw.shape)
        return (raw / np.float64(self.divisor) + np.float64(self.offset)).astype(self.stored_dtype)

    def encode(self, raw: np.ndarray) -> bytes:
        """One chunk's stored bytes from up to ``rows`` raw samples (a short last chunk is padded)."""
        if len(raw) > self.rows:
            raise ValueError(f"{len(raw)} samples do not fit a chunk of {self.rows}")
        if len(raw) < self.rows:
            pad = np.zeros((self.rows - len(raw),) + tuple(self.sample_shape), dtype=raw.dtype)
            raw = np.concatenate([raw, pad])
        data = self.convert(raw)
        buf = data.tobytes()
        size = data.dtype.itemsize
        if self.shuffle and self.level is not None and size > 1:
            # HDF5's shuffle filter: all first bytes of the elements, then all second bytes, ...
            buf = np.frombuffer(buf, dtype=np.uint8).reshape(-1, size).T.tobytes()
        if self.level is not None:
            buf = zlib.compress(buf, self.level)
        return buf

    def create(self, writer: Any, name: str, n: int, attrs: dict | None = None) -> "h5py.Dataset":
        """Create the dataset ``name`` of ``n`` samples with this codec's chunks and filters."""
        return writer.create(
            name, (n,) + tuple(self.sample_shape), self.stored_dtype,
            compression=None if self.level is None else "gzip", level=self.level or 0,
            shuffle=self.shuffle and self.level is not None, chunks=(self.rows,) + tuple(self.sample_shape) if n > 0 else None,
            attrs=attrs,
        )

    def split_block(self, raw: np.ndarray, misalign: int) -> dict[str, np.ndarray]:
        """Encode the whole chunks of a block that starts ``misalign`` samples past a grid line.

        Returns ``head`` and ``tail`` (raw loose samples before the first and after the last whole
        chunk), ``chunks`` (the encoded chunks, concatenated) and ``chunk_sizes``.
        """
        lead = (self.rows - misalign % self.rows) % self.rows
        lead = min(lead, len(raw))
        whole = (len(raw) - lead) // self.rows
        stop = lead + whole * self.rows
        encoded = [self.encode(raw[s : s + self.rows]) for s in range(lead, stop, self.rows)]
        return {
            "head": raw[:lead],
            "tail": raw[stop:],
            "chunks": np.frombuffer(b"".join(encoded), dtype=np.uint8),
            "chunk_sizes": np.array([len(e) for e in encoded], dtype=np.int64),
        }


class ChunkAssembler:
    """Writes one dataset from the parts :meth:`ChunkCodec.split_block` returns, in sample order."""

    def __init__(self, dataset: "h5py.Dataset", codec: ChunkCodec) -> None:
        self.ds = dataset
        self.codec = codec
        self.n = dataset.shape[0]
        self.carry: list[np.ndarray] = []
        self.carry_start = 0  # index of the first carried sample
        self.carry_len = 0
        self.written = 0  # samples stored so far (carried ones not counted)

    def _write(self, chunk_index: int, data: bytes) -> None:
        origin = (chunk_index * self.codec.rows,) + (0,) * len(self.codec.sample_shape)
        self.ds.id.write_direct_chunk(origin, data, filter_mask=0)

    def _loose(self, start: int, raw: np.ndarray) -> None:
        if len(raw) == 0:
            return
        if self.carry_len == 0:
            self.carry_start = start
        if start != self.carry_start + self.carry_len:
            raise AssertionError("loose samples out of order")
        self.carry.append(raw)
        self.carry_len += len(raw)
        rows = self.codec.rows
        end = self.carry_start + self.carry_len
        if end % rows == 0 or end == self.n:
            if self.carry_start % rows != 0:
                raise AssertionError("carried samples do not start on a chunk boundary")
            joined = np.concatenate(self.carry)
            for s in range(0, len(joined), rows):
                self._write((self.carry_start + s) // rows, self.codec.encode(joined[s : s + rows]))
            self.written += len(joined)
            self.carry, self.carry_len = [], 0

    def add(self, start: int, parts: dict[str, np.ndarray]) -> None:
        """Store a block whose first sample has index ``start`` in the dataset."""
        head, tail = parts["head"], parts["tail"]
        self._loose(start, head)
        first = start + len(head)
        if len(parts["chunk_sizes"]):
            if self.carry_len:
                raise AssertionError("whole chunks arrived while samples before them are still loose")
            data = parts["chunks"].tobytes()
            pos = 0
            for i, size in enumerate(parts["chunk_sizes"].tolist()):
                self._write(first // self.codec.rows + i, data[pos : pos + size])
                pos += size
            self.written += len(parts["chunk_sizes"]) * self.codec.rows
        self._loose(first + len(parts["chunk_sizes"]) * self.codec.rows, tail)

    def close(self) -> None:
        if self.carry_len or self.written != self.n:
            raise AssertionError(f"dataset {self.ds.name} got {self.written} of {self.n} samples")
