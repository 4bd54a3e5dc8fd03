"""Generate samples in fixed blocks, serially or in worker processes, with identical results.

A dataset of ``n`` samples is cut into blocks of ``block_size`` samples; block ``b`` of stream ``s``
draws from its own generator, seeded by ``SeedSequence(seed, spawn_key=(s, b))``. The block size is
part of a dataset's parameters (recorded in the file), never derived from the worker count or the
HDF5 chunking, so the same seed and parameters give the same arrays however many workers run.
Within a block a generator can work on all samples at once (vectorised), which is where the speed
comes from.

Blocks come back in order. At most ``2 * workers`` blocks are in flight and blocks are counted,
never listed, so memory stays flat however large ``n`` is.

The pool (:class:`WorkerPool`) is our own rather than ``concurrent.futures``: each worker talks to
the parent over a pipe of its own, whose only writing end is the worker's. A worker that dies
(SIGKILL, the out-of-memory killer, a crash), even halfway through sending a result, closes that
end, so the parent sees end-of-file at once and raises :class:`WorkerDied`, naming the worker and
how it ended; a ``ProcessPoolExecutor`` shares one result pipe and lock between its workers, and
when one died mid-write the parent (and the other workers) waited for the rest of the message
forever.

Worker processes end with the process that started them, however it ends: each worker watches
its parent (a pidfd where Linux has one, otherwise by polling) and exits when it is gone, and asks
the kernel to kill it when the forkserver that forked it dies (``PR_SET_PDEATHSIG``). Workers ignore
SIGINT, SIGTERM and SIGHUP: the parent decides. A pool left because of an error or an interrupt
kills its workers (SIGKILL: their blocks are being thrown away), so a signal stops a run without
waiting for the blocks in flight; a pool left normally lets them exit.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import select
import signal
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Iterator

import numpy as np

from ..errors import CoordDataError

BlockFn = Callable[[Any, np.random.Generator, int], dict[str, np.ndarray]]


def block_rng(seed: int, stream: int, block: int) -> np.random.Generator:
    """The generator of one block: independent of every other block and of how blocks are scheduled."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(stream, block))))


def block_ranges(n: int, block_size: int, start: int = 0) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of each block of samples ``start..n`` (``start`` on a block boundary), lazily
    (a list of every block of a huge ``n`` would not fit)."""
    if block_size < 1:
        raise ValueError(f"block size must be at least 1, got {block_size}")
    if start % block_size:
        raise ValueError(f"start {start} is not on a block boundary (block size {block_size})")
    return ((s, min(n, s + block_size)) for s in range(start, n, block_size))


def share_of_blocks(n: int, block_size: int, index: int, count: int) -> tuple[int, int]:
    """``(start, stop)``: the samples of share ``index`` of ``count`` of ``n`` samples in blocks of
    ``block_size``. The blocks are dealt out in order, whole, as evenly as they go (share ``k`` holds
    blocks ``B*k//count .. B*(k+1)//count`` of the ``B``), so shares start on block boundaries and
    together cover ``0..n`` once; a share may be empty when there are fewer blocks than shares."""
    if not 0 <= index < count:
        raise ValueError(f"share {index} of {count} does not exist")
    blocks = -(-n // block_size)
    first, last = blocks * index // count, blocks * (index + 1) // count
    return min(n, first * block_size), min(n, last * block_size)


def _exit_now() -> None:
    os._exit(1)


def _watch_parent(pid: int) -> None:
    """Exit this worker as soon as process ``pid`` (the generator's parent process) is gone."""
    try:
        fd = os.pidfd_open(pid)  # Linux 5.3+: readable once the process has exited
    except ProcessLookupError:
        _exit_now()
    except (AttributeError, OSError):
        while True:  # no pidfd: poll
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                _exit_now()
            except OSError:
                pass
            time.sleep(0.2)
    select.select([fd], [], [])
    _exit_now()


def _worker_init(parent: int) -> None:
    """Initializer of every worker process: follow the parent in death, leave signals to it."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: killed when our forking parent dies
        except (OSError, AttributeError):
            pass
    threading.Thread(target=_watch_parent, args=(parent,), name="watch-parent", daemon=True).start()


def _run_block(fn: BlockFn, spec: Any, seed: int, stream: int, block: int, count: int,
               pass_block: bool = False) -> dict[str, np.ndarray]:
    rng = block_rng(seed, stream, block)
    return fn(spec, rng, count, block) if pass_block else fn(spec, rng, count)


def _pool_context(preload: str) -> multiprocessing.context.BaseContext:
    """Never fork: the parent may hold an open HDF5 file (or torch's threads), which a forked child
    must not inherit. A forkserver starts clean once and forks cheaply from there; having it import
    the block function's module first (numpy, OpenCV) saved 0.8 s of start-up per pool here. The
    preload only takes effect when the forkserver is not running yet."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([preload])
        return ctx
    return multiprocessing.get_context("spawn")


class WorkerDied(CoordDataError):
    """A worker process ended without returning its block (killed, out of memory, crashed); the run
    stops (a file being written is removed by its writer)."""


def _how_it_ended(exitcode: int | None) -> str:
    if exitcode is None:
        return "vanished (its pipe closed)"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"was killed by {name}"
    return f"exited with status {exitcode}"


def _worker_main(conn: Connection, parent: int) -> None:
    """A worker's life: take a job (the block function, its spec, seed and stream), then blocks of it,
    each answered with ``(block, True, arrays)`` or ``(block, False, exception)``; ``None`` ends it."""
    _worker_init(parent)
    job: tuple[Any, ...] | None = None
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        if message[0] == "job":
            job = message[1:]
            continue
        _, block, count = message
        assert job is not None, "a block before its job"
        fn, spec, seed, stream, pass_block = job
        try:
            reply: tuple[int, bool, Any] = (block, True, _run_block(fn, spec, seed, stream, block, count, pass_block))
        except Exception as e:  # the parent re-raises it
            reply = (block, False, e)
        try:
            conn.send(reply)
        except (BrokenPipeError, EOFError):
            return
        except Exception as e:  # an exception (or a result) that does not pickle
            conn.send((block, False, RuntimeError(f"block {block} failed: {type(e).__name__}: {e}")))


@dataclass
class _Worker:
    process: Any  # multiprocessing.Process
    conn: Connection
    outstanding: int = 0


class WorkerPool:
    """``size`` worker processes for a block function, each on its own pipe (see the module docstring).

    Use as a context manager (:func:`worker_pool`); :func:`generate_blocks` hands it blocks.
    """

    def __init__(self, fn: BlockFn, size: int, name: str) -> None:
        self.name = name
        self.size = size
        self._workers: list[_Worker] = []
        ctx = _pool_context(fn.__module__)
        try:
            for _ in range(size):
                ours, theirs = ctx.Pipe(duplex=True)
                process = ctx.Process(target=_worker_main, args=(theirs, os.getpid()), daemon=True)
                process.start()
                theirs.close()  # the worker's end is the worker's alone: its death is end-of-file here
                self._workers.append(_Worker(process, ours))
        except BaseException:
            self.close(kill=True)
            raise
        self._results: dict[int, tuple[bool, Any]] = {}
        self._where: dict[int, _Worker] = {}

    # -- jobs and blocks ----------------------------------------------------------------------------
    def start_job(self, fn: BlockFn, spec: Any, seed: int, stream: int, pass_block: bool) -> None:
        """Send every worker the job whose blocks follow (once, however many blocks it has)."""
        self._drain()
        for w in self._workers:
            self._send(w, ("job", fn, spec, seed, stream, pass_block))

    def submit(self, block: int, count: int) -> None:
        w = min(self._workers, key=lambda w: w.outstanding)
        self._send(w, ("block", block, count))
        w.outstanding += 1
        self._where[block] = w

    def result(self, block: int) -> dict[str, np.ndarray]:
        """The arrays of ``block`` (submitted before), waiting for them; a worker's error is raised here,
        and a worker's death is :class:`WorkerDied`."""
        while block not in self._results:
            self._receive()
        ok, value = self._results.pop(block)
        if not ok:
            raise value
        return value

    @property
    def in_flight(self) -> int:
        return sum(w.outstanding for w in self._workers)

    def _send(self, w: _Worker, message: Any) -> None:
        try:
            w.conn.send(message)
        except (BrokenPipeError, ConnectionResetError, EOFError):
            self._died(w)

    def _receive(self) -> None:
        """Take at least one reply (or find a dead worker) from the workers with blocks to return."""
        busy = {w.conn: w for w in self._workers if w.outstanding}
        if not busy:
            raise AssertionError("waiting for a block that no worker has")
        sentinels = {w.process.sentinel: w for w in busy.values()}
        for ready in wait([*busy, *sentinels]):
            w = busy.get(ready) or sentinels[ready]  # type: ignore[arg-type]
            if ready is w.process.sentinel and not w.conn.poll():
                self._died(w)
            try:
                block, ok, value = w.conn.recv()
            except (EOFError, OSError):
                self._died(w)
            w.outstanding -= 1
            self._results[block] = (ok, value)
            self._where.pop(block, None)

    def _drain(self) -> None:
        """Take (and drop) the replies of blocks nobody waited for (a generator left early)."""
        while self.in_flight:
            self._receive()
        self._results.clear()
        self._where.clear()

    def _died(self, w: _Worker) -> None:
        w.process.join(timeout=2)
        blocks = sorted(b for b, where in self._where.items() if where is w)
        doing = f" while making block {blocks[0]}" if blocks else ""
        code = w.process.exitcode
        why = " (as the out-of-memory killer and kill -9 do)" if code == -signal.SIGKILL else ""
        raise WorkerDied(f"worker process {w.process.pid} of the {self.name} {_how_it_ended(code)}{doing}{why}; "
                         "the run was stopped")

    # -- the end ------------------------------------------------------------------------------------
    def close(self, kill: bool = False) -> None:
        """Stop the workers: ask them to exit (after their blocks), or ``kill`` them at once (their
        blocks are thrown away); either way, wait until they are gone. Workers still holding blocks
        nobody will take are killed: their replies would wait for a reader forever."""
        if not kill and not self.in_flight:
            for w in self._workers:
                try:
                    w.conn.send(None)
                except OSError:
                    pass
            end = time.monotonic() + 10
            for w in self._workers:
                w.process.join(timeout=max(0.0, end - time.monotonic()))
        for w in self._workers:
            if w.process.is_alive():
                try:
                    os.kill(w.process.pid, signal.SIGKILL)  # they ignore SIGTERM: the parent decides
                except ProcessLookupError:
                    pass
        for w in self._workers:
            w.process.join(timeout=5)
            w.conn.close()
        self._workers = []


@contextmanager
def worker_pool(fn: BlockFn, workers: int, n: int | None = None, block_size: int | None = None,
                name: str | None = None) -> Iterator[WorkerPool | None]:
    """A pool of ``workers`` processes for block function ``fn`` (None when one process will do:
    ``workers <= 1``, or ``n`` samples fit one block). Share it between the splits of a file: a pool
    costs a few hundred milliseconds to start. ``name`` says whose workers they are in messages (by
    default the block function's module: ``lanes generator``). Leaving the ``with`` stops the
    workers: normally they finish and exit; after an error or an interrupt they are killed at once."""
    if n is not None and block_size is not None:
        workers = min(workers, max(1, -(-n // block_size)))
    if workers <= 1:
        yield None
        return
    label = name or fn.__module__.rsplit(".", 1)[-1].replace("_", "-") + " generator"
    pool = WorkerPool(fn, workers, label)
    try:
        yield pool
    except BaseException:
        pool.close(kill=True)
        raise
    pool.close()


def generate_blocks(
    fn: BlockFn,
    spec: Any,
    n: int,
    *,
    seed: int,
    stream: int,
    block_size: int,
    workers: int = 1,
    pool: WorkerPool | None = None,
    pass_block: bool = False,
    start: int = 0,
) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """Yield ``(start, arrays)`` for each block of ``n`` samples, in order (of samples ``start..n``
    when ``start``, a block boundary, is given: a shard of the stream, whose blocks are those of the
    whole stream, numbered and seeded alike).

    ``fn(spec, rng, count)`` must be a module-level function (workers import it) returning arrays
    whose first axis has ``count`` samples. ``stream`` separates independent sequences drawn from
    one seed (for example the train and test splits). Blocks run in ``pool`` when given (see
    :func:`worker_pool`), else in a pool of ``workers`` made for this call, else here.
    ``pass_block``: call ``fn(spec, rng, count, block)`` with the block's index too.
    A worker that dies raises :class:`WorkerDied`.
    """
    if block_size < 1:
        raise ValueError(f"block size must be at least 1, got {block_size}")
    first = start // block_size
    ranges = block_ranges(n, block_size, start)  # checks start
    if pool is None and workers > 1 and n - start > block_size:
        with worker_pool(fn, workers, n - start, block_size) as own:
            yield from generate_blocks(fn, spec, n, seed=seed, stream=stream, block_size=block_size, pool=own,
                                       pass_block=pass_block, start=start)
        return
    if pool is None or n - start <= block_size:
        for b, (at, stop) in enumerate(ranges, first):
            yield at, _run_block(fn, spec, seed, stream, b, stop - at, pass_block)
        return
    in_flight = 2 * pool.size
    pool.start_job(fn, spec, seed, stream, pass_block)
    pending: list[tuple[int, int]] = []  # (block, start), in order
    for b, (at, stop) in enumerate(ranges, first):
        pool.submit(b, stop - at)
        pending.append((b, at))
        if len(pending) >= in_flight:
            done, where = pending.pop(0)
            yield where, pool.result(done)
    while pending:
        done, where = pending.pop(0)
        yield where, pool.result(done)
