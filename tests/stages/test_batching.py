"""Batch-level assembly: the same samples whatever the batch size, and exactly the per-sample path."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import timelapse_pipes as tp
from timelapse_pipes.records import SampleKey
from timelapse_pipes.testing import assert_batches_equal, collect

ND2 = "nd2/example-timelapse.nd2"
MM = "ome-tiff/181003_multi_pos_time_course_1_MMStack.ome.tif"


def _per_sample(batches: list[dict]) -> list[dict]:
    """Split collated batches back into samples (tensors row by row, lists item by item)."""
    out = []
    for batch in batches:
        size = len(batch["sample_index"])
        for k in range(size):
            out.append({key: value[k] for key, value in batch.items()})
    return out


@pytest.mark.parametrize("options", [
    dict(spatial_dims=2, num_timepoints=3),
    dict(spatial_dims=3, frame_offsets=[0, 2], crop={"roi_size": [1, 16, 24]}),
    dict(spatial_dims=2, num_timepoints=2, timepoint_layout="separate", dtype="uint16"),
])
def test_a_sample_is_the_same_in_batches_of_1_3_and_8(options, shared_data):
    rows = {"dict_meta": {"path": [str(shared_data / ND2)] * 2, "scene": [0, 0], "start": [0, 10]}}
    streams = []
    for batch_size in (1, 3, 8):
        loader = tp.build_loader(rows, split=None, samples_per_epoch=24, batch_size=batch_size, seed=5, **options)
        streams.append(_per_sample(collect(loader)))
    for other in streams[1:]:
        assert len(other) == len(streams[0])
        for a, b in zip(streams[0], other):
            assert a.keys() == b.keys()
            for key in a:
                if isinstance(a[key], torch.Tensor):
                    assert a[key].dtype == b[key].dtype and torch.equal(a[key], b[key]), key
                else:
                    assert a[key] == b[key], key


@pytest.mark.parametrize("options", [
    dict(spatial_dims=2, num_timepoints=3),
    dict(spatial_dims=2, num_timepoints=1, dtype="uint16"),
    dict(spatial_dims=3, num_timepoints=2, crop={"roi_size": [1, 32, 32]}, dtype="float64"),
    dict(spatial_dims=2, num_timepoints=2, timepoint_layout="separate"),
    dict(spatial_dims=2, frame_gap=(1, 3), dtype="int32"),
    dict(spatial_dims=2, num_timepoints=2, extra_columns=["label", "row", "T"]),
    dict(spatial_dims=3, crop={"roi_size": [1, 8, 8], "mode": "center"}, extra_columns=["label"],
         timepoint_layout="separate", num_timepoints=2),
])
def test_the_batch_buffer_equals_the_per_sample_path(options, shared_data, synthetic):
    rows = {"dict_meta": {"path": [str(shared_data / ND2), str(shared_data / MM), str(synthetic["zarr_2d"])],
                          "channel": [0, 0, 1], "scene": [0, 1, 0], "label": ["a", "b", "c"],
                          "row": ["x", "y", "z"], "T": ["p", "q", "r"]}}
    if "crop" not in options:  # different frame sizes cannot share a batch without a crop
        rows["dict_meta"] = {k: v[:1] for k, v in rows["dict_meta"].items()}
    prepared = tp.graph.assembly.prepare(rows, split=None, samples_per_epoch=12, seed=2, **options)
    fast = prepared.assemble_batch
    assert not fast.per_sample
    for start in (0, 4, 8):
        keys = [SampleKey(1, i) for i in range(start, start + 4)]
        per_sample = tp.collate_samples([prepared.pipeline(key) for key in keys])
        batch = fast(keys)
        assert_batches_equal([batch], [per_sample])
        assert list(batch) == list(per_sample)  # the same keys in the same order
        assert batch["raw"].is_contiguous() and batch["raw"].dtype == getattr(torch, np.dtype(prepared.options.dtype).name)


@pytest.mark.parametrize("transform", [None, lambda sample: sample], ids=["batch buffer", "per sample"])
def test_different_shapes_in_one_batch_name_both_rows_and_the_fixes(shared_data, transform):
    rows = {"dict_meta": {"path": [str(shared_data / ND2), str(shared_data / MM)]}}
    loader = tp.build_loader(rows, split=None, spatial_dims=3, batch_size=2, samples_per_epoch=2, transforms=transform)
    with pytest.raises(tp.BatchShapeError) as caught:
        collect(loader)
    message = str(caught.value)
    assert isinstance(caught.value, ValueError)  # code written against builtins keeps working
    for name, shape in ((ND2, "[1, 1, 64, 64]"), (MM, "[1, 1, 256, 256]")):
        assert f"{shared_data / name}" in message and shape in message, message
    assert "row" in message and "batch_size=1" in message and "crop" in message and "resize" in message


def test_transforms_and_skips_take_the_per_sample_path(shared_data):
    rows = {"dict_meta": {"path": [str(shared_data / ND2)]}}
    with_transform = tp.graph.assembly.prepare(rows, split=None, transforms=lambda sample: sample)
    with_skips = tp.graph.assembly.prepare(rows, split=None, on_error="skip")
    plain = tp.graph.assembly.prepare(rows, split=None)
    assert with_transform.assemble_batch.per_sample and with_skips.assemble_batch.per_sample
    assert not plain.assemble_batch.per_sample


def test_the_frames_of_a_separate_sample_own_their_lists(shared_data):
    rows = {"dict_meta": {"path": [str(shared_data / ND2)]}}
    prepared = tp.graph.assembly.prepare(rows, split=None, spatial_dims=3, num_timepoints=2, timepoint_layout="separate",
                                   crop={"roi_size": [1, 8, 8]})
    first, second = prepared.pipeline(SampleKey(0, 0))
    for key in ("C", "crop_start", "meta"):
        assert first[key] is not second[key], key  # changing one frame's fields never changes the other's
    assert first["C"] == second["C"] and first["crop_start"] == second["crop_start"]
