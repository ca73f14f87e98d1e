"""Loaders still open at interpreter exit close themselves.

A loop that breaks out of a loader with workers leaves batches in flight in the workers' threads.
If the program then ends without ``close()``, those threads are still reading (native code:
tensorstore, decoders) while the interpreter shuts down, and the process can die with "terminate
called without an active exception". Every loader that starts a graph is tracked here through a
weak reference (tracking keeps nothing alive); an ``atexit`` hook closes those still open, before
the interpreter tears down. ``close()`` untracks its loader, so the hook never closes one twice.
"""

from __future__ import annotations

import atexit
import weakref
from typing import Protocol

__all__ = ["close_open_loaders", "track", "untrack"]


class Closable(Protocol):
    def close(self) -> None: ...


_open: "weakref.WeakSet[Closable]" = weakref.WeakSet()
_hooked = False


def track(loader: Closable) -> None:
    """Close ``loader`` at interpreter exit unless it is closed (or collected) first.

    The hook is registered on first use: ``atexit`` runs the latest first, so it runs before the
    exit hooks of the libraries the loader's graph started with (multiprocessing's among them)."""
    global _hooked
    if not _hooked:
        atexit.register(close_open_loaders)
        _hooked = True
    _open.add(loader)


def untrack(loader: Closable) -> None:
    """``loader`` was closed: nothing left for the exit hook."""
    _open.discard(loader)


def close_open_loaders() -> None:
    """Close every tracked loader (the ``atexit`` hook); one that fails to close does not stop the others."""
    for loader in list(_open):
        try:
            loader.close()
        except Exception:  # noqa: BLE001 - at exit, a failed close must not hide the others
            pass
