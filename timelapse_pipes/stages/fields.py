"""The non-pixel fields of a sample, as one column spec for single samples and whole batches.

A sample dict holds, in this order: ``original_path``, ``C`` (the channels read), ``scene``,
``resolution``, ``sample_index``, ``epoch``, ``row``, ``meta``, ``crop_start`` (when cropping), the
manifest's extra columns, and ``T`` (the timepoints). An extra column named like a built-in field
replaces its value in place (as ``dict.update`` would); ``T`` and ``meta`` are always the sample's own.

:func:`field_columns` builds every field for a list of entries (one per sample, or one per frame in
the "separate" layout) column by column: :meth:`BioIOLoader.fields` takes one entry's values, and
:meth:`BioIOLoader.batch_fields` collates each column, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from ..config.manifest import ManifestColumns
from ..config.options import SampleOptions
from ..errors import ConfigError
from ..records import SamplePlan
from .row_layout import RowLayout

__all__ = ["CROP_KEY", "FIELDS", "REPLACED_KEY", "check_image_keys", "META_KEY", "TIMEPOINTS_KEY", "Entry", "field_columns", "sample_entries"]

META_KEY = "meta"
REPLACED_KEY = "replaced"  # set by on_error="skip" (stages.pipeline) on every sample
CROP_KEY = "crop_start"
TIMEPOINTS_KEY = "T"

Entry = tuple[SamplePlan, RowLayout, list[int]]  # a plan, its row's layout, and the frames of this entry

# The fields every sample has, in order, and how each is read off its plan and row layout.
FIELDS: tuple[tuple[str, Callable[[SamplePlan, RowLayout], Any]], ...] = (
    ("original_path", lambda plan, layout: plan.row.path),
    ("C", lambda plan, layout: list(layout.channels)),
    ("scene", lambda plan, layout: layout.metadata.scene),
    ("resolution", lambda plan, layout: layout.metadata.resolution),
    ("sample_index", lambda plan, layout: plan.key.index),
    ("epoch", lambda plan, layout: plan.key.epoch),
    ("row", lambda plan, layout: plan.row_index),
)


def check_image_keys(columns: ManifestColumns, options: SampleOptions) -> None:
    """Refuse a further image whose key would hide another field of the sample."""
    taken = {name for name, _ in FIELDS} | {META_KEY, CROP_KEY, TIMEPOINTS_KEY, options.out_key,
                                            *options.extra_columns, REPLACED_KEY}
    for image in columns.images:
        if image.key in taken:
            raise ConfigError(f"image_columns key {image.key!r} is already a field of every sample "
                              f"({sorted(taken)}); name that image otherwise.")
    keys = [image.key for image in columns.images]
    for name in ("where", "weights"):
        placing = None if options.crop is None else getattr(options.crop, name)
        if placing is not None and placing not in keys:
            raise ConfigError(f"crop {name!r}: {placing!r} must name an image of image_columns ({keys}), "
                              f"e.g. image_columns={{{placing!r}: 'mask_path'}}.")


def sample_entries(plan: SamplePlan, layout: RowLayout, separate: bool) -> list[Entry]:
    """One entry for the sample, or one per frame for the "separate" layout."""
    frames = list(plan.timepoints)  # type: ignore[arg-type]
    if separate:
        return [(plan, layout, [t]) for t in frames]
    return [(plan, layout, frames)]


def field_columns(entries: Sequence[Entry]) -> dict[str, list[Any]]:
    """Every non-pixel field of ``entries``, one list per field, in the sample's key order."""
    columns: dict[str, list[Any]] = {name: [value(plan, layout) for plan, layout, _ in entries]
                                     for name, value in FIELDS}
    columns[META_KEY] = []  # keeps its place; filled last, with each entry's frame times
    first = entries[0][0]
    if first.crop_offset is not None:
        columns[CROP_KEY] = [list(plan.crop_offset) for plan, _, _ in entries]  # type: ignore[arg-type]
    if first.row.extras:  # the same columns on every row; a later one wins, as dict.update does
        extras = [dict(plan.row.extras) for plan, _, _ in entries]
        for name, _ in first.row.extras:
            columns[name] = [each[name] for each in extras]
    columns[TIMEPOINTS_KEY] = [frames for _, _, frames in entries]
    columns[META_KEY] = [_sample_meta(layout, frames) for _, layout, frames in entries]
    return columns


def _sample_meta(layout: RowLayout, frames: list[int]) -> dict[str, Any]:
    """A sample's own ``meta``: a copy of its layout's fixed part (lists included), plus ``time_s``
    (each returned frame, seconds from the first frame) and ``time_interval_s`` (the file's nominal
    interval); both None where the file has no timing."""
    meta = layout.meta
    names = meta["channel_names"]
    return {"physical_pixel_sizes": list(meta["physical_pixel_sizes"]),
            "channel_names": None if names is None else list(names), "dtype": meta["dtype"],
            "reader": meta["reader"], "time_s": layout.frame_times(frames),
            "time_interval_s": layout.time_interval_s}
