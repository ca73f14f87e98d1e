"""A low-resolution foreground map that still guarantees ``min_foreground`` (pure).

The map holds the exact foreground count of every ``block``-sized tile of the frame (the last tile
of an axis may be shorter), so it is ``block**3`` times smaller than the frame and can be kept in
the metadata cache. It bounds every window's foreground without the full-resolution frame:

* at least the counts of the tiles lying wholly inside the window (a lower bound), so a window
  whose lower bound reaches ``min_foreground`` surely does;
* at most the counts of the tiles the window touches (an upper bound), so a window whose upper
  bound is 0 surely holds no foreground.

Windows are drawn among those the bounds guarantee: a conservative subset of the exact choice,
missing only windows whose foreground sits in partly covered tiles (within ``block - 1`` pixels of
their edges).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

__all__ = ["TileWindows", "block_counts", "run_bounds", "window_bounds"]


def block_counts(foreground: np.ndarray, block: Sequence[int]) -> np.ndarray:
    """The foreground count of every ``block`` tile of a boolean (Z, Y, X) map."""
    padded_shape = tuple(-(-n // b) * b for n, b in zip(foreground.shape, block))
    padded = np.zeros(padded_shape, dtype=np.int64)
    padded[tuple(slice(0, n) for n in foreground.shape)] = foreground
    tiles = padded.reshape(padded_shape[0] // block[0], block[0], padded_shape[1] // block[1], block[1],
                           padded_shape[2] // block[2], block[2])
    return tiles.sum(axis=(1, 3, 5))


def window_bounds(counts: np.ndarray, block: Sequence[int], frame: Sequence[int],
                  roi: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of the foreground fraction of every ``roi`` window of the ``frame``
    whose tiles hold ``counts``, indexed by the window's start (shape ``frame - roi + 1``)."""
    runs, lower, upper = run_bounds(counts, block, frame, roi)
    lengths = [length for _, length in runs]

    def expand(values: np.ndarray) -> np.ndarray:
        for axis, length in enumerate(lengths):
            values = np.repeat(values, length, axis=axis)
        return values

    return expand(lower), expand(upper)


def run_bounds(counts: np.ndarray, block: Sequence[int], frame: Sequence[int], roi: Sequence[int]
               ) -> tuple[list[tuple[np.ndarray, np.ndarray]], np.ndarray, np.ndarray]:
    """The window starts of each axis in runs that share the same tiles (a few per tile, so the
    bounds take one value per run rather than one per start): ``(first start, length)`` of every
    run per axis, and the lower and upper bounds of each combination of runs."""
    table = np.zeros(tuple(n + 1 for n in counts.shape), dtype=np.int64)
    table[1:, 1:, 1:] = counts.cumsum(0).cumsum(1).cumsum(2)
    runs, inner, touched = [], [], []
    for n, r, b, tiles in zip(frame, roi, block, counts.shape):
        starts = np.arange(n - r + 1)
        ends = starts + r
        first_inside = -(-starts // b)
        past_inside = np.maximum(np.where(ends >= n, tiles, ends // b), first_inside)  # a short last tile is inside at the edge
        first_touched, past_touched = starts // b, np.minimum(-(-ends // b), tiles)
        tiles_of = np.stack([first_inside, past_inside, first_touched, past_touched])
        heads = np.flatnonzero(np.any(np.diff(tiles_of, axis=1) != 0, axis=0)) + 1
        heads = np.concatenate([[0], heads])
        runs.append((heads, np.diff(np.concatenate([heads, [starts.size]]))))
        inner.append((first_inside[heads], past_inside[heads]))
        touched.append((first_touched[heads], past_touched[heads]))
    volume = float(np.prod(roi))
    return runs, _box_sums(table, inner) / volume, _box_sums(table, touched) / volume


class TileWindows:
    """The window starts a sample may take, as whole runs of starts (see :func:`run_bounds`): the
    ``n``-th allowed start, in the runs' order, without listing every start."""

    def __init__(self, runs: list[tuple[np.ndarray, np.ndarray]], allowed: np.ndarray) -> None:
        self.heads = [heads for heads, _ in runs]
        self.lengths = [lengths for _, lengths in runs]
        self.cells = np.flatnonzero(allowed)
        sizes = np.ones(allowed.shape, dtype=np.int64)
        for axis, lengths in enumerate(self.lengths):
            shape = [1, 1, 1]
            shape[axis] = lengths.size
            sizes = sizes * lengths.reshape(shape)
        self.ends = np.cumsum(sizes.reshape(-1)[self.cells])
        self.grid = allowed.shape

    @property
    def count(self) -> int:
        """How many window starts are allowed."""
        return int(self.ends[-1]) if self.ends.size else 0

    def at(self, n: int) -> tuple[int, ...]:
        """The ``n``-th allowed start (0 <= n < count)."""
        k = int(np.searchsorted(self.ends, n, side="right"))
        within = n - (int(self.ends[k - 1]) if k else 0)
        cell = np.unravel_index(int(self.cells[k]), self.grid)
        lengths = [int(self.lengths[axis][c]) for axis, c in enumerate(cell)]
        local = np.unravel_index(within, lengths)
        return tuple(int(self.heads[axis][c]) + int(v) for axis, (c, v) in enumerate(zip(cell, local)))


def _box_sums(table: np.ndarray, bounds: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Sums of ``table`` (a summed-area table) over the tile boxes ``[low, high)`` per axis, for every
    combination of the three axes' windows."""
    (z0, z1), (y0, y1), (x0, x1) = bounds

    def at(z: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        return table[np.ix_(z, y, x)]

    return (at(z1, y1, x1) - at(z0, y1, x1) - at(z1, y0, x1) - at(z1, y1, x0)
            + at(z0, y0, x1) + at(z0, y1, x0) + at(z1, y0, x0) - at(z0, y0, x0))
