"""Zarr arrays in GCS read by tensorstore's own GCS driver, at gcsfs's endpoint, as gcsfs signs.

Against the session's gcp-storage-emulator on 127.0.0.1 (anonymous): v2 and v3 arrays read through
tensorstore equal bioio's own read of the same window, for each form of the options; a row at a
second endpoint, or with a token tensorstore cannot sign with, is read by zarr-python over gcsfs
(still equal to bioio); no token value reaches logs, stderr, state, caches or errors; and a loader
over GCS resumes exactly. Sharded arrays are left out: the emulator ignores suffix ranges
(docs: cloud-emulators.md), which the shard index read needs; Google's servers honour them.
"""

from __future__ import annotations

import json
import logging
import pickle
import uuid
import warnings

import gcsfs
import numpy as np
import pytest

import timelapse_pipes as tp
from tests.cloud.remote_arrays import CROP, assert_tensorstore_reads_equal_bioio, bioio_read, open_remote
from timelapse_pipes.reading.fast import gcs, google_auth
from timelapse_pipes.reading.fast.tensorstore import TensorStoreArray
from timelapse_pipes.reading.regions import read_region
from timelapse_pipes.testing import collect, noise_movie, run_state_round_trip, write_ome_zarr

pytest.importorskip("tensorstore")
pytestmark = [pytest.mark.timeout(300), pytest.mark.cloud]

SECRET = "ya29.gcs-access-token-do-not-print-4b7d"  # a string that names no file: gcsfs's raw access token


@pytest.fixture
def raw_token(monkeypatch) -> str:
    """A raw access token gcsfs sends as it is (without asking Google when it expires); tensorstore
    cannot take one."""
    monkeypatch.setenv("FETCH_RAW_TOKEN_EXPIRY", "false")
    return SECRET


@pytest.fixture(scope="module", autouse=True)
def anonymous_process():
    """tensorstore signs anonymously in this process, as the emulator rows ask (else nothing here holds)."""
    identity = google_auth.process_identity()
    if identity.kind != google_auth.ANONYMOUS:
        pytest.skip(f"tensorstore's GCS driver would sign with {identity.describe()} in this environment")


@pytest.fixture(scope="module")
def bucket(gcs_options, tmp_path_factory):
    """A v3 and a v2 array in a fresh bucket: {kind: URL}."""
    movie = noise_movie((4, 2, 4, 24, 30), seed=37, high=60000)
    folder = tmp_path_factory.mktemp("gcs-tensorstore")
    files = {"v3": folder / "v3.ome.zarr", "v2": folder / "v2.ome.zarr"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the writers' own performance notices
        write_ome_zarr(files["v3"], movie, zarr_format=3, levels=1, chunk=(1, 1, 4, 16, 16))
        write_ome_zarr(files["v2"], movie, zarr_format=2, levels=1, chunk=(2, 2, 3, 16, 32))
    fs = gcsfs.GCSFileSystem(**gcs_options, skip_instance_cache=True)
    name = f"ts-{uuid.uuid4().hex[:10]}"
    fs.mkdir(name)
    for kind, path in files.items():
        fs.put(str(path), f"{name}/{path.name}", recursive=True)
    return {kind: f"gs://{name}/{path.name}" for kind, path in files.items()}


@pytest.mark.parametrize("kind", ["v2", "v3"])
def test_pixels_equal_bioio(bucket, gcs_options, kind):
    assert_tensorstore_reads_equal_bioio(bucket[kind], gcs_options)


@pytest.mark.parametrize("form", ["per protocol, gcs://", "emulator variable, default token", "requester pays"])
def test_each_form_of_options_reads_through_tensorstore(bucket, gcs_options, form, monkeypatch):
    url, options = bucket["v3"], dict(gcs_options)
    if form == "per protocol, gcs://":
        url, options = "gcs://" + url[len("gs://"):], {"gs": options}
    elif form == "emulator variable, default token":  # gcsfs finds no credentials: anonymous, as tensorstore
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", options["endpoint_url"][len("http://"):])
        options = {"skip_instance_cache": True}
    else:
        options["requester_pays"] = "lab-billing"
    opened = open_remote(url, options)
    try:
        assert isinstance(opened.native(), TensorStoreArray)
        got = read_region(opened, "TCZYX", [0, 3], None, CROP)
        np.testing.assert_array_equal(got, bioio_read(url, options.get("gs", options), [0, 3], CROP))
    finally:
        opened.close()


@pytest.mark.parametrize("refusal", ["second endpoint", "raw token"])
def test_refused_rows_still_read_with_zarr(bucket, gcs_options, refusal, raw_token):
    """The same server under another name (tensorstore already reads GCS at the first), or a token
    tensorstore cannot sign with: zarr-python reads over gcsfs, equal to bioio."""
    options = dict(gcs_options)
    if refusal == "second endpoint":
        options["endpoint_url"] = options["endpoint_url"].replace("127.0.0.1", "localhost")
    else:
        options["token"] = raw_token
    with pytest.raises(gcs.Unmapped, match="one endpoint per process" if refusal == "second endpoint" else "raw"):
        gcs.gcs_kvstore(bucket["v2"], options)
    opened = open_remote(bucket["v2"], options)
    try:
        assert type(opened.native()).__name__ == "NativeArray"
        np.testing.assert_array_equal(read_region(opened, "TCZYX", [3, 1], None, CROP),
                                      bioio_read(bucket["v2"], options, [3, 1], CROP))
    finally:
        opened.close()


def test_tokens_never_leave(bucket, gcs_options, raw_token, tmp_path, caplog, capfd):
    """An access token tensorstore cannot take: refused (logged at debug), read by zarr-python; its
    value is in no log, stderr (tensorstore's included), state, stats, metadata cache, error or pickle."""
    caplog.set_level(logging.DEBUG, logger="timelapse_pipes")
    options = {"gs": {**gcs_options, "token": raw_token}}
    broken = bucket["v2"].replace("v2.ome.zarr", "missing.ome.zarr")
    cache = tmp_path / "metadata.json"
    loader = tp.build_loader({"dict_meta": {"path": [bucket["v3"], broken]}}, split=None, storage_options=options,
                             metadata_cache=str(cache), on_error="skip", samples_per_epoch=4)
    collect(loader)
    loader.prepared.pipeline.stages[1].metadata.flush()
    with pytest.raises(tp.ImageReadError) as raised:
        next(iter(tp.build_loader({"dict_meta": {"path": [broken]}}, split=None, storage_options=options)))
    assert "read by zarr-python, not tensorstore" in caplog.text and loader.stats()["skips"] >= 1
    captured = capfd.readouterr()
    outputs = [json.dumps(loader.state_dict()), cache.read_text(), caplog.text, json.dumps(loader.stats()),
               str(raised.value), captured.out, captured.err, str(pickle.dumps(loader.state_dict()))]
    for output in outputs:
        assert SECRET not in output


def test_loader_over_gcs_resumes_exactly(bucket, gcs_options):
    rows = {"dict_meta": {"path": [bucket["v3"], bucket["v2"]]}}

    def make():
        return tp.build_loader(rows, split=None, storage_options={"gs": gcs_options}, num_timepoints=2,
                               batch_size=2, samples_per_epoch=4, crop={"roi_size": [3, 12, 20]}, num_workers=2)

    run_state_round_trip(make, midpoints=[1], epochs=2)


def test_endpoint_is_claimed_once_for_the_process(bucket, gcs_options):
    """The emulator's endpoint is tensorstore's for this process, and named where tensorstore reads it."""
    import os

    gcs.gcs_kvstore(bucket["v3"], gcs_options)
    assert os.environ[gcs.ENDPOINT_VARIABLE] == gcs_options["endpoint_url"]
