"""What the tensorstore-over-object-storage tests share: the windows they read, how they open a remote
OME-Zarr through the reader cache, and bioio's own read of the same window to compare with."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from timelapse_pipes.reading.fast.tensorstore import TensorStoreArray
from timelapse_pipes.reading.readers import OpenImage, ReaderCache, load_reader_class
from timelapse_pipes.reading.regions import read_region

FULL = (slice(None), slice(None), slice(None))
CROP = (slice(1, 4), slice(5, 21), slice(3, 23))
READER = load_reader_class("ome-zarr")


def open_remote(url: str, options: Mapping[str, Any]) -> OpenImage:
    """The OME-Zarr at ``url`` opened as the loader opens it, in a cache of its own."""
    return ReaderCache().get(url, READER, 0, 0, options)


def bioio_read(url: str, options: Mapping[str, Any], timepoints: Sequence[int], region: tuple) -> np.ndarray:
    """bioio's own read over fsspec: its lazy T, C, Z, Y, X array, indexed, computed."""
    from bioio import BioImage

    image = BioImage(url, reader=READER, fs_kwargs=options)
    lazy = image.get_image_dask_data("TCZYX")[list(timepoints)]
    return np.asarray(lazy[(slice(None), slice(None)) + region].compute())


def assert_tensorstore_reads_equal_bioio(url: str, options: Mapping[str, Any]) -> None:
    """tensorstore reads ``url``; a full frame, a crop of repeated timepoints and one channel cast on
    write into a float32 ``out`` equal bioio's reads of the same windows."""
    opened = open_remote(url, options)
    try:
        native = opened.native()
        assert isinstance(native, TensorStoreArray) and native.where.startswith(url)
        for timepoints, region in (([3], FULL), ([2, 0, 2], CROP)):
            got = read_region(opened, "TCZYX", timepoints, None, region)
            np.testing.assert_array_equal(got, bioio_read(url, options, timepoints, region))
        out = np.zeros((1, 1, 3, 16, 20), dtype=np.float32)  # one channel, cast on write
        read_region(opened, "TCZYX", [1], [1], CROP, out=out)
        np.testing.assert_array_equal(out, bioio_read(url, options, [1], CROP)[:, 1:2].astype(np.float32))
    finally:
        opened.close()
