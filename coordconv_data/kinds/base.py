"""What every dataset kind declares, and the content validation that runs on every file opened.

A :class:`Kind` gathers, in one place per dataset kind, everything the project knows about it: the
arrays of each layout (:class:`ArraySpec`: per-sample shape, dtypes, value range), the attributes its
files carry, class names and display colours, statistics for ``coorddata info``, the tiles of
``coorddata preview``, and the generator's entry points (spec type, ``generate``, ``write_file``,
``rebuild``, the size estimate).

Validation (:func:`validate_split`) checks each array against its spec: rank and per-sample shape
(symbols such as ``S`` for the canvas side are bound from the file's attributes, or else from the
first array that has them, and must then agree everywhere), dtype, and value range. Ranges are
checked where the dtype does not already guarantee them: small arrays (up to
:data:`FULL_SCAN_BYTES`) are read whole; larger ones by a bounded sample of whole chunks spread over
the array (:data:`SAMPLE_BYTES`), so that opening a file costs milliseconds whatever its size.

Attributes are checked for type and value (:class:`AttrSpec`: the root ones every file has, and each
kind's own), so a reader never meets ``canvas_size = "sixty-four"``. Each kind also checks what its
arrays must agree on (:meth:`Kind.check_consistency`: a Not-so-Clevr square centred on its location,
a Lanes mask that is what its circles paint, distinct colours in a Sort-of-Clevr image) on a few
samples when a file is opened, and :func:`check_content` runs every check on every sample (value
ranges of the large arrays in full, consistency in slices of bounded memory): what a training run
or an evaluation does once, before its first step.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Mapping, Sequence

import h5py
import numpy as np

from ..writer import StoreError

Dim = int | str
Bound = float | Callable[[Mapping[str, int]], float] | None

FULL_SCAN_BYTES = 2 * 2**20  # arrays up to this size are range-checked in full
SAMPLE_BYTES = 2**20  # larger ones: about this many bytes of whole chunks, spread evenly
CONTENT_SLICE_BYTES = 16 * 2**20  # check_content reads about this much at a time (an interrupt waits for one read)


class MalformedFile(StoreError):
    """A file whose arrays or attributes do not have the shape, dtype or values its kind requires."""


@dataclass(frozen=True)
class AttrSpec:
    """What one attribute must be: ``text``, ``int`` (within ``lo..hi``), ``ints`` (a list of
    ``length`` integers, each within ``lo..hi``) or ``json`` (text holding JSON)."""

    kind: str
    lo: int | None = None
    hi: int | None = None
    length: int | None = None

    def problem(self, value: Any) -> str | None:
        """What is wrong with ``value`` (decoded as the store decodes attributes), or None."""
        if self.kind == "text":
            return None if isinstance(value, str) else "text"
        if self.kind == "json":
            if not isinstance(value, str):
                return "JSON text"
            try:
                json.loads(value)
            except json.JSONDecodeError:
                return "valid JSON text"
            return None
        values = [value] if self.kind == "int" else value
        what = "an integer" if self.kind == "int" else f"a list of {self.length or 'some'} integers"
        if self.lo is not None and self.hi is not None:
            what += f" in {self.lo}..{self.hi}"
        elif self.lo is not None:
            what += f" of at least {self.lo}"
        if not isinstance(values, list) or (self.length is not None and len(values) != self.length):
            return what
        for v in values:
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                return what
            if (self.lo is not None and v < self.lo) or (self.hi is not None and v > self.hi):
                return what
        return None


def check_attr_types(path: Any, attrs: Mapping[str, Any], specs: Mapping[str, AttrSpec]) -> None:
    """Raise :class:`MalformedFile` for the first attribute in ``specs`` that is present with a value
    it does not allow (the message shows the value, cut short)."""
    for name, spec in specs.items():
        if name not in attrs:
            continue
        want = spec.problem(attrs[name])
        if want is not None:
            raise MalformedFile(f"{path} is malformed: attribute {name!r} is {_short(attrs[name])}; it must be {want}")


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class ArraySpec:
    """One array of a split: ``sample_shape`` (after the sample axis; a ``str`` is a symbol bound per
    file), allowed ``dtypes`` (numpy names, or ``"int"``/``"float"`` for any of that kind), and an
    inclusive value range ``lo..hi`` (numbers, or functions of the file's symbols), described by
    ``what`` in messages (e.g. ``"class ids"``)."""

    name: str
    sample_shape: tuple[Dim, ...]
    dtypes: tuple[str, ...]
    lo: Bound = None
    hi: Bound = None
    what: str = "values"

    def dtype_ok(self, dtype: np.dtype) -> bool:
        for d in self.dtypes:
            if d == "int" and dtype.kind in "iu":
                return True
            if d == "float" and dtype.kind == "f":
                return True
            if d not in ("int", "float") and dtype == np.dtype(d):
                return True
        return False

    def bounds(self, symbols: Mapping[str, int]) -> tuple[float | None, float | None]:
        def value(b: Bound) -> float | None:
            return b(symbols) if callable(b) else b

        return value(self.lo), value(self.hi)

    def expected_shape(self) -> str:
        return "(" + ", ".join(["N", *map(str, self.sample_shape)]) + ")"


@dataclass(frozen=True)
class LayoutSpec:
    """The arrays of one layout of a kind. ``key(split, name)`` is the array's path in a file;
    ``splits`` maps our split names to what the layout calls them."""

    name: str
    arrays: tuple[ArraySpec, ...]
    optional: tuple[ArraySpec, ...] = ()
    splits: Mapping[str, str] = field(default_factory=lambda: {"train": "train", "test": "test"})
    flat: bool = False  # keys are "<prefix>_<name>" at the root instead of "<split>/<name>"

    def key(self, split: str, name: str) -> str:
        prefix = self.splits[split]
        return f"{prefix}_{name}" if self.flat else f"{prefix}/{name}"

    def spec(self, name: str) -> ArraySpec | None:
        for a in (*self.arrays, *self.optional):
            if a.name == name:
                return a
        return None


def _fmt_shape(shape: Sequence[int]) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + ")"


def _sample_slices(ds: h5py.Dataset) -> list[slice]:
    """Slices of whole chunks (or of rows) spread evenly over ``ds``, about :data:`SAMPLE_BYTES` in all."""
    n = ds.shape[0]
    row_bytes = max(1, int(np.prod(ds.shape[1:], dtype=np.int64)) * ds.dtype.itemsize)
    rows = ds.chunks[0] if ds.chunks else max(1, (256 * 1024) // row_bytes)
    pieces = max(2, SAMPLE_BYTES // max(1, rows * row_bytes))  # the first and the last chunk at least
    starts_total = math.ceil(n / rows)
    if pieces >= starts_total:
        return [slice(0, n)]
    picks = np.unique(np.linspace(0, starts_total - 1, pieces).round().astype(np.int64))
    return [slice(int(k) * rows, min(n, (int(k) + 1) * rows)) for k in picks]


def whole_slices(n: int, row_bytes: int, budget: int = CONTENT_SLICE_BYTES) -> list[slice]:
    """``slice``s covering ``0..n`` in order, each about ``budget`` bytes of rows of ``row_bytes``."""
    step = max(1, budget // max(1, row_bytes))
    return [slice(start, min(n, start + step)) for start in range(0, n, step)]


def check_values(path: Any, key: str, spec: ArraySpec, ds: h5py.Dataset, symbols: Mapping[str, int],
                 kind: str, full: bool = False) -> None:
    """Raise :class:`MalformedFile` if a value of ``ds`` lies outside ``spec``'s range (or is NaN):
    of every sample when ``full`` or the array is small, else of a bounded sample of whole chunks."""
    lo, hi = spec.bounds(symbols)
    if (lo is None and hi is None) or ds.shape[0] == 0 or ds.size == 0:
        return
    dt = ds.dtype
    if dt.kind in "iu":
        info = np.iinfo(dt)
        if (lo is None or info.min >= lo) and (hi is None or info.max <= hi):
            return  # the dtype cannot hold anything else
    nbytes = ds.size * dt.itemsize
    row_bytes = nbytes // ds.shape[0]
    if full:
        slices = whole_slices(ds.shape[0], row_bytes)
    else:
        slices = [slice(0, ds.shape[0])] if nbytes <= FULL_SCAN_BYTES else _sample_slices(ds)
    for sl in slices:
        check_range(path, key, spec, ds[sl], lo, hi, kind, first=sl.start)


def check_range(path: Any, key: str, spec: ArraySpec, data: np.ndarray, lo: float | None, hi: float | None,
                kind: str, first: int = 0, rows: np.ndarray | None = None, where: str = "at sample") -> None:
    """Raise :class:`MalformedFile` for the first value of ``data`` (samples ``first...`` of array
    ``key``, or the samples ``rows`` names) outside ``lo..hi`` or not finite."""
    if data.size == 0:
        return
    flat = data.reshape(len(data), -1)
    bad = np.zeros(flat.shape, dtype=bool)
    if flat.dtype.kind == "f":
        bad |= ~np.isfinite(flat)
    if lo is not None:
        bad |= flat < lo
    if hi is not None:
        bad |= flat > hi
    if bad.any():
        row, col = np.unravel_index(int(np.argmax(bad)), bad.shape)
        value = flat[row, col]
        sample = int(rows[row]) if rows is not None else first + int(row)
        allowed = (f"{_num(lo)}..{_num(hi)}" if lo is not None and hi is not None else
                   f">= {_num(lo)}" if lo is not None else f"<= {_num(hi)}")
        raise MalformedFile(
            f"{path} is malformed: array '{key}' holds {_num(value)} {where} {sample}; "
            f"{kind} {spec.what} must be {allowed}"
        )


def _num(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        f = float(v)
        return str(int(f)) if f.is_integer() and abs(f) < 1e15 else f"{f:g}"
    return str(int(v)) if isinstance(v, (int, np.integer)) else str(v)


def validate_split(path: Any, f: h5py.File, kind: str, layout: LayoutSpec, split: str,
                   arrays: Mapping[str, str], symbols: dict[str, int]) -> int:
    """Check one split's arrays (``name -> key``) against ``layout``; bind unbound symbols in place.

    Returns the split's sample count. Raises :class:`MalformedFile` with a one-line message naming
    the array and what is wrong.
    """
    length: int | None = None
    length_of = ""
    for name, key in arrays.items():
        spec = layout.spec(name)
        ds = f[key]
        if not isinstance(ds, h5py.Dataset):
            raise MalformedFile(f"{path} is malformed: '{key}' is a group, not an array")
        if ds.ndim == 0:
            raise MalformedFile(f"{path} is malformed: array '{key}' is a scalar, not one value per sample")
        if length is None:
            length, length_of = ds.shape[0], key
        elif ds.shape[0] != length:
            raise MalformedFile(f"{path} is corrupt: split '{split}' arrays differ in length "
                                f"({length_of} has {length}, {key} has {ds.shape[0]})")
        if spec is None:
            continue  # an extra array: kept, not checked
        if ds.ndim != 1 + len(spec.sample_shape):
            raise MalformedFile(f"{path} is malformed: array '{key}' has shape {_fmt_shape(ds.shape)}; "
                                f"{kind} {name} must be {spec.expected_shape()}")
        for dim, got in zip(spec.sample_shape, ds.shape[1:]):
            if isinstance(dim, str):
                want = symbols.setdefault(dim, int(got))
            else:
                want = dim
            if got != want:
                bound = ", ".join(f"{s} = {v}" for s, v in symbols.items() if s in spec.sample_shape)
                raise MalformedFile(
                    f"{path} is malformed: array '{key}' has shape {_fmt_shape(ds.shape)}; {kind} {name} "
                    f"must be {spec.expected_shape()}" + (f" with {bound}" if bound else "")
                )
        if not spec.dtype_ok(ds.dtype):
            raise MalformedFile(f"{path} is malformed: array '{key}' is {ds.dtype}; {kind} {name} must be "
                                + " or ".join(spec.dtypes))
        check_values(path, key, spec, ds, symbols, kind)
    return 0 if length is None else int(length)


# -- attribute helpers shared by the kinds -------------------------------------------------------------

def json_attr(attrs: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """An attribute stored as JSON text (or already a list), decoded; ``default`` when absent."""
    value = attrs.get(name)
    if value is None:
        return default
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise MalformedFile(f"attribute '{name}' is not valid JSON") from None
    return value


def int_attr(attrs: Mapping[str, Any], params: Mapping[str, Any], attr: str, param: str | None = None) -> int | None:
    """An integer from the attributes (or the generation parameters), None when neither has it."""
    for source, key in ((attrs, attr), (params, param or attr)):
        v = source.get(key)
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            return int(v)
    return None


@dataclass(frozen=True)
class Column:
    """One field of a sample outside HDF5 (an export's column, a WebDataset sample's entry): ``name``,
    read from the split's array ``array``; ``image``: stored as a PNG (an ``(S, S, C)`` or ``(S, S)``
    uint8 array); ``names``: the class name of each integer value (an image's: of each pixel value);
    ``about``: what it holds, for a dataset card."""

    name: str
    array: str
    about: str
    image: bool = False
    names: tuple[str, ...] = ()


#: The CoordConv paper, which every kind's data comes from or follows.
COORDCONV_CITATION = """@inproceedings{liu2018coordconv,
  title     = {An Intriguing Failing of Convolutional Neural Networks and the CoordConv Solution},
  author    = {Liu, Rosanne and Lehman, Joel and Molino, Piero and Petroski Such, Felipe and Frank, Eric and
               Sergeev, Alex and Yosinski, Jason},
  booktitle = {Advances in Neural Information Processing Systems (NeurIPS)},
  volume    = {31},
  year      = {2018},
  eprint    = {1807.03247},
  archivePrefix = {arXiv},
  url       = {https://arxiv.org/abs/1807.03247}
}"""


@dataclass(frozen=True)
class Kind:
    """Everything about one dataset kind. Subclasses (one per kind) fill in the behaviour.

    ``dataset`` names the class of :mod:`coordconv_data.datasets` that serves the kind's samples
    (named, not imported: the datasets import torch, the kinds do not); ``default_file`` is the file
    ``coorddata <kind>`` writes by default; ``cli_options`` the spec fields that command takes as
    options, in the order a command line shows them.
    """

    name: str
    layouts: Mapping[str, LayoutSpec]
    class_names: tuple[str, ...] = ()
    class_colors: tuple[tuple[int, int, int], ...] = ()  # RGB per class, the one palette for pictures
    dataset: str = ""
    default_file: str = ""
    cli_options: tuple[str, ...] = ()
    attrs: Mapping[str, AttrSpec] = field(default_factory=dict)  # the kind's own attributes, when present

    # -- files ----------------------------------------------------------------------------------------
    def detect_original(self, f: h5py.File) -> bool:
        """Whether ``f`` (no ``dataset`` attribute) is a file of the original script of this kind."""
        layout = self.layouts.get("original")
        return layout is not None and all(layout.key(s, a.name) in f for s in layout.splits for a in layout.arrays)

    def symbols(self, attrs: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, int]:
        """The shape symbols a file's attributes fix (others are bound from the arrays)."""
        return {}

    def check_attrs(self, path: Any, attrs: Mapping[str, Any], symbols: Mapping[str, int]) -> None:
        """Raise :class:`MalformedFile` for attributes the kind's readers rely on and cannot use."""

    def consistency_arrays(self, arrays: Mapping[str, str]) -> tuple[str, ...]:
        """The arrays (of a split's ``name -> key``) that :meth:`check_consistency` reads."""
        return ()

    def check_consistency(self, path: Any, data: Mapping[str, np.ndarray], keys: Mapping[str, str], split: str,
                          symbols: Mapping[str, int], attrs: Mapping[str, Any], first: int) -> None:
        """Raise :class:`MalformedFile` (naming the sample) where samples ``first, first + 1, ...`` of one
        split (``data``: the :meth:`consistency_arrays`, read by the caller; ``keys``: every array's
        path in the file) disagree with themselves: what a kind's arrays must agree on beyond each
        one's shape and range (the ranges of ``data`` were checked before)."""

    def consistency_sample(self, n: int) -> list[slice]:
        """The samples checked for consistency when a file is opened: the first and the last few."""
        k = min(n, 32)
        return [slice(0, k)] + ([slice(n - k, n)] if n > k else [])

    # -- people ---------------------------------------------------------------------------------------
    def display_params(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The generation parameters that apply to this file (``info`` shows these)."""
        return dict(params)

    def statistics(self, f: h5py.File, summary: Any) -> dict[str, Any]:
        return {}

    def tiles(self, arrays: dict[str, np.ndarray], attrs: Mapping[str, Any]) -> list[np.ndarray]:
        raise NotImplementedError

    def legend(self, attrs: Mapping[str, Any]) -> list[tuple[str, tuple[int, int, int]]]:
        """(name, RGB) entries drawn under a preview; empty when the tiles say it all."""
        return []

    # -- outside HDF5 (exports and their dataset cards) -----------------------------------------------
    #: A title and a paragraph (markdown) saying what the data is, and the works to cite (BibTeX).
    title: ClassVar[str] = ""
    about: ClassVar[str] = ""
    citations: ClassVar[tuple[str, ...]] = (COORDCONV_CITATION,)

    def columns(self, attrs: Mapping[str, Any]) -> tuple[Column, ...]:
        """The fields of a native file's samples, in order, as an export writes them (``attrs``: the
        file's attributes, for class names that a file records)."""
        raise NotImplementedError

    # -- the generator ----------------------------------------------------------------------------------
    @property
    def generator(self) -> Any:
        """The generator module: ``Spec``, ``generate(spec, split)``, ``write_file(spec, path, *,
        layout, workers, force, progress)``, ``rebuild(spec, arrays)``, ``estimate_bytes(spec, layout)``."""
        raise NotImplementedError

    def spec_from_params(self, params: Mapping[str, Any]) -> Any:
        """The generator spec a file's ``params`` attribute records (the file says how to regenerate it).

        A parameter this version's spec does not take (a file of a newer version, or an edited one) is
        an :class:`~coordconv_data.errors.InvalidParameter` naming it: regenerating without it would
        quietly make another file. Parameters the file leaves out take their defaults.
        """
        from dataclasses import fields

        from ..errors import InvalidParameter

        if not isinstance(params, Mapping):
            raise InvalidParameter("params", f"params must be a mapping of parameter names to values, got {_short(params)}")
        known = [f.name for f in fields(self.generator.Spec)]
        unknown = [k for k in params if k not in known]
        if unknown:
            raise InvalidParameter(str(unknown[0]), f"params has {unknown[0]!r}, which a {self.name} spec does not take "
                                                    f"(it takes: {', '.join(known)})")
        return self.generator.Spec(**params)

    # -- beyond one machine -------------------------------------------------------------------------------
    #: Whether the kind's size can grow (a number of samples is a parameter): its files can be written in
    #: shards and merged, and its samples drawn on the fly from a spec. The generator then has
    #: ``split_sizes(spec)``, ``sample_params(spec, rng, count)`` (every random draw of a block) and
    #: ``STREAMS`` (each split's random stream), and its ``write_file`` takes ``shard`` and ``source``.
    growable: ClassVar[bool] = False

    def split_ranges(self, params: Mapping[str, Any], shard: Any) -> dict[str, tuple[int, int]]:
        """The samples ``(start, stop)`` of each split that ``shard`` (a
        :class:`~coordconv_data.generate.shards.Shard`) of the dataset of ``params`` holds."""
        from ..generate.shards import shard_ranges

        spec = self.spec_from_params(params)
        return shard_ranges(self.generator.split_sizes(spec), spec.block_size, shard)

    def parse_option(self, name: str, text: str) -> Any:
        """The value of spec field ``name`` written as ``text`` in a spec's text (``lanes:n=1000,seed=3``):
        an integer, a number, or ``none`` (the field's default rule)."""
        value = text.strip()
        if value.lower() in ("none", "default"):
            return None
        for kind in (int, float):
            try:
                return kind(value)
            except ValueError:
                pass
        return value

    def spec_text(self, spec: Any) -> str:
        """``spec`` as a spec's text (``lanes:n=1000,seed=3``): the kind's name, then the options of the
        kind's command that differ from their defaults, as :meth:`command` writes them."""
        args: dict[str, Any] = {}
        params = spec.params()
        for name in self.cli_options:
            at_default = self.generator.Spec(**args, **self.cli_defaults(args))
            if at_default.params().get(name) != params.get(name):  # resolved values (a default scale's too)
                args[name] = getattr(spec, name)
        return f"{self.name}:" + ",".join(f"{name}={_option_text(value)}" for name, value in args.items())

    # -- default files ----------------------------------------------------------------------------------
    def file_name(self, **options: Any) -> str:
        """The name ``coorddata <kind>`` gives its file (``options``: what the kind's datasets pass)."""
        return self.default_file

    def default_spec(self, **options: Any) -> Any:
        """The spec of the kind's default file."""
        return self.generator.Spec()

    def cli_defaults(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Spec fields whose command-line default depends on other options (``given``)."""
        return {}

    def command(self, spec: Any, out: Any = None) -> str:
        """The ``coorddata <kind>`` command that writes ``spec``'s file (options at their default left out)."""
        import shlex

        args: dict[str, Any] = {}
        for name in self.cli_options:
            at_default = self.generator.Spec(**args, **self.cli_defaults(args))
            if getattr(at_default, name) != getattr(spec, name):
                args[name] = getattr(spec, name)
        words = ["coorddata", self.name]
        for name, value in args.items():
            words += [f"--{name.replace('_', '-')}", _option_text(value)]
        if out is not None:
            words += ["--out", str(out)]
        return shlex.join(words)

    def make_file(self, path: Any, spec: Any = None, *, workers: int | None = None) -> str:
        """Write ``spec``'s file (the default spec's when ``None``) at ``path``, as the kind's command does;
        returns that command."""
        import os

        spec = self.default_spec() if spec is None else spec
        self.generator.write_file(spec, path, workers=workers or os.cpu_count() or 1)
        return self.command(spec)

    # -- GANs and the geometry score --------------------------------------------------------------------
    #: ``(lo, hi)``: the floats a GAN is fed for pixel values 0 and 255 of the kind's images (None: no GAN).
    gan_value_range: ClassVar[tuple[float, float] | None] = None
    #: Whether the geometry score knows the kind's scenes (:meth:`scene`, :meth:`scene_arrays`).
    has_scene: ClassVar[bool] = False

    def scene(self, summary: Any) -> dict[str, Any]:
        """The :class:`~coordconv_data.geometry.SceneSpec` fields of what a file's images show, for the
        geometry score. Raises :class:`MalformedFile` when the file's attributes do not describe a scene."""
        raise NotImplementedError

    def scene_arrays(self, layout: str) -> tuple[str, str]:
        """``(images, centres)``: the arrays the geometry score reads from a file of ``layout``."""
        raise NotImplementedError

    def scene_pixels(self, images: np.ndarray, layout: str) -> np.ndarray:
        """A layout's stored images as the uint8 pixels :meth:`scene` describes."""
        return images


def _option_text(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(str(v) for v in value)
    return str(value)
