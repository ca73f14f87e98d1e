"""A process worker's batch pixel buffers, in shared memory, reused once the loader's process lets go.

A process worker assembles each batch straight into shared memory, so only a file descriptor
crosses to the loader's process. A fresh segment per batch, though, costs the worker one page
fault per 4 KB page (measured at about 38 ms of CPU per 64 MB batch, against 5 ms to refill a
segment it already maps). The worker cannot see when the loader's process drops a batch, so each
buffer it lends has a byte in a small shared ``flags`` array: the worker sets it when it lends
the buffer, and the loader's process clears it when the last tensor over that buffer is freed
(:func:`timelapse_pipes.graph.transport.unpack` attaches that finalizer). A buffer whose byte is
set is never written. Tensors under ``min_bytes`` are plain (they cross pickled inline, copied).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .._compat import shared_tensor

__all__ = ["FREE", "LENT", "SharedBufferRing"]

FREE = 0  # the buffer may be written
LENT = 1  # a tensor over the buffer is in a batch on its way to, or held by, the loader's process


class SharedBufferRing:
    """``(shape, dtype) -> tensor`` in shared memory: over a kept buffer whose flag is clear, else
    over a new one (kept while fewer than ``keep`` are); under ``min_bytes``, a plain tensor."""

    def __init__(self, keep: int = 8, min_bytes: int = 0) -> None:
        self.keep = keep
        self.min_bytes = min_bytes
        self._flags: torch.Tensor | None = None  # created on first use, in the worker
        self._buffers: list[torch.Tensor] = []  # flat uint8 tensors in shared memory; index = flag
        self._unsent: set[int] = set()  # lent for a batch that has not been packed yet

    @property
    def flags(self) -> torch.Tensor:
        """One byte per kept buffer, in shared memory: :data:`LENT` or :data:`FREE`."""
        if self._flags is None:
            self._flags = shared_tensor((self.keep,), torch.uint8).zero_()
        return self._flags

    def __call__(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes < self.min_bytes:
            return torch.empty(shape, dtype=dtype)
        flags = self.flags.numpy()
        free = [k for k in range(len(self._buffers)) if flags[k] == FREE]
        for k in free:
            if self._buffers[k].numel() == nbytes:
                return self._lend(k, shape, dtype)
        if free and len(self._buffers) >= self.keep:  # full: a free buffer of another size makes room
            self._buffers[free[0]] = shared_tensor((nbytes,), torch.uint8)
            return self._lend(free[0], shape, dtype)
        if len(self._buffers) < self.keep:
            self._buffers.append(shared_tensor((nbytes,), torch.uint8))
            return self._lend(len(self._buffers) - 1, shape, dtype)
        return shared_tensor(shape, dtype)  # every kept buffer is out: one of its own, not kept

    def _lend(self, k: int, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        self.flags.numpy()[k] = LENT
        self._unsent.add(k)
        return self._buffers[k].view(dtype).view(shape)

    def send(self, tensor: torch.Tensor) -> int | None:
        """The index of the kept buffer under ``tensor`` (now on its way out), or None if none is."""
        if not isinstance(tensor, torch.Tensor) or tensor.device.type != "cpu":
            return None
        where = tensor.untyped_storage().data_ptr()
        for k, buffer in enumerate(self._buffers):
            if k in self._unsent and buffer.data_ptr() == where:
                self._unsent.discard(k)
                return k
        return None

    def reclaim_unsent(self) -> None:
        """Free the buffers lent for a batch that was never sent (its assembly raised)."""
        flags = self.flags.numpy()
        for k in self._unsent:
            flags[k] = FREE
        self._unsent.clear()

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled (into a process worker) as a new, empty ring."""
        return (SharedBufferRing, (self.keep, self.min_bytes))
