"""A deterministic tiling of every row's frames for inference (pure): the grid sampler.

Sample ``i`` of every epoch is the ``i``-th cell of one fixed order: manifest rows in order; in each
row, windows of ``num_timepoints`` consecutive frames of the row's frame grid, ``frame_stride``
frames apart (default: no overlap in time); in each window, tiles of ``roi_size`` in raster order
(Z, then Y, then X). No draws: the seed and the epoch change nothing, so the grid of a resumed or
sharded run is the grid of a plain one.

Tiles follow MONAI's sliding-window rule: the step along an axis is ``int(tile * (1 - overlap))``
(at least 1), and the last tile is moved back to end at the frame's edge, so every tile has the
same size and every pixel is covered. A ``roi_size`` entry that is not positive means the whole
axis (MONAI's rule too); a tile larger than the frame is cut to the frame (a 2-D movie under
``spatial_dims=3`` has Z=1, so its tiles have depth 1). Windows of frames follow the same rule:
the last window ends at the row's last frame.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Mapping, NamedTuple, Sequence

from ..errors import ConfigError, SampleError

__all__ = ["GridCell", "GridIndex", "GridSpec", "RowGrid", "axis_starts"]


def axis_starts(size: int, tile: int, step: int) -> tuple[int, ...]:
    """Where tiles of ``tile`` start along an axis of ``size``, ``step`` apart, the last one moved
    back to end at the edge (``tile <= size``)."""
    if not 0 < tile <= size or step < 1:
        raise ValueError(f"tile {tile} must be in [1, {size}] and step {step} >= 1")
    starts = list(range(0, size - tile + 1, step))
    if starts[-1] + tile < size:
        starts.append(size - tile)
    return tuple(starts)


def _overlap_step(tile: int, size: int, overlap: float) -> int:
    """MONAI's scan interval: the whole axis in one tile steps by the tile, else ``int(tile * (1 - overlap))``."""
    if tile == size:
        return tile
    return max(int(tile * (1 - overlap)), 1)


@dataclass(frozen=True)
class GridSpec:
    """How the grid tiles each frame: ``roi_size`` (Z, Y, X) or (Y, X), ``None`` for whole frames;
    ``overlap``, the fraction of a tile shared with the next one per axis, in [0, 1); and
    ``frame_stride``, the frames between windows (``None``: ``num_timepoints``)."""

    roi_size: tuple[int, ...] | None = None
    overlap: tuple[float, ...] | float = 0.0
    frame_stride: int | None = None

    @classmethod
    def parse(cls, value: "GridSpec | Mapping[str, object] | bool | None", spatial_dims: int) -> "GridSpec | None":
        """Accept a GridSpec, a mapping of its fields, ``True`` (whole frames), or None / False."""
        if value is None or value is False:
            return None
        if value is True:
            value = {}
        if isinstance(value, GridSpec):
            value = {"roi_size": value.roi_size, "overlap": value.overlap, "frame_stride": value.frame_stride}
        if not isinstance(value, Mapping):
            raise ConfigError(f"grid={value!r} must be a mapping like {{'roi_size': [64, 64], 'overlap': 0.25}}.")
        unknown = set(value) - {"roi_size", "overlap", "frame_stride"}
        if unknown:
            raise ConfigError(f"grid has unknown keys {sorted(unknown)}; use roi_size, overlap, frame_stride.")
        roi = value.get("roi_size")
        roi_size = None if roi is None else tuple(_integer(v, "grid roi_size") for v in roi)  # type: ignore[union-attr]
        if roi_size is not None and len(roi_size) != spatial_dims:
            raise ConfigError(f"grid roi_size={list(roi_size)} must have {spatial_dims} sizes for "
                              f"spatial_dims={spatial_dims} (a size <= 0 takes the whole axis).")
        axes = spatial_dims if roi_size is None else len(roi_size)
        overlap = value.get("overlap", 0.0)
        overlaps = tuple(float(v) for v in overlap) if isinstance(overlap, (list, tuple)) \
            else (float(overlap),) * axes  # type: ignore[arg-type]
        if len(overlaps) != axes or not all(0 <= v < 1 for v in overlaps):
            raise ConfigError(f"grid overlap={overlap!r} must be one fraction in [0, 1) or one per spatial axis.")
        stride = value.get("frame_stride")
        if stride is not None and _integer(stride, "grid frame_stride") < 1:
            raise ConfigError(f"grid frame_stride={stride!r} must be a positive number of frames.")
        return cls(roi_size, overlaps, None if stride is None else int(stride))  # type: ignore[arg-type]

    def fingerprint(self) -> list[object]:
        """What changes the grid's cells."""
        overlap = list(self.overlap) if isinstance(self.overlap, tuple) else [self.overlap]
        return [None if self.roi_size is None else list(self.roi_size), overlap, self.frame_stride]

    def tile_size(self, frame: Sequence[int]) -> tuple[int, ...]:
        """The tile of a frame of spatial shape ``frame``: ``roi_size`` cut to the frame, whole axes
        where a size is not positive or no ``roi_size`` is given."""
        if self.roi_size is None:
            return tuple(frame)
        return tuple(size if roi <= 0 else min(roi, size) for roi, size in zip(self.roi_size, frame))

    def row_grid(self, frames: int, frame: Sequence[int], num_timepoints: int, where: str = "",
                 start: int = 0, step: int = 1) -> "RowGrid":
        """The cells of a row whose frame grid ``start, start + step, ...`` holds ``frames`` frames of
        spatial shape ``frame``."""
        if frames < num_timepoints:
            raise SampleError(f"{where}: the row's range holds {frames} frames but the grid's windows take "
                              f"num_timepoints={num_timepoints} consecutive frames; widen the range or lower num_timepoints.")
        tile = self.tile_size(frame)
        overlaps = self.overlap if isinstance(self.overlap, tuple) else (self.overlap,) * len(frame)
        tiles = tuple(axis_starts(size, t, _overlap_step(t, size, o)) for size, t, o in zip(frame, tile, overlaps))
        windows = axis_starts(frames, num_timepoints, self.frame_stride or num_timepoints)
        return RowGrid(windows, num_timepoints, tuple(frame), tile, tiles, frames, start, step)


class GridCell(NamedTuple):
    """One sample of the grid: its row, the frame-grid positions of its frames, and its tile's start."""

    row: int
    positions: tuple[int, ...]
    tile_start: tuple[int, ...]


@dataclass(frozen=True)
class RowGrid:
    """The cells of one row: window starts on its frame grid, and tile starts per spatial axis."""

    windows: tuple[int, ...]
    num_timepoints: int
    frame: tuple[int, ...]  # the spatial shape of a frame, (Z, Y, X) or (Y, X)
    tile: tuple[int, ...]
    tile_starts: tuple[tuple[int, ...], ...]
    frames: int = 0  # the frames on the row's frame grid
    frame_start: int = 0  # the grid's first frame (the row's start) and its step
    frame_step: int = 1

    def position(self, t: int) -> int:
        """The place of the file's frame ``t`` on this row's frame grid."""
        return (t - self.frame_start) // self.frame_step

    @property
    def tiles_per_window(self) -> int:
        count = 1
        for starts in self.tile_starts:
            count *= len(starts)
        return count

    def __len__(self) -> int:
        return len(self.windows) * self.tiles_per_window

    def cell(self, n: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The frame positions and tile start of this row's ``n``-th cell."""
        window, tile = divmod(n, self.tiles_per_window)
        start: list[int] = []
        for starts in reversed(self.tile_starts):  # raster order: the last axis varies fastest
            tile, k = divmod(tile, len(starts))
            start.append(starts[k])
        first = self.windows[window]
        return tuple(range(first, first + self.num_timepoints)), tuple(reversed(start))


class GridIndex:
    """Every row's grid, and the global order over them: sample ``i`` -> :class:`GridCell`."""

    def __init__(self, rows: Sequence[RowGrid]) -> None:
        self.rows = tuple(rows)
        self._ends: list[int] = []
        total = 0
        for grid in self.rows:
            total += len(grid)
            self._ends.append(total)

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    def first_sample(self, row: int) -> int:
        """The global index of ``row``'s first cell."""
        return self._ends[row - 1] if row else 0

    def locate(self, index: int) -> GridCell:
        """The cell of sample ``index`` (``0 <= index < len(self)``)."""
        if not 0 <= index < len(self):
            raise IndexError(f"sample {index} is outside the grid's {len(self)} cells")
        row = bisect.bisect_right(self._ends, index)
        positions, start = self.rows[row].cell(index - self.first_sample(row))
        return GridCell(row, positions, start)


def _integer(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) and not hasattr(value, "__index__"):
        raise ConfigError(f"{name}={value!r} must be an integer.")
    return int(value)  # type: ignore[call-overload]
