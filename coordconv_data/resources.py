"""What this machine has, in the one way sizes are shown everywhere (binary units).

Imports nothing but the standard library, so that the models (which know nothing of files), the
writer and the command line can all size things before allocating them.
"""

from __future__ import annotations

import os

__all__ = ["format_bytes", "memory_bytes"]


def format_bytes(n: float) -> str:
    """Bytes in binary units, the one way sizes are shown everywhere: ``812 B``, ``9.2 MiB``, ``1.4 GiB``."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")


def _cgroup_limit() -> int | None:
    """The memory limit of this process's control group (v2, then v1), if it has one."""
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:  # v1 says "no limit" with a huge number
            return int(text)
    return None


def memory_bytes() -> int | None:
    """The memory this process may use at most: the machine's RAM, or its control group's limit when
    lower; None where neither can be read."""
    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        physical = None
    limits = [v for v in (physical, _cgroup_limit()) if v]
    return min(limits) if limits else None
