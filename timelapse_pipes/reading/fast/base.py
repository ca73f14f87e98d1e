"""What a fast path is: a pixel source read in T, C, Z, Y, X order straight into the caller's buffer.

:class:`NativeArray` wraps any array with zarr's ``oindex``; :func:`agrees` checks that an array's
shape is what bioio reports, so a fast path never reads a different layout than bioio would.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Protocol, Sequence, TypeVar

import numpy as np

from ...records import AXES
from .chunked import check_out

Handle = TypeVar("Handle")

__all__ = ["NativeArray", "PixelSource", "agrees", "from_local_file", "local_folder"]


class PixelSource(Protocol):
    """What ``read_region`` needs of a fast path: its axes, a read (into ``out``) and a close."""

    dims: str

    def read(self, timepoints: Sequence[int], channels: Sequence[int] | None, region: tuple[slice, ...],
             out: np.ndarray | None = None) -> np.ndarray: ...

    def close(self) -> None: ...


class NativeArray:
    """An array with ``oindex`` (zarr) and its axis letters, read in bioio's T, C, Z, Y, X order."""

    def __init__(self, array: Any, dims: str, fixed: dict[str, int] | None = None,
                 keep_alive: Any = None) -> None:
        self.array = array
        self.dims = dims  # one letter per array axis; letters in ``fixed`` are indexed by an int
        self.fixed = dict(fixed or {})
        self._keep_alive = keep_alive  # e.g. the open TiffFile behind a tifffile zarr store

    def close(self) -> None:
        """Close the file kept open behind the array (a zarr store over a directory has none)."""
        if self._keep_alive is not None:
            self._keep_alive.close()
            self._keep_alive = None

    def read(self, timepoints: Sequence[int], channels: Sequence[int] | None,
             region: tuple[slice, ...], out: np.ndarray | None = None) -> np.ndarray:
        """``(len(timepoints), C, Z, Y, X)`` pixels; ``region`` slices Z, Y, X; into ``out`` (cast) when given."""
        data = self._read(timepoints, channels, region)
        if out is None:
            return data
        check_out(out, data.shape)
        np.copyto(out, data, casting="unsafe")
        return out

    def _read(self, timepoints: Sequence[int], channels: Sequence[int] | None,
              region: tuple[slice, ...]) -> np.ndarray:
        wanted = {"T": np.asarray(timepoints, dtype=np.int64),
                  "C": slice(None) if channels is None else np.asarray(channels, dtype=np.int64),
                  "Z": region[0], "Y": region[1], "X": region[2]}
        unique_t, inverse = np.unique(wanted["T"], return_inverse=True)  # read each frame once
        wanted["T"] = unique_t
        selection: list[Any] = []
        for axis in self.dims:
            if axis in self.fixed:
                selection.append(self.fixed[axis])
                continue
            pick = wanted[axis]
            if isinstance(pick, np.ndarray) and len(pick) and np.all(np.diff(pick) == 1):
                pick = slice(int(pick[0]), int(pick[-1]) + 1)  # contiguous: a plain slice
            selection.append(pick)
        data = np.asarray(self.array.oindex[tuple(selection)])
        present = "".join(axis for axis in self.dims if axis not in self.fixed)
        missing = [axis for axis in AXES if axis not in present]
        order = present + "".join(missing)
        data = data.reshape(data.shape + (1,) * len(missing))
        data = np.transpose(data, [order.index(axis) for axis in AXES])
        return data[inverse] if len(inverse) != len(unique_t) or np.any(np.diff(inverse) < 0) else data


def agrees(dims: str, fixed: dict[str, int], shape: Sequence[int], reported: dict[str, int]) -> bool:
    """Whether an array of ``shape`` (axes ``dims``, ``fixed`` ones indexed away) has bioio's T, C, Z, Y, X sizes."""
    if len(shape) != len(dims):
        return False
    sizes = {axis: size for axis, size in zip(dims, shape) if axis not in fixed}
    return all(reported.get(axis, 1) == sizes.get(axis, 1) for axis in AXES)


def from_local_file(path: str, opener: Callable[[str], Handle], build: Callable[[Handle], Any]) -> Any:
    """``build(opener(path))``, the fast path over a file it keeps open; None for a remote or staged
    file (bioio's path reads those), one the opener refuses, or one ``build`` refuses by raising (the
    file is then closed at once instead of being left to the collector)."""
    if not os.path.isfile(path):
        return None
    try:
        handle = opener(path)
    except Exception:
        return None
    try:
        return build(handle)
    except Exception:
        handle.close()  # type: ignore[attr-defined]
        return None


def local_folder(array: Any) -> str | None:
    """The folder of a zarr array on the local file system (LocalStore or a local FsspecStore), or None."""
    store, inner = array.store_path.store, array.store_path.path
    root = getattr(store, "root", None)  # LocalStore
    if root is None:
        fs = getattr(store, "fs", None)
        fs = getattr(fs, "sync_fs", fs)  # zarr wraps a sync file system for async use
        protocols = getattr(fs, "protocol", ())
        protocols = (protocols,) if isinstance(protocols, str) else tuple(protocols)
        if not {"file", "local"} & set(protocols):
            return None
        root = getattr(store, "path", None)
    if root is None:
        return None
    folder = os.path.join(str(root), inner) if inner else str(root)
    return folder if os.path.isdir(folder) else None
