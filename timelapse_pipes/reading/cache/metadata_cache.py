"""The in-process metadata cache, optionally persisted to a JSON file or read from an index.

:class:`MetadataCache` keeps :class:`~timelapse_pipes.records.ImageMetadata` for the life of the
process. Given ``persist_path`` it also stores them in a JSON file keyed by path + size + mtime (or
ETag), so a second run plans without opening any image. The file is written atomically (temporary
file, then rename) and merged with what other processes wrote. It is never written beside the data.

``persist_path`` may also be an index written by :func:`timelapse_pipes.build_index`, local or a
URL (``s3://``, ``gs://``, ``az://``, ``http(s)://``). An index is read once per process and is
read-only to loaders; its format is in :mod:`timelapse_pipes.reading.cache.file_format`.

It also keeps the low-resolution foreground maps crop placement plans from (:meth:`stored_map`,
:meth:`store_map`), by the same file signature, so a second run plans without reading a mask frame.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any, Mapping, Sequence

import numpy as np

from ...errors import ConfigError
from ...records import ImageMetadata, ManifestRow
from ..metadata import file_signature, read_metadata
from ..readers import ReaderCache
from ..storage import FIX_PATH, is_remote, local_path, redact, stage_local
from .file_format import (
    CACHE_VERSION,
    CacheContents,
    cache_key,
    decode_array,
    encode_array,
    parse_cache,
    read_cache,
    write_cache,
)

__all__ = ["MetadataCache"]


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
        if self.persist_path is not None:
            self.persist_path = local_path(self.persist_path)
        self.reader = reader
        self.fs_kwargs = dict(fs_kwargs or {})
        self.verify = verify
        self._memory: dict[tuple, ImageMetadata] = {}
        self._persisted: CacheContents | None = None
        self._dirty = False
        self._last_flush = 0.0
        self._lock = threading.Lock()
        self._signatures: dict[str, str] = {}  # path -> signature, for the maps (one stat per file)
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

    def _map_key(self, location: Sequence[Any], detail: Sequence[Any]) -> str:
        path = location[0]
        signature = self._signatures.get(path)
        if signature is None:
            signature = self._signatures[path] = file_signature(path, self.fs_kwargs)
        return json.dumps([path, signature, *location[1:], *detail])

    def stored_map(self, location: Sequence[Any], detail: Sequence[Any]) -> np.ndarray | None:
        """The map kept for the image at ``location`` (path, scene, level, reader) and ``detail``, if any."""
        if self.persist_path is None:
            return None
        found = self._load_persisted().maps.get(self._map_key(location, detail))
        return None if found is None else decode_array(found)

    def store_map(self, location: Sequence[Any], detail: Sequence[Any], array: np.ndarray) -> None:
        """Keep a map in the cache file (a writable cache only; flushed with the metadata)."""
        if self.persist_path is None:
            return
        contents = self._load_persisted()
        if not self._writable(contents):
            return
        key = self._map_key(location, detail)
        with self._lock:
            contents.maps[key] = encode_array(array)
            self._dirty = True
        if time.monotonic() - self._last_flush > self.FLUSH_INTERVAL_S:
            self.flush()

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
            merged.maps.update(self._load_persisted().maps)
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
    return redact(str(error), fs_kwargs).replace(f"; {FIX_PATH}", "")
