"""Every real sample file (see tests/helpers/real_data.py) through build_loader, against bioio's own read of
the pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import timelapse_pipes as tp
from tests.helpers import bioio_reference
from tests.helpers.real_data import images, registry
from timelapse_pipes.testing import collect, noise_movie, write_ome_zarr

pytestmark = pytest.mark.timeout(300)

# (file or zarr image under the real-data root, scene, time_axis): every readable image.
READABLE = [
    ("nd2/example-timelapse.nd2", 0, "T"),
    ("nd2/example-zstack.nd2", 0, "T"),
    ("nd2/example-multichannel.nd2", 0, "T"),
    ("nd2/example-pbmc.nd2", 0, "T"),
    ("nd2/example-cerevisiae.nd2", 0, "T"),
    ("czi/tiles_time_z.czi", 0, "T"),
    ("czi/tiles_z.czi", 0, "T"),
    ("czi/tiles.czi", 0, "T"),
    ("czi/mosaic_test.czi", 0, "T"),
    ("czi/RGB-multichannel.czi", 0, "T"),
    ("czi/RGB-8bit.czi", 0, "T"),
    ("czi/s_1_t_1_c_1_z_1.czi", 0, "T"),
    ("lif/PR2729_frameOrderCombinedScanTypes.lif", 0, "T"),
    ("ome-tiff/181003_multi_pos_time_course_1_MMStack.ome.tif", 0, "T"),
    ("ome-tiff/181003_multi_pos_time_course_1_MMStack.ome.tif", "Image:1", "T"),
    ("ome-tiff/multi-channel-time-series.ome.tif", 0, "T"),
    ("ome-tiff/time-series.ome.tif", 0, "T"),
    ("ome-tiff/170918_tn_neutrophil_migration_wave.ome.tif", 0, "T"),
    ("ome-tiff/s_1_t_1_c_1_z_1.ome.tiff", 0, "T"),
    ("ome-tiff/viv-multi-channel.ome.tif", 0, "T"),
    ("tiff/stuck.tif", 0, "Z"),  # a 5-frame movie whose pages bioio reports as Z
    ("tiff/s_1_t_1_c_1_z_1.tiff", 0, "T"),
    ("ome-zarr/blobs_image_v04.ome.zarr", 0, "T"),
    ("ome-zarr/blobs_image_v05.ome.zarr", 0, "T"),
    ("ome-zarr/fake-series-2.zarr/0", 0, "T"),
    ("ome-zarr/fake-series-2.zarr/1", 0, "T"),
    ("ome-zarr/viv-bioformats-zarr/data.zarr/0", 0, "T"),
]
UNREADABLE = [  # (file, scene, what the error must say)
    ("lif/testdata_2channel_xz.lif", "xzt", "cannot decode"),
    ("lif/testdata_2channel_xz.lif", "xz", "cannot decode"),
    ("lif/LeicaLASX_wavelength-sweep_example.lif", "x_y_lambdaEmi", "cannot decode"),
    ("lif/LeicaLASX_wavelength-sweep_example.lif", "x_y_z_t_lambdaEmi", "cannot decode"),
    ("ome-zarr/fake-series-2.zarr", 0, "point the manifest at a series"),  # bioformats2raw root
]


def _reader_for(path: str):
    from timelapse_pipes.reading.readers import load_reader_class, reader_for_path

    return load_reader_class(reader_for_path(path))


@pytest.mark.real_data  # the registry, not the files
def test_every_shared_file_is_covered():
    # The registry, not a folder: this runs in a fresh clone too (test_real_data checks a mirror against it).
    names = set(registry())
    listed = images(names)
    covered = {f for f, _, _ in READABLE + UNREADABLE}
    unknown = {f for f in covered if f not in names and not any(n.startswith(f + "/") for n in names)}
    assert not unknown, f"format tests of files not in the registry: {sorted(unknown)}"
    covered |= {str(parent.as_posix()) for f in list(covered) for parent in Path(f).parents}
    assert listed <= covered, f"registry files without a format test: {sorted(listed - covered)}"


@pytest.mark.parametrize("relative,scene,time_axis", READABLE, ids=[f"{f}@{s}" for f, s, _ in READABLE])
def test_shared_file_equals_bioio(shared_data, relative, scene, time_axis):
    path = str(shared_data / relative)
    metadata = tp.MetadataCache().get(
        tp.read_manifest({"dict_meta": {"path": [path], "scene": [scene], "time_axis": [time_axis]}},
                         split=None)[0], tp.ReaderCache())
    frames = metadata.dims["Z"] if time_axis == "Z" else metadata.dims["T"]
    depth = 1 if time_axis == "Z" else metadata.dims["Z"]
    loader = tp.build_loader({"dict_meta": {"path": [path], "scene": [scene], "time_axis": [time_axis]}},
                             split=None, spatial_dims=3 if depth > 1 else 2,
                             num_timepoints=min(2, frames), samples_per_epoch=2, dtype=metadata.dtype)
    for batch in collect(loader):
        timepoints = batch["T"][0].tolist()
        if time_axis == "Z":
            whole = bioio_reference(path, [0], None, scene, reader=_reader_for(path))[0]  # C, Z, Y, X
            expected = whole.transpose(1, 0, 2, 3)[:, :, None][timepoints]  # Z as T: T, C, 1, Y, X
        else:
            expected = bioio_reference(path, timepoints, None, scene, reader=_reader_for(path))
        if depth == 1:
            expected = expected[:, :, 0]
        if len(timepoints) == 1:
            expected = expected[0]
        got = batch["raw"][0].numpy()
        assert got.dtype == np.dtype(metadata.dtype)
        np.testing.assert_array_equal(got, expected)
        assert batch["scene"][0] == metadata.scene
        sizes = batch["meta"][0]["physical_pixel_sizes"]
        assert len(sizes) == 3 and all(v is None or isinstance(v, float) for v in sizes)


def test_rgb_czi_folds_samples_into_channels(shared_data):
    path = str(shared_data / "czi" / "RGB-multichannel.czi")
    batch = next(iter(tp.build_loader({"dict_meta": {"path": [path], "channel": ["2,5"]}}, split=None,
                                      spatial_dims=2, dtype="uint8")))
    assert batch["raw"].shape == (1, 6, 81, 147)  # 2 channels x 3 samples
    samples = batch["raw"][0].numpy().reshape(2, 3, 81, 147)
    assert not np.array_equal(samples[:, 0], samples[:, 1])  # real samples, not sample 0 copied


@pytest.mark.parametrize("relative,scene,message", UNREADABLE, ids=[f"{f}@{s}" for f, s, _ in UNREADABLE])
def test_unreadable_scans_fail_clearly(shared_data, relative, scene, message):
    path = str(shared_data / relative)
    rows = {"dict_meta": {"path": [path], "scene": [scene], "reader": ["ome-zarr" if ".zarr" in path else ""]}}
    spatial_dims = 2
    if relative.endswith(".lif"):  # these scans open and report dims; only their pixels fail
        metadata = tp.MetadataCache().get(tp.read_manifest(rows, split=None)[0], tp.ReaderCache())
        spatial_dims = 3 if metadata.dims["Z"] > 1 else 2
    loader = tp.build_loader(rows, split=None, spatial_dims=spatial_dims, num_timepoints=1)
    with pytest.raises(tp.ImageReadError) as raised:
        next(iter(loader))
    text = str(raised.value)
    assert path in text and message in text
    if relative.endswith(".lif"):
        assert isinstance(raised.value, tp.UnsupportedImageError) and repr(scene) in text


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_written_pyramids_every_level(tmp_path, zarr_format):
    path = write_ome_zarr(tmp_path / f"pyramid_v{zarr_format}.ome.zarr", noise_movie((6, 2, 2, 64, 64), 9),
                          zarr_format, levels=3, chunk=(1, 1, 1, 16, 16))
    for level, size in [(0, 64), (1, 32), (2, 16)]:
        batch = next(iter(tp.build_loader({"dict_meta": {"path": [str(path)], "resolution": [level]}},
                                          split=None, num_timepoints=3, seed=level)))
        assert batch["raw"].shape == (1, 3, 2, 2, size, size)
        expected = bioio_reference(str(path), batch["T"][0].tolist(), None, level=level)
        np.testing.assert_array_equal(batch["raw"][0].numpy(), expected)
    with pytest.raises(tp.SampleError, match=r"resolution level 5 not found.*available levels are \[0, 1, 2\]"):
        next(iter(tp.build_loader({"dict_meta": {"path": [str(path)], "resolution": [5]}}, split=None)))
