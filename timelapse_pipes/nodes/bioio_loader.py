"""Loading stage: read the planned timepoints, channels and crop through bioio's lazy path."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..dims import read_order
from ..options import SampleOptions
from ..readers import ReaderCache, load_reader_class, reader_options
from ..reading import crop_slices, read_region
from ..sample_plan import SamplePlan
from ..timing import times_of_frames

__all__ = ["BioIOLoader", "Sample"]

Sample = dict[str, Any]


class BioIOLoader:
    """``SamplePlan -> sample dict`` (a list of dicts with ``timepoint_layout="separate"``).

    Keys: ``out_key`` (default ``raw``: ``CZYX``/``CYX``, with a leading T axis when
    ``num_timepoints > 1`` and layout ``stack``), ``original_path``, ``T``, ``C``, ``scene``,
    ``resolution``, ``sample_index``, ``epoch``, ``row``, ``meta`` and the extra columns.
    """

    def __init__(self, options: SampleOptions, readers: ReaderCache | None = None,
                 fs_kwargs: Mapping[str, Any] | None = None) -> None:
        self.options = options
        self.readers = readers if readers is not None else ReaderCache()
        self.fs_kwargs = dict(fs_kwargs or {})

    def __call__(self, plan: SamplePlan) -> Sample | list[Sample]:
        """The sample (a list of samples for the "separate" layout) of a complete plan."""
        return self.attach(self.fields(plan), self.read(plan))

    def read_shape(self, plan: SamplePlan) -> tuple[int, int, int, int, int]:
        """The ``(T, C, Z, Y, X)`` shape :meth:`read` returns for this plan (no I/O)."""
        assert plan.metadata is not None and plan.timepoints is not None, "plan is not complete"
        options, row, metadata = self.options, plan.row, plan.metadata
        order = read_order(row.time_axis or options.time_axis, metadata.has_samples_axis)
        channels = len(row.channels) if row.channels is not None else metadata.dims[order[1]]
        channels *= metadata.dims.get("S", 1) if metadata.has_samples_axis else 1
        zyx = [metadata.dims[axis] for axis in order[2:5]]
        if options.crop is not None:
            zyx[3 - len(options.crop.roi_size):] = options.crop.roi_size
        return (len(plan.timepoints), channels, zyx[0], zyx[1], zyx[2])

    def read(self, plan: SamplePlan, out: np.ndarray | None = None) -> np.ndarray:
        """The plan's ``(T, C, Z, Y, X)`` pixels in the final dtype; with ``out`` (that shape, the
        final dtype), written into it: the one copy a batch buffer needs."""
        assert plan.metadata is not None and plan.timepoints is not None, "plan is not complete"
        options, row, metadata = self.options, plan.row, plan.metadata
        order = read_order(row.time_axis or options.time_axis, metadata.has_samples_axis)
        image = self.readers.get(row.path, load_reader_class(metadata.reader), metadata.scene_index,
                                 metadata.resolution, self.fs_kwargs,
                                 reader_options(metadata.reader, metadata.dims))
        frame = [metadata.dims[axis] for axis in order[2:5]]
        roi = None if options.crop is None else options.crop.roi_size
        if options.spatial_dims == 2 and roi is not None:
            roi, offset = (1,) + roi, (0,) + tuple(plan.crop_offset or ())
        else:
            offset = plan.crop_offset
        region = crop_slices(frame, offset, roi)
        where = f"{row.where} ({row.path}, scene {metadata.scene!r})"
        if out is not None:  # decoded straight into the batch buffer, cast as astype casts
            return read_region(image, order, plan.timepoints, row.channels, region, where=where, out=out)
        data = read_region(image, order, plan.timepoints, row.channels, region, where=where)
        return data.astype(options.dtype, copy=False)

    def fields(self, plan: SamplePlan) -> Sample | list[Sample]:
        """Everything of the sample but its pixels (one dict per frame for the "separate" layout)."""
        assert plan.metadata is not None and plan.timepoints is not None, "plan is not complete"
        options, row, metadata = self.options, plan.row, plan.metadata
        order = read_order(row.time_axis or options.time_axis, metadata.has_samples_axis)
        channels = list(row.channels) if row.channels is not None else list(range(metadata.dims[order[1]]))
        base = self._fields(plan, channels)
        # Frame times follow the file's T axis; a row reading another axis as time has none.
        times = times_of_frames(metadata.frame_times, plan.timepoints) if order[0] == "T" else None
        interval = metadata.time_interval_s if order[0] == "T" else None
        if options.timepoint_layout == "separate":
            return [{**base, "T": [t], "meta": _with_times(base["meta"], None if times is None else [times[k]],
                                                           interval)}
                    for k, t in enumerate(plan.timepoints)]
        return {**base, "T": list(plan.timepoints), "meta": _with_times(base["meta"], times, interval)}

    def attach(self, fields: Sample | list[Sample], data: np.ndarray) -> Sample | list[Sample]:
        """The sample(s): ``fields`` plus the ``(T, C, Z, Y, X)`` pixels in the sample's layout."""
        options = self.options
        if options.spatial_dims == 2:
            data = data[:, :, 0]
        if isinstance(fields, list):
            return [{**item, options.out_key: np.ascontiguousarray(data[k])} for k, item in enumerate(fields)]
        pixels = data[0] if options.num_timepoints == 1 else data
        return {**fields, options.out_key: np.ascontiguousarray(pixels)}

    def sample_shape(self, read_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The pixel shape of one sample (of one frame, for the "separate" layout) in a batch."""
        frame = read_shape[1:] if self.options.spatial_dims == 3 else read_shape[1:2] + read_shape[3:]
        if self.options.timepoint_layout == "separate" or self.options.num_timepoints == 1:
            return frame
        return read_shape[:1] + frame

    def _fields(self, plan: SamplePlan, channels: list[int]) -> Sample:
        metadata, row = plan.metadata, plan.row
        assert metadata is not None
        fields: Sample = {
            "original_path": row.path,
            "C": channels,
            "scene": metadata.scene,
            "resolution": metadata.resolution,
            "sample_index": plan.key.index,
            "epoch": plan.key.epoch,
            "row": plan.row_index,
            "meta": {
                "physical_pixel_sizes": list(metadata.physical_pixel_sizes),
                "channel_names": None if metadata.channel_names is None else [
                    metadata.channel_names[c] for c in channels if c < len(metadata.channel_names)],
                "dtype": metadata.dtype,
                "reader": metadata.reader,
            },
        }
        if plan.crop_offset is not None:
            fields["crop_start"] = list(plan.crop_offset)
        fields.update(dict(row.extras))
        return fields


def _with_times(meta: dict[str, Any], times: list[float] | None, interval: float | None) -> dict[str, Any]:
    """``meta`` plus ``time_s`` (each returned frame, seconds from the first frame) and
    ``time_interval_s`` (the file's nominal interval); None where the file has no timing."""
    return {**meta, "time_s": times, "time_interval_s": interval}
