"""Metadata read once and persisted; the per-process reader cache."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

import timelapse_pipes as tp
from timelapse_pipes.config.manifest import read_manifest
from timelapse_pipes.testing import collect


def _metadata_stage(loader: tp.TimelapseLoader) -> tp.MetadataCacher:
    return next(s for s in loader.prepared.pipeline.stages if isinstance(s, tp.MetadataCacher))


def test_second_run_plans_from_the_persisted_cache(synthetic, tmp_path):
    cache = tmp_path / "cache" / "metadata.json"
    rows = {"dict_meta": {"path": [str(synthetic["zarr_v3"]), str(synthetic["ome_tiff"]), str(synthetic["ome_tiff"])],
                          "scene": [0, 0, "Image:1"], "split": ["train"] * 3}}
    first = tp.build_loader(rows, metadata_cache=str(cache), samples_per_epoch=6)
    reference = collect(first)
    _metadata_stage(first).metadata.flush()
    assert _metadata_stage(first).metadata.files_opened == 3
    stored = json.loads(cache.read_text())
    assert stored["version"] == 2 and len(stored["entries"]) == 3
    assert not [p for p in cache.parent.iterdir() if p.name != "metadata.json"]  # atomic: no temp left

    second = tp.build_loader(rows, metadata_cache=str(cache), samples_per_epoch=6)
    again = collect(second)
    assert _metadata_stage(second).metadata.files_opened == 0
    assert [b["scene"] for b in again] == [b["scene"] for b in reference]


def test_persisted_cache_notices_a_changed_file(synthetic, tmp_path):
    copy = tmp_path / "movie.tif"
    shutil.copy(synthetic["tiff"], copy)
    cache = tmp_path / "metadata.json"
    rows = {"dict_meta": {"path": [str(copy)], "split": ["train"]}}
    loader = tp.build_loader(rows, metadata_cache=str(cache), spatial_dims=2)
    collect(loader)
    _metadata_stage(loader).metadata.flush()
    os.utime(copy, ns=(1, 1))  # a rewritten file gets a new mtime
    again = tp.build_loader(rows, metadata_cache=str(cache), spatial_dims=2)
    collect(again)
    assert _metadata_stage(again).metadata.files_opened == 1


def test_metadata_fields(shared_data):
    manifest = read_manifest({"dict_meta": {"path": [str(shared_data / "nd2" / "example-timelapse.nd2")]}}, split=None)
    metadata = tp.MetadataCache().get(manifest[0], tp.ReaderCache())
    assert metadata.dims == {"T": 53, "C": 1, "Z": 1, "Y": 64, "X": 64}
    assert metadata.dtype == "uint16" and metadata.reader == "bioio_nd2.Reader"
    assert metadata.physical_pixel_sizes == (1.0, 0.325, 0.325)
    assert metadata.channel_names == ("GFP 488 nm",)
    assert tp.ImageMetadata.from_json(json.loads(json.dumps(metadata.to_json()))) == metadata


def test_reader_cache_is_bounded_and_per_thread(synthetic):
    import threading

    from timelapse_pipes.reading.readers import load_reader_class

    readers = tp.ReaderCache(max_open_files=2)
    zarr = load_reader_class("ome-zarr")
    first = readers.get(str(synthetic["zarr_v3"]), zarr, 0, 0)
    assert readers.get(str(synthetic["zarr_v3"]), zarr, 0, 0) is first
    readers.get(str(synthetic["zarr_v3"]), zarr, 0, 1)
    readers.get(str(synthetic["zarr_v2"]), zarr, 0, 0)
    assert len(readers) == 2 and readers.evictions == 1 and readers.opens == 3
    other: list = []
    thread = threading.Thread(target=lambda: other.append(readers.get(str(synthetic["zarr_v2"]), zarr, 0, 0)))
    thread.start()
    thread.join()
    assert other[0] is not readers.get(str(synthetic["zarr_v2"]), zarr, 0, 0)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_open_readers_do_not_cross_a_fork(synthetic):
    from timelapse_pipes.reading.readers import load_reader_class

    readers = tp.ReaderCache()
    readers.get(str(synthetic["zarr_v3"]), load_reader_class("ome-zarr"), 0, 0)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: the cache must be empty
        os.write(write_end, str(len(readers)).encode())
        os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read_end, 16) == b"0" and len(readers) == 1


def test_metadata_and_loading_share_one_reader_cache(synthetic):
    """The open made to read metadata is the one reused to read pixels (one open per file)."""
    loader = tp.build_loader({"dict_meta": {"path": [str(synthetic["zarr_v3"])]}}, split=None, max_open_files=3,
                             samples_per_epoch=4)
    collect(loader)
    stages = loader.prepared.pipeline.stages
    metadata_stage = next(s for s in stages if isinstance(s, tp.MetadataCacher))
    loading_stage = next(s for s in stages if isinstance(s, tp.BioIOLoader))
    assert metadata_stage.readers is loading_stage.readers
    assert loading_stage.readers.max_open_files == 3 and loading_stage.readers.opens == 1


@pytest.mark.parametrize("relative,scene,expected", [
    ("ome-tiff/181003_multi_pos_time_course_1_MMStack.ome.tif", 1, "TRYX"),
    ("ome-tiff/multi-channel-time-series.ome.tif", 0, "TCYX"),
    ("tiff/s_1_t_1_c_1_z_1.tiff", 0, "YX"),
    ("ome-zarr/fake-series-2.zarr/0", 0, "TCZYX"),
    ("nd2/example-timelapse.nd2", 0, "TCZYX"),
    ("nd2/example-zstack.nd2", 0, "TCZYX"),
    ("nd2/example-multichannel.nd2", 0, "TCZYX"),
    ("czi/tiles_time_z.czi", 0, None),  # CZI stays on bioio's dask path
])
def test_native_fast_path_is_found_and_equal(shared_data, relative, scene, expected):
    from tests.helpers import bioio_reference
    from timelapse_pipes.reading.readers import load_reader_class, reader_for_path
    from timelapse_pipes.reading.regions import read_region

    path = str(shared_data / relative)
    opened = tp.ReaderCache().get(path, load_reader_class(reader_for_path(path)), scene, 0)
    native = opened.native()
    assert (native.dims if native is not None else None) == expected
    got = read_region(opened, "TCZYX", [0], None, (slice(None), slice(3, 40), slice(5, 33)))
    reference = bioio_reference(path, [0], None, scene, reader=load_reader_class(reader_for_path(path)))
    np.testing.assert_array_equal(got, reference[:, :, :, 3:40, 5:33])


def _in_thread(work) -> None:
    import threading

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()


def test_released_or_orphaned_images_pass_to_the_next_thread(synthetic):
    from timelapse_pipes.reading.readers import load_reader_class

    readers, path, zarr = tp.ReaderCache(), str(synthetic["zarr_v3"]), load_reader_class("ome-zarr")
    got: list = []

    def get_and_release() -> None:
        got.append(readers.get(path, zarr, 0, 0))
        readers.release()

    _in_thread(get_and_release)
    _in_thread(get_and_release)
    _in_thread(lambda: got.append(readers.get(path, zarr, 0, 0)))  # ends holding it, never released
    assert got[0] is got[1] is got[2] and readers.opens == 1
    held = readers.get(path, zarr, 0, 0)  # the thread ended: its image is taken over
    _in_thread(lambda: got.append(readers.get(path, zarr, 0, 0)))  # held here: another thread opens its own
    assert held is got[0] and got[3] is not held and readers.opens == 2 and len(readers) == 2


def test_an_image_is_never_read_by_two_threads_at_once(synthetic):
    import threading
    import time

    from timelapse_pipes.reading.readers import load_reader_class

    readers, path, zarr = tp.ReaderCache(), str(synthetic["zarr_v3"]), load_reader_class("ome-zarr")
    in_use: set[int] = set()
    overlaps: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(40):
            image = readers.get(path, zarr, 0, 0)
            with lock:
                if id(image) in in_use:
                    overlaps.append(id(image))
                in_use.add(id(image))
            time.sleep(0.0005)
            with lock:
                in_use.discard(id(image))
            readers.release()

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not overlaps and 1 <= readers.opens <= 4
