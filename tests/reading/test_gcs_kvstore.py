"""gcsfs options mapped onto tensorstore's GCS driver (reading/fast/gcs.py, google_auth.py), no server:
every option that cannot be handed over faithfully is refused (one test each), the ones that can
give the expected spec, the endpoint is claimed once per process, and the credentials lookup finds
what tensorstore finds. Each test runs as in a fresh process: no endpoint claimed, a chosen identity."""

from __future__ import annotations

import http.server
import json
import os
import socket
import threading
from pathlib import Path

import pytest

from timelapse_pipes.reading.fast import gcs, google_auth
from timelapse_pipes.reading.fast.google_auth import ANONYMOUS, FILE, FIXED, GCE, UNCLEAR, Identity
from timelapse_pipes.reading.fast.object_store import Unmapped

URL = "gs://lab-bucket/movies/a.ome.zarr/0"
EMULATOR = "http://127.0.0.1:9023"
SECRET = "ya29.never-print-this-7e21"
PRIVATE_KEY = "-----BEGIN PRIVATE KEY-----never-print-this-either"


@pytest.fixture
def fresh(monkeypatch):
    """As in a new process: no endpoint claimed nor named, anonymous; ``fresh(identity)`` picks another."""
    monkeypatch.setattr(gcs, "_claim", gcs.EndpointClaim())
    for name in (gcs.ENDPOINT_VARIABLE, "STORAGE_EMULATOR_HOST", "GOOGLE_API_USE_CLIENT_CERTIFICATE",
                 "GOOGLE_CLOUD_UNIVERSE_DOMAIN", "NO_GCE_CHECK"):
        monkeypatch.setenv(name, "")  # recorded, so that the teardown puts back the real value
        monkeypatch.delenv(name)
    monkeypatch.setattr(google_auth, "GCSFS_TOKEN_CACHE", "/nonexistent/.gcs_tokens")

    def use(identity: Identity) -> None:
        monkeypatch.setattr(google_auth, "_identity", identity)

    use(Identity(ANONYMOUS))
    return use


def _key_file(folder: Path, kind: str = "service_account") -> str:
    content = {"service_account": {"type": "service_account", "private_key": PRIVATE_KEY,
                                   "client_email": "reader@lab.iam.gserviceaccount.com"},
               "external_account": {"type": "external_account", "audience": "//iam.googleapis.com/x"}}[kind]
    path = folder / f"{kind}.json"
    path.write_text(json.dumps(content))
    return str(path)


def test_anonymous_emulator_row(fresh):
    spec = gcs.gcs_kvstore(URL, {"endpoint_url": EMULATOR + "/", "token": "anon"})
    assert spec == {"driver": "gcs", "bucket": "lab-bucket", "path": "movies/a.ome.zarr/0/",
                    "gcs_request_retries": gcs.RETRIES}
    assert os.environ[gcs.ENDPOINT_VARIABLE] == EMULATOR


def test_googles_endpoint_sets_nothing(fresh):
    gcs.gcs_kvstore("gcs://lab-bucket", {"token": None, "project": "lab", "access": "read_only"})
    assert gcs.ENDPOINT_VARIABLE not in os.environ and gcs._claim.endpoint == gcs.DEFAULT_ENDPOINT
    with pytest.raises(Unmapped, match=f"one endpoint per process.*here {gcs.DEFAULT_ENDPOINT}, not {EMULATOR}"):
        gcs.gcs_kvstore(URL, {"endpoint_url": EMULATOR, "token": "anon"})


def test_a_named_endpoint_is_the_processs(fresh, monkeypatch):
    monkeypatch.setenv(gcs.ENDPOINT_VARIABLE, EMULATOR)
    gcs.gcs_kvstore(URL, {"endpoint_url": EMULATOR, "token": "anon"})
    with pytest.raises(Unmapped, match="one endpoint per process"):
        gcs.gcs_kvstore(URL, {"token": "anon"})  # Google's: tensorstore would read the emulator


def test_endpoint_changed_after_the_claim(fresh, monkeypatch):
    gcs.gcs_kvstore(URL, {"endpoint_url": EMULATOR, "token": "anon"})
    monkeypatch.setenv(gcs.ENDPOINT_VARIABLE, "http://127.0.0.1:1")
    with pytest.raises(Unmapped, match="changed"):
        gcs.gcs_kvstore(URL, {"endpoint_url": "http://127.0.0.1:1", "token": "anon"})


def test_a_refused_row_claims_nothing(fresh):
    with pytest.raises(Unmapped):
        gcs.gcs_kvstore(URL, {"endpoint_url": EMULATOR, "token": SECRET})
    assert gcs._claim.endpoint is None and gcs.ENDPOINT_VARIABLE not in os.environ


@pytest.mark.parametrize("environ,endpoint", [
    ({"STORAGE_EMULATOR_HOST": "localhost:9023"}, "http://localhost:9023"),
    ({"STORAGE_EMULATOR_HOST": "https://gcs.lab"}, "https://gcs.lab"),
    ({"GOOGLE_CLOUD_UNIVERSE_DOMAIN": "lab.example"}, "https://storage.lab.example"),
    ({}, gcs.DEFAULT_ENDPOINT),
])
def test_endpoint_as_gcsfs_finds_it(environ, endpoint):
    assert gcs.gcs_endpoint({}, environ) == endpoint
    assert gcs.gcs_endpoint({"endpoint_url": EMULATOR}, environ) == EMULATOR


@pytest.mark.parametrize("options,billed", [({"requester_pays": "lab-billing"}, "lab-billing"),
                                            ({"requester_pays": True, "project": "lab"}, "lab")])
def test_requester_pays_bills_the_same_project(fresh, options, billed):
    assert gcs.gcs_kvstore(URL, options)["gcs_user_project"] == {"project_id": billed}


def test_tokens_that_sign_as_tensorstore_does(fresh, tmp_path):
    key = _key_file(tmp_path)
    fresh(Identity(FILE, path=os.path.realpath(key), file_kind="service_account"))
    for token in (key, None, "google_default"):
        spec = gcs.gcs_kvstore(URL, {"token": token})
        assert PRIVATE_KEY not in json.dumps(spec) and key not in json.dumps(spec)
    fresh(Identity(GCE))
    for token in ("cloud", None, "google_default"):
        gcs.gcs_kvstore(URL, {"token": token})


@pytest.mark.parametrize("options,reason", [
    ({"token": SECRET}, "raw access token"),
    ({"token": {"type": "service_account", "private_key": PRIVATE_KEY}}, "as a dict"),
    ({"token": type("Credentials", (), {})()}, "an object of type Credentials"),
    ({"token": "browser"}, "'browser'"),
    ({"token": "cache"}, "'cache'"),
    ({"token": "cloud"}, "token='cloud'"),
    ({"token": "google_default"}, "finds no credentials"),
    ({"version_aware": True}, "version_aware"),
    ({"session_kwargs": {"trust_env": True}}, "session_kwargs"),
    ({"fixed_key_metadata": {"content_type": "x"}}, "'fixed_key_metadata'"),
    ({"requester_pays": True}, "requester_pays=True"),
    ({"endpoint_url": "ftp://127.0.0.1:1"}, "not an http"),
])
def test_options_that_cannot_be_handed_over_are_refused(fresh, options, reason):
    with pytest.raises(Unmapped, match=reason) as raised:
        gcs.gcs_kvstore(URL, options)
    assert SECRET not in str(raised.value) and PRIVATE_KEY not in str(raised.value)


def test_anon_is_refused_where_tensorstore_would_sign(fresh, tmp_path):
    fresh(Identity(FILE, path=_key_file(tmp_path), file_kind="service_account"))
    with pytest.raises(Unmapped, match="token='anon', but .* would sign with the credentials file"):
        gcs.gcs_kvstore(URL, {"token": "anon"})


def test_another_token_file_is_refused(fresh, tmp_path):
    with pytest.raises(Unmapped, match="GOOGLE_APPLICATION_CREDENTIALS") as raised:
        gcs.gcs_kvstore(URL, {"token": _key_file(tmp_path)})
    assert PRIVATE_KEY not in str(raised.value)


@pytest.mark.parametrize("identity,reason", [
    (Identity(FIXED), "GOOGLE_AUTH_TOKEN_FOR_TESTING"),
    (Identity(UNCLEAR, why="the metadata server did not answer"), "did not answer"),
    (Identity(FILE, path="/x/external.json", file_kind="other"), "cannot sign with the credentials file"),
])
def test_identities_tensorstore_cannot_match_refuse_every_token(fresh, identity, reason):
    fresh(identity)
    with pytest.raises(Unmapped, match=reason):
        gcs.gcs_kvstore(URL, {"token": None})


def test_no_gce_check_keeps_gcsfs_off_the_metadata_server(fresh, monkeypatch):
    fresh(Identity(GCE))
    monkeypatch.setenv("NO_GCE_CHECK", "True")
    with pytest.raises(Unmapped, match="NO_GCE_CHECK"):
        gcs.gcs_kvstore(URL, {})


def test_gcsfs_token_cache_is_refused(fresh, monkeypatch, tmp_path):
    (tmp_path / ".gcs_tokens").write_bytes(b"")
    monkeypatch.setattr(google_auth, "GCSFS_TOKEN_CACHE", str(tmp_path / ".gcs_tokens"))
    with pytest.raises(Unmapped, match="cached"):
        gcs.gcs_kvstore(URL, {})


def test_mutual_tls_is_refused(fresh, monkeypatch):
    monkeypatch.setenv("GOOGLE_API_USE_CLIENT_CERTIFICATE", "true")
    with pytest.raises(Unmapped, match="mutual TLS"):
        gcs.gcs_kvstore(URL, {"token": "anon"})


def test_other_stores_are_refused(fresh):
    with pytest.raises(Unmapped, match="not a GCS URL: s3"):
        gcs.gcs_kvstore("s3://bucket/a.zarr", {"token": "anon"})


# -- the credentials lookup, as tensorstore makes it ------------------------------------------------

def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def test_lookup_order(tmp_path):
    named, config = _key_file(tmp_path), tmp_path / "gcloud"
    config.mkdir()
    (config / "application_default_credentials.json").write_text(json.dumps(
        {"type": "authorized_user", "client_id": "c", "client_secret": "s", "refresh_token": "r"}))
    home = {"HOME": str(tmp_path), "GCE_METADATA_ROOT": _closed_port()}
    assert google_auth.find_identity({**home, "GOOGLE_AUTH_TOKEN_FOR_TESTING": "t",
                                      "GOOGLE_APPLICATION_CREDENTIALS": named}).kind == FIXED
    found = google_auth.find_identity({**home, "GOOGLE_APPLICATION_CREDENTIALS": named, "CLOUDSDK_CONFIG": str(config)})
    assert (found.kind, found.path, found.file_kind) == (FILE, os.path.realpath(named), "service_account")
    found = google_auth.find_identity({**home, "CLOUDSDK_CONFIG": str(config)})
    assert (found.kind, found.file_kind) == (FILE, "authorized_user")
    assert google_auth.find_identity({**home, "GOOGLE_APPLICATION_CREDENTIALS": _key_file(tmp_path, "external_account")
                                      }).file_kind == "other"
    assert google_auth.find_identity({**home, "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "gone.json")
                                      }).kind == UNCLEAR
    assert google_auth.find_identity(home).kind == ANONYMOUS  # no file, no metadata server


def test_a_metadata_server_that_answers_is_gce(tmp_path):
    class Metadata(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            self.send_response(200 if self.headers.get("Metadata-Flavor") == "Google" else 403)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Metadata)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        metadata = f"127.0.0.1:{server.server_port}"
        assert google_auth.find_identity({"HOME": str(tmp_path), "GCE_METADATA_ROOT": metadata}).kind == GCE
    finally:
        server.shutdown()
        server.server_close()
