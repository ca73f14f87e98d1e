"""The inference grid (pure): tile starts, coverage, the global cell order, and its options."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from timelapse_pipes.errors import ConfigError, SampleError
from timelapse_pipes.sampling.grid import GridIndex, GridSpec, axis_starts
from timelapse_pipes.sampling.stitching import GridStitcher


@pytest.mark.parametrize("size,tile,step", [(10, 4, 4), (10, 4, 3), (64, 64, 64), (7, 1, 1), (100, 32, 24), (5, 5, 1)])
def test_tiles_cover_every_pixel_and_end_at_the_edge(size: int, tile: int, step: int) -> None:
    starts = axis_starts(size, tile, step)
    covered = np.zeros(size, dtype=int)
    for start in starts:
        covered[start:start + tile] += 1
    assert covered.min() >= 1 and starts[0] == 0 and starts[-1] == size - tile
    assert list(starts) == sorted(set(starts))
    assert all(b - a <= step for a, b in zip(starts, starts[1:]))  # never a gap wider than a step
    if step == tile and size % tile == 0:
        assert covered.max() == 1  # no overlap asked, none given


def test_monai_overlap_rule_and_whole_axes() -> None:
    spec = GridSpec.parse({"roi_size": [0, 32, 32], "overlap": 0.25}, spatial_dims=3)
    grid = spec.row_grid(frames=3, frame=(5, 100, 64), num_timepoints=1)
    assert grid.tile == (5, 32, 32)  # a size <= 0 takes the whole axis
    assert grid.tile_starts == ((0,), (0, 24, 48, 68), (0, 24, 32))  # step int(32 * 0.75) = 24, last at the edge
    flat = GridSpec.parse({"roi_size": [8, 16, 16]}, spatial_dims=3).row_grid(2, (1, 40, 40), 1)
    assert flat.tile == (1, 16, 16)  # a 2-D movie under spatial_dims=3 is Z=1: the tile is cut to it
    whole = GridSpec.parse(True, spatial_dims=2).row_grid(4, (30, 20), 2)
    assert whole.tile == (30, 20) and len(whole) == 2


def test_frame_windows_cover_every_frame() -> None:
    spec = GridSpec.parse({"roi_size": [8, 8]}, spatial_dims=2)
    assert spec.row_grid(7, (8, 8), 3).windows == (0, 3, 4)
    assert GridSpec.parse({"roi_size": [8, 8], "frame_stride": 1}, 2).row_grid(5, (8, 8), 2).windows == (0, 1, 2, 3)
    with pytest.raises(SampleError, match=r"m.csv row 2: the row's range holds 2 frames .* num_timepoints=3"):
        spec.row_grid(2, (8, 8), 3, where="m.csv row 2")


def test_locate_follows_rows_then_windows_then_raster_tiles() -> None:
    spec = GridSpec.parse({"roi_size": [2, 4, 4], "overlap": [0, 0.5, 0]}, spatial_dims=3)
    rows = [spec.row_grid(5, (3, 10, 8), 2, start=0, step=1), spec.row_grid(3, (2, 4, 4), 1, start=4, step=2)]
    index = GridIndex(rows)
    expected = []
    for n, grid in enumerate(rows):
        for window in grid.windows:
            for start in itertools.product(*grid.tile_starts):
                expected.append((n, tuple(range(window, window + grid.num_timepoints)), start))
    assert [tuple(index.locate(i)) for i in range(len(index))] == expected
    assert len(index) == len(expected) == 3 * 2 * 4 * 2 + 3
    assert rows[1].position(8) == 2
    with pytest.raises(IndexError):
        index.locate(len(index))


def test_stitching_tiles_back_rebuilds_each_row_and_counts_repeats_once() -> None:
    rng = np.random.default_rng(1)
    spec = GridSpec.parse({"roi_size": [6, 5], "overlap": 0.5}, spatial_dims=2)
    movies = [rng.random((4, 2, 13, 11)).astype(np.float32), rng.random((3, 2, 6, 9)).astype(np.float32)]
    index = GridIndex([spec.row_grid(len(m), m.shape[2:], 2) for m in movies])
    stitcher = GridStitcher(index, spatial_dims=2, stacked=True)
    done = {}
    order = list(range(len(index))) + [0, 5]  # two cells again, as a rank's padding would
    for i in order:
        row, positions, (y, x) = index.locate(i)
        tile = movies[row][list(positions), :, y:y + 6, x:x + 5][None]
        batch = {"sample_index": np.array([i]), "T": np.array([positions])}
        done.update(stitcher.add(batch, tile))
        if i == index.first_sample(1) - 1:
            assert list(done) == [0]  # row 0 handed back as soon as its last cell arrived
    assert sorted(done) == [0, 1] and stitcher.pending_rows == []
    for row, movie in enumerate(movies):
        np.testing.assert_allclose(done[row], movie, rtol=1e-6)
    with pytest.raises(ValueError, match=r"spatial shape \[6, 4\] for tiles of \[6, 5\]"):
        GridStitcher(index, spatial_dims=2, stacked=True).add(
            {"sample_index": np.array([0]), "T": np.array([[0, 1]])}, np.zeros((1, 2, 1, 6, 4)))


@pytest.mark.parametrize("value,message", [
    ({"roi_size": [8, 8]}, r"3 sizes for spatial_dims=3"),
    ({"roi_size": [1, 8, 8], "overlap": 1.0}, r"overlap=1.0 must be one fraction in \[0, 1\)"),
    ({"roi_size": [1, 8, 8], "frame_stride": 0}, r"frame_stride=0 must be a positive"),
    ({"roi_size": [1, 8, 8], "size": 3}, r"unknown keys \['size'\]"),
    ("64", r"must be a mapping"),
])
def test_bad_grid_options_are_refused_by_name(value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        GridSpec.parse(value, spatial_dims=3)  # type: ignore[arg-type]
