"""Zarr arrays in S3 read by tensorstore's own S3 driver, with the credentials the user gave s3fs.

Against moto's server on 127.0.0.1: v2, v3 and sharded arrays read through tensorstore equal
bioio's own read of the same window (full frames and crops, for each form of the options); with
moto checking signatures, tensorstore signs with the user's key and never with the environment's
or anonymously, and a key revoked mid-run is an error naming the URL; every option that cannot be
handed over faithfully keeps the array with zarr-python over s3fs (still equal to bioio); and a
loader over S3 resumes exactly with thread workers.
"""

from __future__ import annotations

import json
import uuid
import warnings
from pathlib import Path

import numpy as np
import pytest
import s3fs

import timelapse_pipes as tp
from tests.cloud.remote_arrays import CROP, READER, assert_tensorstore_reads_equal_bioio, bioio_read, open_remote
from timelapse_pipes.reading.fast import object_store
from timelapse_pipes.reading.fast.tensorstore import TensorStoreArray
from timelapse_pipes.reading.regions import read_region
from timelapse_pipes.testing import noise_movie, run_state_round_trip, write_ome_zarr

pytest.importorskip("tensorstore")
pytestmark = [pytest.mark.timeout(300), pytest.mark.cloud]

SECRET = "tensorstore-secret-7c1e"


def _write(folder: Path) -> dict[str, Path]:
    from bioio_ome_zarr.writers import OMEZarrWriter

    movie = noise_movie((4, 2, 4, 24, 30), seed=31, high=60000)
    files = {"v3": folder / "v3.ome.zarr", "v2": folder / "v2.ome.zarr", "sharded": folder / "sharded.ome.zarr"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the writers' own performance notices
        write_ome_zarr(files["v3"], movie, zarr_format=3, levels=1, chunk=(1, 1, 4, 16, 16))
        write_ome_zarr(files["v2"], movie, zarr_format=2, levels=1, chunk=(2, 2, 3, 16, 32))
        OMEZarrWriter(str(files["sharded"]), level_shapes=[movie.shape], dtype=movie.dtype,
                      chunk_shape=(1, 1, 2, 8, 16), shard_shape=(1, 2, 4, 24, 32), zarr_format=3,
                      axes_names=["t", "c", "z", "y", "x"]).write_full_volume(movie)
    return files


@pytest.fixture(scope="module")
def bucket(s3_endpoint, tmp_path_factory):
    """The three arrays in a fresh bucket: {kind: URL}."""
    _, endpoint = s3_endpoint
    fs = s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True)
    name = f"ts-{uuid.uuid4().hex[:10]}"
    fs.mkdir(name)
    urls = {}
    for kind, path in _write(tmp_path_factory.mktemp("s3-tensorstore")).items():
        fs.put(str(path), f"{name}/{path.name}", recursive=True)
        urls[kind] = f"s3://{name}/{path.name}"
    return urls


@pytest.fixture(scope="module")
def iam_key(s3_endpoint):
    """An IAM user's access key (allowed everything), for the tests where moto checks signatures."""
    import boto3

    iam = boto3.client("iam", endpoint_url=s3_endpoint[1], region_name="us-east-1")
    user = f"reader-{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="all", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
    return user, iam.create_access_key(UserName=user)["AccessKey"]


@pytest.mark.parametrize("kind", ["v2", "v3", "sharded"])
def test_pixels_equal_bioio(bucket, s3_endpoint, kind):
    options = {"key": "testing", "secret": SECRET, "client_kwargs": {"endpoint_url": s3_endpoint[1]}}
    assert_tensorstore_reads_equal_bioio(bucket[kind], options)


@pytest.mark.parametrize("form", ["flat endpoint, environment keys", "per protocol"])
def test_each_form_of_options_reads_through_tensorstore(bucket, s3_endpoint, form):
    endpoint = s3_endpoint[1]
    options = {"flat endpoint, environment keys": {"endpoint_url": endpoint},
               "per protocol": {"s3": {"username": "testing", "password": SECRET, "endpoint_url": endpoint}},
               }[form]
    opened = open_remote(bucket["v3"], options)
    try:
        assert isinstance(opened.native(), TensorStoreArray)
        got = read_region(opened, "TCZYX", [0, 3], None, CROP)
        np.testing.assert_array_equal(got, bioio_read(bucket["v3"], options.get("s3", options), [0, 3], CROP))
    finally:
        opened.close()


def test_tensorstore_signs_with_the_users_key_only(bucket, s3_endpoint, iam_key, monkeypatch):
    """moto checks every signature: the user's key reads, whatever the environment holds; a wrong
    secret fails however valid the environment's key is; a key revoked after opening fails the
    read, naming the URL (no anonymous retry)."""
    from moto.core.authorization import enable_iam_authentication

    user, key = iam_key
    endpoint, url = s3_endpoint[1], bucket["sharded"]
    given = {"key": key["AccessKeyId"], "secret": key["SecretAccessKey"], "endpoint_url": endpoint}
    expected = bioio_read(url, given, [1], CROP)  # before signatures are checked
    with enable_iam_authentication():
        opened = open_remote(url, given)  # the environment holds moto's dummy key, refused by IAM
        assert isinstance(opened.native(), TensorStoreArray)
        np.testing.assert_array_equal(read_region(opened, "TCZYX", [1], None, CROP), expected)

        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])  # a valid key the user did not give
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])
        with pytest.raises(tp.ImageReadError, match="access denied"):
            open_remote(url, {**given, "secret": "wrong-secret"})

        import boto3

        iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                           aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"])
        iam.delete_access_key(UserName=user, AccessKeyId=key["AccessKeyId"])
        with pytest.raises(tp.ImageReadError, match="InvalidAccessKeyId") as raised:
            read_region(opened, "TCZYX", [2], None, CROP)
        assert isinstance(raised.value.__cause__, PermissionError) and url in str(raised.value)
        assert key["SecretAccessKey"] not in str(raised.value)


@pytest.mark.parametrize("options,reason", [
    ({"profile": "lab"}, "'profile'"),
    ({"session": object()}, "session"),
    ({"config_kwargs": {"signature_version": "s3v4"}}, "signature_version"),
    ({"client_kwargs": {"verify": False}}, "'verify'"),
    ({"s3_additional_kwargs": {"SSECustomerAlgorithm": "AES256"}}, "s3_additional_kwargs"),
    ({"version_aware": True}, "version_aware"),
    ({"use_ssl": False}, "use_ssl"),
    ({"anon": True, "key": "a", "secret": "b"}, "ambiguous"),
    ({"key": "a"}, "without its secret"),
    ({"endpoint_url": "ftp://127.0.0.1:1"}, "not an http"),
])
def test_options_that_cannot_be_handed_over_are_refused(options, reason):
    with pytest.raises(object_store.Unmapped, match=reason):
        object_store.s3_kvstore("s3://bucket/a.zarr/0", options)


def test_other_object_stores_are_refused():
    with pytest.raises(object_store.Unmapped, match="gs"):
        object_store.s3_kvstore("gs://bucket/a.zarr/0", {"token": "anon"})


def test_anonymous_options_map_to_anonymous_requests():
    spec = object_store.s3_kvstore("s3://open-data/x.zarr", {"anon": True})
    assert spec["aws_credentials"] == {"type": "anonymous"} and "endpoint" not in spec and "aws_region" not in spec


def test_without_keys_the_environments_static_keys_are_handed_over(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAENVIRONMENT")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "environment-secret")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    spec = object_store.s3_kvstore("s3://bucket/a.zarr", {"endpoint_url": "http://127.0.0.1:9"})
    assert spec["aws_region"] == "ap-south-1"
    text = Path(spec["aws_credentials"]["credentials_file"]).read_text()
    assert "aws_access_key_id = AKIAENVIRONMENT" in text and "aws_secret_access_key = environment-secret" in text


def test_the_credentials_file_holds_the_users_key():
    spec = object_store.s3_kvstore("s3://bucket/a.zarr/0", {
        "key": "AKIAUSER", "secret": SECRET, "token": "session-token",
        "client_kwargs": {"endpoint_url": "https://s3.lab.example/", "region_name": "eu-central-1"}})
    assert (spec["bucket"], spec["path"], spec["endpoint"], spec["aws_region"]) == (
        "bucket", "a.zarr/0/", "https://s3.lab.example", "eu-central-1")
    credentials = spec["aws_credentials"]
    assert credentials["type"] == "profile" and SECRET not in json.dumps(spec)
    text = Path(credentials["credentials_file"]).read_text()
    assert f"[{credentials['profile']}]" in text and "aws_access_key_id = AKIAUSER" in text
    assert f"aws_secret_access_key = {SECRET}" in text and "aws_session_token = session-token" in text


@pytest.mark.parametrize("refusal", ["profile", "credential process"])
def test_refused_options_still_read_with_zarr(bucket, s3_endpoint, refusal, tmp_path, monkeypatch):
    """Options s3fs takes but tensorstore cannot: zarr-python reads over s3fs, equal to bioio."""
    endpoint = s3_endpoint[1]
    options: dict = {"endpoint_url": endpoint}
    if refusal == "profile":
        (tmp_path / "credentials").write_text("[lab]\naws_access_key_id = testing\naws_secret_access_key = lab\n")
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
        options["profile"] = "lab"
    else:  # refreshable: botocore reruns it, tensorstore could not
        import sys

        printed = json.dumps({"Version": 1, "AccessKeyId": "testing", "SecretAccessKey": "process"})
        (tmp_path / "config").write_text(f"[default]\ncredential_process = {sys.executable} -c "
                                         f"\"print('{printed.replace(chr(34), chr(92) + chr(34))}')\"\n")
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            monkeypatch.delenv(name)
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
        options["skip_instance_cache"] = True  # a fresh s3fs, resolving the process's key
    opened = open_remote(bucket["v2"], options)
    try:
        native = opened.native()
        assert type(native).__name__ == "NativeArray"
        np.testing.assert_array_equal(read_region(opened, "TCZYX", [3, 1], None, CROP),
                                      bioio_read(bucket["v2"], options, [3, 1], CROP))
    finally:
        opened.close()


def test_loader_over_s3_resumes_exactly(bucket, s3_endpoint):
    options = {"key": "testing", "secret": SECRET, "endpoint_url": s3_endpoint[1]}
    rows = {"dict_meta": {"path": [bucket["v3"], bucket["sharded"]]}}

    def make():
        return tp.build_loader(rows, split=None, storage_options=options, num_timepoints=2, batch_size=2,
                               samples_per_epoch=4, crop={"roi_size": [3, 12, 20]}, num_workers=2)

    run_state_round_trip(make, midpoints=[1], epochs=2)


def test_thread_workers_open_s3_arrays_in_the_first_epoch_only(bucket, s3_endpoint, monkeypatch):
    """Each open is about 23 S3 requests: a new epoch's worker threads reuse the last epoch's opens."""
    from tests.helpers import count_reader_opens

    options = {"key": "testing", "secret": SECRET, "endpoint_url": s3_endpoint[1]}
    opened = count_reader_opens(monkeypatch, READER)
    with tp.build_loader({"dict_meta": {"path": [bucket["v3"]]}}, split=None, storage_options=options,
                         samples_per_epoch=8, batch_size=2, crop={"roi_size": [3, 12, 20]}, num_workers=4) as loader:
        counts = []
        for _ in range(3):
            before = len(opened)
            assert sum(len(batch["raw"]) for batch in loader) == 8
            counts.append(len(opened) - before)
        assert isinstance(loader.prepared.readers.get(bucket["v3"], READER, 0, 0, options).native(), TensorStoreArray)
    assert counts[0] >= 1 and sum(counts) <= 4, counts  # at most one image per worker thread, no reopen
