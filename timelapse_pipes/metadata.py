"""Image metadata, read once per (file, scene, level), lazily, and optionally persisted.

:class:`MetadataCache` keeps :class:`ImageMetadata` for the life of the process. Given
``persist_path`` it also stores them in a JSON file keyed by path + size + mtime (or ETag), so a
second run plans without opening any image. The file is written atomically (temporary file, then
rename) and merged with what other processes wrote. It is never written beside the data.

``persist_path`` may also be an index written by :func:`timelapse_pipes.build_index`, local or a
URL (``s3://``, ``gs://``, ``az://``, ``http(s)://``). An index is read once per process and is
read-only to loaders; its format is in :mod:`timelapse_pipes.cache_file`.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from .cache_file import CacheContents, cache_key, parse_cache, read_cache, write_cache
from .errors import ConfigError, ImageReadError, SampleError
from .manifest import ManifestRow
from .readers import ReaderCache, load_reader_class, reader_for_path
from .storage import check_remote, is_remote, options_for, redact, stage_local
from .timing import FrameTimes, read_frame_times

__all__ = ["ImageMetadata", "MetadataCache", "file_signature"]

CACHE_VERSION = 2  # 2: frame times
AXES = "TCZYX"


@dataclass(frozen=True)
class ImageMetadata:
    """What planning needs to know about one (file, scene, level)."""

    path: str
    reader: str
    scenes: tuple[str, ...]
    scene_index: int
    resolution: int
    resolution_levels: tuple[int, ...]
    dims: dict[str, int]
    dtype: str
    physical_pixel_sizes: tuple[float | None, float | None, float | None]
    channel_names: tuple[str, ...] | None
    frame_times_s: tuple[float, ...] | None = None  # per T index, seconds from the first frame
    time_interval_s: float | None = None  # the file's nominal interval

    @property
    def scene(self) -> str:
        return self.scenes[self.scene_index]

    @property
    def has_samples_axis(self) -> bool:
        """True for RGB(A) images whose samples live on a separate S axis."""
        return self.dims.get("S", 1) > 1

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ImageMetadata":
        return cls(
            path=data["path"], reader=data["reader"], scenes=tuple(data["scenes"]),
            scene_index=int(data["scene_index"]), resolution=int(data["resolution"]),
            resolution_levels=tuple(data["resolution_levels"]), dims=dict(data["dims"]),
            dtype=str(data["dtype"]), physical_pixel_sizes=tuple(data["physical_pixel_sizes"]),  # type: ignore[arg-type]
            channel_names=None if data["channel_names"] is None else tuple(data["channel_names"]),
            frame_times_s=None if data.get("frame_times_s") is None else tuple(data["frame_times_s"]),
            time_interval_s=data.get("time_interval_s"),
        )

    @property
    def frame_times(self) -> FrameTimes:
        """Per-frame times and the nominal interval (see :mod:`timelapse_pipes.timing`)."""
        return FrameTimes(self.frame_times_s, self.time_interval_s)


def _reader_name(cls: type) -> str:
    return f"{cls.__module__.split('.')[0]}.{cls.__name__}"


_DISCOVERED: dict[str, type] = {}


def _discover_reader(path: str, fs_kwargs: Mapping[str, Any] | None) -> type:
    """bioio's plugin discovery (~0.6 s), paid at most once per file per process."""
    from bioio import BioImage

    if path in _DISCOVERED:
        return _DISCOVERED[path]
    try:
        _DISCOVERED[path] = type(BioImage(path, fs_kwargs=options_for(path, fs_kwargs)).reader)
        return _DISCOVERED[path]
    except FileNotFoundError:
        raise ImageReadError(f"{path}: file not found; fix the manifest path.") from None
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
    reader_class = load_reader_class(name) if name else _discover_reader(row.path, fs_kwargs)
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
    if "://" not in path:
        target = path
        for name in ("zarr.json", ".zattrs", ".zgroup"):
            if os.path.isfile(os.path.join(path, name)):
                target = os.path.join(path, name)
                break
        try:
            stat = os.stat(target)
        except FileNotFoundError:
            raise ImageReadError(f"{path}: file not found; fix the manifest path.") from None
        return f"{stat.st_size}|{stat.st_mtime_ns}"
    info = check_remote(path, fs_kwargs)
    tag = info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified") or ""
    return f"{info.get('size', '')}|{tag}"


class MetadataCache:
    """In-process cache of :class:`ImageMetadata`, optionally persisted to a JSON file or read from an index.

    ``persist_path`` is one of:

    * a local cache file (or none yet): entries are looked up by path + signature (a ``stat``), and
      the entries this process reads are merged into it;
    * an index written by :func:`timelapse_pipes.build_index`, local or a URL: read once per process
      (a URL is staged into the local staging folder, keyed by its ETag) and never written. The
      index is trusted: an entry is used for its (path, scene, level, reader) without a ``stat`` or
      ``HEAD`` of the file, so a rank plans its rows without one request per file. ``verify=True``
      (or an index built with ``verify=True``) checks each file's signature once per process
      instead, and reads a changed file again. A row the index lacks is read from its file and kept
      in memory only.
    """

    FLUSH_INTERVAL_S = 2.0

    def __init__(self, persist_path: str | os.PathLike | None = None, reader: str | None = None,
                 fs_kwargs: Mapping[str, Any] | None = None, verify: bool | None = None) -> None:
        self.persist_path = None if persist_path is None else os.fspath(persist_path)
        if self.persist_path is not None and self.persist_path.startswith("file://"):
            self.persist_path = self.persist_path[len("file://"):]
        self.reader = reader
        self.fs_kwargs = dict(fs_kwargs or {})
        self.verify = verify
        self._memory: dict[tuple, ImageMetadata] = {}
        self._persisted: CacheContents | None = None
        self._dirty = False
        self._last_flush = 0.0
        self._lock = threading.Lock()
        self.files_opened = 0

    def __getstate__(self) -> dict:
        return {"persist_path": self.persist_path, "reader": self.reader, "fs_kwargs": self.fs_kwargs,
                "verify": self.verify}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["persist_path"], state["reader"], state["fs_kwargs"],  # type: ignore[misc]
                      state.get("verify"))

    @property
    def is_index(self) -> bool:
        """True when ``persist_path`` is an index (read-only); reads it if not read yet."""
        return self.persist_path is not None and self._load_persisted().index is not None

    def _trusts_index(self, contents: CacheContents) -> bool:
        if contents.index is None:
            return False
        verify = contents.index.get("verify", False) if self.verify is None else self.verify
        return not verify

    def _writable(self, contents: CacheContents) -> bool:
        return self.persist_path is not None and not is_remote(self.persist_path) and contents.index is None

    def get(self, row: ManifestRow, readers: ReaderCache) -> ImageMetadata:
        """Metadata for the row's (file, scene, level, reader), reading the file only on a miss."""
        key = (row.path, row.scene, row.resolution, row.reader)
        found = self._memory.get(key)
        if found is not None:
            return found
        persisted_key, contents = None, None
        if self.persist_path is not None:
            contents = self._load_persisted()
            reader = row.reader or self.reader
            if self._trusts_index(contents):
                persisted_key = contents.key_at((row.path, row.scene, row.resolution, reader))
            else:
                persisted_key = cache_key(row.path, file_signature(row.path, self.fs_kwargs), row.scene,
                                          row.resolution, reader)
            entry = None if persisted_key is None else contents.entries.get(persisted_key)
            if entry is not None:
                found = ImageMetadata.from_json(entry)
        if found is None:
            found = read_metadata(row, readers, self.reader, self.fs_kwargs)
            with self._lock:
                self.files_opened += 1
                if contents is not None and persisted_key is not None and self._writable(contents):
                    contents.entries[persisted_key] = found.to_json()
                    self._dirty = True
            if self._dirty and time.monotonic() - self._last_flush > self.FLUSH_INTERVAL_S:
                self.flush()
        self._memory[key] = found
        return found

    def _load_persisted(self) -> CacheContents:
        if self._persisted is None:
            assert self.persist_path is not None
            if is_remote(self.persist_path):
                self._persisted = _read_index_url(self.persist_path, self.fs_kwargs)
            else:
                self._persisted = _read_local(self.persist_path)
        return self._persisted

    def flush(self) -> None:
        """Write new entries to ``persist_path`` atomically, merged with what is already there."""
        if self.persist_path is None or not self._dirty:
            return
        with self._lock:
            merged = read_cache(self.persist_path, CACHE_VERSION)
            merged.entries.update(self._load_persisted().entries)
            write_cache(self.persist_path, merged, CACHE_VERSION)
            self._persisted = merged
            self._dirty = False
            self._last_flush = time.monotonic()

    def __del__(self) -> None:
        try:
            self.flush()
        except Exception:
            pass


_SHARED: dict[tuple, CacheContents] = {}  # indexes, read once per process
_SHARED_LOCK = threading.Lock()


def _read_local(path: str) -> CacheContents:
    """A local cache or index; an index (read-only) is shared by every cache of this process."""
    contents = read_cache(path, CACHE_VERSION)
    if contents.index is None:
        return contents
    try:
        stat = os.stat(path)
    except OSError:
        return contents
    with _SHARED_LOCK:
        return _SHARED.setdefault((os.path.abspath(path), stat.st_size, stat.st_mtime_ns), contents)


def _read_index_url(url: str, fs_kwargs: Mapping[str, Any]) -> CacheContents:
    """An index at a URL, staged locally (by ETag) and parsed once per process."""
    with _SHARED_LOCK:
        if (url,) in _SHARED:
            return _SHARED[(url,)]
        try:
            local = stage_local(url, fs_kwargs)
            with open(local, encoding="utf-8") as stream:
                contents = parse_cache(stream.read(), CACHE_VERSION)
        except (OSError, UnicodeDecodeError) as error:
            raise ConfigError(
                f"metadata_cache={url!r} could not be read ({_cause(error, fs_kwargs)}). Build the index "
                f"with `timelapse-pipes index MANIFEST -o index.json` and copy it to that URL, or fix "
                f"storage_options."
            ) from None
        if contents.index is None:
            raise ConfigError(
                f"metadata_cache={url!r} is not an index of this version (cache version {CACHE_VERSION}); "
                f"a remote metadata_cache is read-only, so rebuild it with `timelapse-pipes index` and "
                f"copy it there."
            )
        _SHARED[(url,)] = contents
        return contents


def _cause(error: BaseException, fs_kwargs: Mapping[str, Any]) -> str:
    return redact(str(error), fs_kwargs).replace("; fix the manifest path.", "")
