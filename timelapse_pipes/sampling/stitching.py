"""Putting per-tile predictions back into whole frames: the inverse of the inference grid.

A :class:`GridStitcher` takes each batch the grid loader yielded with the model's predictions for
it, finds every sample's cell from its ``sample_index`` and its frames from ``T``, and adds the
predictions into the row's frames, averaging where tiles (or frame windows) overlap. A row is
handed back, and its pixels forgotten, as soon as every cell of it has arrived, so inference over a
long manifest holds only the rows in flight. A cell that arrives twice (a rank's padding at the end
of an epoch) counts once.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from .grid import GridIndex

__all__ = ["GridStitcher"]


class GridStitcher:
    """Per-row ``(frames, C, [Z,] Y, X)`` float32 arrays rebuilt from tile predictions.

    ``stacked``: each prediction holds the sample's frames on a leading axis (``num_timepoints > 1``
    with ``timepoint_layout="stack"``); otherwise one frame, ``(C, [Z,] Y, X)``.
    """

    def __init__(self, grid: GridIndex, *, spatial_dims: int = 3, stacked: bool = False) -> None:
        self.grid = grid
        self.spatial_dims = spatial_dims
        self.stacked = stacked
        self._sums: dict[int, np.ndarray] = {}
        self._counts: dict[int, np.ndarray] = {}
        self._seen: dict[int, set[tuple[int, int]]] = {}
        self._done: set[int] = set()  # rows handed back: a cell of theirs arriving again is a repeat

    @classmethod
    def for_loader(cls, loader: Any) -> "GridStitcher":
        """The stitcher of a grid ``TimelapseLoader`` (or anything with its ``prepared``)."""
        prepared = loader.prepared
        if prepared.grid is None:
            raise ValueError("this loader has no grid; build it with grid={'roi_size': [...]} to stitch tiles.")
        options = prepared.options
        return cls(prepared.grid, spatial_dims=options.spatial_dims,
                   stacked=options.num_timepoints > 1 and options.timepoint_layout == "stack")

    def add(self, batch: Mapping[str, Any], predictions: Any) -> list[tuple[int, np.ndarray]]:
        """Add a batch's predictions (one per sample of ``batch``, tile-shaped); return the rows this
        batch completed as ``(row, frames)``, in row order."""
        values = _numpy(predictions)
        indices = _numpy(batch["sample_index"]).reshape(-1)
        frames = _numpy(batch["T"]).reshape(len(indices), -1)
        if len(values) != len(indices):
            raise ValueError(f"{len(values)} predictions for a batch of {len(indices)} samples")
        touched = []
        for index, times, value in zip(indices.tolist(), frames.tolist(), values):
            cell = self.grid.locate(index)
            grid = self.grid.rows[cell.row]
            planes = value if self.stacked else value[None]
            if len(planes) != len(times):
                raise ValueError(f"sample {index}: a prediction of {len(planes)} frames for {len(times)} timepoints; "
                                 f"check the stitcher's stacked={self.stacked}")
            for t, plane in zip(times, planes):
                self._add(cell.row, index, grid.position(t), cell.tile_start, plane)
            touched.append(cell.row)
        return [(row, self._pop(row)) for row in sorted(set(touched)) if self._complete(row)]

    def _add(self, row: int, index: int, position: int, start: tuple[int, ...], plane: np.ndarray) -> None:
        grid = self.grid.rows[row]
        if row in self._done:
            return
        if tuple(plane.shape[1:]) != tuple(grid.tile):
            raise ValueError(f"sample {index}: a prediction of spatial shape {list(plane.shape[1:])} for tiles "
                             f"of {list(grid.tile)}; predict one value per input pixel")
        seen = self._seen.setdefault(row, set())
        if (index, position) in seen:
            return
        seen.add((index, position))
        if row not in self._sums:
            self._sums[row] = np.zeros((grid.frames, plane.shape[0], *grid.frame), dtype=np.float32)
            self._counts[row] = np.zeros((grid.frames, *grid.frame), dtype=np.uint16)
        window = tuple(slice(s, s + n) for s, n in zip(start, grid.tile))
        self._sums[row][(position, slice(None), *window)] += plane
        self._counts[row][(position, *window)] += 1

    def _complete(self, row: int) -> bool:
        grid = self.grid.rows[row]
        return len(self._seen.get(row, ())) == len(grid) * grid.num_timepoints  # every frame of every cell

    def _pop(self, row: int) -> np.ndarray:
        sums, counts = self._sums.pop(row), self._counts.pop(row)
        del self._seen[row]
        self._done.add(row)
        return sums / np.maximum(counts, 1)[:, None]

    @property
    def pending_rows(self) -> list[int]:
        """Rows with some cells added but not all."""
        return sorted(self._sums)


def _numpy(value: Any) -> np.ndarray:
    """A batch field or predictions as numpy (torch tensors via ``.detach().cpu()``)."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)
