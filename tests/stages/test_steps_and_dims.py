"""A user's first hour: cyto-dl's ``step`` column, and ``spatial_dims=3`` on 2-D timelapses (Z=1)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from monai.transforms import SpatialCropd

import timelapse_pipes as tp
from tests.helpers import bioio_reference
from timelapse_pipes.cli.inspect import inspect_manifest
from timelapse_pipes.sampling.timepoints import choose_timepoints
from timelapse_pipes.testing import collect

ND2 = "nd2/example-timelapse.nd2"      # T53 C1 Z1 64x64 uint16
OME = "ome-tiff/181003_multi_pos_time_course_1_MMStack.ome.tif"  # T10 C1 Z1 256x256, 2 scenes


# step: every step-th frame of start..stop

@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**16), index=st.integers(0, 10**6), start=st.integers(0, 50),
       length=st.integers(1, 80), step=st.integers(1, 9), count=st.integers(1, 6),
       mode=st.sampled_from(["random", "sequential", "uniform"]), jitter=st.booleans())
def test_a_step_draws_on_the_grid_exactly_as_step_one_draws_on_positions(seed, index, start, length, step,
                                                                        count, mode, jitter):
    stop = start + length
    frames = len(range(start, stop, step))
    if mode != "random" and frames < count:
        phrase = "" if step == 1 else f" at step {step}"
        with pytest.raises(tp.SampleError, match=rf"\[{start}, {stop}\){phrase} holds {frames} frames"):
            choose_timepoints(seed, 0, index, start, stop, count, mode, jitter, step=step)
        return
    picked = choose_timepoints(seed, 0, index, start, stop, count, mode, jitter, step=step)
    positions = choose_timepoints(seed, 0, index, 0, frames, count, mode, jitter)
    assert picked == tuple(start + p * step for p in positions)
    assert all(t in range(start, stop, step) for t in picked)


def test_step_one_is_the_plain_frame_range():
    assert choose_timepoints(0, 0, 0, 10, 20, 4, "uniform", jitter=False) == (10, 12, 15, 17)
    assert choose_timepoints(0, 0, 0, 10, 20, 4, "uniform", jitter=False, step=1) == (10, 12, 15, 17)
    assert choose_timepoints(0, 0, 0, 10, 20, 3, "uniform", jitter=False, step=3) == (10, 13, 16)


@pytest.mark.parametrize("start,stop,step", [(3, 40, 4), (0, 53, 7), (10, 11, 3), (5, None, 6)])
def test_step_column_gives_exactly_the_frames_bioio_returns(start, stop, step, shared_data, csv_writer):
    path = str(shared_data / ND2)
    manifest = csv_writer([{"path": path, "split": "train", "start": start,
                            "stop": "" if stop is None else stop, "step": step}])
    expected_frames = list(range(53)[start:stop:step])
    loader = tp.build_loader(str(manifest), spatial_dims=2, num_timepoints=len(expected_frames),
                             timepoint_sampling="sequential", dtype="uint16", samples_per_epoch=3)
    reference = bioio_reference(path, expected_frames, None)[:, :, 0]
    for batch in collect(loader):
        assert batch["T"][0].tolist() == expected_frames
        np.testing.assert_array_equal(batch["raw"][0].numpy().reshape(reference.shape), reference)


def test_every_mode_stays_on_the_step_grid(shared_data):
    rows = {"dict_meta": {"path": [str(shared_data / ND2)], "start": [2], "stop": [50], "every": [5]}}
    grid = set(range(2, 50, 5))
    for mode in ("random", "sequential", "uniform"):
        loader = tp.build_loader(rows, split=None, spatial_dims=2, num_timepoints=3, timepoint_sampling=mode,
                                 time_step_column="every", samples_per_epoch=12, batch_size=4)
        seen = {t for batch in collect(loader) for t in batch["T"].flatten().tolist()}
        assert seen <= grid and len(seen) > 3, (mode, seen)


def test_step_with_inclusive_stop_matches_cyto_dl(shared_data):
    rows = {"dict_meta": {"path": [str(shared_data / ND2)], "start": [0], "stop": [12], "step": [4]}}
    batch = next(iter(tp.build_loader(rows, split=None, spatial_dims=2, num_timepoints=4,
                                      timepoint_sampling="sequential", stop_inclusive=True)))
    assert batch["T"][0].tolist() == [0, 4, 8, 12]


def test_a_step_too_coarse_for_the_frames_names_the_row(shared_data, csv_writer):
    manifest = csv_writer([{"path": str(shared_data / ND2), "split": "train", "start": 0, "stop": 10, "step": 4}])
    with pytest.raises(tp.SampleError, match=r"row 1 .*the range \[0, 10\) at step 4 holds 3 frames but "
                                             r"num_timepoints=4"):
        next(iter(tp.build_loader(str(manifest), spatial_dims=2, num_timepoints=4,
                                  timepoint_sampling="uniform")))


def test_step_changes_the_manifest_fingerprint_only_when_set(shared_data):
    def fingerprint(**column):
        rows = {"dict_meta": {"path": [str(shared_data / ND2)], **{k: [v] for k, v in column.items()}}}
        return tp.build_loader(rows, split=None).state_dict()["config"]["manifest"]

    assert fingerprint() == fingerprint(step=1) != fingerprint(step=2)


# spatial_dims=3 on a 2-D timelapse: CZYX with Z=1, as bioio and cyto-dl return it

@pytest.mark.parametrize("name,scene", [(ND2, 0), (OME, "Image:1")])
def test_spatial_dims_3_on_a_2d_timelapse_gives_z_of_one(name, scene, shared_data):
    path = str(shared_data / name)
    rows = {"dict_meta": {"path": [path], "scene": [scene]}}
    loader = tp.build_loader(rows, split=None, spatial_dims=3, num_timepoints=2, samples_per_epoch=3,
                             batch_size=3, dtype="uint16")
    (batch,) = collect(loader)
    assert batch["raw"].shape[:4] == (3, 2, 1, 1)  # B, T, C, Z=1
    for k in range(3):
        expected = bioio_reference(path, batch["T"][k].tolist(), None, scene=scene)
        np.testing.assert_array_equal(batch["raw"][k].numpy(), expected)
    flat = tp.build_loader(rows, split=None, spatial_dims=2, num_timepoints=2, samples_per_epoch=3,
                           batch_size=3, dtype="uint16")
    assert batch["T"].tolist() == next(iter(flat))["T"].tolist()  # the same plan, one axis more


def test_a_crop_of_depth_one_on_a_2d_timelapse(shared_data):
    path = str(shared_data / ND2)
    loader = tp.build_loader({"dict_meta": {"path": [path]}}, split=None, spatial_dims=3,
                             crop={"roi_size": [1, 24, 16]}, samples_per_epoch=4, seed=9)
    for batch in collect(loader):
        start = batch["crop_start"][0].tolist()
        assert start[0] == 0 and batch["raw"].shape[-3:] == (1, 24, 16)
        frame = bioio_reference(path, batch["T"][0].tolist(), None)[0].astype(np.float32)
        cropped = SpatialCropd(keys="img", roi_start=start, roi_end=[s + r for s, r in zip(start, [1, 24, 16])])(
            {"img": frame})["img"]
        np.testing.assert_array_equal(batch["raw"][0].numpy(), np.asarray(cropped))


def test_inspect_accepts_2d_files_under_spatial_dims_3(shared_data, csv_writer):
    manifest = csv_writer([{"path": str(shared_data / ND2), "split": "train"},
                           {"path": str(shared_data / "nd2/example-zstack.nd2"), "split": "train"}])
    assert inspect_manifest(str(manifest), spatial_dims=3)["problems"] == []
    problems = inspect_manifest(str(manifest), spatial_dims=2)["problems"]
    assert [p["row"] for p in problems] == [2] and "spatial_dims=2 but the image has Z=11" in problems[0]["error"]
