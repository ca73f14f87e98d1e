"""Crops planned from low-resolution foreground counts (crop "map_block"), kept in the metadata cache:
every crop still meets min_foreground, and a second run plans without reading a mask frame."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import timelapse_pipes as tp
from timelapse_pipes.sampling.block_maps import (
    TileWindows,
    block_counts,
    run_bounds,
    window_bounds,
)
from timelapse_pipes.sampling.crops import is_positive, window_fractions
from timelapse_pipes.testing import (
    assert_batches_equal,
    collect,
    noise_movie,
    write_manifest,
    write_ome_zarr,
)


def sparse(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """(T, 1, Z, Y, X) uint8 labels: a few 5-pixel squares per frame, at any offset."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, "uint8")
    for t in range(shape[0]):
        for _ in range(3):
            z, y, x = (int(rng.integers(0, n - 4)) if n > 4 else 0 for n in shape[2:])
            labels[t, 0, z:z + 2, y:y + 5, x:x + 5] = 1
    return labels


@pytest.fixture(scope="module")
def movies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("maps")
    out = {}
    for name, shape in (("flat", (4, 1, 1, 40, 40)), ("volume", (2, 1, 6, 30, 30))):
        labels = sparse(shape, len(name))
        write_ome_zarr(folder / f"{name}_raw.ome.zarr", noise_movie(shape, 1), levels=1)
        write_ome_zarr(folder / f"{name}_labels.ome.zarr", labels, levels=1)
        out[name] = write_manifest(folder / f"{name}.csv", [{"path": str(folder / f"{name}_raw.ome.zarr"),
                                                             "labels": str(folder / f"{name}_labels.ome.zarr")}])
    return out


def test_the_bounds_bracket_every_windows_fraction() -> None:
    rng = np.random.default_rng(3)
    for _ in range(60):
        shape = tuple(int(v) for v in rng.integers(1, 14, size=3))
        foreground = rng.random(shape) < 0.2
        roi = [int(rng.integers(1, n + 1)) for n in shape]
        block = [int(rng.integers(1, 5)) for _ in shape]
        lower, upper = window_bounds(block_counts(foreground, block), block, shape, roi)
        exact = window_fractions(foreground, roi)
        assert np.all(lower <= exact + 1e-12) and np.all(exact <= upper + 1e-12)
        runs, run_lower, _ = run_bounds(block_counts(foreground, block), block, shape, roi)
        listed = TileWindows(runs, run_lower >= 0.1)  # the allowed starts, run by run, in some order
        assert sorted(listed.at(n) for n in range(listed.count)) == [tuple(int(v) for v in at)
                                                                      for at in zip(*np.nonzero(lower >= 0.1))]
        one = window_bounds(block_counts(foreground, [1, 1, 1]), [1, 1, 1], shape, roi)
        np.testing.assert_allclose(one[0], exact)
        np.testing.assert_allclose(one[1], exact)


def placer_of(loader) -> object:
    return next(stage for stage in loader.prepared.pipeline.stages if type(stage).__name__ == "ForegroundCropPlacer")


@pytest.mark.parametrize("name, spatial_dims, roi", [("flat", 2, [12, 12]), ("volume", 3, [2, 10, 10])])
def test_a_second_run_plans_from_the_cache_file_and_every_crop_meets_min_foreground(movies, tmp_path, name,
                                                                                  spatial_dims, roi) -> None:
    cache = tmp_path / "metadata.json"

    def run() -> tuple[list[dict], int]:
        loader = tp.build_loader(str(movies[name]), split=None, spatial_dims=spatial_dims, batch_size=4,
                                 samples_per_epoch=24, seed=2, metadata_cache=str(cache), image_columns={"labels": "labels"},
                                 crop={"roi_size": roi, "where": "labels", "min_foreground": 0.1, "pos_neg": [2, 1],
                                       "map_block": 4})
        batches = collect(loader)
        read = placer_of(loader).maps.frames_read
        loader.close()
        return batches, read

    first, first_reads = run()
    second, second_reads = run()
    assert first_reads > 0 and second_reads == 0
    assert_batches_equal(first, second)
    fractions = [float(v) for batch in first for v in (batch["labels"] > 0).float().flatten(1).mean(dim=1)]
    positive = [is_positive(int(i), (2, 1)) for batch in first for i in batch["sample_index"]]
    assert sum(positive) == 16
    assert all(f >= 0.1 for f, p in zip(fractions, positive) if p)
    assert all(f == 0 for f, p in zip(fractions, positive) if not p)
    maps = json.loads(cache.read_text())["maps"]
    assert len(maps) == len({int(t) for batch in first for t in batch["T"].reshape(-1)})


def test_a_frame_whose_counts_guarantee_no_window_falls_back_to_the_exact_windows(tmp_path) -> None:
    labels = np.zeros((1, 1, 1, 32, 32), "uint8")
    labels[0, 0, 0, 6:10, 6:10] = 1  # 16 pixels split over four 8 x 8 tiles: no whole tile holds 10 % of a window
    lower, _ = window_bounds(block_counts(labels[0, 0] > 0, [1, 8, 8]), [1, 8, 8], (1, 32, 32), (1, 8, 8))
    assert lower.max() < 0.1 <= window_fractions(labels[0, 0] > 0, (1, 8, 8)).max()
    write_ome_zarr(tmp_path / "raw.ome.zarr", noise_movie(labels.shape, 1), levels=1)
    write_ome_zarr(tmp_path / "labels.ome.zarr", labels, levels=1)
    manifest = write_manifest(tmp_path / "m.csv", [{"path": str(tmp_path / "raw.ome.zarr"),
                                                   "labels": str(tmp_path / "labels.ome.zarr")}])
    loader = tp.build_loader(str(manifest), split=None, spatial_dims=2, batch_size=4, samples_per_epoch=8, seed=1,
                             image_columns={"labels": "labels"},
                             crop={"roi_size": [8, 8], "where": "labels", "min_foreground": 0.1, "map_block": 8})
    for batch in collect(loader):
        assert bool(((batch["labels"] > 0).float().mean(dim=(1, 2, 3)) >= 0.1).all())
