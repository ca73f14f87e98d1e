"""Loaders and datasets close what they open: workers, readers and native file handles."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import timelapse_pipes as tp
from timelapse_pipes.testing import assert_batches_equal, collect, noise_movie, write_demo_data, write_ome_zarr

OME_TIFF = "ome-tiff/181003_multi_pos_time_course_1_MMStack.ome.tif"
ND2 = "nd2/example-timelapse.nd2"
PROBE = Path(__file__).resolve().parents[1] / "helpers" / "close_probe.py"
EXIT_PROBE = Path(__file__).resolve().parents[1] / "helpers" / "exit_probe.py"
LEAK_SIGNS = ("ResourceWarning", "unclosed", "Exception ignored")


@pytest.fixture(scope="module")
def zarr_2d(tmp_path_factory) -> Path:
    return write_ome_zarr(tmp_path_factory.mktemp("close") / "movie.ome.zarr", noise_movie((6, 1, 1, 64, 64), 11),
                          levels=1)


def _probe(shared_data: Path, zarr: Path, *flags: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-X", "dev", "-W", "error::ResourceWarning", str(PROBE),
               str(shared_data / OME_TIFF), str(shared_data / ND2), str(zarr), *flags]
    return subprocess.run(command, capture_output=True, text=True, timeout=240,
                          cwd=Path(__file__).resolve().parents[2])


@pytest.mark.timeout(300)
@pytest.mark.parametrize("method", ["thread", pytest.param("process", marks=pytest.mark.slow)])
def test_closing_leaves_no_unclosed_file(method, shared_data, zarr_2d):
    done = _probe(shared_data, zarr_2d, "--method", method)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "batches=4" in done.stdout
    assert not [sign for sign in LEAK_SIGNS if sign in done.stderr], done.stderr[-3000:]


@pytest.mark.timeout(300)
def test_the_probe_sees_files_left_open_without_close(shared_data, zarr_2d):
    done = _probe(shared_data, zarr_2d, "--no-close")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "unclosed file" in done.stderr and OME_TIFF.rsplit("/", 1)[1] in done.stderr


def _rows(shared_data: Path, zarr: Path) -> dict:
    return {"dict_meta": {"path": [str(shared_data / OME_TIFF), str(shared_data / ND2), str(zarr)],
                          "channel": [0, 0, 0]}}


def test_close_shuts_native_handles_and_the_stream_goes_on(shared_data, zarr_2d):
    options = dict(split=None, spatial_dims=3, num_timepoints=2, samples_per_epoch=6, batch_size=2,
                   num_workers=2, crop={"roi_size": [1, 32, 32]})
    reference = tp.build_loader(_rows(shared_data, zarr_2d), **options)
    expected = [collect(reference), collect(reference)]
    with tp.build_loader(_rows(shared_data, zarr_2d), **options) as loader:
        first = collect(loader)
        readers = loader.prepared.readers
        natives = [image.native() for image in readers._images.values()]
        assert len(readers) >= 3 and all(natives)
        loader.close()
        assert len(readers) == 0
        nd2_handles = [n.handle for n in natives if hasattr(n, "handle")]
        assert nd2_handles and all(handle.closed for handle in nd2_handles)
        tiffs = [n for n in natives if type(n).__name__ == "TiffPages"]
        assert tiffs and all(n.tiff is None and n.fd is None for n in tiffs)  # the TiffFile and its fd were closed
        second = collect(loader)  # iterating after close reopens the files: the next epoch
    assert_batches_equal(first, expected[0])
    assert_batches_equal(second, expected[1])
    assert len(loader.prepared.readers) == 0  # the with-block closed it again


def test_dataset_closes_its_readers(shared_data, zarr_2d):
    with tp.TimelapseDataset(_rows(shared_data, zarr_2d), split=None, spatial_dims=3, samples_per_epoch=3) as dataset:
        samples = [dataset[i] for i in range(3)]
        assert len(dataset.prepared.readers) == 3
    assert len(dataset.prepared.readers) == 0
    assert [s["raw"].shape[-3] for s in samples] == [1, 1, 1]
    assert dataset[0]["sample_index"] == 0  # reopens on demand


@pytest.mark.timeout(300)
def test_a_loader_left_open_closes_itself_at_exit(tmp_path):
    """Breaking out of a loader with thread workers and exiting without close(): without the exit
    hook this aborted ("terminate called without an active exception") in 6 of 6 runs; two runs here."""
    manifest = write_demo_data(tmp_path, files=2, frames=8, size=96)  # 64x64 crops span 64x64 chunks
    runs = [subprocess.Popen([sys.executable, str(EXIT_PROBE), str(manifest), "thread"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
            for _ in range(2)]
    for run in runs:
        stdout, stderr = run.communicate(timeout=240)
        assert run.returncode == 0 and "batches=2" in stdout, stderr[-3000:]
        assert "terminate called" not in stderr, stderr[-3000:]


def test_the_exit_hook_tracks_open_loaders_weakly(zarr_2d):
    import gc
    import weakref

    from timelapse_pipes.graph import open_loaders

    rows = {"dict_meta": {"path": [str(zarr_2d)], "channel": [0]}}
    loader = tp.build_loader(rows, split=None, spatial_dims=2, samples_per_epoch=4, batch_size=2, num_workers=1)
    assert loader not in open_loaders._open  # nothing started yet
    next(iter(loader))
    assert loader in open_loaders._open
    loader.close()
    assert loader not in open_loaders._open  # closed: the hook will not close it again
    next(iter(loader))  # iterating after close starts a graph: tracked again
    assert loader in open_loaders._open
    open_loaders.close_open_loaders()  # what the hook does at exit
    assert loader not in open_loaders._open and len(loader.prepared.readers) == 0
    next(iter(loader))
    alive = weakref.ref(loader)
    del loader
    gc.collect()
    assert alive() is None  # tracked through a weak reference: tracking kept nothing alive
