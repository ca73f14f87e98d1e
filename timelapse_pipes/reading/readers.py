"""Choosing a bioio reader plugin and keeping open images in a per-process LRU cache.

* The plugin is picked once per file: from an explicit name (row ``reader`` column or the global
  ``reader=`` option), else from the file extension, else by bioio's own plugin discovery. Passing
  the class to ``BioImage`` skips discovery, which imports every installed plugin, on each open.
* Open images are cached per (path, scene, level, reader options), each held by one thread at a
  time: ``BioImage.set_scene`` mutates the object, and file handles (TIFF, ND2) are not safe to
  read from two threads at once. A thread keeps what it opened until it calls
  :meth:`ReaderCache.release` (the loader's graph does after every batch, :class:`ReleasingReaders`)
  or ends; then the next thread that asks takes it over instead of opening the file again, so the
  worker threads of each new epoch reuse the last epoch's opens (over S3 one open is about 23
  requests). The cache is bounded by ``max_open_files`` and is emptied in a forked child, so an
  open reader never crosses a fork.
"""

from __future__ import annotations

import functools
import importlib
import itertools
import os
import threading
import warnings
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .._compat import bioio_reader, close_nd2_handle
from ..errors import ConfigError, ImageReadError
from .storage import (
    LOCAL_ONLY_READERS,
    check_remote,
    file_not_found,
    is_remote,
    options_for,
    redact,
    stage_local,
)

__all__ = ["READER_ALIASES", "reader_for_path", "load_reader_class", "reader_options", "OpenImage", "ReaderCache",
           "ReleasingReaders"]

READER_ALIASES: dict[str, str] = {
    "nd2": "bioio_nd2.Reader",
    "czi": "bioio_czi.Reader",
    "lif": "bioio_lif.Reader",
    "ome-tiff": "bioio_ome_tiff.Reader",
    "ome_tiff": "bioio_ome_tiff.Reader",
    "tiff": "bioio_tifffile.Reader",
    "tifffile": "bioio_tifffile.Reader",
    "ome-zarr": "bioio_ome_zarr.Reader",
    "ome_zarr": "bioio_ome_zarr.Reader",
    "zarr": "bioio_ome_zarr.Reader",
}
_EXTENSION_READERS: tuple[tuple[str, str], ...] = (
    (".ome.tiff", "ome-tiff"),
    (".ome.tif", "ome-tiff"),
    (".nd2", "nd2"),
    (".czi", "czi"),
    (".lif", "lif"),
    (".tiff", "tiff"),
    (".tif", "tiff"),
    (".zarr", "ome-zarr"),
)
_PACKAGES = {"bioio_nd2": "bioio-nd2", "bioio_czi": "bioio-czi", "bioio_lif": "bioio-lif",
             "bioio_ome_tiff": "bioio-ome-tiff", "bioio_tifffile": "bioio-tifffile",
             "bioio_ome_zarr": "bioio-ome-zarr"}


def reader_for_path(path: str) -> str | None:
    """The reader name implied by the path's extension (``x.zarr/0`` counts as zarr), or None."""
    lowered = path.lower().rstrip("/")
    for suffix, alias in _EXTENSION_READERS:
        if lowered.endswith(suffix) or (suffix == ".zarr" and ".zarr/" in lowered):
            return READER_ALIASES[alias]
    return None


@functools.lru_cache(maxsize=None)
def load_reader_class(name: str) -> type:
    """Import a reader class from an alias (``"nd2"``) or a dotted name (``"bioio_nd2.Reader"``)."""
    dotted = READER_ALIASES.get(name.lower(), name)
    module_name, _, attr = dotted.rpartition(".")
    if not module_name:
        raise ConfigError(f"reader={name!r} is neither an alias {sorted(READER_ALIASES)} nor 'module.Class'.")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        package = _PACKAGES.get(module_name, module_name.replace("_", "-"))
        raise ImageReadError(
            f"reader {dotted} is not installed; run `pip install {package}` "
            f"(or `pip install timelapse-pipes[formats]` for every format)."
        ) from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigError(f"reader={name!r}: module {module_name} has no {attr}.") from None


@dataclass
class OpenImage:
    """A BioImage set to one scene and level, with its lazy 5-D (or 6-D with S) array cached."""

    image: Any
    path: str = ""
    lazy: dict[str, Any] = field(default_factory=dict)
    _native: Any = field(default=False, repr=False)

    def native(self) -> Any:
        """The reader's own array when a fast path applies (OME-Zarr, local TIFF, ND2), else None; found once."""
        if self._native is False:
            from .fast import find_native_array

            self._native = find_native_array(self.image, self.path)
        return self._native

    def close(self) -> None:
        """Close the native file handle and drop the lazy arrays; bioio readers have no ``close()``."""
        native, self._native = self._native, False
        if native:
            native.close()
        self.lazy.clear()
        close_reader(self.image)

    def lazy_array(self, order: str) -> Any:
        """The whole scene as a lazy dask array in ``order`` (built once, then sliced per read)."""
        if order not in self.lazy:
            self.lazy[order] = self.image.get_image_dask_data(order)
        return self.lazy[order]


Key = tuple[str, int, int, tuple]  # (path, scene index, level, reader options)
Holder = threading.Thread | int  # the thread holding an open image, or a free image's ticket


class ReaderCache:
    """Per-process LRU of open images keyed by (path, scene index, level, reader options), each held
    by one thread at a time.

    :meth:`get` gives the calling thread an image of its own: the one it holds, else a free one (handed
    back by :meth:`release`, or left by a thread that has ended), else a new open.
    """

    def __init__(self, max_open_files: int = 64, stage_dir: str | None = None,
                 stage_max_bytes: int | None = None) -> None:
        if max_open_files < 1:
            raise ConfigError(f"{max_open_files=} must be >= 1.")
        self.max_open_files = max_open_files
        self.stage_dir = stage_dir
        self.stage_max_bytes = stage_max_bytes
        self._images: OrderedDict[tuple[Key, Holder], OpenImage] = OrderedDict()
        self._lock = threading.Lock()
        self._tickets = itertools.count()
        self.opens = 0
        self.evictions = 0
        _LIVE_CACHES.add(self)

    def get(self, path: str, reader_class: type, scene_index: int, level: int,
            fs_kwargs: Mapping[str, Any] | None = None,
            reader_kwargs: Mapping[str, Any] | None = None) -> OpenImage:
        """The calling thread's image of this file, scene and level: held, taken over, or opened."""
        options = tuple(sorted(reader_kwargs.items())) if reader_kwargs else ()
        key: Key = (path, scene_index, level, options)
        me = threading.current_thread()
        with self._lock:
            found = self._images.get((key, me))
            if found is not None:
                self._images.move_to_end((key, me))
                return found
            found = self._take_free(key, me)
            if found is not None:
                return found
        opened = OpenImage(open_image(path, reader_class, scene_index, level, fs_kwargs, reader_kwargs,
                                      self.stage_dir, self.stage_max_bytes), path)
        with self._lock:
            self.opens += 1
            self._images[(key, me)] = opened
            while len(self._images) > self.max_open_files:
                self._images.popitem(last=False)
                self.evictions += 1
        return opened

    def release(self) -> None:
        """Hand the calling thread's images back: any thread's next :meth:`get` may take them over.

        Call it only once this thread no longer uses the images it got.
        """
        me = threading.current_thread()
        with self._lock:
            for slot in [slot for slot in self._images if slot[1] is me]:
                self._images[(slot[0], next(self._tickets))] = self._images.pop(slot)

    def _take_free(self, key: Key, me: threading.Thread) -> OpenImage | None:
        """Hold the most recently used free image of ``key`` for ``me`` (under the lock), or None."""
        for slot in reversed(self._images):
            holder = slot[1]
            if slot[0] == key and not (isinstance(holder, threading.Thread) and holder.is_alive()):
                image = self._images.pop(slot)
                self._images[(key, me)] = image
                return image
        return None

    def clear(self) -> None:
        """Drop every open image (they close when garbage collected)."""
        with self._lock:
            self._images.clear()

    def close(self) -> None:
        """Close every open image's file handles now. Later reads open the files again.

        Call it only when no thread is reading (the loader's ``close()`` stops its workers first).
        """
        with self._lock:
            images, self._images = list(self._images.values()), OrderedDict()
        for image in images:
            image.close()

    def __len__(self) -> int:
        return len(self._images)

    def __getstate__(self) -> dict:
        return {"max_open_files": self.max_open_files, "stage_dir": self.stage_dir,
                "stage_max_bytes": self.stage_max_bytes}

    def __setstate__(self, state: dict) -> None:
        self.__init__(**state)  # type: ignore[misc]


class ReleasingReaders:
    """``fn``, then :meth:`ReaderCache.release` on the calling thread: what one call opened (one batch)
    is free for the next call's thread, the next epoch's worker threads included."""

    def __init__(self, fn: Callable[..., Any], readers: ReaderCache) -> None:
        self.fn = fn
        self.readers = readers

    def __call__(self, *args: Any) -> Any:
        try:
            return self.fn(*args)
        finally:
            self.readers.release()


def open_image(path: str, reader_class: type, scene_index: int = 0, level: int = 0,
               fs_kwargs: Mapping[str, Any] | None = None,
               reader_kwargs: Mapping[str, Any] | None = None, stage_dir: str | None = None,
               stage_max_bytes: int | None = None) -> Any:
    """Open ``path`` with ``reader_class`` and select the scene and resolution level.

    ``fs_kwargs`` are the user's storage options (flat or per protocol). Remote files are looked up
    first (a clear error naming the URL and the real cause); files for local-only readers are staged.
    """
    from bioio import BioImage

    source, options = path, {}
    if is_remote(path):
        if reader_class.__module__.split(".")[0] in LOCAL_ONLY_READERS:
            source = stage_local(path, fs_kwargs, stage_dir, stage_max_bytes)
        else:
            check_remote(path, fs_kwargs)
            options = options_for(path, fs_kwargs)
    elif "::" not in path and not os.path.exists(path):
        raise file_not_found(path)
    try:
        image = BioImage(source, reader=reader_class, fs_kwargs=options, **dict(reader_kwargs or {}))
        if scene_index:
            image.set_scene(scene_index)
        if level:
            image.set_resolution_level(level)
    except FileNotFoundError:
        raise file_not_found(path) from None
    except Exception as exc:  # reader plugins raise anything; name the file and the cause
        hint = ""
        if type(exc).__name__ == "UnsupportedFileFormatError":
            hint = (" The file is corrupt, incomplete, or not in the format its extension suggests; "
                    "check it, or set the row's 'reader' column to the right plugin.")
        if path.rstrip("/").endswith(".zarr") and os.path.isdir(os.path.join(path, "0")):
            hint = (" This looks like a bioformats2raw store whose root is not an image: point the "
                    f"manifest at a series, e.g. {path.rstrip('/')}/0.")
        raise ImageReadError(
            f"{path}: {reader_class.__module__} could not open scene {scene_index} level {level}: "
            f"{type(exc).__name__}: {redact(str(exc), fs_kwargs)}.{hint}"
        ) from None
    return image


def close_reader(image: Any) -> None:
    """Close what a ``BioImage``'s reader holds open, where the plugin exposes it.

    bioio readers have no ``close()``; bioio-nd2 keeps a remote file's ``ND2File`` in ``_nd2``.
    """
    reader = bioio_reader(image)
    for owner in (image, reader):
        closer = getattr(owner, "close", None)
        if callable(closer):
            closer()
    close_nd2_handle(reader)


def reader_options(reader: str, dims: Mapping[str, int]) -> dict[str, Any]:
    """Reader keyword arguments needed for correct pixels.

    bioio-czi's default (aicspylibczi) dask path returns sample 0 copied into every sample of an
    RGB image (S axis); its pylibCZIrw mode returns the right samples, so RGB CZIs use that.
    """
    if reader.startswith("bioio_czi") and dims.get("S", 1) > 1:
        warnings.filterwarnings("ignore", message=".*use_aicspylibczi=False.*", category=DeprecationWarning)
        return {"use_aicspylibczi": False}
    return {}


_LIVE_CACHES: "weakref.WeakSet[ReaderCache]" = weakref.WeakSet()


def _forget_open_images_after_fork() -> None:
    for cache in _LIVE_CACHES:
        cache._images = OrderedDict()
        cache._lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_open_images_after_fork)
