"""One decode-thread budget per process, and the pool that spends it.

A sample's chunks (OME-Zarr) or pages (TIFF) are decoded in parallel: the reading thread decodes
too, helped by up to ``decode_threads() - 1`` threads of a process-wide pool. The budget is

    decode threads per reading worker = max(1, usable CPUs // max(1, num_workers))

so ``num_workers`` workers (threads or processes) times their decode threads never exceed the
cores: ``num_workers=0`` decodes on every core, 2 workers on 2 cores decode one chunk at a time
each. ``configure`` sets it; the environment variable ``TIMELAPSE_PIPES_DECODE_THREADS`` overrides
it; an unconfigured process worker (a child process) uses one thread, which never oversubscribes.

tensorstore (the local zarr reader when installed, :mod:`.tensorstore`) decodes on its own thread
pools instead of this one, sized by the same rule: one ``tensorstore.Context`` per process whose
``data_copy_concurrency`` and ``file_io_concurrency`` are both limited to

    process_threads() = decode_threads() * reading threads sharing this process

which is what this pool plus its reading threads amount to: ``num_workers=0`` gets every core,
``num_workers`` thread workers share one context of ``decode_threads() * num_workers`` (about the
cores), a process worker one of ``decode_threads()``. The reading thread only waits on tensorstore.

``TIMELAPSE_PIPES_FAST_DECODE=0`` turns the library's own decoders and tensorstore off (zarr-python
and tifffile's zarr store read everything, as before they existed), for comparison or as a safety
switch.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Sequence

__all__ = ["configure", "decode_threads", "process_threads", "budget", "usable_cpus", "run_all", "fast_decoders",
           "ENV_VAR", "FAST_ENV_VAR"]

ENV_VAR = "TIMELAPSE_PIPES_DECODE_THREADS"
FAST_ENV_VAR = "TIMELAPSE_PIPES_FAST_DECODE"

_lock = threading.Lock()
_threads: int | None = None  # per reading worker, set by configure()
_readers = 1  # reading threads in this process that share the pool
_pool: ThreadPoolExecutor | None = None
_pool_size = 0


def fast_decoders() -> bool:
    """Whether the library's chunk and page decoders are on (``TIMELAPSE_PIPES_FAST_DECODE`` is not 0)."""
    return os.environ.get(FAST_ENV_VAR, "1").strip().lower() not in ("0", "false", "no", "off")


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, else the CPU count)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def budget(num_workers: int, cpus: int | None = None) -> int:
    """Decode threads per reading worker: ``max(1, cpus // max(1, num_workers))``."""
    return max(1, (cpus or usable_cpus()) // max(1, num_workers))


def configure(num_workers: int = 0, worker_method: str = "thread", *, threads: int | None = None) -> int:
    """Set this process's budget for a loader with ``num_workers`` workers; returns the threads per worker.

    Call it in the main process and in each process worker. ``threads`` forces a count (1 turns
    parallel decoding off). Thread workers share one pool of ``(threads - 1) * num_workers`` helpers.
    """
    global _threads, _readers
    if num_workers < 0 or (threads is not None and threads < 1):
        raise ValueError(f"num_workers={num_workers} must be >= 0 and threads={threads} >= 1")
    with _lock:
        _threads = threads if threads is not None else budget(num_workers)
        _readers = max(1, num_workers) if worker_method == "thread" else 1
        return _threads


def decode_threads() -> int:
    """Threads one read may decode on: the environment variable, else the configured or default budget."""
    forced = os.environ.get(ENV_VAR, "").strip()
    if forced:
        try:
            return max(1, int(forced))
        except ValueError:
            raise ValueError(f"{ENV_VAR}={forced!r} is not a positive integer") from None
    if _threads is not None:
        return _threads
    if multiprocessing.parent_process() is not None:  # an unconfigured worker process: stay serial
        return 1
    return budget(0)


def process_threads() -> int:
    """Threads this process's reads may decode on at once: ``decode_threads()`` per reading thread."""
    return decode_threads() * _readers


def _helpers() -> ThreadPoolExecutor | None:
    """The shared pool of ``(decode_threads() - 1) * readers`` helper threads (rebuilt when the budget changes)."""
    global _pool, _pool_size
    size = max(0, (decode_threads() - 1) * _readers)
    with _lock:
        if size != _pool_size or (_pool is None and size):
            if _pool is not None:
                _pool.shutdown(wait=False)  # running jobs finish; their callers wait for them
            _pool = ThreadPoolExecutor(size, thread_name_prefix="timelapse-decode") if size else None
            _pool_size = size
        return _pool


def run_all(jobs: Sequence[Callable[[], None]]) -> None:
    """Run every job, on this thread and up to ``decode_threads() - 1`` pool threads; re-raise the first error.

    Returns only when every job has finished, so no helper writes into an output after the read.
    """
    count = min(decode_threads(), len(jobs))
    pool = _helpers() if count > 1 else None
    if pool is None:
        for job in jobs:
            job()
        return
    pending = iter(jobs)
    take = threading.Lock()
    errors: list[BaseException] = []

    def drain() -> None:
        while True:
            with take:
                job = next(pending, None)
            if job is None:
                return
            try:
                job()
            except BaseException as exc:  # kept, raised by the caller after every job ended
                errors.append(exc)

    futures = [pool.submit(drain) for _ in range(count - 1)]
    drain()
    for future in futures:
        future.result()
    if errors:
        raise errors[0]


def _after_fork() -> None:
    """Pool threads do not survive a fork: the child starts without a pool, and unconfigured (one
    decode thread until it calls ``configure``), as it would under spawn or forkserver."""
    global _pool, _pool_size, _lock, _threads, _readers
    _pool, _pool_size, _lock, _threads, _readers = None, 0, threading.Lock(), None, 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
