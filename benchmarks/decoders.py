"""Decoding one full frame into float32, every way measured: the decision behind the fast paths.

Per layout (the full-frame OME-Zarr files of each chunk layout, a sharded zarr, the OME-TIFF), one
frame at a time, the same frames for every method, interleaved:

* the reader's own ways: zarr-python's default read and its concurrency settings, the ``zarrs``
  codec pipeline; tifffile's ``asarray`` (default and ``maxworkers``) and its zarr store;
* the library's decoders (``ZarrChunks``, ``TiffPages``) on 1 and N threads, straight into float32;
* the ceiling: the same chunks' bytes already in memory, decoded alone on 1 and N threads.

A second table splits one thread's time per frame into reading the bytes, decoding them and the
cast copy into the output, so a shortfall can be traced to the decoder or to memory bandwidth.
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from timelapse_pipes.reading.fast import threads as decode
from timelapse_pipes.reading.fast.chunked import (
    ChunkedSource,
    axis_runs,
    read_chunked,
    read_file,
    wanted_indices,
)

from .baselines import open_zarrs, zarrs_installed
from .data import frame_pixels
from .measure import clock, fmt, interleave, log, median, ratio
from .report import Table, Target
from .settings import Settings

__all__ = ["run", "write_sharded"]

FULL = (slice(None), slice(None), slice(None))


@contextmanager
def environment(name: str, value: str) -> Iterator[None]:
    """``os.environ[name] = value`` inside the block, restored (or removed) after it."""
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def decode_threads(count: int) -> Iterator[None]:
    """The library's decoders on ``count`` threads inside the block (its environment variable)."""
    return environment(decode.ENV_VAR, str(count))


def write_sharded(path: Path, frames: int, czyx: Sequence[int], inner: Sequence[int],
                  shard: Sequence[int]) -> Path:
    """A plain zarr v3 array (T, C, Z, Y, X) with blosc-zstd inner chunks in shards."""
    import zarr
    from zarr.codecs import BloscCodec

    array = zarr.create_array(str(path), shape=(frames, *czyx), dtype="uint16", chunks=tuple(inner),
                              shards=tuple(shard), compressors=BloscCodec(cname="zstd", clevel=3,
                                                                          shuffle="bitshuffle"))
    for t in range(frames):
        array[t] = frame_pixels(czyx, 40 + t)
    return path


class _Preloaded(ChunkedSource):
    """A source whose chunks are already decoded: ``read_chunked`` on it times the cast copy alone."""

    def __init__(self, source: ChunkedSource, chunks: dict[tuple[int, ...], np.ndarray]) -> None:
        self.shape, self.chunks, self.dtype, self.fill = source.shape, source.chunks, source.dtype, source.fill
        self.decoded = chunks

    def chunk(self, coords: tuple[int, ...]) -> np.ndarray | None:
        return self.decoded[coords]


def _frame_coords(source: ChunkedSource, t: int) -> tuple[list[Sequence[int]], list[tuple[int, ...]]]:
    wanted = wanted_indices(source.shape, [t], [0], FULL)
    return wanted, list(itertools.product(*[axis_runs(p, c) for p, c in zip(wanted, source.chunks)]))


def _encoded(source: Any, coords: tuple[int, ...]) -> tuple[Any, Callable[[Any], Any]]:
    """The chunk's encoded bytes (read now) and a function that decodes them like the library does."""
    if hasattr(source, "folder"):  # ZarrChunks
        from timelapse_pipes.reading.fast.chunked import AXES, scratch

        key = source.metadata.encode_chunk_key(tuple(coords[AXES.index(a)] for a in source.dims))
        data = bytes(read_file(os.path.join(source.folder, key)))
        return data, lambda raw: source.decompress(raw, scratch(source.array_chunks, source.dtype))
    offsets, counts = source.segments[source._page(coords)]  # TiffPages
    if source.raw:
        data = os.pread(source.fd, sum(counts), offsets[0])
        return data, lambda raw: np.frombuffer(raw, dtype=source.dtype).copy()
    index = coords[3] * source.across + coords[4]
    data = os.pread(source.fd, counts[index], offsets[index])
    return data, lambda raw: source.decode(raw, index)


def _read_bytes(source: Any, coords: tuple[int, ...]) -> None:
    if hasattr(source, "folder"):  # ZarrChunks
        from timelapse_pipes.reading.fast.chunked import AXES

        read_file(os.path.join(source.folder, source.metadata.encode_chunk_key(
            tuple(coords[AXES.index(a)] for a in source.dims))))
        return
    offsets, counts = source.segments[source._page(coords)]
    if source.raw:
        os.pread(source.fd, sum(counts), offsets[0])
    else:
        index = coords[3] * source.across + coords[4]
        os.pread(source.fd, counts[index], offsets[index])


def _rate(read: Callable[[int], Any], frames: Sequence[int]) -> Callable[[], float]:
    def run() -> float:
        started = clock()
        for t in frames:
            read(t)
        return len(frames) / (clock() - started)
    return run


def _memory_rate(source: ChunkedSource, frames: Sequence[int], threads: int) -> Callable[[], float]:
    """Frames/s decoding the frames' chunk bytes already in memory (no file read, no copy)."""
    work = {t: [_encoded(source, coords) for coords in _frame_coords(source, t)[1]] for t in set(frames)}
    pool = ThreadPoolExecutor(threads) if threads > 1 else None

    def run() -> float:
        started = clock()
        for t in frames:
            if pool is None:
                for data, decoder in work[t]:
                    decoder(data)
            else:
                list(pool.map(lambda item: item[1](item[0]), work[t]))
        return len(frames) / (clock() - started)
    return run


def _add_library_methods(methods: dict, source: Any, frames: Any, threads: int) -> None:
    """The library's decoder and the codec alone on bytes in memory, on 1 and ``threads`` threads."""
    if source is None:
        return
    methods["timelapse_pipes decoder, 1 thread"] = _library(source, frames, 1)
    methods[f"timelapse_pipes decoder, {threads} threads"] = _library(source, frames, threads)
    methods["decode alone (bytes in memory), 1 thread"] = _memory_rate(source, frames, 1)
    methods[f"decode alone (bytes in memory), {threads} threads"] = _memory_rate(source, frames, threads)


def _library(source: Any, frames: Sequence[int], threads: int) -> Callable[[], float]:
    out = np.empty((1, 1) + tuple(source.shape[2:]), dtype=np.float32)

    def read(t: int) -> None:
        with decode_threads(threads):
            source.read([t], [0], FULL, out=out)
    return _rate(read, frames)


def _breakdown(source: Any, frames: Sequence[int]) -> dict[str, float]:
    """ms per frame on one thread: read the bytes, decode them, cast-copy the decoded chunks."""
    spent = {"read": 0.0, "decode": 0.0, "copy": 0.0}
    out = np.empty((1, 1) + tuple(source.shape[2:]), dtype=np.float32)
    for t in frames:
        wanted, coords = _frame_coords(source, t)
        started = clock()
        for c in coords:
            _read_bytes(source, c)  # the library's own read, into its reused buffer
        spent["read"] += clock() - started
        encoded = [_encoded(source, c) for c in coords]  # untimed: the bytes kept for the decode
        started = clock()
        decoded = [decoder(data) for data, decoder in encoded]
        spent["decode"] += clock() - started
        chunks = {c: source.chunk(c).copy() for c in coords}  # untimed: the decoded chunks, kept
        del decoded
        with decode_threads(1):
            started = clock()
            read_chunked(_Preloaded(source, chunks), wanted, out)
            spent["copy"] += clock() - started
    return {k: v / len(frames) * 1000 for k, v in spent.items()}


def _zarr_methods(path: str, frames: Sequence[int], threads: int) -> tuple[dict[str, Callable[[], float]], Any]:
    import zarr

    from timelapse_pipes.reading.fast.zarr import ZarrChunks

    array = zarr.open_array(path, mode="r")
    tuned = {"async.concurrency": 64, "codec_pipeline.batch_size": 64}

    def zarr_tuned(t: int) -> None:
        with zarr.config.set(tuned):
            array[t, 0].astype(np.float32)

    methods = {"zarr-python `array[t, 0]` (default)": _rate(lambda t: array[t, 0].astype(np.float32), frames),
               "zarr-python, concurrency 64 and codec batch 64": _rate(zarr_tuned, frames)}
    if zarrs_installed():
        fast = open_zarrs(path, threads)
        methods[f"zarrs codec pipeline ({threads} threads)"] = _rate(lambda t: fast[t, 0].astype(np.float32), frames)
    source = ZarrChunks.from_array(array, "TCZYX")
    _add_library_methods(methods, source, frames, threads)
    return methods, source


def _tiff_methods(path: str, frames: Sequence[int], threads: int) -> tuple[dict[str, Callable[[], float]], Any]:
    import tifffile
    import zarr

    from timelapse_pipes.reading.fast.tiff import TiffPages

    tiff = tifffile.TiffFile(path)
    series = tiff.series[0]
    per_frame = int(np.prod(series.shape[1:-2]))  # pages per timepoint (one channel written)
    store = zarr.open(tifffile.TiffFile(path).series[0].aszarr(), mode="r")

    def keys(t: int) -> range:
        return range(t * per_frame, (t + 1) * per_frame)

    methods = {
        "tifffile `asarray(key=pages)` (default)": _rate(
            lambda t: tiff.asarray(key=keys(t), series=0).astype(np.float32), frames),
        f"tifffile `asarray`, maxworkers={threads}": _rate(
            lambda t: tiff.asarray(key=keys(t), series=0, maxworkers=threads).astype(np.float32), frames),
        "tifffile zarr store (the library's path before)": _rate(lambda t: store[t].astype(np.float32), frames),
    }
    opened = tifffile.TiffFile(path)  # the page decoder keeps its own TiffFile open
    source = TiffPages.from_series(path, opened, opened.series[0], series.axes, {})
    _add_library_methods(methods, source, frames, threads)
    return methods, source


def run(settings: Settings, layouts: Sequence[tuple[str, str, str]], folder: Path) -> tuple[list[Table], list[Target]]:
    """``layouts``: (name, kind "zarr" or "tiff", path of the array or file) of the full-frame files."""
    threads = decode.budget(0)
    n = settings.stream_frames
    frames = [k % n for k in range(settings.decode_frames)]
    inner, shard = settings.shard_chunk
    log(f"decoders: writing a sharded zarr, inner chunks {inner}, shards {shard}")
    sharded = write_sharded(folder / "sharded.zarr", n, (1, *settings.frame_zyx), inner, shard)
    layouts = list(layouts) + [(f"zarr sharded {inner} in {shard}", "zarr", str(sharded))]
    results: list[tuple[str, dict[str, float], Any]] = []
    breakdowns: list[tuple[str, dict[str, float]]] = []
    for name, kind, path in layouts:
        methods, source = (_zarr_methods if kind == "zarr" else _tiff_methods)(path, frames, threads)
        values = interleave(methods, settings.repeats, label=f"decoders {name}")
        results.append((name, {k: median(v) for k, v in values.items()}, source))
        if source is not None:
            breakdowns.append((name, _breakdown(source, frames[: max(2, len(frames) // 2)])))
    frame = "x".join(map(str, settings.frame_zyx))
    table = Table(f"Decoding one {frame} uint16 frame into float32 (frames/s, file opened once)",
                  ["layout", "method", "frames/s", "vs the reader's default"])
    for name, medians, _ in results:
        default = next(iter(medians.values()))
        for k, (method, value) in enumerate(medians.items()):
            table.rows.append([name if k == 0 else "", method, fmt(value),
                               f"{fmt(ratio(value, default))}x"])
    table.notes += [
        f"Threads: N = {threads}, the library's budget with num_workers=0 on this machine "
        "(`max(1, usable CPUs // max(1, num_workers))`). Every method reads the same frames, one at a "
        "time; the reader's ways end with `.astype(float32)`, the library's decoders cast while copying "
        "into a float32 output.",
        "zarr-python and `zarrs` read the array through a `LocalStore` opened once; bioio opens the same "
        "array through an fsspec store, which the library's decoder bypasses by reading the chunk files.",
        "The sharded array is not an OME-Zarr written by the library's benchmarks; the library's chunk "
        "decoder refuses shards, and the library reads them through tensorstore (see the zarr engines "
        "suite, `--only zarr_engines`).",
        "Decode alone: the frame's chunk (or strip) bytes read into memory beforehand, then decoded with the "
        "same codec call the library makes (numcodecs for zarr, tifffile's decoder for TIFF) on a thread "
        "pool, with no file read and no copy: the codec's ceiling on this machine.",
    ]
    split = Table("Where one frame's time goes, one thread (ms per frame)",
                  ["layout", "read the bytes", "decode", "cast copy into float32", "sum",
                   "library decoder, 1 thread", f"library decoder, {threads} threads",
                   f"decode alone, {threads} threads"])
    by_name = {name: medians for name, medians, _ in results}
    for name, parts in breakdowns:
        medians = by_name[name]
        one = medians.get("timelapse_pipes decoder, 1 thread")
        many = medians.get(f"timelapse_pipes decoder, {threads} threads")
        alone = medians.get(f"decode alone (bytes in memory), {threads} threads")
        split.rows.append([name, fmt(parts["read"]), fmt(parts["decode"]), fmt(parts["copy"]),
                           fmt(sum(parts.values())), fmt(1000 / one) if one else "—",
                           fmt(1000 / many) if many else "—", fmt(1000 / alone) if alone else "—"])
    split.notes.append(
        "Each part timed on its own over the same frames (read: the chunk files or TIFF strips into memory; "
        "decode: the codec on those bytes; cast copy: the decoded chunks copied into a float32 frame by the "
        "library's own copy loop). The last three columns are the interleaved medians of the table above, "
        "as ms per frame.")
    return [table, split], []
