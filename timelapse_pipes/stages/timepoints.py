"""Timepoint stage: choose the sample's timepoints and crop offset (pure given the metadata)."""

from __future__ import annotations

from ..config.options import SampleOptions
from ..records import SamplePlan
from ..sampling.crops import choose_crop_offset
from ..sampling.dims import effective_dims, read_order

__all__ = ["TimepointSampler"]


class TimepointSampler:
    """``SamplePlan -> SamplePlan`` with ``timepoints`` (and ``crop_offset`` when cropping)."""

    def __init__(self, options: SampleOptions) -> None:
        self.options = options
        self.rule = options.frame_rule

    def __call__(self, plan: SamplePlan) -> SamplePlan:
        metadata = plan.metadata
        assert metadata is not None, "MetadataCacher must run before TimepointSampler"
        options, row, key = self.options, plan.row, plan.key
        axis = row.time_axis or options.time_axis
        stop = metadata.dims[read_order(axis, False)[0]] if row.stop is None else row.stop
        timepoints = self.rule.choose(options.seed, key.epoch, key.index, row.start, stop, row.step, row.where)
        offset = plan.crop_offset
        if options.crop is not None and not options.crop.placed:  # a placed crop: ForegroundCropPlacer
            dims = effective_dims(metadata, axis)
            frame = [dims[a] for a in ("ZYX" if options.spatial_dims == 3 else "YX")]
            offset = choose_crop_offset(options.seed, key.epoch, key.index, frame, options.crop, where=row.where)
        # Built directly: a named tuple's _replace costs a microsecond, a sample's budget is tens.
        return SamplePlan(key, plan.row_index, row, metadata, timepoints, offset, plan.images)
