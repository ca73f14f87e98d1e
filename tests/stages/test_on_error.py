"""on_error: raise, skip (deterministic substitutes, budget, stats) and retry classification."""

from __future__ import annotations

import logging

import pytest
import torch

import timelapse_pipes as tp
from timelapse_pipes.reading.retry import is_transient
from timelapse_pipes.testing import assert_batches_equal, collect, run_state_round_trip


@pytest.fixture
def manifest_with_bad_files(synthetic, tmp_path):
    corrupt = tmp_path / "corrupt.czi"
    corrupt.write_bytes(bytes(range(256)) * 8)
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(synthetic["tiff"].read_bytes()[:300])
    path = tmp_path / "m.csv"
    path.write_text("path,split\n" + "\n".join(f"{p},train" for p in
                                             [synthetic["zarr_v3"], corrupt, synthetic["zarr_v2"], truncated]) + "\n")
    return str(path), str(corrupt), str(truncated)


OPTIONS = dict(crop={"roi_size": [2, 16, 16]}, num_timepoints=2, samples_per_epoch=12, seed=9, batch_size=3)


def test_raise_names_the_file(manifest_with_bad_files):
    manifest, corrupt, truncated = manifest_with_bad_files
    with pytest.raises(tp.ImageReadError) as raised:
        collect(tp.build_loader(manifest, **OPTIONS))
    assert corrupt in str(raised.value) or truncated in str(raised.value)


def test_skip_substitutes_deterministically(manifest_with_bad_files, caplog):
    manifest, corrupt, truncated = manifest_with_bad_files
    caplog.set_level(logging.WARNING, logger="timelapse_pipes")
    loader = tp.build_loader(manifest, on_error="skip", **OPTIONS)
    batches = collect(loader)
    paths = [p for b in batches for p in b["original_path"]]
    assert len(paths) == 12 and corrupt not in paths and truncated not in paths
    replaced = torch.cat([b["replaced"] for b in batches])
    assert replaced.sum().item() == 6  # half of the rows are bad: 3 visits each per 12 samples
    stats = loader.stats()
    assert stats["skips"] >= 6 and len(stats["bad_files"]) == 2
    assert sum("skipping a sample" in r.getMessage() for r in caplog.records) == 2  # each bad file logged once
    again = collect(tp.build_loader(manifest, on_error="skip", **OPTIONS))
    assert_batches_equal(batches, again)


def test_skip_resumes_exactly(manifest_with_bad_files):
    manifest, _, _ = manifest_with_bad_files
    run_state_round_trip(lambda: tp.build_loader(manifest, on_error="skip", num_workers=2, **OPTIONS),
                         midpoints=[1, 2], epochs=1)


def test_skip_budget(manifest_with_bad_files):
    manifest, _, _ = manifest_with_bad_files
    with pytest.raises(tp.SkipBudgetExceeded, match="max_skips=1"):
        collect(tp.build_loader(manifest, on_error="skip", max_skips=1, **OPTIONS))


def test_bad_on_error_value(manifest_with_bad_files):
    with pytest.raises(tp.ConfigError, match="on_error='ignore'"):
        tp.build_loader(manifest_with_bad_files[0], on_error="ignore")


def test_transient_classification():
    assert is_transient(ConnectionResetError()) and is_transient(TimeoutError())
    wrapped = tp.ImageReadError("x.zarr: could not open")
    wrapped.__cause__ = ConnectionRefusedError()
    assert is_transient(wrapped)
    assert not is_transient(FileNotFoundError()) and not is_transient(tp.ImageReadError("corrupt"))
    assert not is_transient(ValueError("bad pixels"))
