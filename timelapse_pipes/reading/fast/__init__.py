"""Fast paths: read a file's own chunks or pages instead of building a dask graph per sample.

bioio's lazy arrays cost a dask task per chunk and per index step (about 90 tasks for a 4-frame,
2-channel crop). Local OME-Zarr arrays are read by tensorstore when installed (:mod:`.tensorstore`,
sharded ones included) or decoded chunk by chunk (:mod:`.zarr`), whichever measured faster for the
array and the read; local TIFF series strip by strip (:mod:`.tiff`), in parallel (:mod:`.threads`)
and straight into the caller's output (:mod:`.chunked`); other zarr arrays are read with one
zarr-python orthogonal selection, other TIFFs through tifffile's zarr store, ND2 frame by frame from a kept-open
``ND2File`` (:mod:`.nd2`). The native array is found once per open image; if anything about it
disagrees with what bioio reports (dims, shape), the dask path is used.
"""

from __future__ import annotations

from typing import Any

from ..._compat import ome_zarr_array
from ...records import AXES
from .base import PixelSource
from .nd2 import nd2_native
from .tiff import tiff_native
from .zarr import zarr_native

__all__ = ["PixelSource", "find_native_array"]


def find_native_array(image: Any, path: str) -> PixelSource | None:
    """The fast path behind a ``BioImage`` at its current scene and level, or None (use dask).

    OME-Zarr: the chunk decoder on the reader's zarr array, else the array itself. Local OME-TIFF /
    TIFF: the page decoder on a kept-open ``tifffile`` series, else its zarr store (bioio's TIFF
    readers reopen the file for every read). Local ND2: frames from a kept-open ``ND2File``.
    """
    reader = getattr(image, "reader", None)
    plugin = type(reader).__module__.split(".")[0]
    if plugin in ("bioio_ome_tiff", "bioio_tifffile"):
        return tiff_native(image, path)
    if plugin == "bioio_nd2":
        return nd2_native(image, path)
    if plugin != "bioio_ome_zarr":
        return None
    found = ome_zarr_array(reader)
    if found is None:
        return None
    array, dims = found
    try:
        reported = dict(zip(image.dims.order, image.dims.shape))
    except Exception:  # bioio could not tell its dims: use the dask path
        return None
    if not set(dims) <= set(AXES) or len(dims) != len(array.shape) or not hasattr(array, "oindex"):
        return None
    if any(reported.get(axis, 1) != size for axis, size in zip(dims, array.shape)):
        return None
    return zarr_native(array, dims)
