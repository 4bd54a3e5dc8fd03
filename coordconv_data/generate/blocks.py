"""Generate samples in fixed blocks, serially or in worker processes, with identical results.

A dataset of ``n`` samples is cut into blocks of ``block_size`` samples; block ``b`` of stream ``s``
draws from its own generator, seeded by ``SeedSequence(seed, spawn_key=(s, b))``. The block size is
part of a dataset's parameters (recorded in the file), never derived from the worker count or the
HDF5 chunking, so the same seed and parameters give the same arrays however many workers run.
Within a block a generator can work on all samples at once (vectorised), which is where the speed
comes from.

Blocks come back in order. At most ``2 * workers`` blocks are in flight and blocks are counted,
never listed, so memory stays flat however large ``n`` is.

Worker processes end with the process that started them, however it ends: each worker watches
its parent (a pidfd where Linux has one, otherwise by polling) and exits when it is gone, and asks
the kernel to kill it when the forkserver that forked it dies (``PR_SET_PDEATHSIG``). Workers ignore
SIGINT, SIGTERM and SIGHUP: the parent decides (it stops the pool and removes its partial file).
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
from collections import deque
from contextlib import contextmanager
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Callable, Iterator

import numpy as np

BlockFn = Callable[[Any, np.random.Generator, int], dict[str, np.ndarray]]


def block_rng(seed: int, stream: int, block: int) -> np.random.Generator:
    """The generator of one block: independent of every other block and of how blocks are scheduled."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(stream, block))))


def block_ranges(n: int, block_size: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of each block, lazily (a list of every block of a huge ``n`` would not fit)."""
    if block_size < 1:
        raise ValueError(f"block size must be at least 1, got {block_size}")
    return ((start, min(n, start + block_size)) for start in range(0, n, block_size))


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


@contextmanager
def worker_pool(fn: BlockFn, workers: int, n: int | None = None, block_size: int | None = None
                ) -> Iterator[ProcessPoolExecutor | None]:
    """A pool of ``workers`` processes for block function ``fn`` (None when one process will do:
    ``workers <= 1``, or ``n`` samples fit one block). Share it between the splits of a file: a pool
    costs a few hundred milliseconds to start. Leaving the ``with`` stops the workers."""
    if n is not None and block_size is not None:
        workers = min(workers, max(1, -(-n // block_size)))
    if workers <= 1:
        yield None
        return
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=_pool_context(fn.__module__),
                               initializer=_worker_init, initargs=(os.getpid(),))
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def generate_blocks(
    fn: BlockFn,
    spec: Any,
    n: int,
    *,
    seed: int,
    stream: int,
    block_size: int,
    workers: int = 1,
    pool: ProcessPoolExecutor | None = None,
    pass_block: bool = False,
) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """Yield ``(start, arrays)`` for each block of ``n`` samples, in order.

    ``fn(spec, rng, count)`` must be a module-level function (workers import it) returning arrays
    whose first axis has ``count`` samples. ``stream`` separates independent sequences drawn from
    one seed (for example the train and test splits). Blocks run in ``pool`` when given (see
    :func:`worker_pool`), else in a pool of ``workers`` made for this call, else here.
    ``pass_block``: call ``fn(spec, rng, count, block)`` with the block's index too.
    """
    if block_size < 1:
        raise ValueError(f"block size must be at least 1, got {block_size}")
    if pool is None and workers > 1 and n > block_size:
        with worker_pool(fn, workers, n, block_size) as own:
            yield from generate_blocks(fn, spec, n, seed=seed, stream=stream, block_size=block_size, pool=own,
                                       pass_block=pass_block)
        return
    if pool is None or n <= block_size:
        for b, (start, stop) in enumerate(block_ranges(n, block_size)):
            yield start, _run_block(fn, spec, seed, stream, b, stop - start, pass_block)
        return
    in_flight = 2 * pool._max_workers
    pending: deque[tuple[int, Future]] = deque()
    try:
        for b, (start, stop) in enumerate(block_ranges(n, block_size)):
            pending.append((start, pool.submit(_run_block, fn, spec, seed, stream, b, stop - start, pass_block)))
            if len(pending) >= in_flight:
                first, fut = pending.popleft()
                yield first, fut.result()
        while pending:
            first, fut = pending.popleft()
            yield first, fut.result()
    finally:
        for _, fut in pending:
            fut.cancel()
