"""The dask cluster an index is built on: the caller's client, a scheduler address, or a LocalCluster.

Indexing is latency bound (one or a few storage round trips per file), so the local cluster runs
one worker process per CPU with several threads each. Worker processes start with ``spawn`` (dask's
default; a configured ``fork`` is overridden): a forked child of a process that ran threaded dask
work, or of one using s3fs, can deadlock. The caller's own process runs no dask computation.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Iterator

from ..errors import ConfigError

__all__ = ["dask_client", "DEFAULT_THREADS_PER_WORKER", "CONNECT_TIMEOUT_S"]

DEFAULT_THREADS_PER_WORKER = 4
CONNECT_TIMEOUT_S = 60
SAFE_START_METHODS = ("spawn", "forkserver")
START_METHOD_KEY = "distributed.worker.multiprocessing-method"


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ConfigError(
            "building an index needs dask.distributed; run `pip install 'timelapse-pipes[cluster]'` "
            "(or `pip install 'dask[distributed]'`)."
        ) from None
    return distributed


@contextmanager
def dask_client(client: Any = None, scheduler: str | None = None, *, n_workers: int | None = None,
                threads_per_worker: int | None = None) -> Iterator[Any]:
    """Yield a ``distributed.Client``: ``client`` as is, one connected to ``scheduler``, or a new
    ``LocalCluster`` sized to the machine. Whatever this function started, it closes."""
    if client is not None:
        if scheduler is not None:
            raise ConfigError("give client= or scheduler=, not both.")
        yield client
        return
    distributed = _distributed()
    if scheduler is not None:
        try:
            connected = distributed.Client(scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
        except OSError as error:
            raise ConfigError(
                f"no dask scheduler answered at {scheduler!r} within {CONNECT_TIMEOUT_S} s ({error}); start one "
                f"(`dask scheduler`, dask-jobqueue, dask-kubernetes) or drop --scheduler to use a local cluster."
            ) from None
        try:
            yield connected
        finally:
            connected.close()
        return
    import dask

    method = dask.config.get(START_METHOD_KEY, "spawn")
    with dask.config.set({START_METHOD_KEY: method if method in SAFE_START_METHODS else "spawn"}):
        cluster = distributed.LocalCluster(
            n_workers=n_workers or os.cpu_count() or 1,
            threads_per_worker=threads_per_worker or DEFAULT_THREADS_PER_WORKER,
            processes=True, dashboard_address=None, host="127.0.0.1")
    local = distributed.Client(cluster, set_as_default=False)
    try:
        yield local
    finally:
        local.close()
        cluster.close()
