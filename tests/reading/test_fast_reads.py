"""The parallel decode paths (zarr chunks, TIFF pages, ND2 frames) equal bioio's own read.

Every format the fast paths touch is read through ``read_region`` (with and without ``out``, full
frames and crops, repeated and unsorted timepoints, 1 and 2 decode threads) and compared pixel for
pixel with bioio, with tensorstore importable and made absent (the fallback paths).
"""

from __future__ import annotations

import sys
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

import timelapse_pipes as tp
from tests.helpers import bioio_reference
from timelapse_pipes.reading.fast import threads as decode
from timelapse_pipes.reading.fast.chunked import OutShapeError, axis_runs
from timelapse_pipes.reading.readers import load_reader_class, reader_for_path
from timelapse_pipes.reading.regions import read_region
from timelapse_pipes.testing import write_ome_tiff, write_ome_zarr

FULL = (slice(None), slice(None), slice(None))


def _has_tensorstore() -> bool:
    try:
        import tensorstore  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(params=["fast-absent", "fast-installed"])
def fast(request, monkeypatch) -> str:
    """Run the test with tensorstore importable (skip where it is not) and with it made unimportable."""
    if request.param == "fast-installed" and not _has_tensorstore():
        pytest.skip("tensorstore is not installed")
    if request.param == "fast-absent":
        monkeypatch.setitem(sys.modules, "tensorstore", None)  # `import tensorstore` raises ImportError
    return request.param


@pytest.fixture(params=[1, 2], ids=["1-thread", "2-threads"])
def threads(request, monkeypatch) -> int:
    monkeypatch.setenv(decode.ENV_VAR, str(request.param))
    return request.param


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, Path]:
    """Synthetic files in the layouts the fast paths take (and one they hand to zarr-python)."""
    with warnings.catch_warnings():
        return _write_files(tmp_path_factory)


def _write_files(tmp_path_factory) -> dict[str, Path]:
    from zarr.codecs import BloscCodec

    warnings.simplefilter("ignore")  # the writers' own performance warnings (fixture scope only)
    folder = tmp_path_factory.mktemp("fast")
    rng = np.random.default_rng(12)
    movie = rng.integers(0, 60000, size=(5, 2, 6, 40, 52)).astype("uint16")
    ints = rng.integers(-2000, 2000, size=(4, 1, 3, 33, 47)).astype("int16")
    files = {
        "zarr_v3": write_ome_zarr(folder / "v3.ome.zarr", movie, 3, levels=2, chunk=(1, 1, 4, 16, 32)),
        "zarr_v2": write_ome_zarr(folder / "v2.ome.zarr", movie, 2, levels=1, chunk=(2, 2, 3, 32, 16)),
        "zarr_int16": write_ome_zarr(folder / "int16.ome.zarr", ints, 3, levels=1, chunk=(1, 1, 1, 33, 47)),
        "ome_tiff": write_ome_tiff(folder / "movie.ome.tiff", [movie[:, :, :4], movie[1:4, :1, :2]]),
    }
    from bioio_ome_zarr.writers import OMEZarrWriter

    sharded = folder / "sharded.ome.zarr"
    writer = OMEZarrWriter(str(sharded), level_shapes=[movie.shape], dtype=movie.dtype,
                           chunk_shape=(1, 1, 1, 8, 16), shard_shape=(1, 1, 3, 40, 32), zarr_format=3,
                           compressor=BloscCodec(cname="zstd", clevel=3, shuffle="bitshuffle"),
                           axes_names=["t", "c", "z", "y", "x"])
    writer.write_full_volume(movie)
    files["zarr_sharded"] = sharded
    return files


def _open(path: str, scene: int = 0, level: int = 0):
    return tp.ReaderCache().get(path, load_reader_class(reader_for_path(path)), scene, level)


def _check(path: str, scene: int = 0, level: int = 0, timepoints=(0,), channels=None,
           region=FULL) -> str:
    """read_region without and with a float32 ``out`` equals bioio's read; returns the fast path's class."""
    opened = _open(path, scene, level)
    reference = bioio_reference(path, list(timepoints), channels, scene, level,
                                reader=load_reader_class(reader_for_path(path)))
    expected = reference[(slice(None), slice(None)) + tuple(region)]
    got = read_region(opened, "TCZYX", list(timepoints), channels, region)
    assert got.dtype == expected.dtype.newbyteorder("=")
    np.testing.assert_array_equal(got, expected)
    out = np.full(expected.shape, -1.0, dtype=np.float32)
    assert read_region(opened, "TCZYX", list(timepoints), channels, region, out=out) is out
    np.testing.assert_array_equal(out, expected.astype(np.float32))
    native = opened.native()
    kind = type(native).__name__
    if kind == "NativeArray" and hasattr(native.array, "_async_array"):
        kind += "/" + type(native.array._async_array.codec_pipeline).__name__
    opened.close()
    return kind


CASES = [  # (file, scene, level, timepoints, channels, region)
    ("zarr_v3", 0, 0, (3,), None, FULL),
    ("zarr_v3", 0, 1, (4, 0, 4), [1], FULL),  # level 1, unsorted and repeated frames
    ("zarr_v3", 0, 0, (1, 2), [1, 0], (slice(1, 6), slice(7, 31), slice(30, 52))),
    ("zarr_v2", 0, 0, (0, 4), None, (slice(2, 3), slice(0, 40), slice(5, 37))),
    ("zarr_int16", 0, 0, (3, 1), [0], FULL),
    ("zarr_sharded", 0, 0, (2,), None, (slice(0, 4), slice(3, 29), slice(0, 52))),
    ("ome_tiff", 0, 0, (4, 0), None, FULL),
    ("ome_tiff", 1, 0, (2, 2), [0], (slice(1, 2), slice(5, 30), slice(0, 17))),
]
ZARR_KIND = {"fast-absent": "ZarrChunks", "fast-installed": "TensorStoreArray"}  # tests/reading/test_tensorstore.py
KINDS = {"zarr_v3": ZARR_KIND, "zarr_v2": ZARR_KIND, "zarr_int16": ZARR_KIND, "ome_tiff": "TiffPages",
         "zarr_sharded": {"fast-absent": "NativeArray/BatchedCodecPipeline",
                          "fast-installed": "TensorStoreArray"}}


@pytest.mark.parametrize("name,scene,level,timepoints,channels,region", CASES)
def test_synthetic_fast_paths_equal_bioio(written, fast, threads, name, scene, level, timepoints, channels,
                                          region):
    kind = _check(str(written[name]), scene, level, timepoints, channels, region)
    expected = KINDS[name]
    assert kind == (expected[fast] if isinstance(expected, dict) else expected)


REAL = [  # (relative path, scene, the fast path taken)
    ("ome-zarr/blobs_image_v04.ome.zarr", 0, "ZarrChunks"),  # zarr v2, blosc lz4, float64
    ("ome-zarr/blobs_image_v05.ome.zarr", 0, "ZarrChunks"),  # zarr v3, zstd
    ("ome-zarr/fake-series-2.zarr/0", 0, "ZarrChunks"),
    ("ome-zarr/viv-bioformats-zarr/data.zarr/0", 0, "ZarrChunks"),  # empty v2 filters list, int8
    ("ome-tiff/multi-channel-time-series.ome.tif", 0, "TiffPages"),  # one row per strip, raw
    ("ome-tiff/181003_multi_pos_time_course_1_MMStack.ome.tif", 1, "TiffPages"),  # positions as scenes
    ("ome-tiff/viv-multi-channel.ome.tif", 0, "TiffPages"),  # deflate strips
    ("ome-tiff/s_1_t_1_c_1_z_1.ome.tiff", 0, "TiffPages"),  # LZW
    ("tiff/s_1_t_1_c_1_z_1.tiff", 0, "TiffPages"),
    ("tiff/stuck.tif", 0, "TiffPages"),
    ("nd2/example-timelapse.nd2", 0, "ND2Frames"),
    ("nd2/example-zstack.nd2", 0, "ND2Frames"),
    ("nd2/example-multichannel.nd2", 0, "ND2Frames"),
]


TENSORSTORE_REFUSES = {"ome-zarr/viv-bioformats-zarr/data.zarr/0"}  # fill_value "0", a string


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("relative,scene,kind", REAL, ids=[r[0].split("/")[-1] for r in REAL])
def test_real_files_fast_paths_equal_bioio(shared_data, fast, threads, relative, scene, kind):
    path = str(shared_data / relative)
    from bioio import BioImage

    image = BioImage(path, reader=load_reader_class(reader_for_path(path)))
    image.set_scene(scene)
    frames = image.dims.T
    timepoints = (frames - 1, 0) if frames > 1 else (0,)
    if kind == "ZarrChunks" and fast == "fast-installed" and relative not in TENSORSTORE_REFUSES:
        kind = "TensorStoreArray"
    assert _check(path, scene, 0, timepoints) == kind
    y, x = image.dims.Y, image.dims.X
    crop = (slice(0, image.dims.Z), slice(y // 3, y - 2), slice(1, max(2, x // 2)))
    assert _check(path, scene, 0, timepoints[:1], [0], crop) == kind


def test_a_missing_chunk_reads_as_the_fill_value(tmp_path):
    from bioio_ome_zarr.writers import OMEZarrWriter

    path = tmp_path / "holes.ome.zarr"
    writer = OMEZarrWriter(str(path), level_shapes=[(2, 1, 1, 16, 16)], dtype="uint16",
                           chunk_shape=(1, 1, 1, 8, 8), zarr_format=3, axes_names=["t", "c", "z", "y", "x"])
    writer.write_full_volume(np.full((2, 1, 1, 16, 16), 7, dtype="uint16"))
    (path / "0" / "c" / "1" / "0" / "0" / "1" / "0").unlink()
    assert _check(str(path), 0, 0, (1, 0)) in ("ZarrChunks", "TensorStoreArray")


def test_an_out_of_the_wrong_shape_is_refused_naming_both_shapes(written):
    opened = _open(str(written["zarr_v3"]))
    with pytest.raises(OutShapeError, match=r"out has shape \(1, 2, 6, 40, 51\); this read gives \(1, 2, 6, 40, 52\)"):
        read_region(opened, "TCZYX", [0], None, FULL, out=np.empty((1, 2, 6, 40, 51), np.float32))


def test_a_bad_chunk_fails_naming_the_file(tmp_path):
    from bioio_ome_zarr.writers import OMEZarrWriter

    path = tmp_path / "bad.ome.zarr"
    writer = OMEZarrWriter(str(path), level_shapes=[(1, 1, 1, 8, 8)], dtype="uint16",
                           chunk_shape=(1, 1, 1, 8, 8), zarr_format=3, axes_names=["t", "c", "z", "y", "x"])
    writer.write_full_volume(np.ones((1, 1, 1, 8, 8), dtype="uint16"))
    chunk = path / "0" / "c" / "0" / "0" / "0" / "0" / "0"
    chunk.write_bytes(b"not blosc")
    with pytest.raises(tp.ImageReadError, match=str(chunk)):
        read_region(_open(str(path)), "TCZYX", [0], None, FULL, where="row 1")


def test_loader_batches_are_identical_on_one_and_two_decode_threads(written, monkeypatch):
    rows = {"dict_meta": {"path": [str(written["zarr_v3"]), str(written["ome_tiff"])], "channel": ["0,1", "0,1"]}}
    options = dict(split=None, spatial_dims=3, num_timepoints=2, samples_per_epoch=6, batch_size=2, seed=3,
                   crop={"roi_size": [2, 24, 24]})
    batches = {}
    for count in (1, 2):
        monkeypatch.setenv(decode.ENV_VAR, str(count))
        with tp.build_loader(rows, **options) as loader:
            batches[count] = [batch["raw"].numpy() for batch in loader]
    assert len(batches[1]) == 3
    for one, two in zip(batches[1], batches[2]):
        np.testing.assert_array_equal(one, two)


def test_axis_runs_cover_ranges_repeats_and_unsorted_indices():
    assert axis_runs(range(5, 21), 8) == {0: [(slice(5, 8), slice(0, 3))], 1: [(slice(0, 8), slice(3, 11))],
                                          2: [(slice(0, 5), slice(11, 16))]}
    assert axis_runs([4, 5, 5, 0, 9], 8) == {0: [(slice(4, 6), slice(0, 2)), (slice(5, 6), slice(2, 3)),
                                                 (slice(0, 1), slice(3, 4))],
                                             1: [(slice(1, 2), slice(4, 5))]}


def test_the_thread_budget_rule():
    assert [decode.budget(w, cpus=8) for w in (0, 1, 2, 3, 4, 8, 16)] == [8, 8, 4, 2, 2, 1, 1]
    assert decode.budget(2, cpus=2) == 1 and decode.budget(0, cpus=2) == 2


def test_configure_and_the_environment_variable(monkeypatch):
    monkeypatch.delenv(decode.ENV_VAR, raising=False)
    try:
        assert decode.configure(threads=3) == 3 and decode.decode_threads() == 3
        assert decode.configure(num_workers=4, worker_method="process") == decode.budget(4)
        monkeypatch.setenv(decode.ENV_VAR, "5")
        assert decode.decode_threads() == 5
        monkeypatch.setenv(decode.ENV_VAR, "many")
        with pytest.raises(ValueError, match=decode.ENV_VAR):
            decode.decode_threads()
        with pytest.raises(ValueError):
            decode.configure(threads=0)
    finally:
        monkeypatch.delenv(decode.ENV_VAR, raising=False)
        decode.configure(0)


def test_run_all_uses_the_pool_waits_for_every_job_and_reraises(monkeypatch):
    monkeypatch.setenv(decode.ENV_VAR, "2")
    names, done = set(), []
    barrier = threading.Barrier(2, timeout=10)

    def job(k: int):
        def run() -> None:
            if k < 2:
                barrier.wait()  # two jobs at once: only possible on two threads
            names.add(threading.current_thread().name)
            done.append(k)
            if k == 5:
                raise RuntimeError("job 5 failed")
        return run

    with pytest.raises(RuntimeError, match="job 5 failed"):
        decode.run_all([job(k) for k in range(8)])
    assert sorted(done) == list(range(8))  # every job ran before the error surfaced
    assert len(names) == 2


def test_the_fast_decoders_can_be_turned_off(written, monkeypatch):
    monkeypatch.setenv(decode.FAST_ENV_VAR, "0")
    assert _check(str(written["zarr_v3"]), 0, 0, (2,)) == "NativeArray/BatchedCodecPipeline"
    assert _check(str(written["ome_tiff"]), 0, 0, (1,)) == "NativeArray/BatchedCodecPipeline"  # zarr store


def test_a_worker_process_decodes_on_one_thread_until_configured():
    import multiprocessing

    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")
    decode.configure(threads=2)
    try:
        with context.Pool(1) as pool:
            assert pool.apply(_child_budget) == (1, decode.budget(3))
    finally:
        decode.configure(0)


def _child_budget() -> tuple[int, int]:
    import os

    os.environ.pop(decode.ENV_VAR, None)
    unconfigured = decode.decode_threads()
    return unconfigured, decode.configure(3, "process")


@pytest.mark.parametrize("layout,kind", [
    (dict(compression="zlib", predictor=2, tile=(32, 32), photometric="minisblack"), "TiffPages"),  # edge tiles
    (dict(compression="lzw", predictor=2, rowsperstrip=7, photometric="minisblack"), "TiffPages"),
    (dict(compression="zstd", tile=(16, 48), photometric="minisblack"), "TiffPages"),
    (dict(rowsperstrip=9, photometric="minisblack"), "TiffPages"),  # uncompressed, one block per page
    (dict(compression="zlib"), "NativeArray/BatchedCodecPipeline"),  # 4 planar samples per page: refused
], ids=["deflate-tiles-predictor", "lzw-strips-predictor", "zstd-tiles", "raw-strips", "planar-samples"])
def test_tiff_strips_and_tiles_equal_bioio(tmp_path, threads, layout, kind):
    import tifffile

    path = str(tmp_path / "movie.tif")
    data = np.random.default_rng(1).integers(0, 60000, size=(3, 4, 50, 70)).astype("uint16")
    tifffile.imwrite(path, data, metadata={"axes": "TZYX"}, **layout)
    assert _check(path, 0, 0, (2, 0), None, (slice(None), slice(5, 47), slice(3, 69))) == kind
