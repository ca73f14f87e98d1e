"""Crop pushdown: the ROI read equals the full frame cropped, and only intersecting chunks are read."""

from __future__ import annotations

import numpy as np
import pytest
from monai.transforms import SpatialCropd

import timelapse_pipes as tp
from tests.helpers import OpenRecorder, bioio_reference
from timelapse_pipes.testing import collect, noise_movie, write_ome_zarr


@pytest.mark.parametrize("key", ["zarr_v3", "zarr_v2", "ome_tiff", "czi"])
def test_crop_equals_full_frame_then_monai_spatial_crop(synthetic, key):
    path = str(synthetic[key])
    spatial = 3 if key != "czi" else 2
    roi = [2, 24, 16] if spatial == 3 else [24, 16]
    loader = tp.build_loader({"dict_meta": {"path": [path]}}, split=None, spatial_dims=spatial,
                             num_timepoints=2, crop={"roi_size": roi}, samples_per_epoch=4, seed=3)
    for batch in collect(loader):
        for k in range(batch["raw"].shape[0]):
            start = batch["crop_start"][k].tolist()
            full = bioio_reference(path, batch["T"][k].tolist(), None).astype(np.float32)
            for n, frame in enumerate(full):  # each timepoint: C, Z, Y, X
                frame = frame if spatial == 3 else frame[:, 0]
                cropped = SpatialCropd(keys="img", roi_start=start, roi_end=[s + r for s, r in zip(start, roi)])(
                    {"img": frame})["img"]
                np.testing.assert_array_equal(batch["raw"][k, n].numpy(), np.asarray(cropped))


def test_center_crop_and_too_small_frame(synthetic):
    path = str(synthetic["czi"])  # 40 x 40 frames
    batch = next(iter(tp.build_loader({"dict_meta": {"path": [path]}}, split=None, spatial_dims=2,
                                      crop={"roi_size": [20, 10], "mode": "center"})))
    assert batch["crop_start"][0].tolist() == [10, 15]
    with pytest.raises(tp.SampleError, match=r"frame \[40, 40\] is smaller than crop roi_size \[64, 10\]"):
        next(iter(tp.build_loader({"dict_meta": {"path": [path]}}, split=None, spatial_dims=2,
                                  crop={"roi_size": [64, 10]})))


def test_crop_reads_only_intersecting_chunks(tmp_path, monkeypatch):
    """Count the chunk files a read opens: a 16x16 ROI inside one 32x32 chunk opens one chunk per
    (t, c, z); a full frame opens all 16 chunks of a 128x128 plane. Python sees the chunk decoder's
    opens only, so every read goes to it here (tensorstore's crop pushdown is counted by its own
    metrics in tests/reading/test_tensorstore.py)."""
    from timelapse_pipes.reading.fast.tensorstore import TensorStoreArray

    monkeypatch.setattr(TensorStoreArray, "SMALL_READ_CHUNKS", 10**9)
    path = write_ome_zarr(tmp_path / "chunked.ome.zarr", noise_movie((4, 1, 1, 128, 128), 3), 3, levels=1,
                          chunk=(1, 1, 1, 32, 32))
    recorder = OpenRecorder("/c/")  # zarr v3 chunk files live under <array>/c/

    def chunk_reads(crop):
        loader = tp.build_loader({"dict_meta": {"path": [str(path)]}}, split=None, spatial_dims=2,
                                 crop=crop, prefetch=0, samples_per_epoch=1, seed=1)
        next(iter(loader))  # warm: metadata, reader open
        with recorder:
            batch = next(iter(loader))  # the next epoch's first sample: one (t, c, z) plane
        return batch, len(set(recorder.opened))

    batch, cropped = chunk_reads({"roi_size": [16, 16], "mode": "center"})  # rows/cols 56..71
    assert batch["raw"].shape == (1, 1, 16, 16)
    assert cropped == 4  # 56..71 straddles the 64 boundary on both axes: 2 x 2 chunks
    _, full = chunk_reads(None)
    assert full == 16
    for size in (8, 20, 40):  # random offsets: the count follows from where the ROI falls
        batch, count = chunk_reads({"roi_size": [size, size]})
        y, x = batch["crop_start"][0].tolist()
        expected = (((y + size - 1) // 32) - y // 32 + 1) * (((x + size - 1) // 32) - x // 32 + 1)
        assert count == expected
    loader = tp.build_loader({"dict_meta": {"path": [str(path)]}}, split=None, spatial_dims=2,
                             crop={"roi_size": [32, 32]}, prefetch=0, samples_per_epoch=8, seed=4)
    for batch in collect(loader):
        y, x = batch["crop_start"][0].tolist()
        assert batch["raw"].shape == (1, 1, 32, 32) and 0 <= y <= 96 and 0 <= x <= 96
