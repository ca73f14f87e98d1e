"""Timepoint stage: choose the sample's timepoints and crop offset (pure given the metadata)."""

from __future__ import annotations

from ..dims import effective_dims, read_order
from ..options import SampleOptions
from ..planning import choose_crop_offset
from ..sample_plan import SamplePlan

__all__ = ["TimepointSampler"]


class TimepointSampler:
    """``SamplePlan -> SamplePlan`` with ``timepoints`` (and ``crop_offset`` when cropping)."""

    def __init__(self, options: SampleOptions) -> None:
        self.options = options

    def __call__(self, plan: SamplePlan) -> SamplePlan:
        assert plan.metadata is not None, "MetadataCacher must run before TimepointSampler"
        options, row, key, metadata = self.options, plan.row, plan.key, plan.metadata
        axis = row.time_axis or options.time_axis
        stop = metadata.dims[read_order(axis, False)[0]] if row.stop is None else row.stop
        where = row.where
        timepoints = options.frame_rule.choose(options.seed, key.epoch, key.index, row.start, stop,
                                               row.step, where)
        if options.crop is None:
            return plan.with_(timepoints=timepoints)
        dims = effective_dims(metadata, axis)
        frame = [dims[a] for a in ("ZYX" if options.spatial_dims == 3 else "YX")]
        offset = choose_crop_offset(options.seed, key.epoch, key.index, frame, options.crop, where=where)
        return plan.with_(timepoints=timepoints, crop_offset=offset)
