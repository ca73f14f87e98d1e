"""The maps crop placement plans from, one per frame of the placing image, kept per process.

A map is worked out from the placing image's frame at one timepoint on the row's (Z, Y, X) grid
(an image on another grid resized to it, nearest neighbour) and kept in an LRU of ``MAX_MAPS``, keyed
by (what, file, scene, level, channels, timepoint, grid, ...). The low-resolution foreground counts
of ``crop["map_block"]`` are also kept in the metadata cache file, so a later run (or another
process) plans from them without reading the frame.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable, TypeVar

import numpy as np

from ..reading.cache.metadata_cache import MetadataCache
from ..reading.regions import read_region
from ..sampling.block_maps import block_counts
from ..sampling.crops import nearest_indices
from .loading import BioIOLoader
from .row_layout import RowLayout

__all__ = ["FrameMaps", "MAX_MAPS"]

MAX_MAPS = 32  # maps kept per process
FULL_FRAME = (slice(None), slice(None), slice(None))
BLOCK_COUNTS = "block_counts"  # the kind of map kept in the metadata cache
Map = TypeVar("Map")


class FrameMaps:
    """Maps of the placing image's frames, worked out on first use and kept (LRU)."""

    def __init__(self, loader: BioIOLoader, metadata: MetadataCache | None = None) -> None:
        self.loader = loader  # its open files serve the reads
        self.metadata = metadata
        self._maps: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._lock = threading.Lock()
        self.frames_read = 0  # frames read to plan (a map found in the cache file reads none)

    def __getstate__(self) -> dict[str, Any]:
        return {"loader": self.loader, "metadata": self.metadata}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["loader"], state["metadata"])  # type: ignore[misc]

    def get(self, kind: str, layout: RowLayout, t: int, grid: tuple[int, ...],
            build: Callable[[np.ndarray], Map], *detail: Any) -> Map:
        """``build(frame)`` of the (C, Z, Y, X) frame at ``t`` on ``grid``, kept under ``kind`` and ``detail``."""
        return self.derived(kind, layout, t, grid, lambda: build(self.frame(layout, t, grid)), *detail)

    def derived(self, kind: str, layout: RowLayout, t: int, grid: tuple[int, ...], compute: Callable[[], Map],
                *detail: Any) -> Map:
        """``compute()`` (a map of the frame at ``t`` worked out from other maps), kept under ``kind`` and ``detail``."""
        key = (kind, *self._location(layout), layout.channels, t, grid, *detail)
        found = self._kept(key)
        return found if found is not None else self._keep(key, compute())

    def counts(self, layout: RowLayout, t: int, grid: tuple[int, ...], block: tuple[int, ...]) -> np.ndarray:
        """The foreground count of every ``block`` tile of the frame at ``t``: from memory, else from
        the metadata cache file, else from the frame (then kept in both)."""
        detail = [list(layout.channels), t, list(grid), list(block)]
        key = (BLOCK_COUNTS, *self._location(layout), layout.channels, t, grid, block)
        found = self._kept(key)
        if found is not None:
            return found
        stored = None if self.metadata is None else self.metadata.stored_map(self._location(layout), detail)
        if stored is None or stored.shape != tuple(-(-n // b) for n, b in zip(grid, block)):
            foreground = self.frame(layout, t, grid).any(axis=0)
            stored = block_counts(foreground, block).astype(_count_type(block))
            if self.metadata is not None:
                self.metadata.store_map(self._location(layout), detail, stored)
        return self._keep(key, stored)

    def frame(self, layout: RowLayout, t: int, grid: tuple[int, ...]) -> np.ndarray:
        """The (C, Z, Y, X) frame of the image at ``t``, resized to ``grid`` if it lies on another."""
        metadata = layout.metadata
        image = self.loader.readers.get(layout.row.path, layout.reader_class, metadata.scene_index,
                                        metadata.resolution, self.loader.fs_kwargs, layout.reader_kwargs)
        frame = read_region(image, layout.order, [t], layout.row.channels, FULL_FRAME, where=layout.where)[0]
        with self._lock:
            self.frames_read += 1
        if tuple(frame.shape[1:]) != tuple(grid):
            picks = [nearest_indices(n, m, 0, n) for n, m in zip(grid, frame.shape[1:])]
            frame = frame[np.ix_(range(frame.shape[0]), *picks)]
        return frame

    @staticmethod
    def _location(layout: RowLayout) -> tuple[Any, ...]:
        metadata = layout.metadata
        return (layout.row.path, metadata.scene, metadata.resolution, metadata.reader)

    def _kept(self, key: tuple[Any, ...]) -> Any:
        with self._lock:
            found = self._maps.get(key)
            if found is not None:
                self._maps.move_to_end(key)
            return found

    def _keep(self, key: tuple[Any, ...], value: Map) -> Map:
        with self._lock:
            self._maps[key] = value
            if len(self._maps) > MAX_MAPS:
                self._maps.popitem(last=False)
        return value


def _count_type(block: tuple[int, ...]) -> np.dtype:
    """The smallest unsigned type that holds a full tile's count."""
    full = int(np.prod(block))
    return np.dtype(np.uint8 if full < 2**8 else np.uint16 if full < 2**16 else np.uint32)
