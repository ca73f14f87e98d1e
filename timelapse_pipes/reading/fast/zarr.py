"""Local zarr arrays decoded chunk by chunk: the file read and the codec, nothing else.

zarr-python 3 spends most of a local read outside the codec (an event-loop round trip, a task
and a thread hop per chunk and per codec). For the common layout (zarr v2 or v3 on a local
folder, unsharded, bytes + one of blosc / zstd / gzip, or a numcodecs compressor for v2, C order, no
filters) each chunk here is one file read and one decompress into a reused buffer, then one cast
copy into the output; the chunks of a read are decoded in parallel (see :mod:`.threads`). Any other
array (sharded, remote, transposed, checksummed, filtered) is refused and read by zarr itself.

With tensorstore installed (the ``[fast]`` extra), :func:`zarr_native` reads local arrays through
it (:mod:`.tensorstore`), sharded ones included, and keeps this decoder where it measured faster:
reads of few chunks, and reads that use most of each big chunk they touch.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

import numpy as np

from ...records import AXES
from .base import NativeArray, PixelSource, local_folder
from .chunked import (
    ChunkedSource,
    read_chunked,
    read_file,
    scratch,
    to_tczyx,
    wanted_indices,
)
from .tensorstore import TensorStoreArray
from .threads import fast_decoders

__all__ = ["ZarrChunks", "zarr_native"]

Decompress = Callable[[memoryview, np.ndarray], Any]


def _v3_decoder(metadata: Any) -> tuple[Decompress, str] | None:
    """(decompress, byte order) for ``bytes`` + at most one of blosc / zstd / gzip, else None."""
    from numcodecs import GZip, Zstd, blosc
    from zarr.codecs import BloscCodec, BytesCodec, GzipCodec, ZstdCodec

    codecs = list(metadata.codecs)
    if not codecs or type(codecs[0]) is not BytesCodec or len(codecs) > 2:
        return None
    endian = getattr(codecs[0].endian, "value", codecs[0].endian)
    order = {"little": "<", "big": ">", None: "|"}[endian]
    if len(codecs) == 1:
        return _raw, order
    codec = codecs[1]
    if type(codec) is BloscCodec:
        return blosc.decompress, order
    if type(codec) is ZstdCodec:
        return Zstd().decode, order
    if type(codec) is GzipCodec:
        return GZip().decode, order
    return None


def _v2_decoder(metadata: Any) -> tuple[Decompress, str] | None:
    if metadata.filters or metadata.order != "C":
        return None
    compressor = metadata.compressor
    if compressor is None:
        return _raw, "="
    if not hasattr(compressor, "decode"):
        return None
    return compressor.decode, "="


def _raw(data: memoryview, out: np.ndarray) -> Any:
    view = out.reshape(-1).view(np.uint8)
    if len(data) != view.nbytes:
        raise ValueError(f"an uncompressed chunk has {len(data)} bytes, expected {view.nbytes}")
    view[:] = np.frombuffer(data, dtype=np.uint8)
    return out


class ZarrChunks(ChunkedSource):
    """A local, unsharded zarr array read chunk by chunk; ``read`` gives (T, C, Z, Y, X)."""

    def __init__(self, folder: str, metadata: Any, dims: str, shape: Sequence[int], chunks: Sequence[int],
                 dtype: np.dtype, fill: Any, decompress: Decompress) -> None:
        self.folder, self.metadata, self.dims = folder, metadata, dims
        self.array_chunks = tuple(int(c) for c in chunks)
        self.shape = tuple(shape[dims.index(a)] if a in dims else 1 for a in AXES)  # type: ignore[assignment]
        self.chunks = tuple(self.array_chunks[dims.index(a)] if a in dims else 1 for a in AXES)  # type: ignore[assignment]
        self.dtype, self.fill, self.decompress = dtype, fill, decompress

    @classmethod
    def from_array(cls, array: Any, dims: str) -> "ZarrChunks | None":
        """The chunk reader of ``array`` (axes ``dims``), or None when its layout needs zarr itself."""
        try:
            metadata = array.metadata
            folder = local_folder(array)
            if folder is None or getattr(array, "shards", None) is not None:
                return None
            decoder = _v3_decoder(metadata) if metadata.zarr_format == 3 else _v2_decoder(metadata)
            if decoder is None or metadata.fill_value is None:
                return None
            native = np.dtype(metadata.dtype.to_native_dtype())
            if native.kind not in "biuf":
                return None
            dtype = native.newbyteorder(decoder[1]) if decoder[1] != "=" else native
            return cls(folder, metadata, dims, array.shape, array.chunks, dtype,
                       np.asarray(metadata.fill_value, dtype=native), decoder[0])
        except Exception:  # an unexpected metadata layout: zarr reads it
            return None

    def chunk(self, coords: tuple[int, ...]) -> np.ndarray | None:
        key = self.metadata.encode_chunk_key(tuple(coords[AXES.index(axis)] for axis in self.dims))
        path = os.path.join(self.folder, key)
        try:
            data = read_file(path)
        except FileNotFoundError:
            return None
        buffer = scratch(self.array_chunks, self.dtype)
        try:
            self.decompress(data, buffer)
        except Exception as exc:
            raise ValueError(f"{path}: could not decode this chunk ({type(exc).__name__}: {exc})") from exc
        return to_tczyx(buffer, self.dims)

    def read(self, timepoints: Sequence[int], channels: Sequence[int] | None, region: tuple[slice, ...],
             out: np.ndarray | None = None) -> np.ndarray:
        """``(len(timepoints), C, Z, Y, X)`` pixels (into ``out`` when given, cast on write)."""
        wanted = wanted_indices(self.shape, timepoints, channels, region, where=f"{self.folder}: ")
        return read_chunked(self, wanted, out)

    def close(self) -> None:
        """Nothing stays open between reads."""


def zarr_native(array: Any, dims: str) -> PixelSource:
    """The fastest reader of a local array, measured (:mod:`.tensorstore`): tensorstore when
    installed, with the chunk decoder for the reads it takes faster where it applies
    (:meth:`.TensorStoreArray.by_chunks`); for the arrays tensorstore refuses, the chunk decoder
    where it applies, else one zarr-python selection."""
    if not fast_decoders():
        return NativeArray(array, dims)
    chunks = ZarrChunks.from_array(array, dims)
    store = TensorStoreArray.from_array(array, dims, small=chunks)
    if store is not None:
        return store
    return chunks if chunks is not None else NativeArray(array, dims)
