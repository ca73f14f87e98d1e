"""The metadata cache file, which is also the index that ``build_index`` writes.

The file holds JSON documents, one per line:

* line 1: ``{"version": V, "entries": {key: metadata}}``; an index adds ``"index"`` (what it was
  built for) and ``"problems"`` (the rows that failed, with ``inspect``'s messages);
* ``"maps"``, when a loader planned crops from low-resolution foreground maps (``crop["map_block"]``):
  each map by ``[path, signature, scene, level, reader, channels, timepoint, grid, block]``, as
  :func:`encode_array` writes it (zlib-compressed, base64); absent otherwise, so caches without
  maps are unchanged;
* further lines, appended while an index is being built: ``{"entries": {...}}`` chunks, each
  appended whole and fsynced, so a killed build keeps every chunk it appended. A last line cut
  short by the kill is ignored (its entries are read again by the next build).

A reader merges the lines in order (later entries win). A finished index, and every cache a loader
writes, is line 1 alone: one plain JSON document. Local files are rewritten atomically (temporary
file, then rename); URLs are read-only. Keys are ``[path, signature, scene, level, reader]`` as JSON,
the signature being ``size|mtime`` or ``size|ETag`` (:func:`timelapse_pipes.reading.metadata.file_signature`).
"""

from __future__ import annotations

import base64
import json
import os
import zlib
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from .atomic import write_json_atomic

__all__ = ["CACHE_VERSION", "CacheContents", "cache_key", "key_fields", "read_cache", "parse_cache", "write_cache",
           "append_entries", "decode_array", "encode_array", "VERSION_KEY", "ENTRIES_KEY", "INDEX_KEY", "MAPS_KEY",
           "PROBLEMS_KEY"]

CACHE_VERSION = 2  # the entry format this library reads and writes
VERSION_KEY = "version"
ENTRIES_KEY = "entries"
INDEX_KEY = "index"
PROBLEMS_KEY = "problems"
MAPS_KEY = "maps"

Location = tuple[str, Any, int, Any]  # (path, scene, level, reader): an entry without its signature


@dataclass
class CacheContents:
    """Entries by key, plus the build record and problems when the file is an index."""

    entries: dict[str, dict] = field(default_factory=dict)
    index: dict[str, Any] | None = None
    problems: list[dict] = field(default_factory=list)
    maps: dict[str, dict] = field(default_factory=dict)  # low-resolution foreground maps, by key
    _locations: dict[Location, str] | None = field(default=None, repr=False, compare=False)

    def key_at(self, location: Location) -> str | None:
        """The latest key stored for ``(path, scene, level, reader)``, whatever its signature."""
        if self._locations is None:
            locations: dict[Location, str] = {}
            for key in self.entries:
                fields = key_fields(key)
                if fields is not None:
                    path, _, scene, level, reader = fields
                    locations[(path, scene, level, reader)] = key
            self._locations = locations
        return self._locations.get(location)


def cache_key(path: str, signature: str, scene: int | str, level: int, reader: str | None) -> str:
    """The entry key of one (file version, scene, level, reader)."""
    return json.dumps([path, signature, scene, level, reader])


def key_fields(key: str) -> tuple[str, str, Any, int, Any] | None:
    """``(path, signature, scene, level, reader)`` of a key made by :func:`cache_key`; None for another key."""
    try:
        fields = json.loads(key)
    except json.JSONDecodeError:
        return None
    if not isinstance(fields, list) or len(fields) != 5:
        return None
    path, signature, scene, level, reader = fields
    return path, signature, scene, level, reader


def parse_cache(text: str, version: int) -> CacheContents:
    """Merge the lines of a cache file; an unknown version or a damaged first line gives an empty cache."""
    lines = text.splitlines()
    first = _document(lines[0]) if lines else None
    if first is None or first.get(VERSION_KEY) != version:
        return CacheContents()
    contents = CacheContents(index=first.get(INDEX_KEY) if isinstance(first.get(INDEX_KEY), dict) else None,
                             problems=list(first.get(PROBLEMS_KEY) or []))
    for document in [first] + [_document(line) for line in lines[1:]]:
        entries = None if document is None else document.get(ENTRIES_KEY)
        if isinstance(entries, dict):
            contents.entries.update(entries)
        maps = None if document is None else document.get(MAPS_KEY)
        if isinstance(maps, dict):
            contents.maps.update(maps)
    return contents


def _document(line: str) -> dict | None:
    try:
        document = json.loads(line)
    except json.JSONDecodeError:
        return None  # a chunk cut short by a kill, or damage: its entries are read again
    return document if isinstance(document, dict) else None


def read_cache(path: str, version: int) -> CacheContents:
    """A local cache file's contents; a missing or unreadable file is an empty cache."""
    try:
        with open(path, encoding="utf-8") as stream:
            return parse_cache(stream.read(), version)
    except (OSError, UnicodeDecodeError):
        return CacheContents()


def write_cache(path: str, contents: CacheContents, version: int) -> None:
    """Rewrite ``path`` atomically as one document (line 1 only), entries sorted by key."""
    document: dict[str, Any] = {VERSION_KEY: version}
    if contents.index is not None:
        document[INDEX_KEY] = contents.index
        document[PROBLEMS_KEY] = contents.problems
    document[ENTRIES_KEY] = dict(sorted(contents.entries.items()))
    if contents.maps:
        document[MAPS_KEY] = dict(sorted(contents.maps.items()))
    write_json_atomic(path, document, prefix=".metadata-", newline=True)


def append_entries(path: str, entries: Mapping[str, dict]) -> None:
    """Append one ``{"entries": ...}`` line, then fsync it."""
    if not entries:
        return
    line = json.dumps({ENTRIES_KEY: dict(entries)}) + "\n"
    with open(path, "a", encoding="utf-8") as stream:
        stream.write(line)
        stream.flush()
        os.fsync(stream.fileno())


def encode_array(array: np.ndarray) -> dict[str, Any]:
    """A small integer array as JSON: shape, dtype and its bytes, zlib-compressed, in base64."""
    data = np.ascontiguousarray(array)
    return {"shape": list(data.shape), "dtype": data.dtype.str,
            "data": base64.b64encode(zlib.compress(data.tobytes())).decode("ascii")}


def decode_array(document: Mapping[str, Any]) -> np.ndarray | None:
    """The array :func:`encode_array` wrote; None for a damaged document (it is computed again)."""
    try:
        raw = zlib.decompress(base64.b64decode(document["data"]))
        return np.frombuffer(raw, dtype=np.dtype(document["dtype"])).reshape(document["shape"]).copy()
    except (KeyError, TypeError, ValueError, zlib.error):
        return None
