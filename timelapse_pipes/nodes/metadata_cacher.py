"""Metadata stage: attach the row's image metadata, read once per (file, scene, level) per process,
and check once per row that the row fits the image (channels, range, Z, dtype)."""

from __future__ import annotations

import warnings

import numpy as np

from ..dims import effective_dims
from ..errors import ImageReadError, SampleError
from ..manifest import ManifestRow
from ..metadata import ImageMetadata, MetadataCache
from ..options import SampleOptions
from ..readers import ReaderCache
from ..sample_plan import SamplePlan

__all__ = ["MetadataCacher", "check_row_fits"]


class MetadataCacher:
    """``SamplePlan -> SamplePlan`` with ``metadata`` filled in."""

    def __init__(self, options: SampleOptions, metadata: MetadataCache | None = None,
                 readers: ReaderCache | None = None) -> None:
        self.options = options
        self.metadata = metadata if metadata is not None else MetadataCache(reader=options.reader)
        self.readers = readers if readers is not None else ReaderCache()
        self._checked: set[int] = set()

    def __getstate__(self) -> dict:
        return {"options": self.options, "metadata": self.metadata, "readers": self.readers}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["options"], state["metadata"], state["readers"])  # type: ignore[misc]

    def __call__(self, plan: SamplePlan) -> SamplePlan:
        try:
            metadata = self.metadata.get(plan.row, self.readers)
        except ImageReadError as error:
            if str(error).startswith(plan.row.where):
                raise
            raise type(error)(f"{plan.row.where}: {error}") from error
        if plan.row_index not in self._checked:
            check_row_fits(plan.row, metadata, self.options)
            self._checked.add(plan.row_index)
        return SamplePlan(plan.key, plan.row_index, plan.row, metadata, plan.timepoints, plan.crop_offset)


_WARNED_CASTS: set[tuple[str, str]] = set()


def check_row_fits(row: ManifestRow, metadata: ImageMetadata, options: SampleOptions,
                   check_spatial_dims: bool = True) -> None:
    """Raise :class:`SampleError` naming the row when it asks for what the image lacks."""
    time_axis = row.time_axis or options.time_axis
    dims = effective_dims(metadata, time_axis)
    where = f"{row.where} ({row.path}, scene {metadata.scene!r})"
    if row.channels is not None and max(row.channels) >= dims["C"]:
        raise SampleError(
            f"{where}: channel {max(row.channels)} is out of range; the image has {dims['C']} "
            f"channel(s) (0..{dims['C'] - 1})."
        )
    if row.start >= dims["T"]:
        raise SampleError(f"{where}: start={row.start} is beyond the image's T={dims['T']} frames.")
    if row.stop is not None and row.stop > dims["T"]:
        raise SampleError(
            f"{where}: stop={row.stop} is beyond the image's T={dims['T']} frames (stop is exclusive; "
            f"use -1 for the end)."
        )
    options.frame_rule.check(row.start, dims["T"] if row.stop is None else row.stop, row.step, where)
    # spatial_dims=3 on a 2-D image gives Z=1 (as bioio and cyto-dl do); only the reverse is refused.
    if check_spatial_dims and options.spatial_dims == 2 and dims["Z"] > 1:
        raise SampleError(
            f"{where}: spatial_dims=2 but the image has Z={dims['Z']} planes; use spatial_dims=3, "
            f"or time_axis='Z' if those planes are really timepoints."
        )
    source, target = np.dtype(metadata.dtype), np.dtype(options.dtype)
    if not np.can_cast(source, target, "safe"):
        if target.kind in "iub":
            raise SampleError(
                f"{where}: casting {source} pixels to dtype={target} could overflow; choose a wider "
                f"dtype (e.g. float32)."
            )
        if (source.name, target.name) not in _WARNED_CASTS:
            _WARNED_CASTS.add((source.name, target.name))
            warnings.warn(f"{where}: casting {source} pixels to {target} loses precision.", stacklevel=2)
