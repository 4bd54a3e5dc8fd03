"""One command, a whole cluster: a dataset generated as shards by Dask workers, then merged.

:func:`generate_on_cluster` maps one task per shard (:mod:`coordconv_data.generate.shards`) onto a
Dask cluster (``distributed``: a scheduler's address, such as one a dask-jobqueue cluster gives, or
``"local"`` for a ``LocalCluster`` of worker processes on this machine bound to 127.0.0.1). Each task
writes its shard, atomically, into a folder beside the output (``<stem>-shards/``, on storage every
worker sees under the same path); when every shard is there, the output is written as their merge
(:mod:`coordconv_data.merge`: virtual arrays, nothing copied). The result equals the file one machine
writes from the same spec, array for array.

* A task that fails is retried (``retries``); a worker that is lost (killed, out of memory, its node
  gone) has its task run again elsewhere by the scheduler. A shard is written under a temporary name
  and renamed into place only when complete, so a lost attempt never leaves a partial shard under a
  shard's name, and two attempts of one shard write the same bytes (their writers are not exclusive).
* An interrupt (Ctrl-C) cancels the tasks not yet done (a task already running on a remote worker
  ends by itself: Dask cannot stop a running function), shuts a local cluster down, and removes the
  temporary files of this machine's workers that died with it.
* Shards already in the folder that are valid shards of this spec (an interrupted run's) are kept,
  not written again.

Dask is an optional dependency (``pip install "coordconv_data[cluster]"``), imported only here, only
when a cluster is used.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from . import __version__
from .errors import CoordDataError, InvalidParameter
from .generate.shards import Shard, shard_file_name
from .kinds import Kind, get_kind

__all__ = ["ClusterError", "ClusterResult", "generate_on_cluster", "write_shard", "shards_folder", "LOCAL"]

LOCAL = "local"  # the address that means a LocalCluster on this machine
RETRIES = 2  # a failed task is run this many more times before the run fails
CONNECT_TIMEOUT = "20s"  # how long a scheduler's address is tried


class ClusterError(CoordDataError):
    """The cluster could not be used (not installed, unreachable) or a shard's task failed for good."""


@dataclass
class ClusterResult:
    path: Path
    folder: Path
    shards: int
    written: int  # shards written by this run
    reused: int  # valid shards found in the folder and kept
    lengths: dict[str, int]
    seconds: float
    hosts: dict[str, int] = field(default_factory=dict)  # worker host -> shards it wrote


def shards_folder(out: str | os.PathLike) -> Path:
    """The folder beside ``out`` that holds its shards: ``lanes.h5`` -> ``lanes-shards/``."""
    out = Path(out)
    return out.parent / f"{out.stem}-shards"


def write_shard(kind: str, params: dict[str, Any], path: str, index: int, count: int) -> dict[str, Any]:
    """A cluster task: write shard ``index`` of ``count`` of the dataset ``params`` describes at ``path``
    (replacing whatever is there; not exclusive, so a task run twice, after a lost worker, is no error)."""
    k = get_kind(kind)
    spec = k.spec_from_params(params)
    t0 = time.perf_counter()
    counts = k.generator.write_file(spec, path, workers=1, force=True, shard=Shard(index, count), exclusive=False)
    return {"index": index, "path": path, "counts": counts, "seconds": time.perf_counter() - t0,
            "host": socket.gethostname()}


def _valid_shard(path: Path, kind: Kind, params: dict[str, Any], shard: Shard) -> bool:
    """Whether ``path`` is already shard ``shard`` of this dataset, written by this version, whole."""
    from .store import StoreError, summarize

    try:
        s = summarize(path, kind.name)
    except StoreError:
        return False
    return (s.params == params and s.attrs.get("shard_index") == shard.index
            and s.attrs.get("shard_count") == shard.count and "shard_digest" in s.attrs
            and s.attrs.get("generator") == f"coordconv_data {__version__}")


def dask_setup(worker: Any) -> None:
    """Run in every worker process of a local cluster as it starts (Dask's preload): leave Ctrl-C to the
    command, which cancels the tasks and stops the workers (a terminal sends it to every process of
    the foreground group, and a worker would otherwise print its own traceback)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def _client(address: Any, workers: int) -> Iterator[Any]:
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ClusterError("Dask is not installed (it is the optional extra 'cluster': "
                           "pip install \"coordconv_data[cluster]\")", field="dask") from None
    if not isinstance(address, str):  # a Client the caller made (a dask-jobqueue cluster's, say)
        yield address
        return
    cluster = None
    try:
        if address == LOCAL:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                                   dashboard_address=None, silence_logs=logging.CRITICAL, preload=[__name__])
            client = Client(cluster)
        else:
            client = Client(address, timeout=CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as e:
        if cluster is not None:
            cluster.close()
        raise ClusterError(f"cannot reach the Dask scheduler at {address} ({str(e).splitlines()[0] if str(e) else type(e).__name__})",
                           field="dask", hint="check {dask}: a scheduler's address such as tcp://host:8786, or local") \
            from None
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


@contextmanager
def _quiet_dask() -> Iterator[None]:
    """Dask's own log lines (a worker lost and restarted, a task retried) stay out of the command's output:
    what matters is reported by the command (the shards done, or one line of error)."""
    loggers = [logging.getLogger(name) for name in ("distributed", "tornado")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def generate_on_cluster(kind: Kind | str, spec: Any, out: str | os.PathLike, *, shards: int, address: Any = LOCAL,
                        workers: int = 2, force: bool = False, progress: Callable[[int], None] | None = None,
                        log: Callable[[str], None] | None = None, task: Callable[..., Any] = write_shard,
                        retries: int = RETRIES) -> ClusterResult:
    """Write ``spec``'s dataset as ``shards`` shards on a Dask cluster, then ``out`` as their merge.

    ``address``: a scheduler's address (``tcp://host:8786``), ``"local"`` (a ``LocalCluster`` of
    ``workers`` processes of one thread, on 127.0.0.1), or a ``distributed.Client``. ``progress(k)`` is
    called as shards finish; ``log`` gets a line about reused shards and one about shards in the folder
    that are written again (not this dataset's: other options, another version, damaged). ``task`` is what each shard runs
    (:func:`write_shard`, or a wrapper of it). The shards stay in :func:`shards_folder` (the merged
    file maps them). Raises :class:`ClusterError` for a cluster that cannot be used or a shard that
    failed after its retries (the others are cancelled; no partial shard is left under a shard's name).
    """
    from .merge import merge_shards
    from .writer import check_target, prepare_folder, remove_empty_folders, remove_stale_temporaries

    kind = get_kind(kind) if isinstance(kind, str) else kind
    if not kind.growable:
        raise InvalidParameter("shards", f"{kind.name} has a fixed size; only datasets whose size can grow are "
                                         "written in shards")
    count = Shard(0, shards).count  # checks the count
    out = Path(out)
    params = json.loads(json.dumps(spec.params()))  # as a file records them (tuples become lists)
    check_target(out, force)
    folder = shards_folder(out)
    created = prepare_folder(folder)
    names = [folder / shard_file_name(kind.file_name(), Shard(k, count)) for k in range(count)]
    todo = [k for k, p in enumerate(names) if not (p.exists() and _valid_shard(p, kind, params, Shard(k, count)))]
    reused = count - len(todo)
    replaced = sum(1 for k in todo if names[k].exists())
    if log is not None and reused:
        log(f"kept {reused} of {count} shards already in {folder}")
    if log is not None and replaced:
        log(f"writing {replaced} {'shard' if replaced == 1 else 'shards'} again in {folder}: the files there are not "
            "this dataset's (other options, another version, or damaged)")
    if progress is not None and reused:
        progress(reused)
    t0 = time.perf_counter()
    hosts: dict[str, int] = {}
    try:
        if todo:
            with _quiet_dask(), _client(address, workers) as client:
                _run_tasks(client, task, kind, params, names, todo, count, retries, progress, hosts)
    except BaseException:
        remove_stale_temporaries(folder)  # this machine's workers that died with the run
        if created and not any(folder.iterdir()):
            remove_empty_folders(created)
        raise
    result = merge_shards([str(p) for p in names], out, force=force)
    return ClusterResult(out, folder, count, len(todo), reused, result.lengths, time.perf_counter() - t0, hosts)


def _run_tasks(client: Any, task: Callable[..., Any], kind: Kind, params: dict[str, Any], names: list[Path],
               todo: list[int], count: int, retries: int, progress: Callable[[int], None] | None,
               hosts: dict[str, int]) -> None:
    from distributed import as_completed

    run = uuid.uuid4().hex[:8]
    futures = {client.submit(task, kind.name, params, str(names[k].absolute()), k, count, retries=retries,
                             pure=False, key=f"coorddata-{kind.name}-shard-{k}-of-{count}-{run}"): k for k in todo}
    done = False
    try:
        for future in as_completed(list(futures)):
            k = futures[future]
            try:
                info = future.result()
            except CoordDataError as e:
                raise ClusterError(f"shard {k} of {count} failed: {e.render()}") from None
            except Exception as e:  # a task's error, or KilledWorker: the workers running it kept dying
                first = str(e).splitlines()[0] if str(e) else ""
                raise ClusterError(f"shard {k} of {count} failed after {retries} retries: {type(e).__name__}"
                                   + (f": {first}" if first else "")) from None
            host = info.get("host", "?") if isinstance(info, dict) else "?"
            hosts[host] = hosts.get(host, 0) + 1
            if progress is not None:
                progress(1)
        done = True
    finally:
        if not done:
            client.cancel(list(futures), force=True)
