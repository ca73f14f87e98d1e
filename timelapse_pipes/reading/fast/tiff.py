"""Local TIFF series decoded page by page: ``os.pread`` and tifffile's own segment decoder.

bioio's TIFF readers reopen the file per read, and tifffile's zarr store decodes through zarr's
event loop, one chunk per page. Here each strip or tile is read with ``os.pread`` (no shared file
position, so any thread may read) and decoded by tifffile's decoder for that page (the same code
``TiffFile.asarray`` runs), then copied into the output with one cast; the strips and pages of a
read are decoded in parallel (see :mod:`.decode`). Uncompressed pages stored in one piece are read
as one block per page. JPEG, chroma-subsampled, multi-sample and volumetric pages, series that span
several files and series with missing pages are refused and read through tifffile's zarr store.
"""

from __future__ import annotations

import math
import os
from typing import Any, Sequence

import numpy as np

from ...records import AXES
from .base import NativeArray, PixelSource, agrees, from_local_file
from .chunked import ChunkedSource, read_chunked, wanted_indices
from .threads import fast_decoders

__all__ = ["TiffPages", "tiff_native"]

JPEG_COMPRESSIONS = {6, 7, 33007, 34892}


class TiffPages(ChunkedSource):
    """One level of a tifffile series read by strip or tile; ``read`` gives (T, C, Z, Y, X)."""

    def __init__(self, path: str, tiff: Any, series: Any, dims: str, fixed: dict[str, int], raw: bool) -> None:
        keyframe = series.keyframe
        self.path, self.dims, self.fixed, self.raw = path, dims, dict(fixed), raw
        self.tiff = tiff  # the open TiffFile the decoder closure belongs to; closed with this reader
        self.page_axes = dims[:-2]
        self.grid = tuple(int(n) for n in series.shape[:-2])
        sizes = dict(zip(dims, series.shape))
        self.shape = tuple(int(sizes[a]) if a in sizes and a not in fixed else 1 for a in AXES)  # type: ignore[assignment]
        height, width = int(keyframe.imagelength), int(keyframe.imagewidth)
        if raw:
            tile = (height, width)
        elif keyframe.is_tiled:
            tile = (int(keyframe.tilelength), int(keyframe.tilewidth))
        else:
            tile = (min(int(keyframe.rowsperstrip), height), width)
        self.chunks = (1, 1, 1) + tile  # type: ignore[assignment]
        self.across = math.ceil(width / tile[1])  # segments per row of segments
        self.dtype = np.dtype(keyframe.dtype).newbyteorder(series.parent.byteorder) if raw else \
            np.dtype(keyframe.dtype)
        self.fill = keyframe.nodata
        self.frame = (height, width)
        self.segments = [(tuple(page.dataoffsets), tuple(page.databytecounts)) for page in series.pages]
        self.decode = keyframe.decode  # tifffile's decoder closure for these pages, built once
        self.fd: int | None = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))

    @classmethod
    def from_series(cls, path: str, tiff: Any, series: Any, dims: str,
                    fixed: dict[str, int]) -> "TiffPages | None":
        """The page reader of ``series`` (one level; axes ``dims``), or None when tifffile's store must read it."""
        if not hasattr(os, "pread"):
            return None
        try:
            keyframe = series.keyframe
            pages = list(series.pages)
            grid = [int(n) for n in series.shape[:-2]]
            if not dims.endswith("YX") or len(dims) != len(series.shape) or \
                    tuple(series.shape[-2:]) != (keyframe.imagelength, keyframe.imagewidth):
                return None
            if keyframe.dtype is None or keyframe.samplesperpixel != 1 or keyframe.imagedepth != 1 or \
                    keyframe.compression in JPEG_COMPRESSIONS or keyframe.is_subsampled:
                return None
            if len(pages) != math.prod(grid) or any(page is None or page.parent is not tiff for page in pages):
                return None
            segments = math.prod(keyframe.chunked)
            if any(len(page.dataoffsets) != segments for page in pages):
                return None
            raw = keyframe.compression == 1 and keyframe.predictor == 1 and keyframe.fillorder == 1 and \
                keyframe.bitspersample == 8 * np.dtype(keyframe.dtype).itemsize and \
                all(_contiguous(page.dataoffsets, page.databytecounts) for page in pages)
            return cls(path, tiff, series, dims, fixed, raw)
        except Exception:  # an unexpected layout: tifffile's zarr store reads it
            return None

    def _page(self, coords: tuple[int, ...]) -> int:
        index = tuple(self.fixed[a] if a in self.fixed else coords[AXES.index(a)] for a in self.page_axes)
        return int(np.ravel_multi_index(index, self.grid)) if index else 0

    def chunk(self, coords: tuple[int, ...]) -> np.ndarray | None:
        assert self.fd is not None, f"{self.path}: read after close"
        offsets, counts = self.segments[self._page(coords)]
        if self.raw:
            data = os.pread(self.fd, sum(counts), offsets[0])
            return np.frombuffer(data, dtype=self.dtype).reshape((1, 1, 1) + self.frame)
        index = coords[3] * self.across + coords[4]
        if not counts[index]:
            return None
        data = os.pread(self.fd, counts[index], offsets[index])
        try:
            segment, _, shape = self.decode(data, index)
        except Exception as exc:
            raise ValueError(f"{self.path}: could not decode segment {index} "
                             f"({type(exc).__name__}: {exc})") from exc
        return segment.reshape((1, 1, 1) + tuple(segment.shape[-3:-1]))

    def read(self, timepoints: Sequence[int], channels: Sequence[int] | None, region: tuple[slice, ...],
             out: np.ndarray | None = None) -> np.ndarray:
        """``(len(timepoints), C, Z, Y, X)`` pixels (into ``out`` when given, cast on write)."""
        wanted = wanted_indices(self.shape, timepoints, channels, region, where=f"{self.path}: ")
        return read_chunked(self, wanted, out)

    def close(self) -> None:
        """Close the file descriptor and the ``TiffFile``."""
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)
        tiff, self.tiff = self.tiff, None
        if tiff is not None:
            tiff.close()

    def __del__(self) -> None:
        try:
            fd, self.fd = self.fd, None
            if fd is not None:
                os.close(fd)
        except Exception:
            pass


def _contiguous(offsets: Sequence[int], counts: Sequence[int]) -> bool:
    return all(offsets[k] + counts[k] == offsets[k + 1] for k in range(len(offsets) - 1))


_TIFF_AXES = {"T": "T", "C": "C", "Z": "Z", "Y": "Y", "X": "X", "Q": "Z", "I": "Z", "R": "R"}


def tiff_native(image: Any, path: str) -> PixelSource | None:
    """The page decoder on a kept-open ``tifffile`` series, else its zarr store; None for remote files."""
    return from_local_file(path, _open_tiff_file, lambda tiff: _series_source(image, path, tiff))


def _series_source(image: Any, path: str, tiff: Any) -> PixelSource:
    """The image's current scene and level in an open ``TiffFile``; raises where it disagrees with bioio."""
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
    if fast_decoders() and agrees(dims, fixed, series.levels[level].shape, reported):
        pages = TiffPages.from_series(path, tiff, series.levels[level], dims, fixed)
        if pages is not None:
            return pages
    import zarr

    array = zarr.open(series.aszarr(level=level), mode="r")
    if not hasattr(array, "oindex") or not agrees(dims, fixed, array.shape, reported):
        raise ValueError("dims disagree with bioio")
    return NativeArray(array, dims, fixed, keep_alive=tiff)


def _open_tiff_file(path: str) -> Any:
    import tifffile

    return tifffile.TiffFile(path)
