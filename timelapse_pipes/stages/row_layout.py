"""What every sample of one manifest row shares: its read order, shape, channels and fixed fields.

Worked out once per (row, metadata) and kept by the loading stage, so a sample of a small frame
costs its draws and its read, not a re-derivation of the row's layout (which would be most of the
cost at tens of thousands of samples a second). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from ..config.options import SampleOptions
from ..reading.readers import load_reader_class, reader_options
from ..records import ImageMetadata, ManifestRow
from ..sampling.dims import read_order

__all__ = ["RowLayout"]


@dataclass(frozen=True)
class RowLayout:
    """The read and the non-pixel fields every sample of ``row`` (with ``metadata``) has in common."""

    row: ManifestRow
    metadata: ImageMetadata
    order: str  # the dimension order asked of bioio: time first, then channels, Z, Y, X [, S]
    channels: tuple[int, ...]  # the channels returned (the "C" field)
    czyx: tuple[int, int, int, int]  # the shape of one returned frame, after any crop
    frame_zyx: tuple[int, int, int]  # the file's full (Z, Y, X)
    roi_zyx: tuple[int, ...] | None  # the crop size as read, (Z, Y, X); None when not cropping
    has_time: bool  # the row's time axis is the file's T (so frame times apply)
    where: str  # the row, file and scene, for error messages
    reader_class: type
    reader_kwargs: dict[str, Any]
    meta: dict[str, Any]  # the fixed part of the "meta" field

    @classmethod
    def of(cls, row: ManifestRow, metadata: ImageMetadata, options: SampleOptions) -> "RowLayout":
        """The layout of ``row`` read with ``options``."""
        order = read_order(row.time_axis or options.time_axis, metadata.has_samples_axis)
        channels = tuple(row.channels) if row.channels is not None else tuple(range(metadata.dims[order[1]]))
        returned = len(channels) * (metadata.dims.get("S", 1) if metadata.has_samples_axis else 1)
        frame = tuple(metadata.dims[axis] for axis in order[2:5])
        roi = None if options.crop is None else tuple(options.crop.roi_size)
        if options.grid is not None:  # the grid's tile, cut to this row's frame
            roi = options.grid.tile_size(frame[3 - options.spatial_dims:])
        zyx = frame if roi is None else frame[:3 - len(roi)] + roi
        if roi is not None and options.spatial_dims == 2:  # a (Y, X) crop reads the one plane
            roi = (1,) + roi
        names = metadata.channel_names
        return cls(
            row=row, metadata=metadata, order=order, channels=channels,
            czyx=(returned,) + zyx,  # type: ignore[arg-type]
            frame_zyx=frame,  # type: ignore[arg-type]
            roi_zyx=roi, has_time=order[0] == "T",
            where=row.describe(metadata.scene),
            reader_class=load_reader_class(metadata.reader),
            reader_kwargs=reader_options(metadata.reader, metadata.dims),
            meta={
                "physical_pixel_sizes": list(metadata.physical_pixel_sizes),
                "channel_names": None if names is None else [names[c] for c in channels if c < len(names)],
                "dtype": metadata.dtype,
                "reader": metadata.reader,
            },
        )

    def frame_times(self, timepoints: Sequence[int]) -> list[float] | None:
        """The times (s) of these frames; None where the file has no timing or the row's time axis
        is not the file's T."""
        return self.metadata.frame_times.of_frames(timepoints) if self.has_time else None

    @property
    def time_interval_s(self) -> float | None:
        """The file's nominal frame interval, where the row's time axis is the file's T."""
        return self.metadata.time_interval_s if self.has_time else None

    def fits(self, row: ManifestRow, metadata: ImageMetadata) -> bool:
        """True when this layout was worked out for exactly this row and metadata."""
        return self.row is row and self.metadata is metadata
