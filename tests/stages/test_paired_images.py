"""Paired images: a row's further images (targets, masks) read with the row's timepoints and crop window.

Every array of a sample is checked pixel for pixel against bioio's own read of the same window, on
the real ND2 and OME-TIFF sample files (as raw) with label and mask OME-Zarrs written from them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from bioio import BioImage

import timelapse_pipes as tp
from timelapse_pipes.testing import collect, noise_movie, run_state_round_trip, write_manifest, write_ome_zarr

ND2 = "nd2/example-timelapse.nd2"  # T, C=1, Z=1, 64 x 64
MM = "ome-tiff/181003_multi_pos_time_course_1_MMStack.ome.tif"  # 256 x 256


def bioio_window(path: str | Path, timepoints, channels, zyx_start, zyx_size) -> np.ndarray:
    """bioio's own lazy read of a (T, C, Z, Y, X) window, computed."""
    data = BioImage(str(path)).get_image_dask_data("TCZYX")
    z, y, x = zyx_start
    dz, dy, dx = zyx_size
    window = data[list(timepoints)][:, :, z:z + dz, y:y + dy, x:x + dx]
    if channels is not None:
        window = window[:, list(channels)]
    return np.asarray(window.compute(scheduler="synchronous"))


def labels_and_mask(raw_path: Path, folder: Path, name: str) -> tuple[Path, Path]:
    """An integer label movie (T frames, thresholded raw, label = frame + 1) and a one-frame mask."""
    raw = BioImage(str(raw_path)).get_image_data("TCZYX")
    threshold = np.percentile(raw, 90)
    labels = ((raw[:, :1] > threshold) * (np.arange(raw.shape[0]) + 1)[:, None, None, None, None]).astype("uint16")
    mask = (raw[:1, :1] > np.percentile(raw, 50)).astype("uint8")
    chunk = (1, 1, 1, 32, 32)
    return (write_ome_zarr(folder / f"{name}_labels.ome.zarr", labels, levels=1, chunk=chunk),
            write_ome_zarr(folder / f"{name}_mask.ome.zarr", mask, levels=1, chunk=chunk))


@pytest.fixture(scope="module")
def paired_manifest(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("paired")
    rows = []
    for name, raw in (("nd2", shared_data / ND2), ("mm", shared_data / MM)):
        labels, mask = labels_and_mask(raw, folder, name)
        rows.append({"path": str(raw), "target_path": str(labels), "mask_path": str(mask), "split": "train"})
    return write_manifest(folder / "pairs.csv", rows)


IMAGES = {"target": "target_path", "mask": {"path": "mask_path", "channel": None}}


@pytest.mark.real_data
@pytest.mark.parametrize("layout", ["stack", "separate"])
def test_every_array_equals_bioios_read_of_the_same_window(paired_manifest: Path, layout: str) -> None:
    loader = tp.build_loader(str(paired_manifest), num_timepoints=3, timepoint_sampling="random", spatial_dims=3,
                             crop={"roi_size": [1, 32, 32]}, samples_per_epoch=8, batch_size=1, seed=4,
                             timepoint_layout=layout, image_columns=IMAGES)
    rows = {row.path: row for row in loader.prepared.manifest.rows}
    seen = 0
    for batch in collect(loader):
        row = rows[batch["original_path"][0]]
        frames = batch["T"].reshape(-1).tolist()
        start = batch["crop_start"][0].tolist()
        raw = bioio_window(row.path, frames, None, start, (1, 32, 32)).astype("float32")
        target = bioio_window(row.images[0].path, frames, None, start, (1, 32, 32))
        mask = bioio_window(row.images[1].path, [0] * len(frames), None, start, (1, 32, 32))
        if layout == "separate":  # one entry per frame
            raw, target, mask = raw[:, None], target[:, None], mask[:, None]
        else:
            raw, target, mask = raw[None], target[None], mask[None]
        assert str(batch["target"].dtype) == "torch.int32"  # uint16 labels, widened to a type torch computes with
        assert str(batch["mask"].dtype) == "torch.uint8" and str(batch["raw"].dtype) == "torch.float32"
        np.testing.assert_array_equal(batch["raw"].numpy().reshape(raw.shape), raw)
        np.testing.assert_array_equal(batch["target"].numpy().reshape(target.shape), target)
        np.testing.assert_array_equal(batch["mask"].numpy().reshape(mask.shape), mask)
        seen += 1
    assert seen == 8


@pytest.mark.real_data
def test_batch_buffer_and_per_sample_paths_agree(paired_manifest: Path) -> None:
    options = dict(split="train", num_timepoints=2, spatial_dims=3, crop={"roi_size": [1, 24, 24]},
                   samples_per_epoch=6, batch_size=3, seed=2, image_columns=IMAGES)
    fast = collect(tp.build_loader(str(paired_manifest), **options))
    per_sample = collect(tp.build_loader(str(paired_manifest), transforms=lambda sample: sample, **options))
    from timelapse_pipes.testing import assert_batches_equal

    assert_batches_equal(fast, per_sample)
    assert list(fast[0]) == list(per_sample[0])


def test_paired_rows_resume_exactly_with_thread_and_process_workers(tmp_path: Path) -> None:
    raw = noise_movie((8, 2, 1, 32, 32), 1)
    labels = (raw[:, :1] > 2000).astype("uint8")
    write_ome_zarr(tmp_path / "raw.ome.zarr", raw, levels=1)
    write_ome_zarr(tmp_path / "labels.ome.zarr", labels, levels=1)
    manifest = write_manifest(tmp_path / "m.csv", [{"path": str(tmp_path / "raw.ome.zarr"),
                                                   "labels": str(tmp_path / "labels.ome.zarr")}])
    for method in ("thread", "process"):
        run_state_round_trip(lambda: tp.build_loader(
            str(manifest), split=None, num_timepoints=2, spatial_dims=2, crop={"roi_size": [16, 16]},
            samples_per_epoch=6, batch_size=2, seed=5, num_workers=2, worker_method=method,
            image_columns={"target": "labels"}), midpoints=[1, 3])


def test_the_images_enter_the_fingerprint_only_when_given(tmp_path: Path) -> None:
    raw = noise_movie((4, 1, 1, 16, 16), 1)
    write_ome_zarr(tmp_path / "raw.ome.zarr", raw, levels=1)
    write_ome_zarr(tmp_path / "other.ome.zarr", raw, levels=1)
    manifest = write_manifest(tmp_path / "m.csv", [{"path": str(tmp_path / "raw.ome.zarr"),
                                                   "target": str(tmp_path / "other.ome.zarr")}])
    plain = tp.read_manifest(str(manifest), split=None)
    paired = tp.read_manifest(str(manifest), split=None, columns=tp.ManifestColumns(images={"target": "target"}))
    assert plain.rows[0].images == () and paired.rows[0].images[0].key == "target"
    assert plain.fingerprint() != paired.fingerprint()
    single = tp.read_manifest(str(write_manifest(tmp_path / "one.csv", [{"path": str(tmp_path / "raw.ome.zarr")}])),
                              split=None)
    assert [row.key() for row in single.rows] == [row.key() for row in plain.rows]


def test_an_image_on_another_grid_names_the_row_and_both_files(tmp_path: Path) -> None:
    write_ome_zarr(tmp_path / "raw.ome.zarr", noise_movie((4, 1, 1, 32, 32), 1), levels=1)
    write_ome_zarr(tmp_path / "small.ome.zarr", noise_movie((4, 1, 1, 8, 8), 2), levels=1)
    manifest = write_manifest(tmp_path / "m.csv", [{"path": str(tmp_path / "raw.ome.zarr"),
                                                   "mask": str(tmp_path / "small.ome.zarr")}])
    loader = tp.build_loader(str(manifest), split=None, spatial_dims=2, image_columns={"mask": "mask"})
    with pytest.raises(tp.SampleError) as caught:
        collect(loader)
    message = str(caught.value)
    assert f"{manifest} row 1" in message and "small.ome.zarr" in message and "raw.ome.zarr" in message
    assert "[1, 8, 8]" in message and "[1, 32, 32]" in message


def test_too_few_frames_and_bad_columns_are_refused_by_name(tmp_path: Path) -> None:
    write_ome_zarr(tmp_path / "raw.ome.zarr", noise_movie((6, 1, 1, 16, 16), 1), levels=1)
    write_ome_zarr(tmp_path / "short.ome.zarr", noise_movie((3, 1, 1, 16, 16), 2), levels=1)
    manifest = write_manifest(tmp_path / "m.csv", [{"path": str(tmp_path / "raw.ome.zarr"),
                                                   "target": str(tmp_path / "short.ome.zarr")}])
    with pytest.raises(tp.SampleError, match=r"'target' .*short.ome.zarr.* has T=3 frames but the row reads frames up to 6"):
        collect(tp.build_loader(str(manifest), split=None, spatial_dims=2, image_columns={"target": "target"}))
    with pytest.raises(tp.ManifestError, match=r"lacks the column\(s\) \['nope'\] of image 'target'"):
        tp.build_loader(str(manifest), split=None, image_columns={"target": "nope"})
    with pytest.raises(tp.ConfigError, match=r"image_columns key 'T' is already a field"):
        tp.build_loader(str(manifest), split=None, image_columns={"T": "target"})
    empty = write_manifest(tmp_path / "e.csv", [{"path": str(tmp_path / "raw.ome.zarr"), "target": ""}])
    with pytest.raises(tp.ManifestError, match=r"row 1: column 'target' \('target'\) is empty"):
        tp.build_loader(str(empty), split=None, image_columns={"target": "target"})


def quarter_mask(raw_path: Path, folder: Path, name: str) -> Path:
    """A one-frame mask at 1/4 of the raw's Y and X (the raw's first frame, thresholded and subsampled)."""
    raw = BioImage(str(raw_path)).get_image_data("TCZYX")
    mask = (raw[:1, :1, :, ::4, ::4] > np.percentile(raw, 60)).astype("uint8")
    return write_ome_zarr(folder / f"{name}_quarter_mask.ome.zarr", mask, levels=1, chunk=(1, 1, 1, 16, 16))


@pytest.mark.real_data
def test_a_mask_at_a_quarter_of_the_scale_is_read_at_the_matching_window_and_resized(shared_data, tmp_path) -> None:
    rows = []
    for name, raw in (("nd2", shared_data / ND2), ("mm", shared_data / MM)):
        rows.append({"path": str(raw), "mask_path": str(quarter_mask(raw, tmp_path, name))})
    manifest = write_manifest(tmp_path / "quarter.csv", rows)
    loader = tp.build_loader(str(manifest), split=None, spatial_dims=2, num_timepoints=2, batch_size=1, seed=6,
                             samples_per_epoch=8, crop={"roi_size": [24, 24], "where": "mask"},
                             image_columns={"mask": {"path": "mask_path", "resize": "nearest"}})
    paths = {row.path: row.images[0].path for row in loader.prepared.manifest.rows}
    for batch in collect(loader):
        y, x = batch["crop_start"][0].tolist()
        small = BioImage(paths[batch["original_path"][0]]).get_image_data("YX", T=0, C=0, Z=0)
        expected = small[np.ix_((np.arange(y, y + 24)) // 4, (np.arange(x, x + 24)) // 4)]
        got = batch["mask"][0].numpy()  # [T=2, C=1, 24, 24]: the one-frame mask at both timepoints
        assert got.shape == (2, 1, 24, 24)
        np.testing.assert_array_equal(got[0, 0], expected)
        np.testing.assert_array_equal(got[1, 0], expected)
        assert got[0, 0].any()  # placed where the mask is
    with pytest.raises(tp.SampleError, match=r"resize.*nearest"):
        collect(tp.build_loader(str(manifest), split=None, spatial_dims=2, image_columns={"mask": "mask_path"}))
