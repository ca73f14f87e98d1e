"""Foreground-aware crop placement: put each crop where an image of the row (a mask, labels) has
foreground, without reading a crop and rejecting it.

For the sample's first timepoint, the ``where`` image's whole frame is read once per process
(foreground: any channel nonzero), turned into the foreground fraction of every crop window with a
summed-area table, and kept (LRU). The window is then drawn among those allowed, from the sample's
own crop stream, so placement stays a pure function of (seed, epoch, i) and the files: resume and
sharding stay exact.

* ``min_foreground=f``: positive windows hold at least that fraction of foreground (default: any);
* ``pos_neg=[p, n]``: exactly p of every p + n consecutive samples take a positive window, the others
  a window with no foreground (MONAI's ``RandCropByPosNegLabeld`` ratio, held within one per pass).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from ..errors import SampleError
from ..reading.regions import read_region
from ..records import SamplePlan
from ..sampling.crops import (
    choose_window,
    is_positive,
    nearest_indices,
    window_fractions,
)
from .loading import BioIOLoader
from .row_layout import RowLayout

__all__ = ["ForegroundCropPlacer", "MAX_MAPS"]

MAX_MAPS = 32  # foreground maps kept per process, one per (file, scene, level, channels, timepoint)
FULL_FRAME = (slice(None), slice(None), slice(None))


class ForegroundCropPlacer:
    """``SamplePlan -> SamplePlan`` with ``crop_offset`` placed by the ``crop['where']`` image's foreground."""

    def __init__(self, loader: BioIOLoader) -> None:
        options = loader.options
        assert options.crop is not None and options.crop.where is not None, "no foreground-placed crop"
        self.loader = loader  # its row layouts and open files serve the placement too
        self.options = options
        self.crop = options.crop
        self._maps: OrderedDict[tuple[Any, ...], np.ndarray] = OrderedDict()

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_maps": OrderedDict()}  # computed again in each process

    def __call__(self, plan: SamplePlan) -> SamplePlan:
        assert plan.timepoints is not None, "TimepointSampler must run before ForegroundCropPlacer"
        keys = [image.key for image in plan.row.images]
        n = keys.index(self.crop.where)  # validated when the loader was built
        layout = self.loader.image_layout(plan, n)
        frames = layout.metadata.dims[layout.order[0]]
        t = plan.timepoints[0] if frames > 1 else 0
        own = self.loader.layout(plan)
        fractions = self._fractions(layout, t, own.frame_zyx, own.roi_zyx or own.frame_zyx)
        positive = is_positive(plan.key.index, self.crop.pos_neg)
        if positive:
            allowed = fractions >= self.crop.min_foreground if self.crop.min_foreground else fractions > 0
        else:
            allowed = fractions == 0
        key = plan.key
        offset = choose_window(self.options.seed, key.epoch, key.index, allowed)
        if offset is None:
            kind = (f"at least {self.crop.min_foreground:g} foreground" if self.crop.min_foreground else "any foreground") \
                if positive else "no foreground"
            raise SampleError(
                f"{layout.where}: no crop window of roi_size {list(self.crop.roi_size)} holds {kind} at T={t}; "
                f"lower min_foreground, use a smaller roi_size, or drop this row."
            )
        if self.options.spatial_dims == 2:
            offset = offset[1:]
        return SamplePlan(key, plan.row_index, plan.row, plan.metadata, plan.timepoints, offset, plan.images)

    def _fractions(self, layout: RowLayout, t: int, grid: tuple[int, ...], roi: tuple[int, ...]) -> np.ndarray:
        """The foreground fraction of every ``roi`` window of the frame at ``t`` on the row's ``grid``
        (an image on another grid resized to it, nearest neighbour); cached."""
        metadata = layout.metadata
        cache_key = (layout.row.path, metadata.scene_index, metadata.resolution, layout.channels, t, tuple(grid))
        found = self._maps.get(cache_key)
        if found is not None:
            self._maps.move_to_end(cache_key)
            return found
        image = self.loader.readers.get(layout.row.path, layout.reader_class, metadata.scene_index,
                                        metadata.resolution, self.loader.fs_kwargs, layout.reader_kwargs)
        frame = read_region(image, layout.order, [t], layout.row.channels, FULL_FRAME, where=layout.where)[0]
        foreground = frame.any(axis=0)
        if tuple(foreground.shape) != tuple(grid):
            picks = [nearest_indices(n, m, 0, n) for n, m in zip(grid, foreground.shape)]
            foreground = foreground[np.ix_(*picks)]
        found = window_fractions(foreground, roi).astype(np.float32)
        self._maps[cache_key] = found
        if len(self._maps) > MAX_MAPS:
            self._maps.popitem(last=False)
        return found
