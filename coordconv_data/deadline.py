"""A deadline for stopping after a signal, whatever the main thread is doing.

Python runs a signal's handler in the main thread between bytecodes, so a command busy inside one long
C call (a convolution's backward pass, an HDF5 read) only sees Ctrl-C when that call returns: a
training step of the Lanes FCN took 0.4-0.7 s here. :class:`SignalDeadline` watches the signals from a
thread instead (through :func:`signal.set_wakeup_fd`, which the interpreter writes to the moment a
signal arrives, in C) and, if the process has not ended ``grace`` seconds later, calls ``expire(signum)``
from that thread: the caller removes what it must not leave behind and ends the process.

Imports nothing but the standard library.
"""

from __future__ import annotations

import os
import select
import signal
import threading
from typing import Callable

__all__ = ["SignalDeadline"]


class SignalDeadline:
    """While entered (in the main thread): ``grace`` seconds after the first of ``signals`` arrives,
    unless :meth:`cancel` was called, ``expire(signum)`` runs in a watcher thread."""

    def __init__(self, grace: float, expire: Callable[[int], None],
                 signals: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)) -> None:
        self.grace, self.expire, self.signals = grace, expire, set(signals)
        self._cancelled = threading.Event()
        self._previous: int | None = None
        self._thread: threading.Thread | None = None
        self._fds: tuple[int, int, int, int] | None = None

    def __enter__(self) -> "SignalDeadline":
        if threading.current_thread() is not threading.main_thread():
            return self  # only the main thread may set the wakeup fd (and receives signals)
        wake_r, wake_w = os.pipe()
        stop_r, stop_w = os.pipe()
        os.set_blocking(wake_w, False)
        try:
            self._previous = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        except ValueError:
            for fd in (wake_r, wake_w, stop_r, stop_w):
                os.close(fd)
            return self
        self._fds = (wake_r, wake_w, stop_r, stop_w)
        self._thread = threading.Thread(target=self._watch, name="signal-deadline", daemon=True)
        self._thread.start()
        return self

    def cancel(self) -> None:
        """The process is ending by itself: the deadline will not expire."""
        self._cancelled.set()

    def _watch(self) -> None:
        assert self._fds is not None
        wake_r, _, stop_r, _ = self._fds
        while True:
            ready, _, _ = select.select([wake_r, stop_r], [], [])
            if stop_r in ready:
                return
            for byte in os.read(wake_r, 64):
                if byte in self.signals:
                    if not self._cancelled.wait(self.grace):
                        self.expire(byte)
                    return

    def __exit__(self, *exc: object) -> None:
        if self._fds is None:
            return
        wake_r, wake_w, stop_r, stop_w = self._fds
        signal.set_wakeup_fd(self._previous if self._previous is not None else -1)
        self.cancel()
        os.write(stop_w, b"x")
        assert self._thread is not None
        self._thread.join(timeout=self.grace + 1)
        for fd in (wake_r, wake_w, stop_r, stop_w):
            os.close(fd)
        self._fds = None
