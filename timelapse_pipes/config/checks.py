"""Checking manifest rows against their files, shared by ``inspect``, the index and the loader.

:func:`check_row_fits` is the loader's own start-of-row check (channels, scene, range, spatial dims,
dtype); :func:`check_row` adds a one-pixel read, and :func:`problem` / :func:`problem_lines` turn a
failure into a report entry and report lines.
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping

import numpy as np

from ..errors import SampleError, TimelapsePipesError
from ..reading.cache.metadata_cache import MetadataCache
from ..reading.readers import ReaderCache, load_reader_class, reader_options
from ..reading.regions import read_region
from ..reading.storage import redact
from ..records import ImageMetadata, ImageRef, ManifestRow
from ..sampling.dims import effective_dims, read_order
from .options import SampleOptions

__all__ = ["ERROR_KEY", "PATH_KEY", "ROW_KEY", "check_image_fits", "check_metadata", "check_row", "check_row_fits", "inspect_options",
           "problem", "problem_lines"]

ROW_KEY, PATH_KEY, ERROR_KEY = "row", "path", "error"


def inspect_options(spatial_dims: int | None, num_timepoints: int, timepoint_sampling: str) -> SampleOptions:
    """The sample options rows are checked against (``spatial_dims=None``: not checked, 3 assumed)."""
    return SampleOptions(spatial_dims=spatial_dims or 3, num_timepoints=num_timepoints,
                         timepoint_sampling=timepoint_sampling)


def check_metadata(row: ManifestRow, cache: MetadataCache, readers: ReaderCache) -> ImageMetadata:
    """The row's file metadata (opening the file on a cache miss); raises naming the file or row."""
    return cache.get(row, readers)


def check_row(row: ManifestRow, metadata: ImageMetadata, readers: ReaderCache, options: SampleOptions,
              storage_options: Mapping[str, Any] | None, *, check_spatial_dims: bool) -> None:
    """Raise naming the row when it does not fit its image or its first frame does not decode."""
    check_row_fits(row, metadata, options, check_spatial_dims=check_spatial_dims)
    image = readers.get(row.path, load_reader_class(metadata.reader), metadata.scene_index,
                        metadata.resolution, storage_options, reader_options(metadata.reader, metadata.dims))
    order = read_order(row.time_axis or "T", metadata.has_samples_axis)
    read_region(image, order, [row.start], [0], (slice(0, 1), slice(0, 1), slice(0, 1)),
                where=row.describe(metadata.scene))


def problem(row: ManifestRow, error: BaseException, storage_options: Any = None) -> dict[str, Any]:
    """A report's problem entry; an unexpected error type is named, and secrets are redacted."""
    message = str(error) if isinstance(error, TimelapsePipesError) else \
        f"{row.describe()}: {type(error).__name__}: {error}"
    return {ROW_KEY: row.row, PATH_KEY: row.path, ERROR_KEY: redact(message, storage_options)}


_WARNED_CASTS: set[tuple[str, str]] = set()


def check_row_fits(row: ManifestRow, metadata: ImageMetadata, options: SampleOptions,
                   check_spatial_dims: bool = True) -> None:
    """Raise :class:`SampleError` naming the row when it asks for what the image lacks."""
    time_axis = row.time_axis or options.time_axis
    dims = effective_dims(metadata, time_axis)
    where = row.describe(metadata.scene)
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


def check_image_fits(row: ManifestRow, metadata: ImageMetadata, image: ImageRef, image_metadata: ImageMetadata,
                     options: SampleOptions) -> None:
    """Raise :class:`SampleError` naming the row and both files when ``image`` cannot be read on the
    grid of the row's own image: other (Z, Y, X), too few frames, or a channel it lacks."""
    time_axis = row.time_axis or options.time_axis
    own, other = effective_dims(metadata, time_axis), effective_dims(image_metadata, time_axis)
    where = f"{row.where}: {image.key!r} ({image.path}, scene {image_metadata.scene!r})"
    if image.channels is not None and max(image.channels) >= other["C"]:
        raise SampleError(f"{where}: channel {max(image.channels)} is out of range; it has {other['C']} "
                          f"channel(s) (0..{other['C'] - 1}).")
    own_zyx, other_zyx = [own[a] for a in "ZYX"], [other[a] for a in "ZYX"]
    if own_zyx != other_zyx and not image.resize:
        raise SampleError(
            f"{where} has frames (Z, Y, X) = {other_zyx} but the row's image ({row.path}) has {own_zyx}; "
            f"every image of a row is read with the same crop window, so they must share one grid "
            f"(write them at the same size, point the column at the matching resolution level, or give "
            f"the image \"resize\": \"nearest\" to read the matching window and resize it)."
        )
    stop = own["T"] if row.stop is None else row.stop
    if other["T"] != 1 and other["T"] < stop:
        raise SampleError(
            f"{where} has T={other['T']} frames but the row reads frames up to {stop} of {row.path}; give it "
            f"at least as many frames, or a single frame (T=1, used for every timepoint)."
        )


def problem_lines(problems: list[dict[str, Any]]) -> list[str]:
    """The closing lines of a report: a count, then every problem with its row (or "no problems found")."""
    if not problems:
        return ["no problems found"]
    return [f"{len(problems)} problem(s):"] + [f"  row {p['row']}: {p['error']}" for p in problems]
