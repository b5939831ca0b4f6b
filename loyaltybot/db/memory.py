"""Give freed memory back to the system after a big piece of work (Linux with glibc).

A tick of a million viewers frees a few hundred megabytes of short-lived rows, JSON and
SQLite sorter pages. glibc keeps freed pages that sit between live ones for the process,
so the daemon would stay at its peak; ``malloc_trim(0)`` returns them (a million-viewer
tick: 560 MB -> 330 MB resident, see BENCHMARKS.md). Where there is no glibc, nothing.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the C library the process runs on
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to call
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM = _malloc_trim()
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def give_back() -> bool:
    """Return freed heap pages to the system; True if any were returned."""
    return _TRIM is not None and bool(_TRIM(0))


def resident_bytes() -> int:
    """This process's resident memory (Linux), or 0 where it cannot be read."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0

