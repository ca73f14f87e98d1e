"""How a batch crosses from a process worker to the loader: small tensors inline, large ones shared.

torch's multiprocessing pickler moves every tensor through a shared-memory segment of its own (a
file descriptor sent over a socket, mapped on the other side): right for a batch's pixels of many
megabytes, but about half a millisecond per tensor, and a batch has seven or so small field
tensors (``T``, ``C``, ``sample_index``...). :func:`pack` wraps each tensor under
``SHARED_MIN_BYTES`` so it is pickled inline with the batch (as numpy bytes); :func:`unpack`, in
the loader's process, turns them back into the same tensors (dtype, shape and values). Tensor
subclasses (MONAI's ``MetaTensor``) and dtypes numpy lacks cross as before.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["pack", "unpack", "SHARED_MIN_BYTES"]

SHARED_MIN_BYTES = 1 << 20  # tensors this large or larger keep torch's shared-memory path


class Inline:
    """A tensor's values as a numpy array, pickled with the batch (see the module docstring)."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def __reduce__(self) -> tuple[Any, ...]:
        return (Inline, (self.array,))


def _inline(value: Any) -> Any:
    if type(value) is not torch.Tensor or value.nbytes >= SHARED_MIN_BYTES or value.requires_grad:
        return value
    try:
        return Inline(value.numpy())
    except TypeError:  # a dtype numpy lacks (bfloat16...): torch's own path
        return value


def pack(batch: Any) -> Any:
    """``batch`` (a dict) with its small plain tensors wrapped to be pickled inline."""
    if not isinstance(batch, dict):
        return batch
    return {key: _inline(value) for key, value in batch.items()}


def unpack(batch: Any) -> Any:
    """The batch :func:`pack` was given: wrapped values back to tensors (sharing the arrays' memory)."""
    if not isinstance(batch, dict):
        return batch
    return {key: torch.from_numpy(value.array) if isinstance(value, Inline) else value
            for key, value in batch.items()}
