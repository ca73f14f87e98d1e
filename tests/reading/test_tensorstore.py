"""Local zarr arrays read through tensorstore (the ``[fast]`` extra) equal bioio's own read.

OME-Zarr v2, v3 and sharded v3 are read through ``read_region`` on both of the tensorstore
source's paths (tensorstore itself, and the chunk decoder it keeps for reads of few chunks): full
frames, crops, a lower level, unsorted and repeated timepoints, channel subsets, ``out`` of another
dtype, the real OME-Zarr samples, and through ``build_loader`` with tensorstore on and off. Every
refusal (not installed, the fast decoders off, a filter, codec or fill value tensorstore does not
accept, a dtype it is not used for, a remote array, a process forked after tensorstore ran) falls
back to the previous paths, which still equal bioio.
"""

from __future__ import annotations

import functools
import http.server
import multiprocessing
import shutil
import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

import timelapse_pipes as tp
from timelapse_pipes.reading.fast import tensorstore as tsa
from timelapse_pipes.reading.fast import threads as decode
from timelapse_pipes.reading.fast.chunked import OutShapeError
from timelapse_pipes.reading.readers import load_reader_class, reader_for_path
from timelapse_pipes.reading.regions import read_region
from timelapse_pipes.testing import noise_movie, write_ome_zarr

pytest.importorskip("tensorstore")

FULL = (slice(None), slice(None), slice(None))
AXES_NAMES = ["t", "c", "z", "y", "x"]


def _write_files(folder: Path) -> dict[str, Path]:
    from bioio_ome_zarr.writers import OMEZarrWriter
    from zarr.codecs import BloscCodec

    movie = noise_movie((5, 2, 6, 40, 52), seed=21, high=60000)
    files = {
        "v3": write_ome_zarr(folder / "v3.ome.zarr", movie, zarr_format=3, levels=2, chunk=(1, 1, 4, 16, 32)),
        "v2": write_ome_zarr(folder / "v2.ome.zarr", movie, zarr_format=2, levels=1, chunk=(2, 2, 3, 32, 16)),
        "int16": write_ome_zarr(folder / "int16.ome.zarr", noise_movie((4, 1, 3, 33, 47), 22, -2000, 2000, "int16"),
                                zarr_format=3, levels=1, chunk=(1, 1, 1, 33, 47)),
    }
    sharded = folder / "sharded.ome.zarr"
    writer = OMEZarrWriter(str(sharded), level_shapes=[movie.shape], dtype=movie.dtype,
                           chunk_shape=(1, 1, 1, 8, 16), shard_shape=(1, 1, 3, 40, 32), zarr_format=3,
                           compressor=BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle"),
                           axes_names=AXES_NAMES)
    writer.write_full_volume(movie)
    files["sharded"] = sharded
    no_z = folder / "tcyx.ome.zarr"  # an array without a Z axis: read_region adds it
    writer = OMEZarrWriter(str(no_z), level_shapes=[(4, 2, 20, 24)], dtype="uint16", chunk_shape=(1, 1, 8, 8),
                           zarr_format=3, axes_names=["t", "c", "y", "x"])
    writer.write_full_volume(noise_movie((4, 2, 20, 24), seed=23))
    files["tcyx"] = no_z
    return files


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, Path]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the writers' own performance warnings (fixture scope only)
        return _write_files(tmp_path_factory.mktemp("tensorstore"))


def _open(path: str, level: int = 0):
    return tp.ReaderCache().get(path, load_reader_class(reader_for_path(path)), 0, level)


def _reference(path: str, timepoints, channels, region, level: int = 0) -> np.ndarray:
    """bioio's own read: its lazy T, C, Z, Y, X array, indexed, computed."""
    from bioio import BioImage

    image = BioImage(path, reader=load_reader_class(reader_for_path(path)))
    if level:
        image.set_resolution_level(level)
    data = image.get_image_dask_data("TCZYX")[list(timepoints)]
    if channels is not None:
        data = data[:, list(channels)]
    return np.asarray(data[(slice(None), slice(None)) + tuple(region)].compute())


def _kind(native) -> str:
    kind = type(native).__name__
    if kind == "NativeArray" and hasattr(native.array, "_async_array"):
        kind += "/" + type(native.array._async_array.codec_pipeline).__name__
    return kind


def _check(path: str, timepoints=(0,), channels=None, region=FULL, level: int = 0) -> str:
    """read_region without ``out``, into float32 and into uint8 equals bioio (cast as ``astype``
    casts); returns the fast path's class name."""
    opened = _open(path, level)
    try:
        expected = _reference(path, timepoints, channels, region, level)
        got = read_region(opened, "TCZYX", list(timepoints), channels, region)
        assert got.dtype == expected.dtype.newbyteorder("=")
        np.testing.assert_array_equal(got, expected)
        for dtype in (np.float32, np.uint8):
            out = np.full(expected.shape, 3, dtype=dtype)
            assert read_region(opened, "TCZYX", list(timepoints), channels, region, out=out) is out
            np.testing.assert_array_equal(out, expected.astype(dtype))
        return _kind(opened.native())
    finally:
        opened.close()


@pytest.fixture(params=["tensorstore-only", "small-reads-by-chunks"])
def route(request, monkeypatch) -> str:
    """Every read through tensorstore, or every read the chunk decoder can take through it."""
    monkeypatch.setattr(tsa.TensorStoreArray, "SMALL_READ_CHUNKS", 0 if request.param == "tensorstore-only" else 10**9)
    return request.param


@pytest.fixture(params=[1, 2], ids=["1-thread", "2-threads"])
def threads(request, monkeypatch) -> int:
    monkeypatch.setenv(decode.ENV_VAR, str(request.param))
    return request.param


CASES = [  # (file, level, timepoints, channels, region)
    ("v3", 0, (3,), None, FULL),
    ("v3", 1, (4, 0, 4), [1], FULL),  # a lower level, unsorted and repeated frames
    ("v3", 0, (1, 2), [1, 0], (slice(1, 6), slice(7, 31), slice(30, 52))),  # crop, channels reversed
    ("v3", 0, (3, 0, 2), None, (slice(0, 6, 2), slice(None), slice(5, 60))),  # strided Z, X past the edge
    ("v2", 0, (0, 4), None, (slice(2, 3), slice(0, 40), slice(5, 37))),
    ("v2", 0, (2, 2, 1, 2), [1], FULL),
    ("int16", 0, (3, 1), [0], FULL),
    ("sharded", 0, (2,), None, (slice(0, 4), slice(3, 29), slice(0, 52))),
    ("sharded", 0, (4, 1, 4), [1, 0], FULL),
    ("tcyx", 0, (3, 1), [1], (slice(None), slice(2, 19), slice(0, 9))),
]


@pytest.mark.parametrize("name,level,timepoints,channels,region", CASES)
def test_tensorstore_reads_equal_bioio(written, route, threads, name, level, timepoints, channels, region):
    assert _check(str(written[name]), timepoints, channels, region, level) == "TensorStoreArray"


def test_reads_of_few_chunks_go_to_the_chunk_decoder_and_larger_ones_to_tensorstore(written):
    opened = _open(str(written["v3"]))  # chunks (1, 1, 4, 16, 32) of (5, 2, 6, 40, 52)
    native = opened.native()
    assert type(native.small).__name__ == "ZarrChunks"
    decoded: list[tuple[int, ...]] = []
    chunk = native.small.chunk
    native.small.chunk = lambda coords: decoded.append(coords) or chunk(coords)
    read_region(opened, "TCZYX", [1], [0], (slice(0, 4), slice(0, 16), slice(0, 32)))  # one chunk
    assert decoded == [(1, 0, 0, 0, 0)]
    decoded.clear()
    read_region(opened, "TCZYX", [1, 2], None, FULL)  # 2 x 2 x 2 x 3 x 2 = 48 chunks
    assert decoded == []
    assert tsa._chunk_count([[1, 2], range(2), range(6), range(40), range(52)], native.small.chunks) == 48
    assert tsa._chunk_count([[4, 0, 4], [1], range(3, 5), range(15, 17), range(1)], (1, 1, 4, 16, 32)) == 8
    opened.close()


def _file_reads() -> int:
    """Files tensorstore's ``file`` kvstore has read in this process so far (its own metric)."""
    import tensorstore as ts

    name = "/tensorstore/kvstore/file/read"
    return sum(value.get("value", 0) for metric in ts.experimental_collect_matching_metrics(name)
               if metric["name"] == name for value in metric["values"])


def test_tensorstore_reads_only_the_chunks_a_crop_intersects(written, monkeypatch):
    monkeypatch.setattr(tsa.TensorStoreArray, "SMALL_READ_CHUNKS", 0)
    opened = _open(str(written["v3"]))  # chunks (1, 1, 4, 16, 32) of (5, 2, 6, 40, 52)
    opened.native()
    before = _file_reads()
    read_region(opened, "TCZYX", [2], [1], (slice(3, 5), slice(10, 20), slice(0, 10)))  # 2 z x 2 y x 1 x
    assert _file_reads() - before == 4
    before = _file_reads()
    read_region(opened, "TCZYX", [4, 2, 4], None, FULL)  # frames 2 and 4, each once: 2 x 2 x 2 x 3 x 2
    assert _file_reads() - before == 48
    opened.close()


REAL = [  # (relative path, the path taken)
    ("ome-zarr/blobs_image_v04.ome.zarr", "TensorStoreArray"),  # zarr v2, blosc lz4, float64
    ("ome-zarr/blobs_image_v05.ome.zarr", "TensorStoreArray"),  # zarr v3, zstd
    ("ome-zarr/fake-series-2.zarr/0", "TensorStoreArray"),
    ("ome-zarr/viv-bioformats-zarr/data.zarr/0", "ZarrChunks"),  # fill_value "0" (a string): tensorstore refuses
]


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("relative,kind", REAL, ids=[r[0].split("/")[1] for r in REAL])
def test_real_ome_zarr_files_equal_bioio(shared_data, route, relative, kind):
    path = str(shared_data / relative)
    from bioio import BioImage

    image = BioImage(path, reader=load_reader_class(reader_for_path(path)))
    frames, y, x = image.dims.T, image.dims.Y, image.dims.X
    timepoints = (frames - 1, 0, frames - 1) if frames > 1 else (0, 0)
    assert _check(path, timepoints) == kind
    assert _check(path, timepoints[:1], [0], (slice(None), slice(y // 3, y - 2), slice(1, max(2, x // 2)))) == kind


def test_reads_that_use_most_of_each_big_chunk_go_to_the_chunk_decoder(written, monkeypatch):
    opened = _open(str(written["v3"]))  # chunks (1, 1, 4, 16, 32) of (5, 2, 6, 40, 52): 4 KB of uint16
    native = opened.native()
    monkeypatch.setattr(tsa.TensorStoreArray, "LARGE_CHUNK_BYTES", 4096)  # big from here on
    whole = [range(4), range(2), range(4), range(32), range(32)]  # 16 chunks, every pixel of each
    crop = [range(4), range(2), range(1, 3), range(10, 20), range(20, 40)]  # 32 chunks, 1/20 of their pixels
    assert native.by_chunks(whole) and not native.by_chunks(crop)
    monkeypatch.setattr(tsa.TensorStoreArray, "LARGE_CHUNK_BYTES", 4097)  # small again: both tensorstore's
    assert not native.by_chunks(whole) and not native.by_chunks(crop)
    opened.close()


def test_an_array_of_big_chunks_is_read_by_both_and_equals_bioio(tmp_path):
    data = noise_movie((2, 1, 4, 256, 256), seed=24)  # chunks of 4 x 256 x 256 uint16: 512 KB
    path = write_ome_zarr(tmp_path / "big.ome.zarr", data, levels=1, chunk=(1, 1, 4, 256, 256))
    assert _check(str(path), (1, 0), None, (slice(1, 3), slice(5, 200), slice(None))) == "TensorStoreArray"
    assert _check(str(path), (1,), None, FULL) == "TensorStoreArray"
    opened = _open(str(path))
    assert type(opened.native().small).__name__ == "ZarrChunks"
    opened.close()


def test_the_sharded_array_has_no_chunk_decoder(written):
    opened = _open(str(written["sharded"]))
    assert type(opened.native()).__name__ == "TensorStoreArray" and opened.native().small is None
    opened.close()


def test_empty_reads_out_of_range_frames_and_a_wrong_out(written, route):
    opened = _open(str(written["v3"]))
    native = opened.native()
    assert native.read([], None, FULL).shape == (0, 2, 6, 40, 52)
    assert native.read([0], [], FULL).shape == (1, 0, 6, 40, 52)
    with pytest.raises(IndexError, match="T index out of range"):
        native.read([5], None, FULL)
    with pytest.raises(tp.UnsupportedImageError, match="T index out of range"):
        read_region(opened, "TCZYX", [0, 9], None, FULL, where="row 1")
    with pytest.raises(OutShapeError, match=r"out has shape \(1, 2, 6, 40, 51\); this read gives \(1, 2, 6, 40, 52\)"):
        read_region(opened, "TCZYX", [0], None, FULL, out=np.empty((1, 2, 6, 40, 51), np.float32))
    opened.close()


def test_a_bad_chunk_fails_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(tsa.TensorStoreArray, "SMALL_READ_CHUNKS", 0)
    path = write_ome_zarr(tmp_path / "bad.ome.zarr", noise_movie((1, 1, 1, 16, 16), 3), levels=1, chunk=(1, 1, 1, 8, 8))
    chunk = path / "0" / "c" / "0" / "0" / "0" / "1" / "0"
    chunk.write_bytes(b"not blosc")
    opened = _open(str(path))
    with pytest.raises(tp.ImageReadError, match=str(chunk)):
        read_region(opened, "TCZYX", [0], None, FULL, where="row 1")
    assert type(opened.native()).__name__ == "TensorStoreArray"
    opened.close()


def test_tensorstore_errors_become_the_builtins_the_library_sorts_on():
    assert type(tsa._error(ValueError("NOT_FOUND: gone"), "x: ")) is FileNotFoundError
    assert type(tsa._error(ValueError("UNAVAILABLE: try again"), "")) is OSError
    assert type(tsa._error(ValueError("DEADLINE_EXCEEDED: slow"), "")) is TimeoutError
    error = tsa._error(ValueError("FAILED_PRECONDITION: Error reading local file"), "/a.zarr: ")
    assert type(error) is ValueError and str(error) == "/a.zarr: FAILED_PRECONDITION: Error reading local file"


def test_the_context_follows_the_decode_thread_budget(monkeypatch):
    monkeypatch.setenv(decode.ENV_VAR, "3")
    limits = tsa.context().spec.to_json()
    assert limits["data_copy_concurrency"] == {"limit": 3} and limits["file_io_concurrency"] == {"limit": 3}
    assert tsa.context() is tsa.context()
    monkeypatch.delenv(decode.ENV_VAR)
    try:
        decode.configure(2, "thread")  # two thread workers share the process: decode_threads() each
        assert decode.process_threads() == 2 * decode.budget(2)
        assert tsa.context().spec.to_json()["data_copy_concurrency"] == {"limit": 2 * decode.budget(2)}
        decode.configure(2, "process")
        assert decode.process_threads() == decode.budget(2)
    finally:
        decode.configure(0)


@pytest.mark.parametrize("crop", [None, [2, 24, 24]], ids=["full-frames", "crops"])
def test_loader_batches_equal_with_tensorstore_on_and_off(written, monkeypatch, crop):
    paths = [str(written[name]) for name in ("v3", "v2", "sharded")]
    rows = {"dict_meta": {"path": paths, "channel": ["0,1"] * len(paths)}}
    options = dict(split=None, spatial_dims=3, num_timepoints=3, samples_per_epoch=9, batch_size=3, seed=5)
    if crop:
        options["crop"] = {"roi_size": crop}

    def batches() -> list[np.ndarray]:
        with tp.build_loader(rows, **options) as loader:
            return [batch["raw"].numpy() for batch in loader]

    on = batches()
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "tensorstore", None)  # the chunk decoder and zarr-python
        chunks = batches()
    with monkeypatch.context() as patch:
        patch.setenv(decode.FAST_ENV_VAR, "0")  # zarr-python alone
        plain = batches()
    assert len(on) == 3
    for first, second, third in zip(on, chunks, plain):
        np.testing.assert_array_equal(first, second)
        np.testing.assert_array_equal(first, third)


def test_a_big_endian_v2_array_is_read_by_tensorstore(written, tmp_path, route):
    path = _rewrite_level_0(_copy(written, "v2", tmp_path), dtype=">u2")
    assert _zarr_array(path).dtype == np.dtype(">u2")
    assert _check(str(path), (4, 0, 4), None, (slice(1, 5), slice(3, 30), slice(None))) == "TensorStoreArray"


# Refusals: each array is read by the previous paths, which still equal bioio.

def test_without_tensorstore_the_previous_paths_read(written, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorstore", None)  # `import tensorstore` raises ImportError
    assert not tsa.tensorstore_installed()
    assert _check(str(written["v3"]), (4, 0, 4), [1]) == "ZarrChunks"
    assert _check(str(written["sharded"]), (2,)) == "NativeArray/BatchedCodecPipeline"


def test_with_the_fast_decoders_off_zarr_python_reads(written, monkeypatch):
    monkeypatch.setenv(decode.FAST_ENV_VAR, "0")
    assert _check(str(written["v3"]), (1, 2), [1, 0]) == "NativeArray/BatchedCodecPipeline"


def _rewrite_level_0(path: Path, **create: object) -> Path:
    """The OME-Zarr's level 0 array written again by zarr-python with ``create``'s options."""
    import zarr

    old = zarr.open_array(str(path / "0"), mode="r")
    data = old[...]
    if "dtype" in create:
        data = data.astype(create["dtype"]) * (1 + 1j if np.dtype(create["dtype"]).kind == "c" else 1)
    names = {"dimension_names": old.metadata.dimension_names} if old.metadata.zarr_format == 3 else {}
    new = zarr.create_array(str(path / "0"), shape=old.shape, chunks=old.chunks, dtype=create.pop("dtype", old.dtype),
                            zarr_format=old.metadata.zarr_format, overwrite=True, **names, **create)
    new[...] = data
    return path


def _copy(written: dict[str, Path], name: str, tmp_path: Path) -> Path:
    target = tmp_path / written[name].name
    shutil.copytree(written[name], target)
    shutil.rmtree(target / "1", ignore_errors=True)  # level 1 is not rewritten: drop it from the reads
    return target


def test_a_v2_filter_tensorstore_refuses_is_read_by_zarr(written, tmp_path):
    import numcodecs

    path = _rewrite_level_0(_copy(written, "v2", tmp_path), filters=[numcodecs.Delta(dtype="<u2")])
    assert tsa.TensorStoreArray.from_array(_zarr_array(path), "TCZYX") is None
    assert _check(str(path), (4, 0), [1], (slice(1, 5), slice(3, 30), slice(None))).startswith("NativeArray/")


def test_a_v3_codec_tensorstore_refuses_is_read_by_zarr(written, tmp_path):
    from numcodecs.zarr3 import Delta

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numcodecs.zarr3 is "not yet covered by the Zarr spec"
        path = _rewrite_level_0(_copy(written, "v3", tmp_path), filters=[Delta(dtype="<u2")])
        assert tsa.TensorStoreArray.from_array(_zarr_array(path), "TCZYX") is None
        assert _check(str(path), (3, 1), None).startswith("NativeArray/")


def test_a_v2_fill_value_tensorstore_refuses_is_read_by_the_chunk_decoder(written, tmp_path):
    import json

    path = _copy(written, "v2", tmp_path)
    metadata = json.loads((path / "0" / ".zarray").read_text())
    metadata["fill_value"] = "0"  # as bioformats2raw writes it: zarr-python reads it, tensorstore refuses
    (path / "0" / ".zarray").write_text(json.dumps(metadata))
    assert tsa.TensorStoreArray.from_array(_zarr_array(path), "TCZYX") is None
    assert _check(str(path), (4, 0, 4), [1], (slice(1, 5), slice(3, 30), slice(None))) == "ZarrChunks"


def test_a_complex_dtype_is_refused(written, tmp_path):
    path = _rewrite_level_0(_copy(written, "v3", tmp_path), dtype="complex64")
    assert tsa.TensorStoreArray.from_array(_zarr_array(path), "TCZYX") is None
    opened = _open(str(path))
    expected = _reference(str(path), (2, 0), None, FULL)
    assert expected.dtype.kind == "c"
    np.testing.assert_array_equal(read_region(opened, "TCZYX", [2, 0], None, FULL), expected)
    assert _kind(opened.native()).startswith("NativeArray/")
    opened.close()


def _zarr_array(path: Path):
    import zarr

    return zarr.open_array(str(path / "0"), mode="r")


@pytest.mark.cloud
def test_a_remote_array_is_read_by_zarr(written):
    folder = written["v3"].parent
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{written['v3'].name}"
        opened = _open(url)
        assert _kind(opened.native()).startswith("NativeArray/")
        expected = _reference(str(written["v3"]), (4, 0, 4), [1], (slice(1, 5), slice(3, 30), slice(None)))
        got = read_region(opened, "TCZYX", [4, 0, 4], [1], (slice(1, 5), slice(3, 30), slice(None)))
        np.testing.assert_array_equal(got, expected)
        opened.close()
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_a_process_forked_after_tensorstore_ran_reads_without_it(written):
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    path = str(written["v3"])
    opened = _open(path)
    assert type(opened.native()).__name__ == "TensorStoreArray"
    read_region(opened, "TCZYX", [0], None, FULL)  # tensorstore has run in this process
    opened.close()
    expected = _reference(path, (3, 1), [0], FULL)
    with multiprocessing.get_context("fork").Pool(1) as pool:  # tensorstore would abort this child
        kind, got = pool.apply_async(_read_in_child, (path,)).get(timeout=120)
    assert kind == "ZarrChunks"
    np.testing.assert_array_equal(got, expected)


def _read_in_child(path: str) -> tuple[str, np.ndarray]:
    opened = _open(path)
    try:
        return type(opened.native()).__name__, read_region(opened, "TCZYX", [3, 1], [0], FULL)
    finally:
        opened.close()


def test_forked_process_workers_after_tensorstore_ran_equal_the_main_process(written):
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    # A forked child reads unsharded files with the chunk decoder, the sharded one with zarr-python.
    paths = [str(written[name]) for name in ("v3", "v2", "sharded")]
    rows = {"dict_meta": {"path": paths, "channel": ["0,1", "1,0", "0,1"]}}
    options = dict(split=None, spatial_dims=3, num_timepoints=2, samples_per_epoch=8, batch_size=2, seed=7)

    def batches(**workers) -> list[np.ndarray]:
        with tp.build_loader(rows, **options, **workers) as loader:
            return [batch["raw"].numpy() for batch in loader]

    main = batches()  # tensorstore runs in this process first
    forked = batches(num_workers=2, worker_method="process", multiprocessing_context="fork")
    assert len(main) == len(forked) == 4
    for one, two in zip(main, forked):
        np.testing.assert_array_equal(one, two)
