"""Process-worker safety: which start method to use and what the forkserver preloads.

Forking a parent that has run a threaded dask compute deadlocks the child, and s3fs is not fork
safe, so process workers default to ``forkserver``: a clean server process, started once, from
which workers fork with torch, bioio and its plugins already imported, so each epoch's workers
start without importing them again. Reads inside workers always use dask's
synchronous scheduler, so even an explicit ``fork`` context does not deadlock.
"""

from __future__ import annotations

import multiprocessing

__all__ = ["preload_forkserver", "PRELOAD_MODULES"]

PRELOAD_MODULES = ["timelapse_pipes", "timelapse_pipes.graph._worker_preload"]


def preload_forkserver() -> None:
    """Ask the forkserver (if not started yet) to import the readers once for all workers."""
    multiprocessing.get_context("forkserver").set_forkserver_preload(PRELOAD_MODULES)
