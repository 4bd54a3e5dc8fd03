"""The data file of a run, found and validated once: its path, its summary and its fingerprint.

:func:`resolve_data` makes a :class:`RunData` when a run starts (the arch's default file in the
current folder when none is given, generated if missing); :func:`recorded_data` makes one from what
a run folder recorded (``evaluate``, ``--resume``), refusing a file that changed. Either validates the
file by content once (:func:`~coordconv_data.store.summarize`), then checks every value and sample of it
(:func:`~coordconv_data.store.check_content`: a bad mask class in a chunk the opening sample skipped is
one line before the first step, not a crash mid-epoch); everything after it (the datasets, the
geometry score's scene and reference centres, the fingerprint) reads through that summary.

Data drawn on the fly: where a file's path would go, a spec's text (``lanes:n=10000000,seed=0``,
:mod:`coordconv_data.specs`) names the samples of the file that spec writes, drawn when the loop asks
for them. Its :class:`RunData` is made once per run as a file's is: the spec is checked, and its
fingerprint records the kind, every parameter, the split lengths, the generator's version and a hash of
a few drawn samples; ``--resume`` and ``evaluate`` draw the run's samples again from the recorded
parameters and refuse, in one line, a version whose generator draws other samples.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import h5py
import numpy as np

from .. import __version__
from ..errors import InvalidParameter
from ..kinds import get_kind
from ..specs import SpecSummary, is_spec_text, parse_spec_text, spec_summary
from ..store import FileSummary, StoreError, check_content, iter_datasets, summarize
from .errors import TrainError
from .options import TrainConfig

__all__ = ["RunData", "resolve_data", "recorded_data", "fingerprint"]

FINGERPRINT_KEYS = ("kind", "layout", "seed", "params", "lengths", "bytes")  # compared, then the samples' hash
SPEC_FINGERPRINT_KEYS = ("kind", "seed", "params", "lengths")  # a spec's: compared, then the drawn samples' hash


@dataclass(frozen=True)
class RunData:
    """A validated data file: what a run trains on (or is evaluated on)."""

    summary: FileSummary
    fingerprint: dict[str, Any] = field(compare=False)

    @property
    def path(self) -> Path:
        return self.summary.path

    @property
    def source(self) -> str:
        """What a run's ``data`` option records: the file's absolute path, or the spec's text."""
        return self.summary.text if isinstance(self.summary, SpecSummary) else str(self.path)

    @classmethod
    def open(cls, path: str | Path, kind: str | None = None) -> "RunData":
        """Validate ``path`` (of ``kind``, if given) once, every value and sample of it; a one-line
        :class:`TrainError` otherwise. A spec's text (``lanes:n=1000``) is checked as a spec instead."""
        if is_spec_text(str(path)):
            return cls.from_spec(str(path), kind)
        try:
            summary = check_content(summarize(Path(path).resolve(), kind))
        except StoreError as e:
            raise TrainError(e.message, field=e.field, hint=e.hint) from None
        return cls(summary, fingerprint(summary))

    @classmethod
    def from_spec(cls, text: str, kind: str | None = None) -> "RunData":
        """The samples a spec's text names (of ``kind``, if given), drawn on the fly."""
        found, spec = parse_spec_text(text)
        if kind is not None and found.name != kind:
            raise TrainError(f"{text} names {found.name} data, not {kind}", field="data")
        return cls.from_summary(spec_summary(found, spec))

    @classmethod
    def from_summary(cls, summary: SpecSummary) -> "RunData":
        return cls(summary, spec_fingerprint(summary))


def fingerprint(summary: FileSummary) -> dict[str, Any]:
    """What identifies a validated data file: its absolute path, size, kind, seed, parameters, lengths,
    and a hash of a few samples (first, middle, last) of every array. Cheap: a few reads, whatever its size."""
    h = hashlib.sha256()
    with h5py.File(summary.path, "r") as f:
        for name, ds in iter_datasets(f):
            h.update(f"{name}:{ds.shape}:{ds.dtype}".encode())
            n = ds.shape[0] if ds.shape else 0
            for i in sorted({0, n // 2, n - 1}) if n else ():
                h.update(np.ascontiguousarray(ds[i]).tobytes())
    return {
        "path": str(summary.path.resolve()),
        "bytes": summary.path.stat().st_size,
        "kind": summary.kind,
        "layout": summary.layout,
        "seed": summary.seed,
        "params": summary.params,
        "lengths": summary.lengths,
        "sample_hash": h.hexdigest()[:16],
    }


def spec_fingerprint(summary: SpecSummary) -> dict[str, Any]:
    """What identifies the samples a spec draws: its text, kind, seed, parameters, lengths, the version
    that draws them, and a hash of a few drawn samples (first, middle, last of every split)."""
    h = hashlib.sha256()
    assert summary.sampler is not None
    for split, n in summary.lengths.items():
        rows = np.array(sorted({0, n // 2, n - 1}) if n else [], dtype=np.int64)
        arrays = summary.sampler.samples(split, rows)
        for name in sorted(arrays):
            a = np.ascontiguousarray(arrays[name])
            h.update(f"{split}/{name}:{a.shape}:{a.dtype}".encode())
            h.update(a.tobytes())
    return {
        "spec": summary.text,
        "path": summary.text,  # what messages name
        "kind": summary.kind,
        "layout": summary.layout,
        "seed": summary.seed,
        "params": summary.params,
        "lengths": summary.lengths,
        "generator": f"coordconv_data {__version__}",
        "sample_hash": h.hexdigest()[:16],
    }


def resolve_data(cfg: TrainConfig, check: Callable[[FileSummary], None], *,
                 announce: Callable[[str], None] | None = None) -> tuple[TrainConfig, RunData]:
    """The run's data file: ``cfg.data``, or the arch's default file in the current folder (generated
    with the generator's defaults when missing, said in one line to ``announce``), validated once as a
    file of the arch's kind and then by ``check`` (the task's own requirements). Returns ``cfg`` with
    ``data`` the file's absolute path."""
    from ..datasets import dataset_class

    if cfg.data is None:
        path: str | Path = dataset_class(cfg.dataset).ensure_file(Path("."), generate=True, announce=announce)
    else:
        path = cfg.data if is_spec_text(cfg.data) else Path(cfg.data)
    data = RunData.open(path, cfg.dataset)
    check(data.summary)
    return replace(cfg, data=data.source), data


def recorded_data(recorded: dict[str, Any]) -> RunData:
    """The data file a run recorded (``config.json``'s ``data``), refused in one line if it is gone or
    no longer the file the run used; or the spec it recorded, its samples drawn again (refused if this
    version draws other samples)."""
    if "spec" in recorded:
        return _recorded_spec(recorded)
    path = recorded.get("path")
    if not path:
        raise TrainError("the run's config.json does not record its data file", field="data", hint="pass {data}")
    if not Path(path).is_file():
        raise TrainError(f"{path}: the run's data file is gone", field="data", hint="pass {data} to use another file")
    data = RunData.open(path)
    now = data.fingerprint
    changed = [f"{key} {recorded.get(key)!r} -> {now[key]!r}" for key in FINGERPRINT_KEYS if recorded.get(key) != now[key]]
    if not changed and recorded.get("sample_hash") != now["sample_hash"]:
        changed.append("the samples' content")
    if changed:
        raise TrainError(f"{path} changed since the run used it ({'; '.join(changed)})", field="data",
                         hint="regenerate the run's file, or pass {data} to use this one")
    return data


def _recorded_spec(recorded: dict[str, Any]) -> RunData:
    text = recorded.get("spec")
    try:
        kind = get_kind(recorded.get("kind"))
        spec = kind.spec_from_params(recorded.get("params"))
    except (StoreError, InvalidParameter, TypeError) as e:
        raise TrainError(f"the run's config.json records a spec this version cannot draw ({text}: "
                         f"{getattr(e, 'message', e)})", field="data", hint="pass {data}") from None
    data = RunData.from_summary(spec_summary(kind, spec))
    now = data.fingerprint
    changed = [f"{key} {recorded.get(key)!r} -> {now[key]!r}" for key in SPEC_FINGERPRINT_KEYS
               if recorded.get(key) != now[key]]
    if changed:
        raise TrainError(f"the run's spec {text} is not drawn as it was ({'; '.join(changed)})", field="data",
                         hint="pass {data}")
    if recorded.get("sample_hash") != now["sample_hash"]:
        raise TrainError(f"{now['generator']} draws other samples for {text} than {recorded.get('generator')} drew "
                         "for the run (its generator changed)", field="data",
                         hint="use the version the run was made with, or pass {data}")
    return data
