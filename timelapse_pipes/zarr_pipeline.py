"""The ``zarrs`` codec pipeline (extra ``[fast]``) for the local zarr arrays the chunk decoder refuses.

``zarrs`` is zarr-python's Rust codec pipeline. Measured here (``python -m benchmarks``), it reads
sharded arrays of many small inner chunks about twice as fast as zarr-python's own pipeline, and
unsharded arrays no faster; the library's chunk decoder (:mod:`.zarr_chunks`) beats both on
unsharded arrays, so ``zarrs`` serves the rest: sharded or otherwise unusual local arrays. Without
the package installed (or for a remote array) the array is read by zarr-python as it is.
"""

from __future__ import annotations

import threading
import warnings
from typing import Any

from .decode import decode_threads
from .zarr_chunks import local_folder

__all__ = ["zarrs_installed", "with_zarrs"]

_config_lock = threading.Lock()


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
        object.__setattr__(local._async_array, "codec_pipeline", pipeline)
        return local
    except Exception:  # an older zarr or zarrs layout: zarr-python reads it
        return array
