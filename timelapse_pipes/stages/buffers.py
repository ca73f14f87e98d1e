"""Batch pixel buffers reused once nothing refers to them any more.

A full-frame batch is tens of megabytes, which the allocator maps fresh for every batch; filling it
then costs one page fault per 4 KB page, measured at about half the CPU of a 16x512x512 full-frame
batch on this project's benchmark machine. :class:`RecycledBuffers` hands out tensors over buffers
it keeps, and reuses a buffer only when no tensor, view or array made from it is alive (its
reference count is back to the pool's own), so a batch the caller still holds is never written.
"""

from __future__ import annotations

import math
import sys
import threading
from typing import Any

import numpy as np
import torch

__all__ = ["RecycledBuffers"]

_POOL_ONLY = 2  # sys.getrefcount of a buffer only the pool's list holds (the list, and the call's argument)


class RecycledBuffers:
    """``(shape, dtype) -> tensor``: over a kept buffer nothing else uses, else a new one (kept while
    fewer than ``keep`` are)."""

    def __init__(self, keep: int = 8) -> None:
        self.keep = keep
        self._buffers: list[np.ndarray] = []  # raw uint8 buffers, each possibly behind a live tensor
        self._lock = threading.Lock()  # thread workers share the assembler

    def __call__(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        nbytes = math.prod(shape) * dtype.itemsize
        with self._lock:  # a buffer is taken (its count raised) before another thread looks
            free = [k for k in range(len(self._buffers)) if sys.getrefcount(self._buffers[k]) == _POOL_ONLY]
            for k in free:
                if self._buffers[k].nbytes == nbytes:
                    return _over(self._buffers[k], shape, dtype)
            if free and len(self._buffers) >= self.keep:  # full: a free buffer of another size makes room
                del self._buffers[free[0]]
            buffer = np.empty(max(nbytes, 1), dtype=np.uint8)
            if len(self._buffers) < self.keep:
                self._buffers.append(buffer)
            return _over(buffer, shape, dtype)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled (into a process worker) as a new, empty pool."""
        return (RecycledBuffers, (self.keep,))


def _over(buffer: np.ndarray, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """A tensor of ``shape`` and ``dtype`` over the start of ``buffer`` (which it keeps referenced)."""
    nbytes = math.prod(shape) * dtype.itemsize
    return torch.from_numpy(buffer[:nbytes]).view(dtype).view(shape)
