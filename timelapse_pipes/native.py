"""Native fast paths: read the file's own chunks or pages instead of building a dask graph per sample.

bioio's lazy arrays cost a dask task per chunk and per index step (about 90 tasks for a 4-frame,
2-channel crop). Local OME-Zarr arrays of the common layouts are decoded chunk by chunk
(:mod:`.zarr_chunks`), local TIFF series strip by strip (:mod:`.tiff_pages`), both in parallel and
straight into the caller's output; other zarr arrays are read with one orthogonal selection (through
the ``zarrs`` codec pipeline when installed and the array is local), other TIFFs through tifffile's
zarr store, ND2 frame by frame from a kept-open ``ND2File``. The native array is found once per open
image; if anything about it disagrees with what bioio reports (dims, shape), the dask path is used.
"""

from __future__ import annotations

import os
from typing import Any, Protocol, Sequence

import numpy as np

from .chunked import check_out

__all__ = ["NativeArray", "ND2Frames", "PixelSource", "find_native_array"]

AXES = "TCZYX"


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


def find_native_array(image: Any, path: str) -> PixelSource | None:
    """The fast path behind a ``BioImage`` at its current scene and level, or None (use dask).

    OME-Zarr: the chunk decoder on the reader's zarr array, else the array itself. Local OME-TIFF /
    TIFF: the page decoder on a kept-open ``tifffile`` series, else its zarr store (bioio's TIFF
    readers reopen the file for every read). Local ND2: frames from a kept-open ``ND2File``.
    """
    reader = getattr(image, "reader", None)
    plugin = type(reader).__module__.split(".")[0]
    if plugin in ("bioio_ome_tiff", "bioio_tifffile"):
        return _tiff_native(image, path)
    if plugin == "bioio_nd2":
        return _nd2_native(image, path)
    if plugin != "bioio_ome_zarr":
        return None
    try:
        multiscales = reader._multiscales_metadata[reader._current_scene_index]
        path = multiscales["datasets"][reader._current_resolution_level]["path"]
        array = reader._zarr[path]
        dims = "".join(reader._get_ome_dims()).upper()
        reported = dict(zip(image.dims.order, image.dims.shape))
    except Exception:  # private layout changed: use the dask path
        return None
    if not set(dims) <= set(AXES) or len(dims) != len(array.shape) or not hasattr(array, "oindex"):
        return None
    if any(reported.get(axis, 1) != size for axis, size in zip(dims, array.shape)):
        return None
    return _zarr_native(array, dims)


def _zarr_native(array: Any, dims: str) -> PixelSource:
    """The chunk decoder for local arrays it can read, else one zarr selection (``zarrs`` when installed)."""
    from .decode import fast_decoders
    from .zarr_chunks import ZarrChunks
    from .zarr_pipeline import with_zarrs

    if not fast_decoders():
        return NativeArray(array, dims)
    chunks = ZarrChunks.from_array(array, dims)
    return chunks if chunks is not None else NativeArray(with_zarrs(array), dims)


_TIFF_AXES = {"T": "T", "C": "C", "Z": "Z", "Y": "Y", "X": "X", "Q": "Z", "I": "Z", "R": "R"}


def _tiff_native(image: Any, path: str) -> PixelSource | None:
    if not os.path.isfile(path):  # remote or staged: bioio's path
        return None
    try:
        import tifffile
        import zarr

        from .decode import fast_decoders
        from .tiff_pages import TiffPages

        tiff = tifffile.TiffFile(path)
    except Exception:
        return None
    try:
        scenes = list(image.scenes)
        scene_index = scenes.index(image.current_scene)
        level = int(getattr(image, "current_resolution_level", 0) or 0)
        fixed: dict[str, int] = {}
        if len(tiff.series) == len(scenes):
            series = tiff.series[scene_index]
        elif len(tiff.series) == 1 and "R" in tiff.series[0].axes and \
                tiff.series[0].shape[tiff.series[0].axes.index("R")] == len(scenes):
            series, fixed = tiff.series[0], {"R": scene_index}
        else:
            raise ValueError("scenes do not map onto series")
        if level >= len(series.levels) or any(a not in _TIFF_AXES for a in series.axes):
            raise ValueError("unsupported level or axes")
        dims = "".join(_TIFF_AXES[a] for a in series.axes)
        if len(set(dims)) != len(dims) or ("R" in dims and "R" not in fixed):
            raise ValueError("ambiguous axes")
        reported = dict(zip(image.dims.order, image.dims.shape))
        if "S" in reported:
            raise ValueError("samples axis")
        if fast_decoders() and _agrees(dims, fixed, series.levels[level].shape, reported):
            pages = TiffPages.from_series(path, tiff, series.levels[level], dims, fixed)
            if pages is not None:
                return pages
        array = zarr.open(series.aszarr(level=level), mode="r")
        if not hasattr(array, "oindex") or not _agrees(dims, fixed, array.shape, reported):
            raise ValueError("dims disagree with bioio")
    except Exception:  # no fast path: close the file instead of leaving it to the collector
        tiff.close()
        return None
    return NativeArray(array, dims, fixed, keep_alive=tiff)


def _agrees(dims: str, fixed: dict[str, int], shape: Sequence[int], reported: dict[str, int]) -> bool:
    """Whether an array of ``shape`` (axes ``dims``, ``fixed`` ones indexed away) has bioio's T, C, Z, Y, X sizes."""
    if len(shape) != len(dims):
        return False
    sizes = {axis: size for axis, size in zip(dims, shape) if axis not in fixed}
    return all(reported.get(axis, 1) == sizes.get(axis, 1) for axis in AXES)


class ND2Frames:
    """Reads (T, C, Z, Y, X) regions frame by frame from a kept-open ``nd2.ND2File``."""

    def __init__(self, handle: Any, frames: dict[tuple[int, int], int], channels: int) -> None:
        self.handle = handle
        self.frames = frames  # (t, z) -> frame index, for this scene (position)
        self.channels = channels
        self.all_channels = list(range(channels))
        self.depth = max(z for _, z in frames) + 1
        self.yx = (int(handle.sizes["Y"]), int(handle.sizes["X"]))
        self.dims = "TCZYX"

    def close(self) -> None:
        """Close the kept-open ``ND2File``."""
        self.handle.close()

    def __del__(self) -> None:
        # nd2 warns when an ND2File is garbage collected open; an evicted reader closes its file.
        try:
            self.handle.close()
        except Exception:
            pass

    def read(self, timepoints: Sequence[int], channels: Sequence[int] | None,
             region: tuple[slice, ...], out: np.ndarray | None = None) -> np.ndarray:
        """``(len(timepoints), C, Z, Y, X)`` pixels; into ``out`` (cast on write) when given."""
        z_indices = range(self.depth)[region[0]]
        picked = self.all_channels if channels is None else list(channels)
        if out is not None and len(timepoints) == 1 and len(z_indices) == 1:  # the small-frame hot path
            plane = self._plane(timepoints[0], z_indices[0], picked, region)
            check_out(out, (1, plane.shape[0], 1) + plane.shape[1:])
            np.copyto(out[0, :, 0], plane, casting="unsafe")
            return out
        if out is None:
            cache: dict[int, np.ndarray] = {}
            planes = []
            for t in timepoints:
                if t not in cache:
                    cache[t] = np.stack([self._plane(t, z, picked, region) for z in z_indices], axis=1)
                planes.append(cache[t])  # C, Z, Y, X
            return np.stack(planes)
        check_out(out, (len(timepoints), len(picked), len(z_indices)) + tuple(
            len(range(size)[cut]) for size, cut in zip(self.yx, region[1:])))
        first: dict[int, int] = {}
        for k, t in enumerate(timepoints):
            if t in first:  # a repeated frame: copy what was read
                out[k] = out[first[t]]
                continue
            first[t] = k
            for n, z in enumerate(z_indices):
                np.copyto(out[k, :, n], self._plane(t, z, picked, region), casting="unsafe")
        return out

    def _plane(self, t: int, z: int, picked: list[int], region: tuple[slice, ...]) -> np.ndarray:
        """The ``(C, Y, X)`` region of frame (t, z), channels ``picked`` (a view where it can be:
        small frames are read tens of thousands of times a second, so no copy is wasted)."""
        frame = np.asarray(self.handle.read_frame(self.frames[(t, z)]))
        if frame.ndim == 2:
            frame = frame[None]  # C, Y, X
        if picked is not self.all_channels and picked != self.all_channels:
            frame = frame[picked]
        return frame[:, region[1], region[2]]


def _nd2_native(image: Any, path: str) -> ND2Frames | None:
    if not os.path.isfile(path):  # remote or staged: bioio's path
        return None
    try:
        import nd2

        handle = nd2.ND2File(path)
    except Exception:
        return None
    try:
        sizes = dict(handle.sizes)
        if handle.is_rgb or not set(sizes) <= {"P", "T", "Z", "C", "Y", "X"}:
            raise ValueError("unsupported axes")
        scene = list(image.scenes).index(image.current_scene)
        frames = {}
        for index, coords in enumerate(handle.loop_indices):
            if coords.get("P", 0) == scene:
                frames[(coords.get("T", 0), coords.get("Z", 0))] = index
        reported = dict(zip(image.dims.order, image.dims.shape))
        expected = {"T": sizes.get("T", 1), "C": sizes.get("C", 1), "Z": sizes.get("Z", 1),
                    "Y": sizes["Y"], "X": sizes["X"]}
        if any(reported.get(axis, 1) != size for axis, size in expected.items()) or \
                len(frames) != expected["T"] * expected["Z"]:
            raise ValueError("dims disagree with bioio")
    except Exception:  # no fast path: close the file instead of leaving it to the collector
        handle.close()
        return None
    return ND2Frames(handle, frames, expected["C"])
