"""The metadata index (issue 13): built on real dask clusters (a LocalCluster, and an external
`dask scheduler` + `dask worker` processes on 127.0.0.1), for local files and for S3 on moto; the
loader that uses it opens no file to plan; a killed build loses nothing and its rerun reads only
what is missing."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import distributed
import pytest

import timelapse_pipes as tp
from tests.cloud.conftest import s3_endpoint  # noqa: F401 - the moto fixture
from tests.cloud.test_cloud_s3 import SECRET, _options
from tests.helpers import OpenRecorder
from timelapse_pipes.cli.inspect import inspect_manifest
from timelapse_pipes.config.manifest import read_manifest
from timelapse_pipes.reading.cache.file_format import (
    CACHE_VERSION,
    CacheContents,
    append_entries,
    parse_cache,
    write_cache,
)
from timelapse_pipes.testing import collect

pytestmark = [pytest.mark.timeout(240), pytest.mark.slow]  # every test runs on a dask cluster

CLUSTER_START_S = 90
KILL_TEST_FILES = 60


def _entries(path: Path) -> dict:
    return parse_cache(path.read_text(), CACHE_VERSION).entries


@pytest.fixture(scope="module")
def local_cluster():
    """A LocalCluster of 1 spawned worker process with 4 threads."""
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=4, processes=True, dashboard_address=None,
                                       host="127.0.0.1")
    client = distributed.Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def external_scheduler(tmp_path_factory):
    """`dask scheduler` and `dask worker` processes on 127.0.0.1, bounded in time, killed afterwards."""
    folder = tmp_path_factory.mktemp("dask")
    scheduler_file = folder / "scheduler.json"
    dask = str(Path(sys.executable).with_name("dask"))
    common = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "start_new_session": True}
    processes = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                   "--idle-timeout", "600", "--scheduler-file", str(scheduler_file)], **common)]
    try:
        deadline = time.monotonic() + CLUSTER_START_S
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert scheduler_file.exists(), "dask scheduler did not start"
        address = json.loads(scheduler_file.read_text())["address"]
        processes.append(subprocess.Popen([dask, "worker", address, "--nworkers", "2", "--nthreads", "1",
                                           "--no-dashboard", "--host", "127.0.0.1", "--death-timeout", "60"],
                                          **common))
        with distributed.Client(address, set_as_default=False) as client:
            client.wait_for_workers(2, timeout=CLUSTER_START_S)
        yield address
    finally:
        for process in reversed(processes):
            os.killpg(process.pid, signal.SIGTERM)
        for process in reversed(processes):
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture(scope="module")
def image_folder(synthetic, tmp_path_factory) -> Path:
    """The synthetic set plus a truncated TIFF, in one folder (so manifests use relative paths)."""
    folder = tmp_path_factory.mktemp("images")
    for path in synthetic.values():
        (shutil.copytree if path.is_dir() else shutil.copy)(path, folder / path.name)
    (folder / "truncated.tif").write_bytes(synthetic["tiff"].read_bytes()[:400])
    return folder


MANIFEST = (  # relative paths: the same manifest serves the local folder and the bucket
    "path,channel,scene,resolution\n"
    "movie_v3.ome.zarr,0,0,0\n"
    "movie_v3.ome.zarr,1,0,1\n"           # a second level of the same file
    "two_scenes.ome.tiff,0,0,0\n"
    "two_scenes.ome.tiff,0,Image:1,0\n"   # a second scene, by name
    "movie.tif,0,0,0\n"
    "movie.czi,1,0,0\n"
    "movie_2d.ome.zarr,0,0,0\n"
    "movie_v2.ome.zarr,5,0,0\n"           # channel out of range: a row problem, the file is indexed
    "missing.ome.zarr,0,0,0\n"            # no such file
    "truncated.tif,0,0,0\n"               # does not open
)
ENTRIES = 8  # (file, scene, level) entries: rows 1-8 (row 8's file is fine, the row is not)
READS = 9  # metadata reads: those, and truncated.tif's, whose pixels then fail to decode (no entry)


@pytest.fixture(scope="module")
def local_manifest(image_folder) -> Path:
    path = image_folder / "manifest.csv"
    path.write_text(MANIFEST)
    return path


@pytest.fixture(scope="module")
def s3_bucket(s3_endpoint, image_folder):  # noqa: F811 - the imported fixture
    import s3fs

    _, endpoint = s3_endpoint
    fs = s3fs.S3FileSystem(**_options(endpoint), skip_instance_cache=True)
    name = f"tp-index-{uuid.uuid4().hex[:8]}"
    fs.mkdir(name)
    for path in image_folder.iterdir():
        if path.name != "manifest.csv":
            fs.put(str(path), f"{name}/{path.name}", recursive=path.is_dir())
    fs.pipe(f"{name}/manifest.csv", MANIFEST.encode())
    return fs, name, {"s3": _options(endpoint)}


def _check_index(path: Path, manifest: str, storage_options=None) -> dict:
    document = json.loads(path.read_text())  # a finished index is one JSON document
    assert document["index"]["complete"] is True and len(document["entries"]) == ENTRIES
    problems = {p["row"]: p["error"] for p in document["problems"]}
    assert sorted(problems) == [8, 9, 10]
    assert "channel 5 is out of range" in problems[8]
    assert "not found" in problems[9] and "missing.ome.zarr" in problems[9]
    assert "truncated.tif" in problems[10]
    serial = inspect_manifest(manifest, storage_options=storage_options)  # inspect's own messages
    assert document["problems"] == serial["problems"]
    return document


@pytest.mark.parametrize("storage", ["local", pytest.param("s3", marks=pytest.mark.cloud)])
def test_local_and_external_clusters_build_identical_indexes(storage, local_cluster, external_scheduler,
                                                             local_manifest, request, tmp_path, caplog):
    if storage == "s3":
        fs, bucket, options = request.getfixturevalue("s3_bucket")
        manifest = f"s3://{bucket}/manifest.csv"
    else:
        manifest, options = str(local_manifest), None
    on_local = tp.build_index(manifest, out=str(tmp_path / "local.json"), client=local_cluster,
                              storage_options=options)
    on_external = tp.build_index(manifest, out=str(tmp_path / "external.json"), scheduler=external_scheduler,
                                 storage_options=options)
    assert (tmp_path / "local.json").read_bytes() == (tmp_path / "external.json").read_bytes()
    assert on_local["read"] == on_external["read"] == READS and on_local["reused"] == 0
    document = _check_index(tmp_path / "local.json", manifest, options)
    assert all(key.startswith(f'["{"s3://" if storage == "s3" else local_manifest.parent}')
               for key in document["entries"])
    if storage == "local":  # the command line's inspect on the external cluster: inspect's report
        done = subprocess.run([sys.executable, "-m", "timelapse_pipes", "inspect", manifest, "--scheduler",
                               external_scheduler, "--json"], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "TQDM_DISABLE": "1"})
        assert done.returncode == 1 and json.loads(done.stdout)["problems"] == document["problems"]
    if storage == "s3":  # the secret reached the workers (they read the bucket) but nothing written
        logs = json.dumps(local_cluster.get_worker_logs()) + caplog.text + json.dumps(on_local)
        assert SECRET not in (tmp_path / "local.json").read_text() and SECRET not in logs


def test_inspect_on_the_cluster_reports_what_serial_inspect_does(local_cluster, local_manifest, tmp_path):
    serial = inspect_manifest(str(local_manifest), spatial_dims=2)
    engine = inspect_manifest(str(local_manifest), spatial_dims=2, client=local_cluster,
                              index=str(tmp_path / "index.json"))
    assert engine["rows"] == serial["rows"] and engine["problems"] == serial["problems"]
    assert [row["row"] for row in serial["rows"]] == [5, 6, 7]  # 2-D files; the Z-stacks are problems
    assert "spatial_dims=2 but the image has Z=3" in serial["problems"][0]["error"]
    assert json.loads((tmp_path / "index.json").read_text())["index"]["checks"]["spatial_dims"] == 2


def _metadata_cache(loader: tp.TimelapseLoader) -> tp.MetadataCache:
    return next(s for s in loader.prepared.pipeline.stages if isinstance(s, tp.MetadataCacher)).metadata


GOOD_ROWS = "".join(MANIFEST.splitlines(keepends=True)[:8])  # header + the rows that fit


def test_a_loader_with_the_index_opens_no_file_before_its_first_sample(local_cluster, image_folder, tmp_path):
    manifest = image_folder / "good.csv"
    manifest.write_text(GOOD_ROWS)
    index = tmp_path / "index.json"
    tp.build_index(str(manifest), out=str(index), client=local_cluster)
    options = dict(split=None, spatial_dims=3, batch_size=1, num_workers=0, samples_per_epoch=7, prefetch=0)
    recorder = OpenRecorder(str(image_folder))
    with recorder:
        loader = tp.build_loader(str(manifest), metadata_cache=str(index), **options)
        stream = iter(loader)
        assert recorder.opened == [str(manifest)]  # building and starting the loader opens no image
        first = next(stream)
    sampled = first["original_path"][0]
    images = recorder.opened[1:]
    assert images and all(path.startswith(sampled) for path in images)  # only the first sample's file
    assert _metadata_cache(loader).files_opened == 0 and loader.prepared.readers.opens == 1
    rest = collect(stream)
    assert _metadata_cache(loader).files_opened == 0 and len(rest) == 6  # every row planned from the index

    without = tp.build_loader(str(manifest), **options)  # the control: the same loader reads metadata itself
    collect(without)
    assert _metadata_cache(without).files_opened == 7


def test_loaders_trust_the_index_unless_asked_to_verify(local_cluster, image_folder, tmp_path):
    copy = tmp_path / "movie.tif"
    shutil.copy(image_folder / "movie.tif", copy)
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path\n{copy}\n")
    index = tmp_path / "index.json"
    tp.build_index(str(manifest), out=str(index), client=local_cluster)
    before = index.read_bytes()
    os.utime(copy, ns=(1, 1))  # the file changes after the index was built
    row = read_manifest(str(manifest), split=None)[0]
    trusting, verifying = tp.MetadataCache(str(index)), tp.MetadataCache(str(index), verify=True)
    assert trusting.get(row, tp.ReaderCache()) == verifying.get(row, tp.ReaderCache())
    assert trusting.files_opened == 0 and verifying.files_opened == 1
    verifying.flush()
    assert index.read_bytes() == before  # an index is read-only to loaders


def test_a_rerun_reads_only_what_changed_or_was_added(local_cluster, image_folder, tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    for name in ("movie.tif", "movie.czi", "movie_2d.ome.zarr"):
        source = image_folder / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, folder / name)
    index = tmp_path / "index.json"
    manifest = folder / "m.csv"
    manifest.write_text("path\nmovie.tif\nmovie.czi\n")
    first = tp.build_index(str(manifest), out=str(index), client=local_cluster)
    assert (first["read"], first["reused"], first["entries"]) == (2, 0, 2)
    os.utime(folder / "movie.tif", ns=(1, 1))
    manifest.write_text("path\nmovie.tif\nmovie.czi\nmovie_2d.ome.zarr\n")
    second = tp.build_index(str(manifest), out=str(index), client=local_cluster)
    assert (second["read"], second["reused"], second["entries"]) == (2, 1, 3)  # the stale version is dropped
    assert sum(key.startswith(f'["{folder / "movie.tif"}"') for key in _entries(index)) == 1


def test_a_killed_build_keeps_what_it_wrote_and_the_rerun_reads_only_the_rest(local_cluster, image_folder,
                                                                               tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for n in range(KILL_TEST_FILES):
        shutil.copy(image_folder / "movie.tif", folder / f"movie{n:03}.tif")
    manifest = folder / "m.csv"
    manifest.write_text("path\n" + "".join(f"movie{n:03}.tif\n" for n in range(KILL_TEST_FILES)))
    index = tmp_path / "index.json"
    command = [sys.executable, "-m", "timelapse_pipes", "index", str(manifest), "-o", str(index),
               "--workers", "1", "--threads-per-worker", "1", "--flush-every", "1"]
    build = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
                             env={**os.environ, "TQDM_DISABLE": "1"})
    try:
        deadline = time.monotonic() + CLUSTER_START_S
        while time.monotonic() < deadline and build.poll() is None:
            if index.exists() and len(_entries(index)) >= 5:
                break
            time.sleep(0.02)
    finally:
        os.killpg(build.pid, signal.SIGKILL)  # the CLI and its cluster's processes
        _, stderr = build.communicate(timeout=30)
    kept = _entries(index)
    assert 5 <= len(kept) < KILL_TEST_FILES, stderr.decode()[-2000:]
    assert json.loads(index.read_text().splitlines()[0])["index"]["complete"] is False

    rerun = tp.build_index(str(manifest), out=str(index), client=local_cluster)
    assert rerun["read"] == KILL_TEST_FILES - len(kept) and rerun["reused"] == len(kept)
    final = json.loads(index.read_text())
    assert final["index"]["complete"] is True and len(final["entries"]) == KILL_TEST_FILES
    assert all(final["entries"][key] == value for key, value in kept.items())


def test_a_chunk_cut_short_by_a_kill_costs_only_its_own_entries(local_cluster, image_folder, tmp_path):
    index = tmp_path / "index.json"
    write_cache(str(index), CacheContents({"kept": {"n": 1}}, {"complete": False}), CACHE_VERSION)
    append_entries(str(index), {"appended": {"n": 2}})
    with open(index, "a") as stream:
        stream.write('{"entries": {"cut": {"n"')  # the kill, mid-write
    assert set(_entries(index)) == {"kept", "appended"}
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path\n{image_folder / 'movie.tif'}\n")
    assert tp.build_index(str(manifest), out=str(index), client=local_cluster)["read"] == 1
    assert len(json.loads(index.read_text())["entries"]) == 3  # one document again: the cut chunk is gone


@pytest.mark.cloud
def test_a_loader_reads_an_index_from_s3_once_and_never_writes_it(local_cluster, s3_bucket, tmp_path, monkeypatch):
    fs, bucket, options = s3_bucket
    fs.pipe(f"{bucket}/good.csv", GOOD_ROWS.encode())
    local = tmp_path / "index.json"
    tp.build_index(f"s3://{bucket}/good.csv", out=str(local), client=local_cluster, storage_options=options)
    fs.put(str(local), f"{bucket}/good.index.json")
    etag = fs.info(f"{bucket}/good.index.json")["ETag"]
    loader = tp.build_loader(f"s3://{bucket}/good.csv", split=None, metadata_cache=f"s3://{bucket}/good.index.json",
                             storage_options=options, samples_per_epoch=7, batch_size=1, num_workers=1,
                             stage_dir=str(tmp_path / "stage"))
    assert len(collect(loader)) == 7
    assert _metadata_cache(loader).files_opened == 0 and _metadata_cache(loader).is_index
    assert fs.info(f"{bucket}/good.index.json")["ETag"] == etag

    missing = tp.build_loader(f"s3://{bucket}/good.csv", split=None, metadata_cache=f"s3://{bucket}/nothing.json",
                              storage_options=options, samples_per_epoch=1)
    with pytest.raises(tp.ConfigError, match="could not be read.*timelapse-pipes index") as raised:
        next(iter(missing))
    assert SECRET not in str(raised.value)
