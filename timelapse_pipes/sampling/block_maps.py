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

__all__ = ["block_counts", "window_bounds"]


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
    table = np.zeros(tuple(n + 1 for n in counts.shape), dtype=np.int64)
    table[1:, 1:, 1:] = counts.cumsum(0).cumsum(1).cumsum(2)
    inner, touched = [], []
    for n, r, b, tiles in zip(frame, roi, block, counts.shape):
        starts = np.arange(n - r + 1)
        ends = starts + r
        first_inside = -(-starts // b)
        past_inside = np.where(ends >= n, tiles, ends // b)  # the last tile may be short: inside when the window reaches the edge
        inner.append((first_inside, np.maximum(past_inside, first_inside)))
        touched.append((starts // b, np.minimum(-(-ends // b), tiles)))
    volume = float(np.prod(roi))
    return _box_sums(table, inner) / volume, _box_sums(table, touched) / volume


def _box_sums(table: np.ndarray, bounds: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Sums of ``table`` (a summed-area table) over the tile boxes ``[low, high)`` per axis, for every
    combination of the three axes' windows."""
    (z0, z1), (y0, y1), (x0, x1) = bounds

    def at(z: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        return table[np.ix_(z, y, x)]

    return (at(z1, y1, x1) - at(z0, y1, x1) - at(z1, y0, x1) - at(z1, y1, x0)
            + at(z0, y0, x1) + at(z0, y1, x0) + at(z1, y0, x0) - at(z0, y0, x0))
