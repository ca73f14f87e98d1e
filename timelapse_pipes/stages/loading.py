"""Loading stage: read the planned timepoints, channels and crop through bioio's lazy path."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ..config.options import SampleOptions
from ..reading.readers import OpenImage, ReaderCache
from ..reading.regions import crop_slices, read_region
from ..records import SamplePlan
from .collate import collate_values
from .fields import field_columns, sample_entries
from .row_layout import RowLayout

__all__ = ["BioIOLoader", "Sample"]

Sample = dict[str, Any]
MAX_LAYOUTS = 4096  # row layouts kept per loader; a manifest with more rows works them out again


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
        self._layouts: dict[int, RowLayout] = {}  # row index -> its layout (bounded)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_layouts"] = {}  # worked out again in each process
        return state

    def __call__(self, plan: SamplePlan) -> Sample | list[Sample]:
        """The sample (a list of samples for the "separate" layout) of a complete plan."""
        return self.attach(self.fields(plan), self.read(plan))

    def layout(self, plan: SamplePlan) -> RowLayout:
        """The layout the plan's row shares with every other sample of it (worked out once)."""
        assert plan.metadata is not None and plan.timepoints is not None, "plan is not complete"
        found = self._layouts.get(plan.row_index)
        if found is None or not found.fits(plan.row, plan.metadata):
            if len(self._layouts) >= MAX_LAYOUTS:
                self._layouts.clear()
            found = self._layouts[plan.row_index] = RowLayout.of(plan.row, plan.metadata, self.options)
        return found

    def read_shape(self, plan: SamplePlan) -> tuple[int, int, int, int, int]:
        """The ``(T, C, Z, Y, X)`` shape :meth:`read` returns for this plan (no I/O)."""
        return (len(plan.timepoints),) + self.layout(plan).czyx  # type: ignore[arg-type, return-value]

    def read(self, plan: SamplePlan, out: np.ndarray | None = None) -> np.ndarray:
        """The plan's ``(T, C, Z, Y, X)`` pixels in the final dtype; with ``out`` (that shape, the
        final dtype), written into it: the one copy a batch buffer needs."""
        layout = self.layout(plan)
        data = self._read(plan, layout, self._image(plan, layout), out)
        return data if out is not None else data.astype(self.options.dtype, copy=False)

    def read_into(self, plans: Sequence[SamplePlan], outs: Sequence[np.ndarray]) -> None:
        """:meth:`read` of each plan into its ``out`` (views of one batch buffer), looking up each
        row's open image once per batch rather than once per sample."""
        images: dict[int, OpenImage] = {}
        for plan, out in zip(plans, outs):
            layout = self.layout(plan)
            image = images.get(plan.row_index)
            if image is None:
                image = images[plan.row_index] = self._image(plan, layout)
            self._read(plan, layout, image, out)

    def _image(self, plan: SamplePlan, layout: RowLayout) -> OpenImage:
        metadata = layout.metadata
        return self.readers.get(plan.row.path, layout.reader_class, metadata.scene_index, metadata.resolution,
                                self.fs_kwargs, layout.reader_kwargs)

    def _read(self, plan: SamplePlan, layout: RowLayout, image: OpenImage, out: np.ndarray | None) -> np.ndarray:
        """The plan's pixels in the file's dtype, or cast into ``out`` (as ``astype`` casts)."""
        offset = plan.crop_offset
        if offset is not None and self.options.spatial_dims == 2:
            offset = (0,) + tuple(offset)
        region = crop_slices(layout.frame_zyx, offset, layout.roi_zyx)
        return read_region(image, layout.order, plan.timepoints, plan.row.channels, region,  # type: ignore[arg-type]
                           where=layout.where, out=out)

    def fields(self, plan: SamplePlan) -> Sample | list[Sample]:
        """Everything of the sample but its pixels (one dict per frame for the "separate" layout)."""
        separate = self.options.timepoint_layout == "separate"
        entries = sample_entries(plan, self.layout(plan), separate)
        columns = field_columns(entries)
        items = [{name: values[n] for name, values in columns.items()} for n in range(len(entries))]
        return items if separate else items[0]

    def batch_fields(self, plans: Sequence[SamplePlan]) -> dict[str, Any]:
        """``collate_samples`` of the plans' :meth:`fields`: the same columns, collated one by one."""
        separate = self.options.timepoint_layout == "separate"
        entries = [entry for plan in plans for entry in sample_entries(plan, self.layout(plan), separate)]
        return {name: collate_values(values) for name, values in field_columns(entries).items()}

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
