"""The ``zarrs`` codec pipeline (extra ``[fast]``) for the local zarr arrays tensorstore and the chunk
decoder both refuse (or all of them where tensorstore is not installed).

``zarrs`` is zarr-python's Rust codec pipeline: it reads sharded arrays of many small inner chunks
about twice as fast as zarr-python's own pipeline, and unsharded arrays no faster; tensorstore
(:mod:`.tensorstore`) beats it on both. Without the package installed (or for a remote array) the
array is read by zarr-python as it is.
"""

from __future__ import annotations

import os
import threading
import warnings
from typing import Any

from ..._compat import set_codec_pipeline
from .threads import decode_threads

__all__ = ["local_folder", "with_zarrs", "zarrs_installed"]

_config_lock = threading.Lock()


def local_folder(array: Any) -> str | None:
    """The folder of a zarr array on the local file system (LocalStore or a local FsspecStore), or None."""
    store, inner = array.store_path.store, array.store_path.path
    root = getattr(store, "root", None)  # LocalStore
    if root is None:
        fs = getattr(store, "fs", None)
        fs = getattr(fs, "sync_fs", fs)  # zarr wraps a sync file system for async use
        protocols = getattr(fs, "protocol", ())
        protocols = (protocols,) if isinstance(protocols, str) else tuple(protocols)
        if not {"file", "local"} & set(protocols):
            return None
        root = getattr(store, "path", None)
    if root is None:
        return None
    folder = os.path.join(str(root), inner) if inner else str(root)
    return folder if os.path.isdir(folder) else None


def zarrs_installed() -> bool:
    """Whether the ``zarrs`` package (the ``[fast]`` extra) can be imported."""
    try:
        import zarrs  # noqa: F401
    except ImportError:
        return False
    return True


def with_zarrs(array: Any) -> Any:
    """``array`` reopened on its local folder with the ``zarrs`` pipeline (``decode_threads()`` threads),
    or ``array`` itself when ``zarrs`` is absent, the array is not local, or ``zarrs`` cannot read it."""
    if not zarrs_installed():
        return array
    folder = local_folder(array)
    if folder is None:
        return array
    try:
        import zarr
        from zarr.storage import LocalStore
        from zarrs import ZarrsCodecPipeline

        local = zarr.open_array(LocalStore(folder, read_only=True), mode="r")
        # zarrs reads its thread count from zarr's global config when the pipeline is built; the
        # lock keeps two threads of this library from interleaving their settings.
        with _config_lock, warnings.catch_warnings(), zarr.config.set({"threading.max_workers": decode_threads()}):
            warnings.simplefilter("ignore")  # an unsupported array warns; we fall back instead
            pipeline = ZarrsCodecPipeline.from_array_metadata_and_store(
                array_metadata=local.metadata, store=local.store_path.store)
        if getattr(pipeline, "impl", None) is None:
            return array
        set_codec_pipeline(local, pipeline)
        return local
    except Exception:  # an older zarr or zarrs layout: zarr-python reads it
        return array
