"""The streaming graph end to end: real readers on real and synthetic files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchdata.nodes import Batcher, Loader, Mapper, MultiNodeWeightedSampler

import timelapse_pipes as tp
from tests.helpers import OpenRecorder, bioio_reference
from timelapse_pipes.testing import collect

pytestmark = pytest.mark.timeout(300)


def _mixed_rows(shared_data, synthetic):
    mm = str(shared_data / "ome-tiff" / "181003_multi_pos_time_course_1_MMStack.ome.tif")
    return [
        {"path": str(shared_data / "nd2" / "example-timelapse.nd2"), "channel": "0", "scene": "0", "split": "train"},
        {"path": mm, "channel": "0", "scene": "0", "split": "train"},
        {"path": mm, "channel": "0", "scene": "Image:1", "split": "train"},
        {"path": str(synthetic["czi"]), "channel": "1", "scene": "0", "split": "train"},
        {"path": str(synthetic["tiff"]), "channel": "0", "scene": "0", "split": "train"},
        {"path": str(synthetic["zarr_2d"]), "channel": "1", "scene": "0", "split": "train"},
    ]


def test_mixed_formats_two_epochs_equal_bioio(shared_data, synthetic, csv_writer):
    manifest = csv_writer(_mixed_rows(shared_data, synthetic))
    loader = tp.build_loader(str(manifest), spatial_dims=2, num_timepoints=2, timepoint_sampling="random",
                             crop={"roi_size": [32, 32]}, batch_size=3, seed=11, num_workers=2)
    seen_rows = []
    for epoch in range(2):
        batches = collect(loader)
        assert sum(len(b["original_path"]) for b in batches) == 6
        for batch in batches:
            assert batch["raw"].dtype == torch.float32 and batch["raw"].shape[1:] == (2, 1, 32, 32)
            assert batch["epoch"].tolist() == [epoch] * len(batch["original_path"])
            for k, path in enumerate(batch["original_path"]):
                t = batch["T"][k].tolist()
                c = batch["C"][k].tolist()
                y0, x0 = batch["crop_start"][k].tolist()
                scene = batch["scene"][k]
                expected = bioio_reference(path, t, c, scene)[:, :, 0, y0:y0 + 32, x0:x0 + 32]
                np.testing.assert_array_equal(batch["raw"][k].numpy(), expected.astype(np.float32))
                seen_rows.append((epoch, path, scene))
    # each row exactly once per epoch (samples_per_epoch defaults to the row count)
    for epoch in range(2):
        assert len({(p, s) for e, p, s in seen_rows if e == epoch}) == 6


def test_sample_keys_and_3d_layouts(synthetic):
    meta = {"dict_meta": {"path": [str(synthetic["zarr_v3"])], "channel": ["0,1"], "split": ["train"],
                          "cell": ["c7"]}}
    stack = next(iter(tp.build_loader(meta, num_timepoints=3, timepoint_sampling="sequential",
                                      extra_columns=["cell"], dtype="uint16")))
    assert stack["raw"].shape == (1, 3, 2, 3, 64, 64) and stack["raw"].dtype == torch.uint16
    t = stack["T"][0].tolist()
    assert t == list(range(t[0], t[0] + 3))
    assert stack["cell"] == ["c7"] and stack["resolution"].tolist() == [0]
    assert stack["meta"][0]["physical_pixel_sizes"] == [2.0, 0.5, 0.5]
    np.testing.assert_array_equal(stack["raw"][0].numpy(), bioio_reference(str(synthetic["zarr_v3"]), t, [0, 1]))
    separate = next(iter(tp.build_loader(meta, num_timepoints=3, timepoint_layout="separate", batch_size=2,
                                         samples_per_epoch=2)))
    assert separate["raw"].shape == (6, 2, 3, 64, 64)
    assert [len(x) for x in separate["T"].tolist()] == [1] * 6


def test_resolution_level_and_uniform_grid(synthetic):
    meta = {"dict_meta": {"path": [str(synthetic["zarr_v2"])], "channel": ["1"], "resolution": [1],
                          "split": ["train"]}}
    batch = next(iter(tp.build_loader(meta, num_timepoints=4, timepoint_sampling="uniform",
                                      uniform_jitter=False)))
    assert batch["T"][0].tolist() == [0, 3, 6, 9]
    assert batch["raw"].shape == (1, 4, 1, 3, 32, 32)
    np.testing.assert_array_equal(batch["raw"][0].numpy(),
                                  bioio_reference(str(synthetic["zarr_v2"]), [0, 3, 6, 9], [1], level=1))


def test_startup_opens_no_image_file(tmp_path, synthetic):
    """10,000 rows: build_loader reads the manifest and nothing else."""
    recorder = OpenRecorder("synthetic")
    rows = "\n".join(f"{synthetic['zarr_v3']},0,train,0,0,0,{(i % 9) + 2}" for i in range(10_000))
    manifest = tmp_path / "big.csv"
    manifest.write_text("path,channel,split,scene,resolution,start,stop\n" + rows + "\n")
    with recorder:
        loader = tp.build_loader(str(manifest), num_workers=2, samples_per_epoch=50)
        state = loader.state_dict()
    assert recorder.opened == []
    assert state["position"] == 0 and state["config"]["num_samples"] == 50
    first = next(iter(loader))
    assert first["raw"].shape == (1, 2 - 1, 3, 64, 64)


def test_custom_graph_by_hand(synthetic):
    """Users compose the public nodes themselves: mix two manifests, add their own Mapper."""
    def source(path, seed):
        prepared = tp.graph.assembly.prepare({"dict_meta": {"path": [str(path)], "split": ["train"]}},
                                       seed=seed, num_timepoints=1, samples_per_epoch=50)
        index = tp.SampleIndexSource(prepared.num_samples, config=prepared.config)
        return Mapper(index, prepared.pipeline)

    def graph():
        mixed = MultiNodeWeightedSampler(
            {"v3": source(synthetic["zarr_v3"], 1), "v2": source(synthetic["zarr_v2"], 2)},
            weights={"v3": 0.5, "v2": 0.5}, seed=5)
        tagged = Mapper(mixed, lambda s: {**s, "brightness": float(s["raw"].mean())})
        return Loader(Mapper(Batcher(tagged, batch_size=4), tp.collate_samples))

    loader = graph()
    stream = iter(loader)
    first = [next(stream) for _ in range(3)]
    assert first[0]["brightness"].shape == (4,)
    paths = {p for b in first for p in b["original_path"]}
    assert paths == {str(synthetic["zarr_v3"]), str(synthetic["zarr_v2"])}
    state = loader.state_dict()
    reference = [next(stream) for _ in range(2)]
    resumed = graph()
    resumed.load_state_dict(state)
    again = collect(resumed, limit=2)
    for a, b in zip(reference, again):
        assert torch.equal(a["raw"], b["raw"]) and a["original_path"] == b["original_path"]
