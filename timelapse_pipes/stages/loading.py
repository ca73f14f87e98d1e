"""Loading stage: read the planned timepoints, channels and crop through bioio's lazy path."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ..config.options import SampleOptions
from ..reading.readers import OpenImage, ReaderCache
from ..reading.regions import crop_slices, read_region
from ..records import ManifestRow, SamplePlan
from ..sampling.crops import nearest_indices
from .collate import collate_values
from .fields import field_columns, sample_entries
from .row_layout import RowLayout

__all__ = ["BioIOLoader", "Sample"]

Sample = dict[str, Any]
# Integer types torch stores but barely computes with, and the type further images are given instead.
TORCH_FRIENDLY = {"uint16": np.dtype("int32"), "uint32": np.dtype("int64")}
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
        self._image_layouts: dict[tuple[int, int], tuple[ManifestRow, RowLayout]] = {}  # (row, image) -> layout

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_layouts"] = {}  # worked out again in each process
        state["_image_layouts"] = {}
        return state

    def __call__(self, plan: SamplePlan) -> Sample | list[Sample]:
        """The sample (a list of samples for the "separate" layout) of a complete plan."""
        arrays = {self.options.out_key: self.read(plan)}
        for n, image in enumerate(plan.row.images):
            arrays[image.key] = self.read_image(plan, n)
        return self.attach(self.fields(plan), arrays)

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
        return self.readers.get(layout.row.path, layout.reader_class, metadata.scene_index, metadata.resolution,
                                self.fs_kwargs, layout.reader_kwargs)

    def _read(self, plan: SamplePlan, layout: RowLayout, image: OpenImage, out: np.ndarray | None,
              timepoints: Sequence[int] | None = None) -> np.ndarray:
        """The plan's pixels (at ``timepoints``, default the plan's) in the file's dtype, or cast into
        ``out`` (as ``astype`` casts)."""
        region = crop_slices(layout.frame_zyx, self.zyx_offset(plan), layout.roi_zyx)
        return read_region(image, layout.order, plan.timepoints if timepoints is None else timepoints,  # type: ignore[arg-type]
                           layout.row.channels, region, where=layout.where, out=out)

    def zyx_offset(self, plan: SamplePlan) -> tuple[int, ...] | None:
        """The plan's crop offset as (Z, Y, X) (a (Y, X) crop of ``spatial_dims=2`` reads plane 0)."""
        offset = plan.crop_offset
        if offset is not None and self.options.spatial_dims == 2:
            return (0,) + tuple(offset)
        return None if offset is None else tuple(offset)

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

    def attach(self, fields: Sample | list[Sample], data: np.ndarray | Mapping[str, np.ndarray]) -> Sample | list[Sample]:
        """The sample(s): ``fields`` plus the ``(T, C, Z, Y, X)`` pixels in the sample's layout, under
        ``out_key`` (or each array of ``data`` under its key)."""
        arrays = {self.options.out_key: data} if isinstance(data, np.ndarray) else dict(data)
        entries = {key: self.entry_arrays(value) for key, value in arrays.items()}
        items = fields if isinstance(fields, list) else [fields]
        samples = [{**item, **{key: np.ascontiguousarray(value[k]) for key, value in entries.items()}}
                   for k, item in enumerate(items)]
        return samples if isinstance(fields, list) else samples[0]

    def entry_arrays(self, data: np.ndarray) -> list[np.ndarray]:
        """``(T, C, Z, Y, X)`` pixels as the sample holds them: one array, or one per frame for the
        "separate" layout; without Z for ``spatial_dims=2``, without T for one stacked frame."""
        if self.options.spatial_dims == 2:
            data = data[:, :, 0]
        if self.options.timepoint_layout == "separate":
            return [data[k] for k in range(len(data))]
        return [data[0] if self.options.num_timepoints == 1 else data]

    def image_layout(self, plan: SamplePlan, n: int) -> RowLayout:
        """The layout of the plan's ``n``-th further image (worked out once per row)."""
        metadata = plan.images[n]
        found = self._image_layouts.get((plan.row_index, n))
        if found is None or found[0] is not plan.row or found[1].metadata is not metadata:
            if len(self._image_layouts) >= MAX_LAYOUTS:
                self._image_layouts.clear()
            layout = RowLayout.of(plan.row.for_image(plan.row.images[n]), metadata, self.options)
            found = self._image_layouts[(plan.row_index, n)] = (plan.row, layout)
        return found[1]

    def read_image(self, plan: SamplePlan, n: int) -> np.ndarray:
        """The ``(T, C, Z, Y, X)`` pixels of the plan's ``n``-th further image at the plan's timepoints
        and crop window, in that file's own dtype (labels stay integers; uint16 and uint32, which torch
        barely computes with, widen to int32 and int64). A single-frame image (T=1, e.g. one mask for a
        whole movie) gives its frame for every timepoint."""
        layout = self.image_layout(plan, n)
        timepoints = plan.timepoints
        assert timepoints is not None, "plan is not complete"
        if layout.metadata.dims[layout.order[0]] == 1:
            timepoints = (0,) * len(timepoints)
        own = self.layout(plan)
        if layout.frame_zyx == own.frame_zyx:
            data = self._read(plan, layout, self._image(plan, layout), None, timepoints)
        else:  # another grid ("resize": "nearest"): read the matching window, then resize it
            offset = self.zyx_offset(plan)
            starts = (0, 0, 0) if offset is None else offset
            sizes = own.frame_zyx if own.roi_zyx is None else own.roi_zyx
            picks = [nearest_indices(own_size, other_size, start, size)
                     for own_size, other_size, start, size in zip(own.frame_zyx, layout.frame_zyx, starts, sizes)]
            region = tuple(slice(int(p[0]), int(p[-1]) + 1) for p in picks)
            data = read_region(self._image(plan, layout), layout.order, timepoints, layout.row.channels, region,
                               where=layout.where)
            data = data[np.ix_(range(data.shape[0]), range(data.shape[1]), *(p - p[0] for p in picks))]
        return data.astype(TORCH_FRIENDLY.get(data.dtype.name, data.dtype), copy=False)

    def sample_shape(self, read_shape: tuple[int, ...]) -> tuple[int, ...]:
        """The pixel shape of one sample (of one frame, for the "separate" layout) in a batch."""
        frame = read_shape[1:] if self.options.spatial_dims == 3 else read_shape[1:2] + read_shape[3:]
        if self.options.timepoint_layout == "separate" or self.options.num_timepoints == 1:
            return frame
        return read_shape[:1] + frame
