"""The grid sampler for inference: every pixel of every frame read in a fixed tile order, stitched back.

Real files (the shared ND2 and OME-TIFF, with a label OME-Zarr written from each) are tiled with
overlap, the tiles are stitched back and compared with bioio's read of the whole range; the grid
resumes exactly with thread and process workers, and two ranks together cover it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bioio import BioImage

import timelapse_pipes as tp
from timelapse_pipes import GridStitcher
from timelapse_pipes.testing import (
    collect,
    noise_movie,
    run_state_round_trip,
    write_manifest,
    write_ome_zarr,
)

ND2 = "nd2/example-timelapse.nd2"  # T=53, C=1, Z=1, 64 x 64
MM = "ome-tiff/181003_multi_pos_time_course_1_MMStack.ome.tif"  # T=10, 256 x 256


def stitch(loader: tp.TimelapseLoader, key: str, ones: bool = False) -> dict[int, np.ndarray]:
    """Each row rebuilt from the loader's ``key`` tiles (or from tiles of ones: the coverage)."""
    stitcher = GridStitcher.for_loader(loader)
    rows: dict[int, np.ndarray] = {}
    for batch in collect(loader):
        tiles = batch[key].float()
        rows.update(stitcher.add(batch, np.ones(tuple(tiles.shape), np.float32) if ones else tiles))
    assert stitcher.pending_rows == []
    return rows


@pytest.mark.real_data
def test_stitched_tiles_of_real_files_equal_bioios_whole_read(shared_data: Path, tmp_path: Path) -> None:
    rows = []
    for name, path, stop in (("nd2", shared_data / ND2, 5), ("mm", shared_data / MM, 3)):
        frames = BioImage(str(path)).get_image_dask_data("TCZYX")[:stop].compute(scheduler="synchronous")
        labels = write_ome_zarr(tmp_path / f"{name}_labels.ome.zarr", (frames > np.median(frames)).astype("uint16") * 7,
                                levels=1, chunk=(1, 1, 1, 32, 32))
        rows.append({"path": str(path), "labels": str(labels), "start": 0, "stop": stop})
    manifest = write_manifest(tmp_path / "m.csv", rows)
    options = dict(split=None, spatial_dims=3, num_timepoints=2, batch_size=4, dtype="float32",
                   grid={"roi_size": [1, 48, 48], "overlap": 0.25}, image_columns={"target": "labels"})
    loader = tp.build_loader(str(manifest), **options)
    # ND2: 5 frames -> windows at 0, 2, 3; 64 px -> tiles at 0, 16 (step 36 would pass the edge)
    # MM: 3 frames -> windows at 0, 1; 256 px -> tiles at 0, 36, ..., 180, 208 (7 per axis)
    assert len(loader.prepared.grid) == 3 * 2 * 2 + 2 * 7 * 7
    raw, target, coverage = stitch(loader, "raw"), stitch(loader, "target"), stitch(loader, "raw", ones=True)
    for n, row in enumerate(rows):
        frames = BioImage(row["path"]).get_image_dask_data("TCZYX")[:row["stop"]].compute(scheduler="synchronous")
        np.testing.assert_array_equal(raw[n], frames.astype(np.float32))
        np.testing.assert_array_equal(target[n], BioImage(row["labels"]).get_image_data("TCZYX").astype(np.float32))
        assert (coverage[n] == 1).all()  # every pixel of every frame read


def movie_manifest(folder: Path, shapes: list[tuple[int, ...]]) -> Path:
    rows = []
    for n, shape in enumerate(shapes):
        path = write_ome_zarr(folder / f"m{n}.ome.zarr", noise_movie(shape, n), levels=1, chunk=(1, 1, 1, 16, 16))
        rows.append({"path": str(path)})
    return write_manifest(folder / "m.csv", rows)


@pytest.fixture(scope="module")
def small_grid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return movie_manifest(tmp_path_factory.mktemp("grid"), [(4, 1, 1, 40, 40), (3, 1, 1, 24, 32)])


GRID = dict(split=None, spatial_dims=2, grid={"roi_size": [16, 16], "overlap": 0.5}, batch_size=3)


def test_the_grid_resumes_exactly_with_thread_and_process_workers(small_grid: Path) -> None:
    for method, midpoints in (("thread", [2, 7]), ("process", [4])):
        run_state_round_trip(lambda: tp.build_loader(str(small_grid), num_workers=2, worker_method=method, **GRID),
                             midpoints=midpoints, epochs=1)


def test_two_ranks_cover_the_grid_and_stitch_to_the_movies(small_grid: Path) -> None:
    whole = tp.build_loader(str(small_grid), **GRID)
    count = whole.prepared.num_samples
    seen: list[int] = []
    stitcher = GridStitcher.for_loader(whole)
    rows: dict[int, np.ndarray] = {}
    for rank in (0, 1):
        for batch in collect(tp.build_loader(str(small_grid), rank=rank, world_size=2, **GRID)):
            seen += batch["sample_index"].tolist()
            rows.update(stitcher.add(batch, batch["raw"]))
    assert sorted(set(seen)) == list(range(count)) and len(seen) == count + count % 2  # padding wraps once
    for n, row in enumerate(whole.prepared.manifest.rows):
        expected = BioImage(row.path).get_image_data("TCZYX")[:, :, 0].astype(np.float32)
        np.testing.assert_array_equal(rows[n], expected)


def test_samples_follow_the_fixed_order_whatever_the_seed_and_epoch(small_grid: Path) -> None:
    first = collect(tp.build_loader(str(small_grid), seed=1, **GRID))
    other = collect(tp.build_loader(str(small_grid), seed=9, initial_epoch=3, **GRID))
    for a, b in zip(first, other):
        assert a["crop_start"].tolist() == b["crop_start"].tolist() and a["T"].tolist() == b["T"].tolist()
    assert [s for b in first for s in b["sample_index"].tolist()] == list(range(sum(len(b["row"]) for b in first)))


def test_a_persisted_metadata_cache_plans_the_grid_without_opening_files(small_grid: Path, tmp_path: Path) -> None:
    cache = tmp_path / "meta.json"
    tp.build_loader(str(small_grid), metadata_cache=str(cache), **GRID).close()
    again = tp.build_loader(str(small_grid), metadata_cache=str(cache), **GRID)
    assert again.prepared.readers.opens == 0 and again.prepared.num_samples > 0


def test_grid_conflicts_and_short_rows_are_refused_by_name(tmp_path: Path) -> None:
    manifest = movie_manifest(tmp_path, [(4, 1, 1, 16, 16), (1, 1, 1, 16, 16)])
    with pytest.raises(tp.ConfigError, match="leave samples_per_epoch out"):
        tp.build_loader(str(manifest), samples_per_epoch=4, **GRID)
    with pytest.raises(tp.ConfigError, match="replaces crop"):
        tp.build_loader(str(manifest), crop={"roi_size": [8, 8]}, **GRID)
    with pytest.raises(tp.SampleError, match=r"m.csv row 2 .*holds 1 frames but the grid's windows take num_timepoints=2"):
        tp.build_loader(str(manifest), num_timepoints=2, **GRID)


def test_the_map_style_dataset_serves_the_same_grid(small_grid: Path) -> None:
    options = {key: value for key, value in GRID.items() if key != "batch_size"}
    with tp.TimelapseDataset(str(small_grid), **options) as dataset:
        batches = collect(tp.build_loader(str(small_grid), **GRID))
        assert len(dataset) == sum(len(b["row"]) for b in batches)
        for i in (0, 5, len(dataset) - 1):
            batch, k = batches[i // 3], i % 3
            sample = dataset[i]
            assert sample["crop_start"] == batch["crop_start"][k].tolist() and sample["T"] == batch["T"][k].tolist()
            np.testing.assert_array_equal(sample["raw"], batch["raw"][k].numpy())


@pytest.mark.parametrize("layout", ["stack", "separate"])
def test_frame_windows_stitch_back_in_both_layouts(small_grid: Path, layout: str) -> None:
    loader = tp.build_loader(str(small_grid), num_timepoints=2, timepoint_layout=layout, **GRID)
    rows = stitch(loader, "raw")
    for n, row in enumerate(loader.prepared.manifest.rows):
        np.testing.assert_array_equal(rows[n], BioImage(row.path).get_image_data("TCZYX")[:, :, 0].astype(np.float32))
