"""Crop placement by an image of the row: put each crop where a mask or labels have foreground, on a
label class, or where a weight map says, without reading a crop and rejecting it.

Placement reads the placing image's frame at the sample's first timepoint once per process
(:class:`~.frame_maps.FrameMaps`) and draws the window from the sample's own crop stream, so it stays
a pure function of (seed, epoch, i) and the files: resume and sharding stay exact.

* ``where`` + ``min_foreground=f``: positive windows hold at least that fraction of foreground (any
  channel nonzero; default: any foreground), drawn uniformly among the windows that do;
* ``pos_neg=[p, n]``: exactly p of every p + n consecutive samples take a positive window, the others
  a window with no foreground (MONAI's ``RandCropByPosNegLabeld`` ratio, held within one per pass);
* ``map_block=b``: the windows come from the frame's foreground counts in b x b x b tiles (at most
  the crop's size per axis), kept in the metadata cache: a window is taken only where the counts guarantee ``min_foreground`` (or no
  foreground, for a negative), so every crop still meets it (see :mod:`..sampling.block_maps`); a
  frame where the counts guarantee none falls back to the exact windows;
* ``where`` + ``ratios`` (or ``num_classes``): sample i is centred on a pixel of the class
  :func:`~..sampling.class_ratios.class_of` gives it (MONAI's ``RandCropByLabelClassesd``); a class
  missing from the frame has its ratio set to 0 for that frame, with a warning, as MONAI does;
* ``weights``: the window centre is drawn in proportion to that image (torchio's ``WeightedSampler``).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from ..errors import SampleError
from ..reading.cache.metadata_cache import MetadataCache
from ..records import SamplePlan
from ..sampling.block_maps import TileWindows, run_bounds
from ..sampling.centre_draws import (
    ClassPixels,
    WeightTable,
    choose_class_window,
    choose_weighted_window,
)
from ..sampling.class_ratios import class_of
from ..sampling.crops import (
    AllowedWindows,
    check_crop_fits,
    choose_window,
    is_positive,
    window_fractions,
)
from .frame_maps import FrameMaps
from .loading import BioIOLoader
from .row_layout import RowLayout

__all__ = ["ForegroundCropPlacer"]


class ForegroundCropPlacer:
    """``SamplePlan -> SamplePlan`` with ``crop_offset`` placed by the crop's placing image."""

    def __init__(self, loader: BioIOLoader, metadata: MetadataCache | None = None) -> None:
        options = loader.options
        assert options.crop is not None and options.crop.placed, "no placed crop"
        self.loader = loader  # its row layouts and open files serve the placement too
        self.options = options
        self.crop = options.crop
        self.maps = FrameMaps(loader, metadata)
        self._warned: set[tuple[Any, ...]] = set()

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_warned": set()}

    def __call__(self, plan: SamplePlan) -> SamplePlan:
        assert plan.timepoints is not None, "TimepointSampler must run before ForegroundCropPlacer"
        keys = [image.key for image in plan.row.images]
        layout = self.loader.image_layout(plan, keys.index(self.crop.placing_image))  # validated at build
        frames = layout.metadata.dims[layout.order[0]]
        t = plan.timepoints[0] if frames > 1 else 0
        own = self.loader.layout(plan)
        grid, roi = own.frame_zyx, own.roi_zyx or own.frame_zyx
        check_crop_fits(grid[3 - self.options.spatial_dims:], self.crop, own.where)
        if self.crop.weights is not None:
            offset = self._weighted(plan, layout, t, grid, roi)
        elif self.crop.by_class:
            offset = self._by_class(plan, layout, t, grid, roi)
        else:
            offset = self._by_foreground(plan, layout, t, grid, roi)
        if self.options.spatial_dims == 2:
            offset = offset[1:]
        return SamplePlan(plan.key, plan.row_index, plan.row, plan.metadata, plan.timepoints, offset, plan.images)

    def _by_foreground(self, plan: SamplePlan, layout: RowLayout, t: int, grid: tuple[int, ...],
                       roi: tuple[int, ...]) -> tuple[int, ...]:
        positive = is_positive(plan.key.index, self.crop.pos_neg)
        threshold = self.crop.min_foreground
        windows: AllowedWindows | TileWindows | None = None
        if self.crop.map_block is not None:
            block = tuple(min(self.crop.map_block, r) for r in roi)  # a tile bigger than the crop is never inside it
            windows = self.maps.derived("bounded", layout, t, grid,
                                        lambda: _bounded(self.maps.counts(layout, t, grid, block), block, grid, roi,
                                                         positive, threshold), roi, block, positive, threshold)
        if windows is None or windows.count == 0:
            fractions = self.maps.get("fractions", layout, t, grid,
                                      lambda frame: window_fractions(frame.any(axis=0), roi).astype(np.float32), roi)
            windows = self.maps.derived("windows", layout, t, grid,
                                        lambda: AllowedWindows.of(_allowed(fractions, fractions, positive, threshold)),
                                        roi, positive, threshold)
        offset = choose_window(self.options.seed, plan.key.epoch, plan.key.index, windows)
        if offset is None:
            kind = (f"at least {threshold:g} foreground" if threshold else "any foreground") if positive \
                else "no foreground"
            raise SampleError(
                f"{layout.where}: no crop window of roi_size {list(self.crop.roi_size)} holds {kind} at T={t}; "
                f"lower min_foreground, use a smaller roi_size, or drop this row."
            )
        return offset

    def _by_class(self, plan: SamplePlan, layout: RowLayout, t: int, grid: tuple[int, ...],
                  roi: tuple[int, ...]) -> tuple[int, ...]:
        ratios = self.crop.ratios
        assert ratios is not None
        channels = layout.czyx[0]
        if channels not in (1, len(ratios)):
            raise SampleError(
                f"{layout.where}: crop ratios name {len(ratios)} classes but the image has {channels} channels; "
                f"give one ratio per channel (one-hot labels), or pick one channel of class values with the "
                f"image's channel column."
            )
        pixels = self.maps.get("classes", layout, t, grid, lambda frame: ClassPixels.of(frame, len(ratios)),
                               len(ratios))
        present = tuple(ratio if pixels.count(k) else 0 for k, ratio in enumerate(ratios))
        if not any(present):
            raise SampleError(
                f"{layout.where}: no pixel at T={t} belongs to a class with a nonzero crop ratio "
                f"(ratios {list(ratios)}, background first); check the labels or drop this row."
            )
        self._warn_absent(layout, t, ratios, present)
        k = class_of(plan.key.index, present)
        return choose_class_window(self.options.seed, plan.key.epoch, plan.key.index, pixels, k, roi)

    def _warn_absent(self, layout: RowLayout, t: int, ratios: tuple[int, ...], present: tuple[int, ...]) -> None:
        absent = [k for k, (ratio, kept) in enumerate(zip(ratios, present)) if ratio and not kept]
        key = (layout.row.path, layout.metadata.scene, t)
        if absent and key not in self._warned:
            self._warned.add(key)
            warnings.warn(f"{layout.where}: no pixel of class(es) {absent} at T={t} to centre a crop on; their crop "
                          f"ratio is 0 for this frame (as MONAI's RandCropByLabelClassesd does).", stacklevel=2)

    def _weighted(self, plan: SamplePlan, layout: RowLayout, t: int, grid: tuple[int, ...],
                  roi: tuple[int, ...]) -> tuple[int, ...]:
        table = self.maps.get("weights", layout, t, grid, lambda frame: _weight_table(frame, roi, layout, t), roi)
        if table.total <= 0:
            raise SampleError(
                f"{layout.where}: the weight map {self.crop.weights!r} is 0 at T={t} wherever the centre of a "
                f"roi_size {list(self.crop.roi_size)} window can lie (weights within half a window of the edges "
                f"centre no window); check the map or use a smaller roi_size."
            )
        return choose_weighted_window(self.options.seed, plan.key.epoch, plan.key.index, table)


def _weight_table(frame: np.ndarray, roi: tuple[int, ...], layout: RowLayout, t: int) -> WeightTable:
    """The cumulative weights of the frame's first channel; negative or NaN weights are refused."""
    weights = frame[0]
    finite = weights.dtype.kind != "f" or bool(np.isfinite(weights).all())
    if not finite or (weights.dtype.kind in "if" and bool((weights < 0).any())):
        raise SampleError(f"{layout.where}: the weight map holds negative or non-finite values at T={t}; "
                          f"weights must be >= 0 (clip or rescale the map).")
    return WeightTable.of(weights, roi)


def _bounded(counts: np.ndarray, block: tuple[int, ...], grid: tuple[int, ...], roi: tuple[int, ...],
             positive: bool, threshold: float | None) -> TileWindows:
    """The windows the tile counts guarantee, found run by run (no map of every window)."""
    runs, lower, upper = run_bounds(counts, block, grid, roi)
    return TileWindows(runs, _allowed(lower, upper, positive, threshold))


def _allowed(lower: np.ndarray, upper: np.ndarray, positive: bool, threshold: float | None) -> np.ndarray:
    """The windows a positive (foreground at least ``threshold``, else any) or negative (none) sample may take."""
    if positive:
        return lower >= threshold if threshold else lower > 0
    return upper == 0
