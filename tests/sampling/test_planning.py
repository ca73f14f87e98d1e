"""The pure planning core: rows, timepoints, crops and transform seeds as functions of (seed, epoch, i)."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from timelapse_pipes import ConfigError, CropSpec, SampleError
from timelapse_pipes.config.options import SampleOptions
from timelapse_pipes.sampling.crops import choose_crop_offset
from timelapse_pipes.sampling.draws import MAX_TRANSFORM_SEED, transform_seeds
from timelapse_pipes.sampling.rows import resolve_samples_per_epoch, row_for_sample
from timelapse_pipes.sampling.timepoints import choose_timepoints

PROPERTY_SETTINGS = settings(max_examples=100, deadline=None, database=None)

seeds = st.integers(0, 2**32 - 1)
epochs = st.integers(0, 1000)
indices = st.integers(0, 10**6)

# --------------------------------------------------------------------------------------------
# row_for_sample
# --------------------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(seed=seeds, epoch=epochs, num_rows=st.integers(1, 60), passes=st.integers(1, 3))
def test_every_row_once_per_full_pass(seed: int, epoch: int, num_rows: int, passes: int) -> None:
    for pass_index in range(passes):
        rows = [row_for_sample(seed, epoch, pass_index * num_rows + offset, num_rows)
                for offset in range(num_rows)]
        assert sorted(rows) == list(range(num_rows))


@PROPERTY_SETTINGS
@given(seed=seeds, epoch=epochs, num_rows=st.integers(1, 40), samples=st.integers(1, 200))
def test_row_counts_differ_by_at_most_one(seed: int, epoch: int, num_rows: int, samples: int) -> None:
    counts = Counter(row_for_sample(seed, epoch, i, num_rows) for i in range(samples))
    assert set(counts) <= set(range(num_rows))
    per_row = [counts.get(row, 0) for row in range(num_rows)]
    assert max(per_row) - min(per_row) <= 1
    assert sum(per_row) == samples
    assert min(per_row) == samples // num_rows


def test_row_counts_uneven_epoch_example() -> None:
    counts = Counter(row_for_sample(3, 1, i, 7) for i in range(23))  # 23 = 3 * 7 + 2
    assert sorted(counts.values()) == [3, 3, 3, 3, 3, 4, 4]


@PROPERTY_SETTINGS
@given(seed=seeds, epoch=st.integers(0, 100), num_rows=st.integers(5, 50))
def test_epochs_reorder_rows(seed: int, epoch: int, num_rows: int) -> None:
    orders = {tuple(row_for_sample(seed, e, i, num_rows) for i in range(num_rows))
              for e in range(epoch, epoch + 4)}
    assert len(orders) >= 2


def test_seeds_reorder_rows() -> None:
    orders = {tuple(row_for_sample(seed, 0, i, 20) for i in range(20)) for seed in range(4)}
    assert len(orders) >= 2


def test_passes_reorder_rows() -> None:
    # Within one epoch, the second pass is another permutation (with overwhelming probability).
    first = [row_for_sample(0, 0, i, 30) for i in range(30)]
    second = [row_for_sample(0, 0, 30 + i, 30) for i in range(30)]
    assert sorted(first) == sorted(second)
    assert first != second


@PROPERTY_SETTINGS
@given(seed=seeds, num_rows=st.integers(1, 30),
       calls=st.lists(st.tuples(st.integers(0, 20), st.integers(0, 200)), min_size=1, max_size=40))
def test_row_for_sample_is_pure_in_any_call_order(seed: int, num_rows: int,
                                                  calls: list[tuple[int, int]]) -> None:
    forward = [row_for_sample(seed, epoch, index, num_rows) for epoch, index in calls]
    # interleave unrelated calls (other epochs, other row counts) to churn any cache
    for epoch, index in calls:
        row_for_sample(seed + 1, epoch + 7, index, num_rows + 3)
    backward = [row_for_sample(seed, epoch, index, num_rows) for epoch, index in reversed(calls)]
    assert forward == backward[::-1]
    assert all(0 <= row < num_rows for row in forward)


def test_row_for_sample_returns_python_int() -> None:
    assert type(row_for_sample(0, 0, 5, 4)) is int


# --------------------------------------------------------------------------------------------
# choose_timepoints
# --------------------------------------------------------------------------------------------

plan_args = dict(seed=seeds, epoch=epochs, index=indices, start=st.integers(0, 500))


@PROPERTY_SETTINGS
@given(**plan_args, length=st.integers(1, 60), count=st.integers(1, 12),
       mode=st.sampled_from(["random", "sequential", "uniform"]), jitter=st.booleans())
def test_timepoints_within_range_and_count(seed: int, epoch: int, index: int, start: int, length: int,
                                           count: int, mode: str, jitter: bool) -> None:
    stop = start + length
    if mode != "random" and length < count:
        with pytest.raises(SampleError) as exc:
            choose_timepoints(seed, epoch, index, start, stop, count, mode, jitter, where="m.csv row 3")
        assert "m.csv row 3" in str(exc.value)
        assert mode in str(exc.value)
        return
    frames = choose_timepoints(seed, epoch, index, start, stop, count, mode, jitter)
    assert isinstance(frames, tuple)
    assert len(frames) == count
    assert all(type(f) is int for f in frames)
    assert all(start <= f < stop for f in frames)
    assert list(frames) == sorted(frames)
    # deterministic: the same arguments give the same frames
    assert choose_timepoints(seed, epoch, index, start, stop, count, mode, jitter) == frames


@PROPERTY_SETTINGS
@given(**plan_args, length=st.integers(1, 60), count=st.integers(1, 12))
def test_random_distinct_when_range_allows(seed: int, epoch: int, index: int, start: int, length: int,
                                           count: int) -> None:
    frames = choose_timepoints(seed, epoch, index, start, start + length, count, "random")
    assert len(frames) == count
    assert all(start <= f < start + length for f in frames)
    if length >= count:
        assert len(set(frames)) == count
        assert list(frames) == sorted(frames)
    else:  # fallback: draws with replacement, so some frame repeats
        assert len(set(frames)) <= length < count


def test_random_with_replacement_single_frame() -> None:
    assert choose_timepoints(1, 2, 3, 7, 8, 4, "random") == (7, 7, 7, 7)


def test_random_covers_the_range() -> None:
    seen = set()
    for index in range(200):
        seen.update(choose_timepoints(0, 0, index, 10, 20, 2, "random"))
    assert seen == set(range(10, 20))


@PROPERTY_SETTINGS
@given(**plan_args, length=st.integers(1, 60), count=st.integers(1, 12))
def test_sequential_is_consecutive(seed: int, epoch: int, index: int, start: int, length: int,
                                   count: int) -> None:
    if length < count:
        return
    frames = choose_timepoints(seed, epoch, index, start, start + length, count, "sequential")
    assert list(frames) == list(range(frames[0], frames[0] + count))
    assert start <= frames[0] and frames[-1] < start + length


def test_sequential_window_positions_vary_and_reach_both_ends() -> None:
    firsts = {choose_timepoints(5, 0, i, 0, 6, 4, "sequential")[0] for i in range(200)}
    assert firsts == {0, 1, 2}


@PROPERTY_SETTINGS
@given(start=st.integers(0, 500), length=st.integers(1, 400), count=st.integers(1, 40),
       seed=seeds, index=indices)
@example(start=0, length=122, count=14, seed=0, index=0)
@example(start=3, length=294, count=18, seed=0, index=0)
def test_uniform_without_jitter_is_the_fixed_grid(start: int, length: int, count: int, seed: int,
                                                  index: int) -> None:
    if length < count:
        return
    frames = choose_timepoints(seed, 0, index, start, start + length, count, "uniform", jitter=False)
    assert frames == tuple(start + (k * length) // count for k in range(count))


def test_uniform_without_jitter_small_example() -> None:
    assert choose_timepoints(0, 0, 0, 10, 20, 4, "uniform", jitter=False) == (10, 12, 15, 17)
    assert choose_timepoints(0, 0, 0, 0, 3, 3, "uniform", jitter=False) == (0, 1, 2)


@PROPERTY_SETTINGS
@given(**plan_args, length=st.integers(1, 400), count=st.integers(1, 40), jitter=st.booleans())
def test_uniform_strictly_increasing_and_evenly_spread(seed: int, epoch: int, index: int, start: int,
                                                       length: int, count: int, jitter: bool) -> None:
    if length < count:
        return
    frames = choose_timepoints(seed, epoch, index, start, start + length, count, "uniform", jitter)
    assert all(b > a for a, b in zip(frames, frames[1:]))
    assert all(start <= f < start + length for f in frames)
    step = length / count
    # consecutive gaps are floor or ceil of the step
    assert all(math.floor(step) <= b - a <= math.ceil(step) for a, b in zip(frames, frames[1:]))
    # the first frame lies within the first step
    assert frames[0] - start < math.ceil(step)


def test_uniform_jitter_moves_the_phase() -> None:
    phases = {choose_timepoints(0, 0, i, 0, 100, 4, "uniform", jitter=True)[0] for i in range(100)}
    assert len(phases) > 5
    assert phases <= set(range(25))


@pytest.mark.parametrize("mode", ["sequential", "uniform"])
def test_too_short_range_raises_for_distinct_modes(mode: str) -> None:
    with pytest.raises(SampleError) as exc:
        choose_timepoints(0, 0, 0, 4, 6, 3, mode, where="movies.csv row 9")
    message = str(exc.value)
    assert "movies.csv row 9" in message
    assert "[4, 6)" in message


def test_unknown_mode_is_config_error() -> None:
    with pytest.raises(ConfigError):
        choose_timepoints(0, 0, 0, 0, 10, 2, "every_other")


def test_timepoints_vary_with_seed_epoch_and_index() -> None:
    base = choose_timepoints(0, 0, 0, 0, 1000, 5, "random")
    assert any(choose_timepoints(s, 0, 0, 0, 1000, 5, "random") != base for s in range(1, 4))
    assert any(choose_timepoints(0, e, 0, 0, 1000, 5, "random") != base for e in range(1, 4))
    assert any(choose_timepoints(0, 0, i, 0, 1000, 5, "random") != base for i in range(1, 4))


# --------------------------------------------------------------------------------------------
# choose_crop_offset
# --------------------------------------------------------------------------------------------

shapes_and_rois = st.integers(2, 3).flatmap(
    lambda n: st.lists(st.tuples(st.integers(1, 300), st.integers(1, 300)), min_size=n, max_size=n)
).map(lambda pairs: (tuple(max(f, r) for f, r in pairs), tuple(min(f, r) for f, r in pairs)))


@PROPERTY_SETTINGS
@given(shape_roi=shapes_and_rois, seed=seeds, epoch=epochs, index=indices)
def test_random_crop_inside_frame(shape_roi, seed: int, epoch: int, index: int) -> None:
    frame, roi = shape_roi
    crop = CropSpec(roi_size=roi, mode="random")
    offsets = choose_crop_offset(seed, epoch, index, frame, crop)
    assert len(offsets) == len(frame)
    assert all(type(o) is int for o in offsets)
    assert all(0 <= o and o + r <= f for o, r, f in zip(offsets, roi, frame))
    assert choose_crop_offset(seed, epoch, index, frame, crop) == offsets


@PROPERTY_SETTINGS
@given(shape_roi=shapes_and_rois, seed=seeds, index=indices)
def test_center_crop_is_centered(shape_roi, seed: int, index: int) -> None:
    frame, roi = shape_roi
    offsets = choose_crop_offset(seed, 0, index, frame, CropSpec(roi_size=roi, mode="center"))
    for o, r, f in zip(offsets, roi, frame):
        before, after = o, f - (o + r)
        assert before >= 0 and after >= 0
        assert after - before in (0, 1)
    # independent of seed and index
    assert choose_crop_offset(seed + 1, 3, index + 1, frame, CropSpec(roi, "center")) == offsets


def test_center_crop_example() -> None:
    assert choose_crop_offset(0, 0, 0, (10, 64, 65), CropSpec((4, 32, 32), "center")) == (3, 16, 16)


def test_random_crop_offsets_vary() -> None:
    crop = CropSpec((8, 8), "random")
    offsets = {choose_crop_offset(0, 0, i, (64, 64), crop) for i in range(50)}
    assert len(offsets) > 10


def test_random_crop_full_frame_is_zero() -> None:
    assert choose_crop_offset(1, 2, 3, (5, 7), CropSpec((5, 7))) == (0, 0)


@pytest.mark.parametrize("mode", ["random", "center"])
def test_crop_larger_than_frame(mode: str) -> None:
    with pytest.raises(SampleError) as exc:
        choose_crop_offset(0, 0, 0, (3, 64, 64), CropSpec((4, 32, 32), mode), where="m.csv row 2")
    assert "m.csv row 2" in str(exc.value)


def test_crop_axis_count_mismatch_is_config_error() -> None:
    with pytest.raises(ConfigError):
        choose_crop_offset(0, 0, 0, (64, 64), CropSpec((4, 32, 32)))


@pytest.mark.parametrize("value", [{"roi_size": [0, 4]}, {"roi_size": [4], "mode": "edge"},
                                   {"size": [4]}, {"roi_size": [4], "extra": 1}, [4, 4], {"roi_size": []}])
def test_crop_spec_parse_rejects(value) -> None:
    with pytest.raises(ConfigError):
        CropSpec.parse(value)


def test_crop_spec_parse_accepts() -> None:
    assert CropSpec.parse({"roi_size": [2, 3]}) == CropSpec((2, 3), "random")
    assert CropSpec.parse({"roi_size": (1, 2, 3), "mode": "center"}) == CropSpec((1, 2, 3), "center")
    assert CropSpec.parse(None) is None


# --------------------------------------------------------------------------------------------
# transform_seed
# --------------------------------------------------------------------------------------------


@PROPERTY_SETTINGS
@given(seed=seeds, epoch=epochs, index=indices)
def test_transform_seed_range_and_determinism(seed: int, epoch: int, index: int) -> None:
    value = transform_seeds(seed, epoch, index, 1)[0]
    assert type(value) is int
    assert 0 <= value < 2**32 - 1
    assert value < MAX_TRANSFORM_SEED
    assert transform_seeds(seed, epoch, index, 1)[0] == value
    np.random.RandomState(value)  # accepted by numpy's legacy seeding


def test_transform_seed_differs_across_indices() -> None:
    values = [transform_seeds(0, 0, i, 1)[0] for i in range(1000)]
    assert len(set(values)) >= 995
    other_epoch = [transform_seeds(0, 1, i, 1)[0] for i in range(1000)]
    assert sum(a != b for a, b in zip(values, other_epoch)) >= 995


# --------------------------------------------------------------------------------------------
# resolve_samples_per_epoch
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, split, rows, expected",
    [
        (None, "train", 17, 17),
        (5, "train", 17, 5),
        (100, None, 3, 100),
        (np.int64(8), "train", 3, 8),
        ({"train": 40, "val": 7}, "train", 3, 40),
        ({"train": 40, "val": 7}, "val", 3, 7),
        ({"train": 40}, "val", 3, 3),
        ({"train": None}, "train", 9, 9),
    ],
)
def test_resolve_samples_per_epoch(value, split, rows, expected) -> None:
    result = resolve_samples_per_epoch(value, split, rows)
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize("value", [0, -3, True, False, 2.0, "10", {"train": 0}, {"train": -1},
                                   {"train": 1.5}, {"train": True}])
def test_resolve_samples_per_epoch_rejects(value) -> None:
    with pytest.raises(ConfigError) as exc:
        resolve_samples_per_epoch(value, "train", 10)
    assert "samples_per_epoch" in str(exc.value)


# --------------------------------------------------------------------------------------------
# SampleOptions
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"seed": -1}, "seed"),
        ({"seed": 1.5}, "seed"),
        ({"seed": True}, "seed"),
        ({"seed": "7"}, "seed"),
        ({"num_timepoints": 0}, "num_timepoints"),
        ({"num_timepoints": -2}, "num_timepoints"),
        ({"num_timepoints": 2.0}, "num_timepoints"),
        ({"timepoint_sampling": "stride"}, "timepoint_sampling"),
        ({"spatial_dims": 4}, "spatial_dims"),
        ({"spatial_dims": 1}, "spatial_dims"),
        ({"dtype": "float33"}, "dtype"),
        ({"dtype": "not a dtype"}, "dtype"),
        ({"timepoint_layout": "grid"}, "timepoint_layout"),
        ({"time_axis": "X"}, "time_axis"),
        ({"crop": {"roi_size": [32, 32]}}, "roi_size"),
        ({"crop": {"roi_size": [4, 32, 32]}, "spatial_dims": 2}, "roi_size"),
        ({"crop": {"roi_size": [4, 32, 32], "mode": "corner"}}, "mode"),
    ],
)
def test_sample_options_rejects(kwargs, needle: str) -> None:
    with pytest.raises(ConfigError) as exc:
        SampleOptions(**kwargs)
    assert needle in str(exc.value)


def test_sample_options_normalises() -> None:
    options = SampleOptions(seed=np.int64(4), num_timepoints=np.int32(3), dtype=np.uint16,
                            spatial_dims=2, crop={"roi_size": [16, 8], "mode": "center"},
                            extra_columns=["a", "b"])
    assert options.seed == 4 and type(options.seed) is int
    assert options.num_timepoints == 3 and type(options.num_timepoints) is int
    assert options.dtype == "uint16"
    assert options.crop == CropSpec((16, 8), "center")
    assert options.extra_columns == ("a", "b")
    assert SampleOptions(dtype="numpy.float32").dtype == "float32"


def test_sample_options_fingerprint_changes_with_sampling_options() -> None:
    base = SampleOptions().fingerprint_fields()
    assert SampleOptions(seed=1).fingerprint_fields() != base
    assert SampleOptions(num_timepoints=2).fingerprint_fields() != base
    assert SampleOptions(timepoint_sampling="uniform").fingerprint_fields() != base
    assert SampleOptions(crop={"roi_size": [1, 2, 3]}).fingerprint_fields() != base
    assert SampleOptions().fingerprint_fields() == base
