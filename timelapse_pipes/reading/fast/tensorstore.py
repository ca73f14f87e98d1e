"""Zarr arrays read by tensorstore (extra ``[fast]``): one open store per image, one call per read.

Local arrays through its ``file`` driver; arrays in S3 through its own ``s3`` driver, with the
endpoint and credentials the manifest's storage options gave s3fs (:mod:`.object_store`); arrays in
GCS through its ``gcs`` driver, at gcsfs's endpoint and only where it signs as gcsfs would
(:mod:`.gcs`).

tensorstore decodes a zarr v2 or v3 array (sharded or not, any codec it knows) on its own C++
thread pools. Measured on 2 cores: it reads sharded arrays about 1.8x faster than ``zarrs`` and every local array 2 to 5x faster than
zarr-python, and reads of many small chunks up to 3x faster than the library's chunk decoder
(:mod:`.zarr`); but each read costs it about 0.15 ms more, and its two threads decode big chunks
(512 KB and more) 1.0 to 1.3x slower, so reads of few chunks, and reads that use most of each big
chunk they touch, stay with the chunk decoder where that applies (:meth:`TensorStoreArray.by_chunks`).

One ``TensorStore`` is opened per open image (the reader cache keeps one open image per file,
scene, level and thread reading it at once, and hands it to the next thread, the next epoch's
workers included), on a ``tensorstore.Context`` shared by every store of this process whose
``data_copy_concurrency`` and ``file_io_concurrency`` follow the decode-thread budget
(:func:`.threads.process_threads`). A read is one call: the timepoints (in any order) and channels
as index arrays, the region as slices, written straight into a view of ``out`` (into a reused
buffer, then cast by NumPy, when ``out`` has another dtype).

Refused, and read by the previous fast paths instead: tensorstore not installed, an array that is
neither local nor in S3 or GCS with options tensorstore can take as they are
(:class:`.object_store.Unmapped`: zarr-python reads it over s3fs or gcsfs), one tensorstore cannot
open (a codec, filter or fill value it does not accept), a dtype other than bool / int / uint /
float, a shape that is not zarr-python's, and any use in a process forked from one that has used
tensorstore (its threads do not survive a fork, and tensorstore aborts the child rather than hang).
"""

from __future__ import annotations

import logging
import math
import os
import threading
from typing import Any, Sequence

import numpy as np

from ...records import AXES
from .base import local_folder
from .chunked import ChunkedSource, check_out, read_chunked, scratch, wanted_indices
from .gcs import gcs_kvstore
from .object_store import Unmapped, remote_location, s3_kvstore
from .threads import process_threads

__all__ = ["TensorStoreArray", "context", "tensorstore_installed", "tensorstore_usable"]

logger = logging.getLogger("timelapse_pipes")
_lock = threading.Lock()
_contexts: dict[int, Any] = {}
_used = False  # tensorstore has run in this process: a forked child must not use it
_forked_after_use = False

# tensorstore's status codes (the start of its error messages) that name an I/O failure, not bad data
_IO_ERRORS: dict[str, type[OSError]] = {
    "NOT_FOUND": FileNotFoundError, "PERMISSION_DENIED": PermissionError, "UNAVAILABLE": OSError,
    "DEADLINE_EXCEEDED": TimeoutError, "ABORTED": OSError, "RESOURCE_EXHAUSTED": OSError, "UNKNOWN": OSError,
}


def tensorstore_installed() -> bool:
    """Whether the ``tensorstore`` package (the ``[fast]`` extra) can be imported."""
    try:
        import tensorstore  # noqa: F401
    except Exception:  # absent, or built for another NumPy (an AttributeError at import)
        return False
    return True


def tensorstore_usable() -> bool:
    """Installed, and this process is not a fork of one that has already used tensorstore."""
    return not _forked_after_use and tensorstore_installed()


def context() -> Any:
    """The process's shared ``tensorstore.Context`` for the current budget (one per thread count).

    ``data_copy_concurrency`` (decoding, copying) and ``file_io_concurrency`` (reading the chunk
    files) are both limited to :func:`.threads.process_threads`; the chunk cache is off (the
    default), so memory stays one read's worth.
    """
    global _used
    import tensorstore as ts

    limit = process_threads()
    with _lock:
        _used = True
        found = _contexts.get(limit)
        if found is None:
            found = _contexts[limit] = ts.Context({"data_copy_concurrency": {"limit": limit},
                                                   "file_io_concurrency": {"limit": limit}})
        return found


class TensorStoreArray:
    """A zarr array (local, in S3 or in GCS) opened with tensorstore; ``read`` gives (T, C, Z, Y, X) pixels.

    ``small``: the same array's chunk decoder (:class:`.zarr.ZarrChunks`, where it applies), which
    reads the reads of fewer than :attr:`SMALL_READ_CHUNKS` chunks: a tensorstore read costs about
    0.15 ms more than the chunk decoder's whatever its size, which the chunk decoder's per-chunk
    Python cost (about 0.05 ms) only outgrows from about that many chunks on. Measured on 2 cores,
    chunks of 8 KB to 2 MB, blosc-zstd with bitshuffle and uncompressed, 1 to 256 chunks per read.

    Chunks of :attr:`LARGE_CHUNK_BYTES` or more: the chunk decoder also takes the reads that use at
    least :attr:`MOSTLY_READ` of the pixels of the chunks they touch, tensorstore the others.
    Measured through the main-thread loader, chunk decoder / tensorstore: full frames of 1x512x512
    and 16x128x128 uint16 chunks 0.98x and 1.08x in uint16, 1.26x and 0.97x in float32; 16x128x128
    crops of 1x512x512 chunks (1/16 of each chunk) 0.76x in uint16, 0.78-0.97x in float32.
    """

    SMALL_READ_CHUNKS = 16
    LARGE_CHUNK_BYTES = 512 * 1024
    MOSTLY_READ = 0.5

    def __init__(self, store: Any, dims: str, where: str = "", small: ChunkedSource | None = None) -> None:
        self.store, self.dims, self.where, self.small = store, dims, where, small
        sizes = dict(zip(dims, (int(size) for size in store.shape)))
        self.shape = tuple(sizes.get(axis, 1) for axis in AXES)
        self.dtype = np.dtype(store.dtype.numpy_dtype)
        # out[keep] drops the axes the array lacks (size 1); .transpose(order) puts them in array order
        present = [axis for axis in AXES if axis in dims]
        self._keep = tuple(slice(None) if axis in dims else 0 for axis in AXES)
        self._order = tuple(present.index(axis) for axis in dims)

    @classmethod
    def from_array(cls, array: Any, dims: str, small: ChunkedSource | None = None) -> "TensorStoreArray | None":
        """``array`` (a zarr-python array, axes ``dims``) opened with tensorstore, or None when refused."""
        if not tensorstore_usable():
            return None
        try:
            driver = {3: "zarr3", 2: "zarr"}.get(array.metadata.zarr_format)
            found = _kvstore(array) if driver is not None else None
            if found is None:
                return None
            kvstore, where = found
            import tensorstore as ts

            store = ts.open({"driver": driver, "kvstore": kvstore}, read=True, open=True, context=context()).result()
            expected = np.dtype(array.metadata.dtype.to_native_dtype()).newbyteorder("=")
        except Exception:  # not installed right, an unknown codec or filter, an unreadable metadata
            return None
        if tuple(store.shape) != tuple(array.shape) or any(store.origin) or len(dims) != store.rank:
            return None
        native = np.dtype(store.dtype.numpy_dtype)
        if native.kind not in "biuf" or native != expected:
            return None
        return cls(store, dims, where=f"{where}: ", small=small)

    def read(self, timepoints: Sequence[int], channels: Sequence[int] | None, region: tuple[slice, ...],
             out: np.ndarray | None = None) -> np.ndarray:
        """``(len(timepoints), C, Z, Y, X)`` pixels (into ``out`` when given, cast on write).

        Timepoints may be unsorted (one index array) and repeated: a repeated frame is read once
        (tensorstore would decode it once per repeat) and copied to its other places.
        """
        wanted = wanted_indices(self.shape, timepoints, channels, region, where=self.where)
        shape = tuple(len(picks) for picks in wanted)
        if out is None:
            out = np.empty(shape, dtype=self.dtype)
        else:
            check_out(out, shape)
        if 0 in shape:
            return out
        if self.by_chunks(wanted):
            return read_chunked(self.small, wanted, out)  # type: ignore[arg-type]
        frames = np.asarray(wanted[0], dtype=np.int64)
        unique, inverse = np.unique(frames, return_inverse=True)
        if len(unique) < len(frames):
            data = self.read(unique.tolist(), channels, region)
            np.copyto(out, data[inverse.reshape(-1)], casting="unsafe")
            return out
        import tensorstore as ts

        per_axis = dict(zip(AXES, (_index(picks) for picks in wanted)))
        source = self.store.oindex[tuple(per_axis[axis] for axis in self.dims)]
        target = out[self._keep].transpose(self._order)
        direct = out.dtype == self.dtype
        # Another dtype: decoded into this thread's scratch buffer, then cast by NumPy in one copy
        # (faster than tensorstore's own cast, measured, and exactly ``astype``'s rounding).
        into = target if direct else scratch(target.shape, self.dtype, slot="tensorstore")
        try:
            ts.array(into, copy=False, write=True).write(source).result()
        except ValueError as exc:  # tensorstore raises ValueError for every failed status
            raise _error(exc, self.where) from exc
        if not direct:
            np.copyto(target, into, casting="unsafe")
        return out

    def by_chunks(self, wanted: Sequence[Sequence[int]]) -> bool:
        """Whether the chunk decoder takes the read of ``wanted`` (per axis, T, C, Z, Y, X): fewer than
        :attr:`SMALL_READ_CHUNKS` chunks, or big chunks mostly read (see the class docstring)."""
        if self.small is None:
            return False
        count = _chunk_count(wanted, self.small.chunks)
        if count < self.SMALL_READ_CHUNKS:
            return True
        pixels = math.prod(self.small.chunks)
        if pixels * np.dtype(self.small.dtype).itemsize < self.LARGE_CHUNK_BYTES:
            return False
        return math.prod(len(picks) for picks in wanted) >= self.MOSTLY_READ * count * pixels

    def close(self) -> None:
        """Drop the store (its files are opened per read; nothing stays open)."""


def _kvstore(array: Any) -> tuple[dict[str, Any], str] | None:
    """(kvstore spec, where) for a local folder, an S3 object (:mod:`.object_store`) or a GCS object
    (:mod:`.gcs`), else None."""
    folder = local_folder(array)
    if folder is not None:
        return {"driver": "file", "path": folder}, folder
    location = remote_location(array)
    if location is None:
        return None
    url, options = location
    try:
        return (gcs_kvstore if url.startswith(("gs://", "gcs://")) else s3_kvstore)(url, options), url
    except Unmapped as refused:
        logger.debug("%s: read by zarr-python, not tensorstore: %s", url, refused)
        return None


def _chunk_count(wanted: Sequence[Sequence[int]], chunks: Sequence[int]) -> int:
    """How many chunks (of ``chunks`` along T, C, Z, Y, X) the indices ``wanted`` touch."""
    count = 1
    for picks, size in zip(wanted, chunks):
        if isinstance(picks, range) and picks.step == 1:
            count *= (picks.stop - 1) // size - picks.start // size + 1
        else:
            count *= len({int(index) // size for index in picks})
    return count


def _index(picks: Sequence[int]) -> Any:
    """A run of consecutive indices as a slice (no index array to follow), else an index array."""
    if isinstance(picks, range) and picks.step == 1:
        return slice(picks.start, picks.stop)
    array = np.asarray(picks, dtype=np.int64)
    if len(array) > 1 and np.all(np.diff(array) == 1):
        return slice(int(array[0]), int(array[-1]) + 1)
    return array


def _error(exc: ValueError, where: str) -> Exception:
    """tensorstore's error as the builtin the rest of the library sorts on: OSError for I/O, else ValueError."""
    message = str(exc)
    kind = _IO_ERRORS.get(message.split(":", 1)[0].strip(), ValueError)
    return kind(f"{where}{message}")


def _after_fork() -> None:
    """tensorstore's thread pools do not survive a fork, and it aborts a child that uses it: once it
    has run here, a forked child reads zarr through the other fast paths."""
    global _forked_after_use, _lock, _contexts
    _forked_after_use = _forked_after_use or _used
    _lock, _contexts = threading.Lock(), {}


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
