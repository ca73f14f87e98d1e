"""Grid stages: plan sample i as cell i of the inference grid (rows in order, frame windows, tiles).

:func:`build_grid` reads every row's metadata once (through the metadata cache, so a persisted
cache opens no file) to know how many cells each row holds: the epoch's length depends on the
frame sizes, unlike the random samplers, which plan without them. :class:`GridRowPlanner` then
stands in for the manifest-row planner and :class:`GridWindowPlanner` for the timepoint sampler;
both are pure lookups in the :class:`~timelapse_pipes.sampling.grid.GridIndex`.
"""

from __future__ import annotations

from ..config.manifest import Manifest
from ..config.options import SampleOptions
from ..records import SampleKey, SamplePlan
from ..sampling.dims import effective_dims
from ..sampling.grid import GridIndex
from ..sampling.timepoints import frames_in_range
from .metadata import MetadataCacher

__all__ = ["GridRowPlanner", "GridWindowPlanner", "build_grid"]


def build_grid(manifest: Manifest, options: SampleOptions, metadata: MetadataCacher) -> GridIndex:
    """The grid of every row of ``manifest`` (each row's metadata read and checked once)."""
    grid = options.grid
    assert grid is not None, "build_grid needs SampleOptions.grid"
    rows = []
    for n in range(len(manifest)):
        row = manifest[n]
        plan = metadata(SamplePlan(SampleKey(0, 0), n, row))
        axis = row.time_axis or options.time_axis
        dims = effective_dims(plan.metadata, axis)  # type: ignore[arg-type]
        stop = dims["T"] if row.stop is None else row.stop
        frame = [dims[a] for a in ("ZYX" if options.spatial_dims == 3 else "YX")]
        rows.append(grid.row_grid(frames_in_range(row.start, stop, row.step), frame, options.num_timepoints,
                                  row.describe(plan.metadata.scene), row.start, row.step))  # type: ignore[union-attr]
    metadata.metadata.flush()  # persisted now (when a cache file is set): the next run plans without opening
    return GridIndex(rows)


class GridRowPlanner:
    """``SampleKey -> SamplePlan`` with the row of grid cell ``key.index``."""

    def __init__(self, manifest: Manifest, grid: GridIndex) -> None:
        self.manifest = manifest
        self.grid = grid

    def __call__(self, key: SampleKey) -> SamplePlan:
        row = self.grid.locate(key.index).row
        return SamplePlan(key=key, row_index=row, row=self.manifest[row])


class GridWindowPlanner:
    """``SamplePlan -> SamplePlan`` with the timepoints and tile start of grid cell ``key.index``."""

    def __init__(self, grid: GridIndex) -> None:
        self.grid = grid

    def __call__(self, plan: SamplePlan) -> SamplePlan:
        cell = self.grid.locate(plan.key.index)
        row = plan.row
        timepoints = tuple(row.start + p * row.step for p in cell.positions)  # the row grid's rule
        return SamplePlan(plan.key, plan.row_index, row, plan.metadata, timepoints, cell.tile_start, plan.images)
