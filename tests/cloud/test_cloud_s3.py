"""S3 through a real S3-protocol server on loopback (moto's ThreadedMotoServer): manifests, images,
staging for local-only readers, clear permanent errors, secrets kept out of every output."""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid

import numpy as np
import pytest
import s3fs

import timelapse_pipes as tp
from timelapse_pipes.testing import collect

pytestmark = [pytest.mark.timeout(300), pytest.mark.cloud]
SECRET = "SUPERSECRET-do-not-print-9f3a"


def _options(endpoint: str) -> dict:
    return {"key": "testing", "secret": SECRET, "client_kwargs": {"endpoint_url": endpoint}}


@pytest.fixture(scope="module")
def bucket(s3_endpoint, synthetic, shared_data):
    """A fresh bucket holding the synthetic set, a real ND2 and a manifest with relative paths."""
    _, endpoint = s3_endpoint
    fs = s3fs.S3FileSystem(**_options(endpoint), skip_instance_cache=True)
    name = f"tp-{uuid.uuid4().hex[:10]}"
    fs.mkdir(name)
    for key in ("zarr_v3", "zarr_v2"):
        fs.put(str(synthetic[key]), f"{name}/images/{synthetic[key].name}", recursive=True)
    for key in ("ome_tiff", "tiff", "czi"):
        fs.put(str(synthetic[key]), f"{name}/images/{synthetic[key].name}")
    fs.put(str(shared_data / "nd2" / "example-timelapse.nd2"), f"{name}/images/timelapse.nd2")
    return fs, name


def _local_vs_s3(local_rows, s3_rows, options, **build):
    local = collect(tp.build_loader({"dict_meta": local_rows}, split=None, **build))
    remote = collect(tp.build_loader({"dict_meta": s3_rows}, split=None, storage_options=options, **build))
    assert len(local) == len(remote) > 0
    for a, b in zip(local, remote):
        assert a["T"].tolist() == b["T"].tolist()
        assert np.array_equal(a["raw"].numpy(), b["raw"].numpy())


@pytest.mark.parametrize("key,spatial", [("zarr_v3", 3), ("zarr_v2", 3), ("ome_tiff", 3), ("tiff", 2), ("czi", 2)])
def test_s3_pixels_equal_local(bucket, s3_endpoint, synthetic, key, spatial, tmp_path):
    fs, name = bucket
    url = f"s3://{name}/images/{synthetic[key].name}"
    _local_vs_s3({"path": [str(synthetic[key])]}, {"path": [url]}, {"s3": _options(s3_endpoint[1])},
                 spatial_dims=spatial, num_timepoints=2, samples_per_epoch=3, stage_dir=str(tmp_path / "stage"))


def test_s3_manifest_with_relative_paths_and_staged_nd2(bucket, s3_endpoint, shared_data, tmp_path):
    fs, name = bucket
    fs.pipe(f"{name}/manifest.csv", b"path,channel,split\nimages/timelapse.nd2,0,train\nimages/movie.czi,1,train\n")
    stage = tmp_path / "stage"
    loader = tp.build_loader(f"s3://{name}/manifest.csv", storage_options=_options(s3_endpoint[1]),
                             spatial_dims=2, num_timepoints=2, stage_dir=str(stage), samples_per_epoch=4)
    batches = collect(loader)
    assert {p for b in batches for p in b["original_path"]} == {f"s3://{name}/images/timelapse.nd2",
                                                                f"s3://{name}/images/movie.czi"}
    staged = sorted(p.name.split("-", 1)[1] for p in stage.iterdir())
    assert staged == ["movie.czi", "timelapse.nd2"]
    reference = tp.build_loader({"dict_meta": {"path": [str(shared_data / "nd2" / "example-timelapse.nd2")]}},
                                split=None, spatial_dims=2, num_timepoints=2, samples_per_epoch=1)
    local = next(iter(reference))
    remote = next(b for b in batches if b["original_path"][0].endswith(".nd2"))
    assert local["raw"].shape == remote["raw"].shape


def test_stage_size_bound_evicts(bucket, s3_endpoint, tmp_path):
    fs, name = bucket
    stage = tmp_path / "stage"
    from timelapse_pipes.reading.storage import stage_local

    options = _options(s3_endpoint[1])
    first = stage_local(f"s3://{name}/images/timelapse.nd2", options, str(stage), max_bytes=10**9)
    size = os.path.getsize(first)
    second = stage_local(f"s3://{name}/images/movie.czi", options, str(stage), max_bytes=size // 2)
    assert os.path.exists(second) and not os.path.exists(first)


def test_environment_credentials_and_process_workers(bucket, s3_endpoint, synthetic):
    fs, name = bucket
    url = f"s3://{name}/images/{synthetic['zarr_v3'].name}"
    loader = tp.build_loader({"dict_meta": {"path": [url]}}, split=None, num_workers=2, worker_method="process",
                             storage_options={"endpoint_url": s3_endpoint[1]}, samples_per_epoch=4, batch_size=2)
    assert sum(b["raw"].shape[0] for b in loader) == 4


@pytest.mark.parametrize("what", ["missing key", "missing bucket"])
def test_permanent_errors_fail_fast_with_the_url(bucket, s3_endpoint, what, caplog):
    fs, name = bucket
    url = (f"s3://{name}/images/nothing.ome.zarr" if what == "missing key" else
           f"s3://no-such-bucket-{uuid.uuid4().hex[:6]}/x.ome.zarr")
    started = time.monotonic()
    with pytest.raises(tp.ImageReadError, match="not found") as raised:
        next(iter(tp.build_loader({"dict_meta": {"path": [url]}}, split=None,
                                  storage_options=_options(s3_endpoint[1]), on_error="retry")))
    assert url in str(raised.value) and "Forbidden" not in str(raised.value)
    assert time.monotonic() - started < 30
    assert SECRET not in str(raised.value) and SECRET not in caplog.text


def test_secrets_never_leave(bucket, s3_endpoint, synthetic, tmp_path, caplog, capsys):
    fs, name = bucket
    caplog.set_level(logging.DEBUG, logger="timelapse_pipes")
    cache = tmp_path / "metadata.json"
    options = {"s3": _options(s3_endpoint[1])}
    url = f"s3://{name}/images/{synthetic['zarr_v2'].name}"
    loader = tp.build_loader({"dict_meta": {"path": [url, f"s3://{name}/images/broken.ome.zarr"]}}, split=None,
                             storage_options=options, metadata_cache=str(cache), on_error="skip",
                             samples_per_epoch=4)
    collect(loader)
    loader.prepared.pipeline.stages[1].metadata.flush()
    from distributed import Client, LocalCluster

    index = tmp_path / "index.json"  # the index: the options travel to dask workers, never into the index
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, dashboard_address=None,
                      host="127.0.0.1") as cluster, Client(cluster, set_as_default=False) as client:
        summary = tp.build_index({"dict_meta": {"path": [url, f"s3://{name}/images/broken.ome.zarr"]}},
                                 out=str(index), client=client, storage_options=options)
        worker_logs = json.dumps(client.get_worker_logs())
    assert summary["read"] == 1 and [p["row"] for p in summary["problems"]] == [2]  # the options reached them
    outputs = [json.dumps(loader.state_dict()), cache.read_text(), caplog.text, json.dumps(loader.stats()),
               index.read_text(), json.dumps(summary), worker_logs, capsys.readouterr().err]
    assert loader.stats()["skips"] >= 1
    for output in outputs:
        assert SECRET not in output


@pytest.mark.slow
def test_server_restart_mid_epoch_is_retried(s3_endpoint, synthetic):
    """Stop the S3 server mid-epoch and start it again on the same port: on_error='retry' carries on."""
    from moto.server import ThreadedMotoServer

    server, endpoint = s3_endpoint
    fs = s3fs.S3FileSystem(**_options(endpoint), skip_instance_cache=True)
    name = f"tp-{uuid.uuid4().hex[:10]}"
    fs.mkdir(name)
    fs.put(str(synthetic["zarr_v2"]), f"{name}/movie.ome.zarr", recursive=True)
    rows = {"dict_meta": {"path": [f"s3://{name}/movie.ome.zarr"]}}
    options = dict(split=None, storage_options=_options(endpoint), samples_per_epoch=12, num_timepoints=2,
                   crop={"roi_size": [2, 16, 16]}, prefetch=0)
    reference = collect(tp.build_loader(rows, **options))
    loader = tp.build_loader(rows, on_error="retry", max_retries=6, **options)
    stream = iter(loader)
    got = [next(stream), next(stream)]
    host, port = server.get_host_and_port()
    server.stop()

    def restart():
        time.sleep(1.0)
        replacement = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
        replacement.start()
        s3_endpoint_holder.append(replacement)

    s3_endpoint_holder: list = []
    threading.Thread(target=restart, daemon=True).start()
    got += list(stream)
    assert len(got) == len(reference)
    for a, b in zip(got, reference):
        assert np.array_equal(a["raw"].numpy(), b["raw"].numpy())


def test_staging_never_writes_outside_its_folder(tmp_path):
    """A URL with '..' segments (from a manifest) still lands inside the staging folder."""
    import fsspec

    from timelapse_pipes.reading.storage import stage_local

    memory = fsspec.filesystem("memory")
    memory.pipe("/lab/../../../escape.nd2", b"not really an nd2")
    stage = tmp_path / "stage"
    staged = stage_local("memory://lab/../../../escape.nd2", None, str(stage))
    assert os.path.dirname(staged) == str(stage) and os.path.basename(staged).endswith("escape.nd2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stage"]
