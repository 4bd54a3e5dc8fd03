"""Data drawn on the fly: a dataset named by its spec instead of a file, sample ``i`` made when asked for.

A kind whose size can grow (:attr:`~coordconv_data.kinds.Kind.growable`) draws every block of samples
from its own seeded stream (:mod:`coordconv_data.generate.blocks`), so sample ``i`` of a split can be
made without the samples before it: its block's random draws (the generator's ``sample_params``,
cheap: the circles, objects and noise offsets of a block), then its images from those draws alone
(the generator's ``rebuild``, the costly part, for the samples asked for only). The result equals,
bit for bit, sample ``i`` of the file the same spec writes. Each process keeps the draws of the last
:data:`CACHED_BLOCKS` blocks it used (a few KiB each), so neighbouring samples, and the samples of a
shuffled epoch that fall in blocks met before, cost no draw again; images are never cached (a
shuffled batch touches as many blocks as it has samples, and drawing only the images asked for keeps
every sample's cost the same however the batches fall).

A spec is written as text where a file's path would go (``coorddata train --data``): the kind's name, a
colon, and the options of the kind's command (``lanes:n=10000000,seed=0`` names the samples of the file
``coorddata lanes --n 10000000 --seed 0`` writes; options left out take that command's defaults).

:class:`SpecSummary` describes such a dataset as :class:`~coordconv_data.store.FileSummary` describes a
validated file (kind, parameters, attributes, splits and lengths), so the datasets, the trainer and the
geometry score take either; its ``path`` is the spec's text, for messages.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .errors import InvalidParameter
from .generate.blocks import block_rng
from .kinds import KINDS, Kind, get_kind
from .store import FileSummary
from .writer import SCHEMA_VERSION

__all__ = ["SpecSummary", "SpecSampler", "is_spec_text", "parse_spec_text", "spec_summary", "CACHED_BLOCKS"]

CACHED_BLOCKS = 64  # blocks whose random draws a process keeps (Lanes: 6.5 KiB a block of 64)
_SPEC_TEXT = re.compile(r"^([a-z][a-z0-9-]*):(.*)$", re.DOTALL)


def is_spec_text(text: Any) -> bool:
    """Whether ``text`` names a spec (``<kind>:<options>``, a known kind) rather than a file."""
    if not isinstance(text, str):
        return False
    m = _SPEC_TEXT.match(text)
    return m is not None and m.group(1) in KINDS


def parse_spec_text(text: str) -> tuple[Kind, Any]:
    """The kind and the generator spec of a spec's text (``lanes:n=1000,seed=3``). Options are the kind's
    command options (``test_n`` or ``test-n``), separated by commas (a value may hold commas itself:
    ``background=0,0,0``); those left out take the command's defaults. A one-line
    :class:`~coordconv_data.errors.InvalidParameter` (field ``data``) names what is wrong."""
    m = _SPEC_TEXT.match(text) if isinstance(text, str) else None
    if m is None or m.group(1) not in KINDS:
        raise InvalidParameter("data", f"{text!r} is not a spec: write <kind>:<option>=<value>,... with a kind of "
                                       f"{', '.join(sorted(KINDS))}")
    kind = get_kind(m.group(1))
    if not kind.growable:
        raise InvalidParameter("data", f"{kind.name} has a fixed size, so its samples are not drawn from a spec: "
                                       "use its file")
    given: dict[str, str] = {}
    last = None
    for token in m.group(2).split(","):
        if "=" in token:
            key, _, value = token.partition("=")
            key = key.strip().replace("-", "_")
            if key not in kind.cli_options:
                raise InvalidParameter("data", f"{text!r}: {kind.name} specs take {', '.join(kind.cli_options)}, "
                                               f"not {key!r}")
            if key in given:
                raise InvalidParameter("data", f"{text!r} gives {key} twice")
            given[key] = value
            last = key
        elif last is not None:
            given[last] += "," + token
        elif token.strip():
            raise InvalidParameter("data", f"{text!r}: {token.strip()!r} is not an option=value pair")
    try:
        values = {key: kind.parse_option(key, value) for key, value in given.items()}
        values = {**kind.cli_defaults(values), **values}
        spec = kind.generator.Spec(**values)
    except InvalidParameter as e:
        raise InvalidParameter("data", f"{text}: {e.message}") from None
    return kind, spec


class SpecSampler:
    """Draws samples of a spec by split and index, equal to the file's (see the module docstring);
    keeps the draws of the last :data:`CACHED_BLOCKS` blocks, per process (not pickled)."""

    def __init__(self, kind: Kind, spec: Any, cached_blocks: int = CACHED_BLOCKS) -> None:
        self.kind, self.spec = kind, spec
        self.sizes = kind.generator.split_sizes(spec)
        self.cached_blocks = max(1, int(cached_blocks))
        self._cache: OrderedDict[tuple[str, int], dict[str, np.ndarray]] = OrderedDict()

    def __getstate__(self) -> dict[str, Any]:
        # Sent to DataLoader workers (spawn) and to torchrun's other ranks: the kind by name (a Kind holds
        # functions that do not pickle), without the cache (each process keeps its own).
        state = self.__dict__.copy()
        state["_cache"] = OrderedDict()
        state["kind"] = self.kind.name
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.kind = get_kind(state["kind"])

    def block_params(self, split: str, block: int) -> dict[str, np.ndarray]:
        """Every random draw of block ``block`` of ``split`` (what the file's block drew)."""
        key = (split, block)
        got = self._cache.get(key)
        if got is not None:
            self._cache.move_to_end(key)
            return got
        bs = self.spec.block_size
        count = min(bs, self.sizes[split] - block * bs)
        rng = block_rng(self.spec.seed, self.kind.generator.STREAMS[split], block)
        got = self.kind.generator.sample_params(self.spec, rng, count)
        self._cache[key] = got
        while len(self._cache) > self.cached_blocks:
            self._cache.popitem(last=False)
        return got

    def samples(self, split: str, rows: np.ndarray, names: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
        """Arrays ``names`` (all by default) of samples ``rows`` of ``split``, in that order."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        n = self.sizes[split]
        if len(rows) and (rows.min() < 0 or rows.max() >= n):
            raise IndexError(f"samples {rows.min()}..{rows.max()} are not all in 0..{n - 1} of split {split!r}")
        bs = self.spec.block_size
        blocks = rows // bs
        params: dict[str, np.ndarray] = {}
        for b in np.unique(blocks).tolist():
            at = np.flatnonzero(blocks == b)
            drawn = self.block_params(split, b)
            for name, a in drawn.items():
                if name not in params:
                    params[name] = np.empty((len(rows),) + a.shape[1:], a.dtype)
                params[name][at] = a[rows[at] - b * bs]
        if not params:  # no rows: the arrays' shapes from an empty block
            params = self.kind.generator.sample_params(self.spec, block_rng(0, 0, 0), 0)
        wanted = set(names) if names is not None else None
        out = {k: v for k, v in params.items() if wanted is None or k in wanted}
        if wanted is None or wanted - set(out):
            drawn = self.kind.generator.rebuild(self.spec, params)
            out.update({k: v for k, v in drawn.items() if wanted is None or k in wanted})
        return out


@dataclass
class SpecSummary(FileSummary):
    """What a spec's dataset holds, as a :class:`~coordconv_data.store.FileSummary` says of a file:
    ``path`` is the spec's text; the arrays are drawn, never read (:meth:`read_arrays`)."""

    spec: Any = None
    text: str = ""
    sampler: SpecSampler | None = field(default=None, repr=False, compare=False)

    def read_arrays(self, split: str, keys: dict[str, str], stop: int | None = None) -> dict[str, np.ndarray]:
        assert self.sampler is not None
        n = self.lengths[split] if stop is None else min(stop, self.lengths[split])
        return self.sampler.samples(split, np.arange(n), tuple(keys))


def spec_summary(kind: Kind | str, spec: Any) -> SpecSummary:
    """The :class:`SpecSummary` of ``spec``, a spec of ``kind`` (a kind whose size can grow)."""
    kind = get_kind(kind) if isinstance(kind, str) else kind
    if not kind.growable:
        raise InvalidParameter("data", f"{kind.name} has a fixed size, so its samples are not drawn from a spec")
    if not isinstance(spec, kind.generator.Spec):
        raise InvalidParameter("spec", f"a {kind.name} dataset is drawn from a {kind.generator.Spec.__name__}, "
                                       f"not {type(spec).__name__}")
    params = json.loads(json.dumps(spec.params()))  # as a file records them (tuples become lists)
    attrs = _as_stored({"dataset": kind.name, "schema_version": SCHEMA_VERSION, "generator": f"coordconv_data {__version__}",
                        "layout": "native", "seed": int(spec.seed), "params": json.dumps(params, sort_keys=True),
                        **kind.generator.file_attrs(spec, "native")})
    sampler = SpecSampler(kind, spec)
    names = tuple(sampler.samples("train", np.arange(0)))
    text = kind.spec_text(spec)
    lengths = dict(sampler.sizes)
    return SpecSummary(path=Path(text), kind=kind.name, layout="native", schema_version=SCHEMA_VERSION,
                       seed=int(spec.seed), params=params, attrs=attrs,
                       splits={split: {name: name for name in names} for split in lengths}, lengths=lengths,
                       symbols=kind.symbols(attrs, params), content_checked=True, spec=spec, text=text,
                       sampler=sampler)


def _as_stored(attrs: dict[str, Any]) -> dict[str, Any]:
    """Attributes as a file's read back (:func:`~coordconv_data.writer.set_attrs` then the store's decoding):
    lists of numbers stay lists, other containers become JSON text."""
    out = {}
    for key, value in attrs.items():
        if isinstance(value, (dict, list, tuple)) and not (
                isinstance(value, (list, tuple)) and all(isinstance(v, (int, float, np.integer, np.floating))
                                                         and not isinstance(v, bool) for v in value)):
            value = json.dumps(value)
        elif isinstance(value, tuple):
            value = list(value)
        out[key] = value
    return out

