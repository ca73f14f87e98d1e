"""GCS (gcp-storage-emulator) and Azure Blob (Azurite) on loopback: manifests and images read from
each equal the local files, through gcsfs and adlfs."""

from __future__ import annotations

import socket
import subprocess
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

import timelapse_pipes as tp
from tests.helpers import azurite
from timelapse_pipes.testing import collect

pytestmark = [pytest.mark.timeout(300), pytest.mark.cloud]

# Azurite's documented, public development account (not a secret).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _azurite_binary() -> Path:
    """Microsoft's emulator at the pinned version (tests/helpers/azurite.py; .ci/run installs it before the tests)."""
    try:
        return azurite.install()
    except azurite.AzuriteInstallError as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture(scope="module")
def azure_options():
    port = _free_port()
    process = subprocess.Popen(
        [str(_azurite_binary()), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence",
         "--disableTelemetry", "--silent", "--skipApiVersionCheck"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    connection = (f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
                  f"BlobEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};")
    yield {"connection_string": connection}
    process.terminate()
    process.wait(timeout=10)


def _upload(protocol: str, options: dict, synthetic) -> tuple[str, object]:
    import fsspec

    fs = fsspec.filesystem("gcs" if protocol == "gs" else "az", **options)
    name = f"tp-{uuid.uuid4().hex[:10]}"
    fs.mkdir(name)
    for key in ("zarr_v3", "zarr_v2", "zarr_2d"):
        fs.put(str(synthetic[key]), f"{name}/images/{synthetic[key].name}", recursive=True)
    for key in ("ome_tiff", "tiff", "czi"):
        fs.put(str(synthetic[key]), f"{name}/images/{synthetic[key].name}")
    fs.pipe(f"{name}/manifest.csv", f"path,channel,split\nimages/{synthetic['zarr_2d'].name},1,train\n"
                                    f"images/{synthetic['czi'].name},0,train\n".encode())
    return name, fs


@pytest.fixture(scope="module")
def gcs_bucket(gcs_options, synthetic):
    return _upload("gs", gcs_options, synthetic)[0]


@pytest.fixture(scope="module")
def azure_container(azure_options, synthetic):
    return _upload("az", azure_options, synthetic)[0]


CASES = [("zarr_v3", 3), ("zarr_v2", 3), ("ome_tiff", 3), ("tiff", 2), ("czi", 2)]


def _assert_equal(local_path: str, url: str, options: dict, stage: Path, spatial: int) -> None:
    build = dict(split=None, spatial_dims=spatial, num_timepoints=2, samples_per_epoch=2)
    local = collect(tp.build_loader({"dict_meta": {"path": [local_path]}}, **build))
    remote = collect(tp.build_loader({"dict_meta": {"path": [url]}}, storage_options=options,
                                     stage_dir=str(stage), **build))
    assert len(local) == len(remote) == 2
    for a, b in zip(local, remote):
        assert a["T"].tolist() == b["T"].tolist() and np.array_equal(a["raw"].numpy(), b["raw"].numpy())


@pytest.mark.parametrize("key,spatial", CASES)
def test_gcs_pixels_equal_local(gcs_bucket, gcs_options, synthetic, key, spatial, tmp_path):
    _assert_equal(str(synthetic[key]), f"gs://{gcs_bucket}/images/{synthetic[key].name}",
                  {"gs": gcs_options}, tmp_path, spatial)


@pytest.mark.parametrize("scheme", ["az", "abfs"])
@pytest.mark.parametrize("key,spatial", CASES)
def test_azure_pixels_equal_local(azure_container, azure_options, synthetic, key, spatial, scheme, tmp_path):
    _assert_equal(str(synthetic[key]), f"{scheme}://{azure_container}/images/{synthetic[key].name}",
                  {"az": azure_options}, tmp_path, spatial)


@pytest.mark.parametrize("cloud", ["gs", "az"])
def test_manifest_in_the_cloud(cloud, request, tmp_path):
    options = request.getfixturevalue("gcs_options" if cloud == "gs" else "azure_options")
    bucket = request.getfixturevalue("gcs_bucket" if cloud == "gs" else "azure_container")
    loader = tp.build_loader(f"{cloud}://{bucket}/manifest.csv", storage_options={cloud: options},
                             spatial_dims=2, crop={"roi_size": [16, 16]}, samples_per_epoch=4, batch_size=2,
                             stage_dir=str(tmp_path))
    paths = {p for b in collect(loader) for p in b["original_path"]}
    assert paths == {f"{cloud}://{bucket}/images/movie_2d.ome.zarr", f"{cloud}://{bucket}/images/movie.czi"}
