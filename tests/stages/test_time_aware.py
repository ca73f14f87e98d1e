"""Time-aware sampling: frame offsets, gap pairs, physical frame times and row weights."""

from __future__ import annotations

import collections
import json
import math
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
from monai.transforms import Compose, RandFlipd, RandRotate90d

import timelapse_pipes as tp
from tests.helpers import bioio_reference
from timelapse_pipes.testing import collect, run_state_round_trip

ND2 = "nd2/example-timelapse.nd2"      # T53 C1 Z1 64x64, per-frame times
MM = "ome-tiff/181003_multi_pos_time_course_1_MMStack.ome.tif"  # 2 positions x T10, OME Plane DeltaT
PLAIN = "ome-tiff/time-series.ome.tif"  # no timing at all


def _rows(shared_data, name=ND2, **columns):
    return {"dict_meta": {"path": [str(shared_data / name)], **{k: [v] for k, v in columns.items()}}}


# frame offsets

@pytest.mark.parametrize("offsets,start,stop,step", [([0, 1, 4], 0, None, 1), ([-2, 0, 3], 5, 40, 1),
                                                      ([0, 1, 2], 3, 50, 4)])
def test_offsets_give_bioio_frames_in_offset_order(offsets, start, stop, step, shared_data):
    path = str(shared_data / ND2)
    rows = _rows(shared_data, start=start, stop=-1 if stop is None else stop, step=step)
    loader = tp.build_loader(rows, split=None, spatial_dims=2, frame_offsets=offsets, samples_per_epoch=8,
                             batch_size=4, dtype="uint16")
    grid = range(53)[start:stop:step]
    for batch in collect(loader):
        for k, frames in enumerate(batch["T"].tolist()):
            anchor = frames[offsets.index(0)]
            assert frames == [anchor + o * step for o in offsets] and all(t in grid for t in frames)
            expected = bioio_reference(path, frames, None)[:, :, 0]
            np.testing.assert_array_equal(batch["raw"][k].numpy(), expected)


def test_every_valid_anchor_is_drawn_and_no_other(shared_data):
    rows = _rows(shared_data, start=10, stop=20)  # 10 frames; offsets reach 4 ahead: anchors 10..15
    loader = tp.build_loader(rows, split=None, spatial_dims=2, frame_offsets=[0, 1, 4], samples_per_epoch=120,
                             batch_size=40, crop={"roi_size": [4, 4]})
    anchors = {frames[0] for batch in collect(loader) for frames in batch["T"].tolist()}
    assert anchors == set(range(10, 16))


def test_a_row_too_short_for_the_offsets_names_the_row(shared_data, csv_writer):
    manifest = csv_writer([{"path": str(shared_data / ND2), "split": "train", "start": 0, "stop": 4}])
    with pytest.raises(tp.SampleError, match=r"row 1 .*the range \[0, 4\) holds 4 frames but "
                                             r"frame_offsets=\[-1, 0, 3\] needs 5"):
        next(iter(tp.build_loader(str(manifest), spatial_dims=2, frame_offsets=[-1, 0, 3])))


@pytest.mark.parametrize("options,message", [
    ({"frame_offsets": [0, 0]}, r"must list distinct frame offsets"),
    ({"frame_offsets": [0, 1], "frame_gap": [1, 2]}, r"alternatives; give one of them"),
    ({"frame_gap": [0, 3]}, r"1 <= min <= max"),
    ({"frame_gap": [3]}, r"must be two numbers"),
    ({"frame_offsets": [0, 1], "num_timepoints": 3}, r"num_timepoints=3 disagrees with frame_offsets"),
    ({"frame_offsets": "0,1"}, r"must be a list of integers"),
])
def test_bad_time_aware_options_fail_at_build(options, message, shared_data):
    with pytest.raises(tp.ConfigError, match=message):
        tp.build_loader(_rows(shared_data), split=None, **options)


# gap pairs

def test_gap_pairs_are_bioio_frames_at_a_gap_in_range(shared_data):
    path = str(shared_data / ND2)
    loader = tp.build_loader(_rows(shared_data), split=None, spatial_dims=2, frame_gap=(2, 5), samples_per_epoch=60,
                             batch_size=20, dtype="uint16")
    gaps = collections.Counter()
    for batch in collect(loader):
        for k, (first, second) in enumerate(batch["T"].tolist()):
            gaps[second - first] += 1
            assert 0 <= first < second < 53
            np.testing.assert_array_equal(batch["raw"][k].numpy(), bioio_reference(path, [first, second], None)[:, :, 0])
    assert set(gaps) == {2, 3, 4, 5}


def test_gaps_are_capped_by_a_short_row_and_refused_below_the_minimum(shared_data):
    loader = tp.build_loader(_rows(shared_data, start=0, stop=4), split=None, spatial_dims=2, frame_gap=(2, 9),
                             samples_per_epoch=40, batch_size=40, crop={"roi_size": [4, 4]})
    gaps = {b - a for a, b in next(iter(loader))["T"].tolist()}
    assert gaps == {2, 3}
    with pytest.raises(tp.SampleError, match=r"holds 4 frames but frame_gap=\[4, 9\] needs 5"):
        next(iter(tp.build_loader(_rows(shared_data, start=0, stop=4), split=None, spatial_dims=2,
                                  frame_gap=(4, 9))))


# crops and transforms: one crop and one random draw for every frame of a sample

def _dihedral(plane: np.ndarray) -> list[np.ndarray]:
    rotations = [np.rot90(plane, k) for k in range(4)]
    return rotations + [np.flip(r, axis=0) for r in rotations] + [np.flip(r, axis=1) for r in rotations]


@pytest.mark.parametrize("layout", ["stack", "separate"])
def test_every_frame_of_a_sample_gets_the_same_crop_and_random_transform(layout, shared_data):
    options = dict(split=None, spatial_dims=2, frame_offsets=[0, 2], crop={"roi_size": [24, 24]},
                   samples_per_epoch=12, batch_size=4, timepoint_layout=layout, seed=3)
    augment = Compose([RandRotate90d(keys="raw", prob=1.0, max_k=3), RandFlipd(keys="raw", prob=0.5, spatial_axis=0)])
    plain = collect(tp.build_loader(_rows(shared_data), **options))
    augmented = collect(tp.build_loader(_rows(shared_data), transforms=augment, **options))
    maps_used = set()
    for before, after in zip(plain, augmented):
        assert before["T"].tolist() == after["T"].tolist() and before["crop_start"].tolist() == after["crop_start"].tolist()
        raw_before = before["raw"].numpy().reshape(-1, 2, 24, 24)  # sample, frame (Y, X) with C=1
        raw_after = np.asarray(after["raw"]).reshape(-1, 2, 24, 24)
        for frames_before, frames_after in zip(raw_before, raw_after):
            candidates = [i for i, image in enumerate(_dihedral(frames_before[0])) if np.array_equal(image, frames_after[0])]
            assert candidates, "the transform was not a rotation/flip of the frame"
            assert any(np.array_equal(_dihedral(frames_before[1])[i], frames_after[1]) for i in candidates)
            maps_used.add(candidates[0])
    assert len(maps_used) > 1  # the draws differ between samples, not between frames


# physical time

def test_nd2_frame_times_equal_what_nd2_says(shared_data):
    import nd2

    with nd2.ND2File(str(shared_data / ND2)) as handle:
        stamps = [handle.frame_metadata(i).channels[0].time.relativeTimeMs / 1000 for i in range(53)]
    loader = tp.build_loader(_rows(shared_data), split=None, spatial_dims=2, frame_offsets=[0, 1, 4],
                             samples_per_epoch=6, batch_size=6)
    batch = next(iter(loader))
    for frames, meta in zip(batch["T"].tolist(), batch["meta"]):
        assert meta["time_s"] == pytest.approx([stamps[t] - stamps[0] for t in frames], abs=1e-9)
        assert meta["time_interval_s"] == pytest.approx((stamps[-1] - stamps[0]) / 52, abs=1e-9)
        assert meta["time_s"][1] - meta["time_s"][0] == pytest.approx(0.5, abs=0.01)  # a 500 ms loop


def _ome_plane_times(path) -> tuple[dict[int, dict[int, float]], float]:
    import tifffile

    with tifffile.TiffFile(str(path)) as tiff:
        root = ElementTree.fromstring(tiff.ome_metadata)
    namespace = {"ome": root.tag.split("}")[0].strip("{")}
    times: dict[int, dict[int, float]] = {}
    increment = 0.0
    for scene, image in enumerate(root.findall("ome:Image", namespace)):
        pixels = image.find("ome:Pixels", namespace)
        assert pixels.get("TimeIncrementUnit", "s") == "ms"
        increment = float(pixels.get("TimeIncrement")) / 1000
        for plane in pixels.findall("ome:Plane", namespace):
            if plane.get("TheZ") == "0" and plane.get("TheC") == "0":
                assert plane.get("DeltaTUnit", "s") == "ms"
                times.setdefault(scene, {})[int(plane.get("TheT"))] = float(plane.get("DeltaT")) / 1000
    return times, increment


@pytest.mark.parametrize("scene", [0, 1])
def test_ome_tiff_frame_times_equal_the_ome_xml(scene, shared_data):
    times, increment = _ome_plane_times(shared_data / MM)
    rows = _rows(shared_data, MM, scene=scene)
    batch = next(iter(tp.build_loader(rows, split=None, spatial_dims=2, num_timepoints=4,
                                      timepoint_sampling="uniform", uniform_jitter=False)))
    frames = batch["T"][0].tolist()
    first = times[scene][0]
    assert batch["meta"][0]["time_s"] == pytest.approx([times[scene][t] - first for t in frames], abs=1e-9)
    assert batch["meta"][0]["time_interval_s"] == increment == 5.0


def test_files_without_timing_say_none_and_swapped_axes_have_no_times(shared_data):
    batch = next(iter(tp.build_loader(_rows(shared_data, PLAIN), split=None, spatial_dims=2, num_timepoints=2)))
    assert batch["meta"][0]["time_s"] is None and batch["meta"][0]["time_interval_s"] is None
    swapped = next(iter(tp.build_loader(_rows(shared_data, "nd2/example-zstack.nd2"), split=None, spatial_dims=2,
                                        time_axis="Z", num_timepoints=2)))
    assert swapped["meta"][0]["time_s"] is None


def test_separate_layout_gives_each_frame_its_time(shared_data):
    batch = next(iter(tp.build_loader(_rows(shared_data), split=None, spatial_dims=2, frame_gap=(3, 3),
                                      timepoint_layout="separate")))
    (first,), (second,) = batch["T"].tolist()
    gap = batch["meta"][1]["time_s"][0] - batch["meta"][0]["time_s"][0]
    assert second - first == 3 and gap == pytest.approx(1.5, abs=0.01)


def test_frame_times_come_from_the_metadata_cache_without_opening_the_file(shared_data, tmp_path):
    cache = tmp_path / "metadata.json"
    options = dict(split=None, spatial_dims=2, frame_offsets=[0, 2], samples_per_epoch=3, batch_size=3,
                   metadata_cache=str(cache))
    first = next(iter(tp.build_loader(_rows(shared_data), **options)))
    loader = tp.build_loader(_rows(shared_data), **options)
    loader.prepared.pipeline.stages[1].metadata.flush()
    stored = json.loads(cache.read_text())["entries"]
    assert [len(entry["frame_times_s"]) for entry in stored.values()] == [53]
    again = next(iter(tp.build_loader(_rows(shared_data), **options)))
    assert [m["time_s"] for m in again["meta"]] == [m["time_s"] for m in first["meta"]]


# row weights

def test_weighted_rows_hold_within_one_of_their_share_in_every_pass(shared_data):
    weights = [1.0, 0.0, 2.0, 0.5, 3.0, 1.5]
    rows = {"dict_meta": {"path": [str(shared_data / ND2)] * len(weights), "weight": weights}}
    passes = 7
    loader = tp.build_loader(rows, split=None, spatial_dims=2, samples_per_epoch=len(weights) * passes,
                             batch_size=len(weights), crop={"roi_size": [4, 4]})
    total = sum(weights)
    seen = collections.Counter()
    for batch in collect(loader):  # one batch is one pass of R = 6 samples
        counts = collections.Counter(batch["row"].tolist())
        seen.update(counts)
        for row, weight in enumerate(weights):
            expected = len(weights) * weight / total
            assert math.floor(expected) <= counts[row] <= math.ceil(expected), (row, counts)
    assert seen[1] == 0
    assert abs(seen[4] / (len(weights) * passes) - 3 / total) < 1 / passes


@pytest.mark.parametrize("value,message", [("-1", r"column 'weight' value '-1' is not a non-negative number"),
                                           ("heavy", r"column 'weight' value 'heavy'"),
                                           ("inf", r"column 'weight' value 'inf'")])
def test_bad_weights_name_the_row_and_column(value, message, csv_writer):
    manifest = csv_writer([{"path": "a.tif", "split": "train", "weight": "1"},
                           {"path": "b.tif", "split": "train", "weight": value}])
    with pytest.raises(tp.ManifestError, match=rf"row 2: {message}"):
        tp.build_loader(str(manifest))


def test_all_zero_weights_are_refused(csv_writer):
    manifest = csv_writer([{"path": "a.tif", "split": "train", "w": "0"}, {"path": "b.tif", "split": "train", "w": "0"}])
    with pytest.raises(tp.ManifestError, match=r"every row of split 'train' has w=0"):
        tp.build_loader(str(manifest), weight_column="w")


def test_weights_change_the_fingerprint(shared_data):
    def fingerprint(weights):
        rows = {"dict_meta": {"path": [str(shared_data / ND2)] * 2, "weight": weights}}
        return tp.build_loader(rows, split=None).state_dict()["config"]["manifest"]

    assert fingerprint([1, 1]) == fingerprint(["", ""]) != fingerprint([1, 2])


# resume, for every new mode, with threads and processes

MODES = {
    "offsets": dict(frame_offsets=[-1, 0, 2]),
    "gap": dict(frame_gap=(1, 4), transforms=Compose([RandFlipd(keys="raw", prob=0.5, spatial_axis=1)])),
    "weights": dict(num_timepoints=2),
}


@pytest.mark.timeout(300)
@pytest.mark.parametrize("workers,method", [(2, "thread"), (2, "process")])
@pytest.mark.parametrize("mode", sorted(MODES))
def test_resume_round_trip_for_each_time_aware_mode(mode, workers, method, shared_data):
    paths = [str(shared_data / ND2), str(shared_data / MM)]
    rows = {"dict_meta": {"path": paths, "weight": [1, 3] if mode == "weights" else [1, 1]}}
    options = dict(split=None, spatial_dims=2, samples_per_epoch=8, batch_size=2, seed=11,
                   crop={"roi_size": [32, 32]}, **MODES[mode])
    midpoints = [0, 2, 5] if method == "thread" else [3]
    run_state_round_trip(lambda: tp.build_loader(rows, num_workers=workers, worker_method=method, **options),
                         midpoints=midpoints, epochs=2)


def test_offsets_with_on_error_skip_replace_rows_too_short(shared_data):
    rows = {"dict_meta": {"path": [str(shared_data / ND2)] * 2, "start": [0, 0], "stop": [53, 3]}}
    options = dict(split=None, spatial_dims=2, frame_offsets=[0, 4], samples_per_epoch=8, batch_size=8,
                   on_error="skip", seed=4)
    loader = tp.build_loader(rows, **options)
    (batch,) = collect(loader)
    assert batch["row"].tolist() == [0] * 8  # every sample of the short row was substituted from row 0
    assert sum(batch["replaced"]) == 4 and loader.stats()["skips"] == 4
    assert all(b - a == 4 for a, b in batch["T"].tolist())
    again = tp.build_loader(rows, **options)
    assert collect(again)[0]["T"].tolist() == batch["T"].tolist()  # the substitutes are deterministic
