"""Every use of a dependency's private API, in one place.

Each function here reaches into something a dependency does not promise to keep (a private
attribute of a bioio plugin, zarr or torchdata). Callers get a plain answer or ``None``, and fall
back to the public path when a dependency's layout changes; when one breaks, this file is the only
one to read.
"""

from __future__ import annotations

import contextlib
import math
from typing import Any, Iterator

import torch
from torchdata.nodes.loader import LoaderIterator

__all__ = ["LoaderIterator", "bioio_reader", "close_nd2_handle", "iterator_num_yielded", "node_children",
           "ome_zarr_array", "open_nd2", "shared_tensor", "shutdown_node"]


def ome_zarr_array(reader: Any) -> tuple[Any, str] | None:
    """bioio-ome-zarr's zarr array at the reader's current scene and level, with its axis letters."""
    try:
        multiscales = reader._multiscales_metadata[reader._current_scene_index]
        path = multiscales["datasets"][reader._current_resolution_level]["path"]
        return reader._zarr[path], "".join(reader._get_ome_dims()).upper()
    except Exception:  # the private layout changed: the caller uses the dask path
        return None


def bioio_reader(image: Any) -> Any:
    """The plugin reader behind a ``BioImage``, without creating one that is not there yet."""
    return getattr(image, "_reader", None) or getattr(image, "reader", None)


def close_nd2_handle(reader: Any) -> None:
    """Close the ``ND2File`` bioio-nd2 keeps open for a remote (staged) file, if any."""
    handle = getattr(reader, "_nd2", None)
    if handle is not None:
        handle.close()
        reader._nd2 = None


@contextlib.contextmanager
def open_nd2(reader: Any) -> Iterator[Any]:
    """bioio-nd2's own (local or staged) ``ND2File`` for the reader's file."""
    with reader._open_nd2() as handle:
        yield handle


def iterator_num_yielded(iterator: LoaderIterator) -> int:
    """How many items a torchdata ``Loader`` iterator has yielded so far."""
    return int(iterator._num_yielded)


def shutdown_node(node: Any) -> None:
    """Stop a torchdata node's threads or processes now, rather than when it is collected."""
    stop = getattr(node, "_shutdown", None)
    if callable(stop):
        stop()


def node_children(node: Any) -> list[Any]:
    """What a torchdata node holds that may own threads: its source and its inner iterator."""
    return [getattr(node, "source", None), getattr(node, "_it", None)]


def shared_tensor(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised CPU tensor allocated in shared memory, as torch's DataLoader workers collate
    into (``_new_shared``): sent to another process, only its file descriptor travels. Without that
    API, a new tensor moved there with ``share_memory_()`` (one copy)."""
    try:
        storage = torch.UntypedStorage._new_shared(math.prod(shape) * dtype.itemsize)
        return torch.empty(0, dtype=dtype).set_(storage, 0, shape)
    except Exception:  # the private API changed
        return torch.empty(shape, dtype=dtype).share_memory_()
