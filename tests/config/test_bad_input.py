"""The bad-input matrix: every case raises the library's own error, early, naming what to fix.

docs/reliability.md lists each case and what the user sees; keep the two in step.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import pytest

import timelapse_pipes as tp
from timelapse_pipes.config import checks
from timelapse_pipes.cli.inspect import inspect_manifest

ND2 = "nd2/example-timelapse.nd2"            # T53 C1 Z1 64x64 uint16
OME = "ome-tiff/time-series.ome.tif"          # T7 C1 Z1 167x439 int8
MM = "ome-tiff/181003_multi_pos_time_course_1_MMStack.ome.tif"  # 2 scenes


def _csv(tmp_path: Path, text: str, name: str = "m.csv") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _bad_files(tmp_path: Path, synthetic) -> dict[str, Path]:
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(synthetic["tiff"].read_bytes()[:400])
    fake_nd2 = tmp_path / "noise.nd2"
    fake_nd2.write_bytes(bytes(range(256)) * 16)
    fake_czi = tmp_path / "noise.czi"
    fake_czi.write_bytes(bytes(reversed(range(256))) * 16)
    empty_zarr = tmp_path / "empty.ome.zarr"
    empty_zarr.mkdir()
    half = tmp_path / "half.ome.zarr"
    shutil.copytree(synthetic["zarr_v3"], half)
    (half / "zarr.json").write_text((half / "zarr.json").read_text()[:60])
    wrong_ext = tmp_path / "really_a_tiff.nd2"
    shutil.copy(synthetic["tiff"], wrong_ext)
    return {"truncated TIFF": truncated, "random bytes .nd2": fake_nd2, "random bytes .czi": fake_czi,
            "empty zarr": empty_zarr, "half-written zarr": half, "wrong extension": wrong_ext,
            "missing file": tmp_path / "missing.ome.tiff"}


FILE_CASES = ["missing file", "truncated TIFF", "random bytes .nd2", "random bytes .czi", "empty zarr",
              "half-written zarr", "wrong extension"]


@pytest.mark.parametrize("case", FILE_CASES)
def test_bad_files_fail_in_inspect_and_in_the_loader(case, synthetic, tmp_path):
    path = _bad_files(tmp_path, synthetic)[case]
    manifest = _csv(tmp_path, f"path,split\n{path},train\n")
    report = inspect_manifest(manifest)
    assert [p["row"] for p in report["problems"]] == [1] and str(path) in report["problems"][0]["error"]
    loader = tp.build_loader(manifest, spatial_dims=2)  # start-up does not open files: no error yet
    with pytest.raises(tp.ImageReadError, match=str(path).replace(".", r"\.")) as raised:
        next(iter(loader))
    assert not str(raised.value).startswith("Caught")  # the library's message, not a thread traceback


def test_reader_plugin_not_installed(shared_data, tmp_path):
    manifest = _csv(tmp_path, f"path,split,reader\n{shared_data / ND2},train,bioio_hologram.Reader\n")
    with pytest.raises(tp.ImageReadError, match=r"not installed; run `pip install bioio-hologram`"):
        next(iter(tp.build_loader(manifest, spatial_dims=2)))


ROW_CASES = [  # (label, csv row after "path,split,", options, error class, message)
    ("channel out of range", f"{ND2},train,2,0,0,,", {}, tp.SampleError, r"channel 2 is out of range.*1 channel"),
    ("scene index out of range", f"{MM},train,0,2,0,,", {}, tp.SampleError, r"scene 2 is out of range.*'Image:0', 'Image:1'"),
    ("unknown scene name", f"{MM},train,0,Image:9,0,,", {}, tp.SampleError, r"scene 'Image:9' is not in"),
    ("missing resolution level", f"{ND2},train,0,0,2,,", {}, tp.SampleError, r"resolution level 2 not found.*\[0\]"),
    ("start beyond T", f"{OME},train,0,0,0,7,", {}, tp.SampleError, r"start=7 is beyond the image's T=7"),
    ("stop beyond T", f"{OME},train,0,0,0,0,8", {}, tp.SampleError, r"stop=8 is beyond the image's T=7"),
    ("num_timepoints > range, sequential", f"{OME},train,0,0,0,2,5", {"num_timepoints": 4, "timepoint_sampling": "sequential"},
     tp.SampleError, r"holds 3 frames but num_timepoints=4"),
    ("num_timepoints > range, uniform", f"{OME},train,0,0,0,0,3", {"num_timepoints": 5, "timepoint_sampling": "uniform"},
     tp.SampleError, r"holds 3 frames but num_timepoints=5"),
    ("crop deeper than a 2-D file under spatial_dims=3", f"{ND2},train,0,0,0,,",
     {"spatial_dims": 3, "crop": {"roi_size": [2, 16, 16]}}, tp.SampleError, r"frame \[1, 64, 64\] is smaller than crop roi_size \[2, 16, 16\] \(the image is 2-D: Z=1, so give a depth of 1"),
    ("spatial_dims=2 on a Z-stack", "nd2/example-zstack.nd2,train,0,0,0,,", {"spatial_dims": 2}, tp.SampleError,
     r"spatial_dims=2 but the image has Z=11"),
    ("dtype cast that overflows", f"{ND2},train,0,0,0,,", {"dtype": "int8"}, tp.SampleError, r"uint16 pixels to dtype=int8 could overflow"),
]


@pytest.mark.parametrize("label,row,options,error,message", ROW_CASES, ids=[c[0] for c in ROW_CASES])
def test_rows_that_do_not_fit_their_image(label, row, options, error, message, shared_data, tmp_path):
    path, rest = row.split(",", 1)
    manifest = _csv(tmp_path, f"path,split,channel,scene,resolution,start,stop\n{shared_data / path},{rest}\n")
    options = {"spatial_dims": 2, **options}
    with pytest.raises(error, match=message) as raised:
        next(iter(tp.build_loader(manifest, **options)))
    assert str(raised.value).startswith(f"{manifest} row 1")
    report = inspect_manifest(manifest, spatial_dims=options["spatial_dims"],
                              num_timepoints=options.get("num_timepoints", 1),
                              timepoint_sampling=options.get("timepoint_sampling", "random"))
    if "dtype" not in options and "crop" not in options:  # the cast and the crop are loader options
        assert len(report["problems"]) == 1 and report["problems"][0]["row"] == 1


def test_lossy_float_cast_warns_once(shared_data, tmp_path, monkeypatch):
    monkeypatch.setattr(checks, "_WARNED_CASTS", set())  # once per process: forget earlier tests' warnings
    manifest = _csv(tmp_path, f"path,split\n{shared_data / ND2},train\n{shared_data / ND2},train\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        list(tp.build_loader(manifest, spatial_dims=2, dtype="float16", num_workers=0, prefetch=0))
    lossy = [w for w in caught if "uint16 pixels to float16 loses precision" in str(w.message)]
    assert len(lossy) == 1 and issubclass(lossy[0].category, UserWarning), [str(w.message) for w in caught]


MANIFEST_CASES = [  # (label, file bytes, build_loader options, message)
    ("empty CSV", b"", {}, r"is empty"),
    ("header only", b"path,split\n", {}, r"header but no rows"),
    ("missing path column", b"file,split\nx.tif,train\n", {}, r"no 'path' column"),
    ("duplicate columns", b"path,split,path\nx.tif,train,y.tif\n", {}, r"duplicate columns \['path'\]"),
    ("non-UTF-8", "path,split\nmicroscop\u00e9.tif,train\n".encode("latin-1"), {}, r"is not UTF-8"),
    ("unknown split", b"path,split\nx.tif,train\n", {"split": "validation"}, r"no row with split='validation'.*\['train'\]"),
    ("missing split column", b"path\nx.tif\n", {}, r"no 'split' column.*split_column=None"),
    ("bad channel 'a'", b"path,split,channel\nx.tif,train,a\n", {}, r"row 1: column 'channel'.*'a' is not a non-negative integer"),
    ("bad channel '1,,2'", b"path,split,channel\nx.tif,train,\"1,,2\"\n", {}, r"row 1: column 'channel'"),
    ("bad channel '-3'", b"path,split,channel\nx.tif,train,-3\n", {}, r"row 1: column 'channel'.*negative"),
    ("start >= stop", b"path,split,start,stop\nx.tif,train,5,5\n", {}, r"row 1: start=5 >= stop=5"),
    ("negative stop other than -1", b"path,split,stop\nx.tif,train,-4\n", {}, r"column 'stop' is -4; only -1"),
    ("step 0", b"path,split,step\nx.tif,train,0\n", {}, r"row 1: column 'step' is 0; step must be a positive integer"),
    ("step not an integer", b"path,split,step\nx.tif,train,1.5\n", {}, r"row 1: column 'step' value '1.5' is not an integer"),
    ("missing extra column", b"path,split\nx.tif,train\n", {"extra_columns": ["cell_id"]}, r"lacks extra_columns \['cell_id'\]"),
]


@pytest.mark.parametrize("label,content,options,message", MANIFEST_CASES, ids=[c[0] for c in MANIFEST_CASES])
def test_bad_manifests_fail_at_build(label, content, options, message, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(tp.ManifestError, match=message) as raised:
        tp.build_loader(str(path), **options)
    assert str(path) in str(raised.value)


CONFIG_CASES = [
    ("samples_per_epoch = 0", {"samples_per_epoch": 0}, tp.ConfigError, r"samples_per_epoch=0 must be a positive"),
    ("samples_per_epoch < 0 for the split", {"samples_per_epoch": {"train": -5}}, tp.ConfigError, r"samples_per_epoch=-5"),
    ("unknown timepoint_sampling", {"timepoint_sampling": "every"}, tp.ConfigError, r"timepoint_sampling='every'"),
    ("bad dtype", {"dtype": "float17"}, tp.ConfigError, r"dtype='float17' is not a numpy dtype"),
    ("crop of the wrong rank", {"crop": {"roi_size": [8, 8]}, "spatial_dims": 3}, tp.ConfigError, r"must have 3 sizes"),
    ("bad worker method", {"worker_method": "fiber"}, tp.ConfigError, r"worker_method='fiber'"),
]


@pytest.mark.parametrize("label,options,error,message", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_bad_config(label, options, error, message, shared_data, tmp_path):
    manifest = _csv(tmp_path, f"path,split\n{shared_data / ND2},train\n")
    with pytest.raises(error, match=message):
        tp.build_loader(manifest, **options)


STATE_CASES = [
    ("newer version", lambda s: {**s, "version": 3}, r"state version 3 is not this timelapse_pipes' version 2"),
    ("older version", lambda s: {**s, "version": 1}, r"state version 1 .* cannot resume the same stream"),
    ("truncated", lambda s: {k: v for k, v in s.items() if k != "yielded"}, r"lacks \['yielded'\]"),
    ("another manifest", lambda s: {**s, "config": {**s["config"], "manifest": "0123456789abcdef"}},
     r"`manifest`: checkpoint has '0123456789abcdef'"),
    ("not a dict", lambda s: [s], r"state has no timelapse_pipes position"),
]


@pytest.mark.parametrize("label,mutate,message", STATE_CASES, ids=[c[0] for c in STATE_CASES])
def test_bad_states(label, mutate, message, shared_data, tmp_path):
    manifest = _csv(tmp_path, f"path,split\n{shared_data / ND2},train\n")
    state = json.loads(json.dumps(tp.build_loader(manifest, spatial_dims=2).state_dict()))
    with pytest.raises(tp.StateError, match=message):
        tp.build_loader(manifest, spatial_dims=2).load_state_dict(mutate(state))


def test_the_matrix_has_thirty_cases_or_more():
    total = len(FILE_CASES) + 1 + len(ROW_CASES) + 1 + len(MANIFEST_CASES) + len(CONFIG_CASES) + len(STATE_CASES)
    assert total >= 30


def test_every_error_derives_from_the_root():
    for error in (tp.ConfigError, tp.ManifestError, tp.ImageReadError, tp.UnsupportedImageError, tp.SampleError,
                  tp.StateError, tp.SkipBudgetExceeded):
        assert issubclass(error, tp.TimelapsePipesError)
