"""Reading one (file, scene, level)'s metadata: dims, scenes, levels, dtype, pixel sizes, frame times.

:func:`read_metadata` opens the file through the reader cache (so the open is reused for reading
pixels); :func:`file_signature` tells one version of a file from another. Keeping and persisting
what is read is :mod:`timelapse_pipes.reading.cache`'s job.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from ..errors import ImageReadError, SampleError
from ..records import AXES, ImageMetadata, ManifestRow
from .frame_times import read_frame_times
from .readers import ReaderCache, load_reader_class, reader_for_path
from .storage import (
    check_remote,
    file_not_found,
    is_remote,
    local_path,
    options_for,
    redact,
    remote_version,
)

__all__ = ["discover_reader", "file_signature", "read_metadata"]


def _reader_name(cls: type) -> str:
    return f"{cls.__module__.split('.')[0]}.{cls.__name__}"


_DISCOVERED: dict[str, type] = {}


def discover_reader(path: str, fs_kwargs: Mapping[str, Any] | None) -> type:
    """The reader class bioio's plugin discovery picks for ``path`` (slow: imports every plugin), once per file per process."""
    from bioio import BioImage

    if path in _DISCOVERED:
        return _DISCOVERED[path]
    try:
        _DISCOVERED[path] = type(BioImage(path, fs_kwargs=options_for(path, fs_kwargs)).reader)
        return _DISCOVERED[path]
    except FileNotFoundError:
        raise file_not_found(path) from None
    except Exception as exc:
        raise ImageReadError(
            f"{path}: no installed bioio reader can open it ({type(exc).__name__}: {redact(str(exc), fs_kwargs)}). "
            f"Install the plugin for this format or set a 'reader' column."
        ) from exc


def _safe(getter: Any) -> Any:
    try:
        return getter()
    except Exception:  # some readers raise on missing optional metadata: report None
        return None


def _resolve_scene(scene: int | str, scenes: tuple[str, ...], where: str, path: str) -> int:
    if isinstance(scene, int):
        if scene >= len(scenes):
            raise SampleError(
                f"{where}: scene {scene} is out of range; {path} has {len(scenes)} scene(s): {list(scenes)}."
            )
        return scene
    if scene not in scenes:
        raise SampleError(f"{where}: scene {scene!r} is not in {path}; its scenes are {list(scenes)}.")
    return scenes.index(scene)


def read_metadata(row: ManifestRow, readers: ReaderCache, reader: str | None = None,
                  fs_kwargs: Mapping[str, Any] | None = None) -> ImageMetadata:
    """Open the row's file (through ``readers``, so the open is reused for reading)."""
    name = row.reader or reader or reader_for_path(row.path)
    reader_class = load_reader_class(name) if name else discover_reader(row.path, fs_kwargs)
    first = readers.get(row.path, reader_class, 0, 0, fs_kwargs).image
    scenes = tuple(str(s) for s in first.scenes)
    scene_index = _resolve_scene(row.scene, scenes, row.where, row.path)
    image = first if scene_index == 0 else readers.get(row.path, reader_class, scene_index, 0, fs_kwargs).image
    levels = tuple(int(level) for level in (_safe(lambda: image.resolution_levels) or (0,)))
    if row.resolution not in levels:
        raise SampleError(
            f"{row.where}: resolution level {row.resolution} not found in {row.path} scene "
            f"{scenes[scene_index]!r}; available levels are {list(levels)}."
        )
    if row.resolution:
        image = readers.get(row.path, reader_class, scene_index, row.resolution, fs_kwargs).image
    try:
        dims = {axis: int(size) for axis, size in zip(image.dims.order, image.dims.shape)
                if axis in AXES or axis == "S"}
        dtype = str(image.dtype)
    except Exception as exc:
        raise ImageReadError(f"{row.path}: could not read dimensions: {type(exc).__name__}: {exc}") from exc
    sizes = _safe(lambda: image.physical_pixel_sizes)
    names = _safe(lambda: image.channel_names)
    timing = read_frame_times(image, scene_index, dims.get("T", 1))
    return ImageMetadata(
        path=row.path,
        reader=_reader_name(reader_class),
        scenes=scenes,
        scene_index=scene_index,
        resolution=row.resolution,
        resolution_levels=levels,
        dims={axis: dims.get(axis, 1) for axis in AXES} | ({"S": dims["S"]} if "S" in dims else {}),
        dtype=dtype,
        physical_pixel_sizes=(None, None, None) if sizes is None else tuple(  # type: ignore[arg-type]
            None if v is None else float(v) for v in (sizes.Z, sizes.Y, sizes.X)),
        channel_names=None if names is None else tuple(str(n) for n in names),
        frame_times_s=timing.times_s,
        time_interval_s=timing.interval_s,
    )


def file_signature(path: str, fs_kwargs: Mapping[str, Any] | None = None) -> str:
    """``size|mtime`` (or ETag) of a file; for a zarr folder, of its root metadata document."""
    if not is_remote(path):
        target = local_path(path)
        for name in ("zarr.json", ".zattrs", ".zgroup"):
            if os.path.isfile(os.path.join(target, name)):
                target = os.path.join(target, name)
                break
        try:
            stat = os.stat(target)
        except FileNotFoundError:
            raise file_not_found(path) from None
        return f"{stat.st_size}|{stat.st_mtime_ns}"
    info = check_remote(path, fs_kwargs)
    return f"{info.get('size', '')}|{remote_version(info)}"
