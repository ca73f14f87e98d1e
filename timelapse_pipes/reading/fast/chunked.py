"""Reading a (T, C, Z, Y, X) selection from a chunked source, one chunk per job, straight into ``out``.

A source (a zarr array's chunk files, a TIFF's strips or tiles) says how its pixels are cut into
chunks along T, C, Z, Y and X and decodes one chunk. This module maps the wanted indices onto
chunks, decodes each intersecting chunk once (in parallel, see :mod:`.decode`) and copies its part
into the output with one cast: the output's dtype is the caller's.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import threading
from typing import Any, Sequence

import numpy as np

from ...records import AXES
from .threads import run_all

__all__ = ["ChunkedSource", "OutShapeError", "check_out", "axis_runs", "wanted_indices", "read_chunked",
           "scratch", "read_file", "to_tczyx"]

Run = tuple[slice, slice]  # (slice within the chunk, slice of the output)
_local = threading.local()
_BYTES = np.dtype(np.uint8)


class OutShapeError(ValueError):
    """An ``out`` array whose shape is not the read's (a caller's mistake, not the file's)."""


def check_out(out: np.ndarray, shape: Sequence[int]) -> None:
    """Raise :class:`OutShapeError` unless ``out`` has exactly ``shape``."""
    if tuple(out.shape) != tuple(shape):
        raise OutShapeError(f"out has shape {tuple(out.shape)}; this read gives {tuple(shape)}")


def scratch(shape: Sequence[int], dtype: np.dtype, slot: str = "pixels") -> np.ndarray:
    """This thread's reusable buffer ``slot`` as an array of ``shape`` and ``dtype`` (grown on demand).

    One buffer per thread and slot, whatever the source: fresh large allocations cost page faults
    on every chunk. Valid until the next call for the same slot on the same thread.
    """
    size = math.prod(shape) * dtype.itemsize
    buffers = getattr(_local, "buffers", None)
    if buffers is None:
        buffers = _local.buffers = {}
    buffer = buffers.get(slot)
    if buffer is None or buffer.nbytes < size:
        buffer = buffers[slot] = np.empty(max(size, 1), dtype=np.uint8)
    return buffer[:size].view(dtype).reshape(shape)


def read_file(path: str) -> memoryview:
    """The bytes of the file at ``path`` in this thread's reusable buffer (FileNotFoundError if absent)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        size = os.fstat(fd).st_size
        view = memoryview(scratch((size,), _BYTES, slot="file"))
        done = 0
        while done < size:
            count = os.readv(fd, [view[done:]])
            if not count:
                raise OSError(f"{path}: the file ended after {done} of {size} bytes")
            done += count
    finally:
        os.close(fd)
    return view


def to_tczyx(data: np.ndarray, dims: str) -> np.ndarray:
    """A view of ``data`` (axes named by ``dims``, a subset of T, C, Z, Y, X) as 5-D T, C, Z, Y, X."""
    order, missing = _layout(dims)
    view = data.transpose(order) if order else data
    return np.expand_dims(view, missing) if missing else view


@functools.lru_cache(maxsize=64)
def _layout(dims: str) -> tuple[tuple[int, ...] | None, tuple[int, ...]]:
    """(axis order to T, C, Z, Y, X, or None when already in order; positions of missing axes)."""
    order = tuple(sorted(range(len(dims)), key=lambda axis: AXES.index(dims[axis])))
    missing = tuple(k for k, axis in enumerate(AXES) if axis not in dims)
    return (None if order == tuple(range(len(dims))) else order), missing


class ChunkedSource:
    """What :func:`read_chunked` needs; subclasses fill these in."""

    shape: tuple[int, int, int, int, int]  # T, C, Z, Y, X of the whole source
    chunks: tuple[int, int, int, int, int]  # chunk size along T, C, Z, Y, X
    dtype: np.dtype  # of the decoded pixels (any byte order)
    fill: Any  # the value of a chunk that is absent

    def chunk(self, coords: tuple[int, ...]) -> np.ndarray | None:
        """The decoded chunk at chunk coordinates ``coords`` as a 5-D (T, C, Z, Y, X) array, or None
        if it is absent. Called from several threads; the array may be reused by the next call
        on the same thread."""
        raise NotImplementedError


def axis_runs(indices: Sequence[int], chunk: int) -> dict[int, list[Run]]:
    """Chunk index -> runs of (within-chunk slice, output slice) covering ``indices`` in output order."""
    runs: dict[int, list[Run]] = {}
    if isinstance(indices, range) and indices.step == 1:
        position, index = 0, indices.start
        while index < indices.stop:
            number, within = divmod(index, chunk)
            count = min(chunk - within, indices.stop - index)
            runs.setdefault(number, []).append((slice(within, within + count),
                                                slice(position, position + count)))
            index, position = index + count, position + count
        return runs
    last: list[Any] | None = None  # [chunk, within start, within stop, output start]
    flat: list[list[Any]] = []
    for position, index in enumerate(indices):
        number, within = divmod(int(index), chunk)
        if last is not None and last[0] == number and last[2] == within and \
                last[3] + (last[2] - last[1]) == position:
            last[2] += 1
        else:
            last = [number, within, within + 1, position]
            flat.append(last)
    for number, start, stop, position in flat:
        runs.setdefault(number, []).append((slice(start, stop), slice(position, position + stop - start)))
    return runs


def wanted_indices(shape: Sequence[int], timepoints: Sequence[int], channels: Sequence[int] | None,
                   region: tuple[slice, ...], where: str = "") -> list[Sequence[int]]:
    """The source indices of each output position along T, C, Z, Y, X; IndexError when out of range."""
    wanted: list[Sequence[int]] = [
        [int(t) for t in timepoints],
        range(shape[1]) if channels is None else [int(c) for c in channels],
    ]
    wanted += [range(*cut.indices(size)) for cut, size in zip(region, shape[2:])]
    for axis, (picks, size) in enumerate(zip(wanted, shape)):
        if len(picks) and (min(picks) < 0 or max(picks) >= size):
            raise IndexError(f"{where}{AXES[axis]} index out of range 0..{size - 1}: {list(picks)[:8]}")
    return wanted


def read_chunked(source: ChunkedSource, wanted: Sequence[Sequence[int]],
                 out: np.ndarray | None = None) -> np.ndarray:
    """The pixels at ``wanted`` (per axis, as from :func:`wanted_indices`) in ``out`` (cast on write).

    Without ``out`` a new array of the source's dtype in native byte order is returned.
    """
    shape = tuple(len(picks) for picks in wanted)
    if out is None:
        out = np.empty(shape, dtype=source.dtype.newbyteorder("="))
    else:
        check_out(out, shape)
    if 0 in shape:
        return out
    per_axis = [axis_runs(picks, size) for picks, size in zip(wanted, source.chunks)]
    jobs = [_job(source, coords, out, [per_axis[a][c] for a, c in enumerate(coords)])
            for coords in itertools.product(*per_axis)]
    run_all(jobs)
    return out


def _job(source: ChunkedSource, coords: tuple[int, ...], out: np.ndarray, runs: list[list[Run]]) -> Any:
    def decode_and_copy() -> None:
        data = source.chunk(coords)
        for pairs in itertools.product(*runs):
            target = out[tuple(dst for _, dst in pairs)]
            if data is None:
                np.copyto(target, np.asarray(source.fill, dtype=source.dtype), casting="unsafe")
            else:
                np.copyto(target, data[tuple(src for src, _ in pairs)], casting="unsafe")
    return decode_and_copy
