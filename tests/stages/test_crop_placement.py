"""Foreground-aware crops: placed among the windows where a mask is, without rejection, and resumable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import timelapse_pipes as tp
from timelapse_pipes.sampling.crops import is_positive, window_fractions
from timelapse_pipes.testing import collect, noise_movie, run_state_round_trip, write_manifest, write_ome_zarr


def sparse_labels(shape: tuple[int, ...], blobs: int, seed: int) -> np.ndarray:
    """(T, 1, Z, Y, X) uint8 labels with a few 6-pixel cubes per frame (about 1-2 % foreground)."""
    rng = np.random.default_rng(seed)
    labels = np.zeros(shape, "uint8")
    t_count, _, z_size, y_size, x_size = shape
    for t in range(t_count):
        for label in range(1, blobs + 1):
            z = rng.integers(0, max(1, z_size - 3))
            y, x = rng.integers(0, y_size - 6), rng.integers(0, x_size - 6)
            labels[t, 0, z:z + 3, y:y + 6, x:x + 6] = label
    return labels


@pytest.fixture(scope="module")
def movies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("placement")
    out = {}
    for name, shape in (("flat", (6, 1, 1, 96, 96)), ("volume", (4, 1, 6, 64, 64))):
        labels = sparse_labels(shape, 3, seed=len(name))
        write_ome_zarr(folder / f"{name}_raw.ome.zarr", noise_movie(shape, 1), levels=1)
        write_ome_zarr(folder / f"{name}_labels.ome.zarr", labels, levels=1)
        np.save(folder / f"{name}_labels.npy", labels)
        out[name] = write_manifest(folder / f"{name}.csv", [{"path": str(folder / f"{name}_raw.ome.zarr"),
                                                             "labels": str(folder / f"{name}_labels.ome.zarr")}])
        out[f"{name}_labels"] = folder / f"{name}_labels.npy"
    return out


def fractions_of(batch: dict, spatial_dims: int) -> list[float]:
    axes = tuple(range(1, batch["labels"].dim()))
    return [float(v) for v in (batch["labels"] > 0).float().mean(dim=axes)]


@pytest.mark.parametrize("name, spatial_dims, roi", [("flat", 2, [16, 16]), ("volume", 3, [2, 12, 12])])
def test_every_crop_meets_min_foreground(movies, name, spatial_dims, roi) -> None:
    loader = tp.build_loader(str(movies[name]), split=None, spatial_dims=spatial_dims, num_timepoints=2,
                             crop={"roi_size": roi, "where": "labels", "min_foreground": 0.1},
                             samples_per_epoch=40, batch_size=4, seed=1, image_columns={"labels": "labels"})
    labels = np.load(movies[f"{name}_labels"])
    offsets = set()
    for batch in collect(loader):
        for n, fraction in enumerate(fractions_of(batch, spatial_dims)):
            # placed by the first frame of the sample: that frame's window holds the foreground
            first = batch["labels"][n][0] > 0
            assert float(first.float().mean()) >= 0.1, fraction
            start = batch["crop_start"][n].tolist()
            t = int(batch["T"][n][0])
            z, y, x = ([0] + start) if spatial_dims == 2 else start
            dz, dy, dx = ([1] + roi) if spatial_dims == 2 else roi
            window = labels[t, 0, z:z + dz, y:y + dy, x:x + dx]
            assert (window > 0).mean() >= 0.1
            offsets.add(tuple(start))
    assert len(offsets) > 5  # drawn among many windows, not one


def test_pos_neg_ratio_holds_within_one_in_every_pass(movies) -> None:
    loader = tp.build_loader(str(movies["flat"]), split=None, spatial_dims=2,
                             crop={"roi_size": [16, 16], "where": "labels", "pos_neg": [1, 2]},
                             samples_per_epoch=30, batch_size=5, seed=2, image_columns={"labels": "labels"})
    fractions = [f for batch in collect(loader) for f in fractions_of(batch, 2)]
    positive = [f > 0 for f in fractions]
    assert sum(positive) == 10
    for start in range(0, len(positive)):
        for stop in range(start + 1, len(positive) + 1):
            assert abs(sum(positive[start:stop]) - (stop - start) / 3) <= 1


def test_window_fractions_equal_a_brute_force_count() -> None:
    rng = np.random.default_rng(5)
    for _ in range(20):
        foreground = rng.random((int(rng.integers(1, 4)), int(rng.integers(3, 9)), int(rng.integers(3, 9)))) < 0.3
        roi = [int(rng.integers(1, n + 1)) for n in foreground.shape]
        fractions = window_fractions(foreground, roi)
        for offset in np.ndindex(fractions.shape):
            window = foreground[tuple(slice(o, o + r) for o, r in zip(offset, roi))]
            assert fractions[offset] == pytest.approx(window.mean())


def test_is_positive_gives_exactly_pos_of_every_block() -> None:
    for pos, neg in ((1, 1), (1, 3), (2, 1), (3, 0), (0, 2)):
        flags = [is_positive(i, (pos, neg)) for i in range(10 * (pos + neg))]
        assert sum(flags) == 10 * pos
        for i in range(0, len(flags), pos + neg):
            assert sum(flags[i:i + pos + neg]) == pos


@pytest.mark.parametrize("method", ["thread", "process"])
def test_placed_crops_resume_exactly(movies, method) -> None:
    run_state_round_trip(lambda: tp.build_loader(
        str(movies["flat"]), split=None, spatial_dims=2, num_timepoints=2,
        crop={"roi_size": [16, 16], "where": "labels", "min_foreground": 0.05, "pos_neg": [2, 1]},
        samples_per_epoch=12, batch_size=3, seed=4, num_workers=2, worker_method=method,
        image_columns={"labels": "labels"}), midpoints=[1, 2])


def test_placement_errors_name_what_to_fix(movies, tmp_path) -> None:
    with pytest.raises(tp.ConfigError, match=r"crop 'where': 'mask' must name an image of image_columns"):
        tp.build_loader(str(movies["flat"]), split=None, spatial_dims=2,
                        crop={"roi_size": [8, 8], "where": "mask"}, image_columns={"labels": "labels"})
    with pytest.raises(tp.ConfigError, match=r"name that image with crop 'where'"):
        tp.build_loader(str(movies["flat"]), split=None, spatial_dims=2, crop={"roi_size": [8, 8], "min_foreground": 0.5})
    empty = np.zeros((2, 1, 1, 32, 32), "uint8")
    write_ome_zarr(tmp_path / "raw.ome.zarr", noise_movie(empty.shape, 1), levels=1)
    write_ome_zarr(tmp_path / "empty.ome.zarr", empty, levels=1)
    manifest = write_manifest(tmp_path / "m.csv", [{"path": str(tmp_path / "raw.ome.zarr"),
                                                   "labels": str(tmp_path / "empty.ome.zarr")}])
    loader = tp.build_loader(str(manifest), split=None, spatial_dims=2, image_columns={"labels": "labels"},
                             crop={"roi_size": [8, 8], "where": "labels", "min_foreground": 0.5})
    with pytest.raises(tp.SampleError, match=r"m.csv row 1 .*empty.ome.zarr.*no crop window of roi_size \[8, 8\] holds at least 0.5 foreground"):
        collect(loader)
