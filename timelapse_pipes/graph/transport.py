"""How a batch crosses from a process worker to the loader: small tensors inline, large ones shared.

torch's multiprocessing pickler moves every tensor through a shared-memory segment of its own (a
file descriptor sent over a socket, mapped on the other side): right for a batch's pixels of many
megabytes, but about half a millisecond per tensor, and a batch has seven or so small field
tensors (``T``, ``C``, ``sample_index``...). :func:`pack` wraps each tensor under
``SHARED_MIN_BYTES`` so it is pickled inline with the batch (as numpy bytes); :func:`unpack`, in
the loader's process, turns them back into the same tensors (dtype, shape and values). Tensor
subclasses (MONAI's ``MetaTensor``) and dtypes numpy lacks cross as before.

A large tensor over a buffer of the worker's :class:`~timelapse_pipes.stages.shared_buffers.SharedBufferRing`
crosses as a :class:`Lease`: :func:`unpack` hands that buffer back to the worker (clears its flag)
once the last tensor over it in the loader's process is freed, so the worker refills a segment it
already maps instead of faulting in a new one per batch.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import torch

from ..stages.shared_buffers import FREE, SharedBufferRing

__all__ = ["pack", "unpack", "Inline", "Lease", "SHARED_MIN_BYTES"]

SHARED_MIN_BYTES = 1 << 20  # tensors this large or larger keep torch's shared-memory path


class Inline:
    """A tensor's values as a numpy array, pickled with the batch (see the module docstring)."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def __reduce__(self) -> tuple[Any, ...]:
        return (Inline, (self.array,))


class Lease:
    """A tensor over buffer ``slot`` of a worker's ring, with the ring's shared ``flags``."""

    __slots__ = ("tensor", "flags", "slot")

    def __init__(self, tensor: torch.Tensor, flags: torch.Tensor, slot: int) -> None:
        self.tensor, self.flags, self.slot = tensor, flags, slot

    def __reduce__(self) -> tuple[Any, ...]:
        return (Lease, (self.tensor, self.flags, self.slot))


def _hand_back(flags: np.ndarray, slot: int) -> None:
    flags[slot] = FREE


def _returned(lease: Lease) -> torch.Tensor:
    """The leased tensor, its buffer handed back to the worker when its storage is freed."""
    finalizer = weakref.finalize(lease.tensor.untyped_storage(), _hand_back, lease.flags.numpy(), lease.slot)
    finalizer.atexit = False  # at exit nobody refills the buffer
    return lease.tensor


def _lease(value: Any, ring: SharedBufferRing | None) -> Any:
    slot = ring.send(value) if ring is not None and type(value) is torch.Tensor else None
    return _inline(value) if slot is None else Lease(value, ring.flags, slot)  # type: ignore[union-attr]


def _inline(value: Any) -> Any:
    if type(value) is not torch.Tensor or value.nbytes >= SHARED_MIN_BYTES or value.requires_grad:
        return value
    try:
        return Inline(value.numpy())
    except TypeError:  # a dtype numpy lacks (bfloat16...): torch's own path
        return value


def pack(batch: Any, ring: SharedBufferRing | None = None) -> Any:
    """``batch`` (a dict) with its small plain tensors wrapped to be pickled inline, and those over
    ``ring``'s buffers lent."""
    if not isinstance(batch, dict):
        return batch
    return {key: _lease(value, ring) for key, value in batch.items()}


def unpack(batch: Any) -> Any:
    """The batch :func:`pack` was given: wrapped values back to tensors (sharing the arrays' memory)."""
    if not isinstance(batch, dict):
        return batch
    return {key: torch.from_numpy(value.array) if isinstance(value, Inline)
            else _returned(value) if isinstance(value, Lease) else value
            for key, value in batch.items()}
