"""tensorstore's own S3 driver for remote zarr arrays, with the credentials s3fs was given.

bioio-ome-zarr opens an ``s3://`` OME-Zarr through s3fs (with the manifest's ``storage_options``,
:mod:`..storage`); :func:`s3_kvstore` turns that same ``S3FileSystem``'s options
(:func:`remote_location`) into a kvstore spec
for tensorstore's ``s3`` driver, so that tensorstore reads the array with the same endpoint, region
and credentials:

* ``anon=True``: anonymous requests;
* ``key`` / ``secret`` (``username`` / ``password``) and ``token``, flat or in ``client_kwargs``: those
  exact keys, handed to tensorstore as a one-profile credentials file held in memory
  (``memfd``, Linux), never written to disk;
* no credentials: the ones botocore's chain finds (what s3fs would use), only where they are
  static (environment variables, the shared credentials or config file); refreshable ones (a role,
  SSO, a credential process, instance metadata) are not copied;
* ``endpoint_url`` (flat or in ``client_kwargs``), ``client_kwargs["region_name"]`` (else botocore's
  region, else us-east-1, as botocore signs with a custom endpoint), ``requester_pays``.

Anything it cannot hand over faithfully (a ``profile``, an injected ``session``, ``config_kwargs``
other than timeouts, ``s3_additional_kwargs``, ``version_aware``, ``use_ssl=False``, an unknown
key, ``anon`` together with keys, a key without a secret, GCS / Azure / HTTP stores) raises
:class:`Unmapped`, and the array stays with zarr-python over s3fs: tensorstore never reads with
credentials other than the user's.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Iterable, Mapping

__all__ = ["Unmapped", "refuse_unknown", "remote_location", "s3_kvstore"]

# s3fs options that change nothing about which bytes are read, or with which credentials
_INERT = frozenset({"asynchronous", "loop", "skip_instance_cache", "use_listings_cache", "listings_expiry_time",
                    "max_paths", "default_block_size", "default_fill_cache", "default_cache_type",
                    "cache_regions", "max_concurrency", "fixed_upload_size", "local_expiry_check"})
_MAPPED = frozenset({"anon", "key", "secret", "token", "username", "password", "endpoint_url", "client_kwargs",
                     "config_kwargs", "requester_pays", "use_ssl", "version_aware", "s3_additional_kwargs",
                     "session"})
_CLIENT_KEYS = {"aws_access_key_id": "key", "aws_secret_access_key": "secret", "aws_session_token": "token"}
_CLIENT_MAPPED = frozenset({"endpoint_url", "region_name", "use_ssl", *_CLIENT_KEYS})
_CONFIG_INERT = frozenset({"connect_timeout", "read_timeout", "max_pool_connections"})
_STATIC_METHODS = frozenset({"env", "shared-credentials-file", "config-file"})  # botocore's names
# s3fs retries a failed request 5 times, backing off up to 15 s; tensorstore's default is 32 times up to 32 s
RETRIES = {"max_retries": 5, "initial_delay": "0.1s", "max_delay": "15s"}
PROFILE = "timelapse-pipes"

_files_lock = threading.Lock()
_credential_files: dict[tuple[str, str, str], dict[str, str]] = {}


class Unmapped(ValueError):
    """These storage options cannot be given to tensorstore as they are; zarr-python reads the array."""


def remote_location(array: Any) -> tuple[str, dict[str, Any]] | None:
    """(URL, the file system's options) of a zarr array on an fsspec store, e.g.
    ``("s3://bucket/a.zarr/0", {"key": ...})``; None for another store."""
    store = array.store_path.store
    fs, root = getattr(store, "fs", None), getattr(store, "path", None)
    if fs is None or root is None:
        return None
    key = "/".join(part for part in (str(root).strip("/"), array.store_path.path.strip("/")) if part)
    return fs.unstrip_protocol(key), dict(getattr(fs, "storage_options", None) or {})


def s3_kvstore(url: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """tensorstore's ``s3`` kvstore spec for the zarr array at ``url``, read with s3fs's ``options``
    (the ones its ``S3FileSystem`` was made with).

    Raises :class:`Unmapped` naming what cannot be handed over (see the module docstring).
    """
    protocol, _, rest = url.partition("://")
    if protocol not in ("s3", "s3a"):
        raise Unmapped(f"tensorstore reads object storage only from S3 here, not {protocol or 'this store'}")
    bucket, _, prefix = rest.partition("/")
    spec: dict[str, Any] = {"driver": "s3", "bucket": bucket, "path": prefix.strip("/") + "/" if prefix else "",
                            "s3_request_retries": dict(RETRIES)}
    _check_keys(options)
    spec.update(_endpoint_and_region(options))
    spec["aws_credentials"] = _credentials(options)
    if options.get("requester_pays"):
        spec["requester_pays"] = True
    return spec


def refuse_unknown(given: Iterable[str], known: frozenset[str], what: str = "storage option") -> None:
    """Raise :class:`Unmapped` naming the first of ``given`` (in sorted order) not in ``known``."""
    unknown = sorted(set(given) - known)
    if unknown:
        raise Unmapped(f"{what} {unknown[0]!r} has no tensorstore equivalent")


def _check_keys(options: Mapping[str, Any]) -> None:
    refuse_unknown(options, _INERT | _MAPPED)
    refuse_unknown(options.get("client_kwargs") or {}, _CLIENT_MAPPED, "client_kwargs")
    refuse_unknown(options.get("config_kwargs") or {}, _CONFIG_INERT, "config_kwargs")
    if options.get("session") is not None:
        raise Unmapped("an injected botocore session cannot be handed to tensorstore")
    if options.get("s3_additional_kwargs"):
        raise Unmapped("s3_additional_kwargs (e.g. SSE-C keys) have no tensorstore equivalent")
    if options.get("version_aware"):
        raise Unmapped("version_aware=True has no tensorstore equivalent")
    client = options.get("client_kwargs") or {}
    if options.get("use_ssl", True) is not True or client.get("use_ssl", True) is not True:
        raise Unmapped("use_ssl=False has no tensorstore equivalent")


def _endpoint_and_region(options: Mapping[str, Any]) -> dict[str, str]:
    client = options.get("client_kwargs") or {}
    endpoint = client.get("endpoint_url") or options.get("endpoint_url")
    region = client.get("region_name")
    found: dict[str, str] = {}
    if endpoint:
        if not str(endpoint).startswith(("http://", "https://")):
            raise Unmapped(f"endpoint_url {endpoint!r} is not an http(s) URL")
        found["endpoint"] = str(endpoint).rstrip("/")
        region = region or _botocore_region() or "us-east-1"
    if region:
        found["aws_region"] = str(region)
    return found


def _credentials(options: Mapping[str, Any]) -> dict[str, str]:
    """The ``aws_credentials`` resource for these options (see the module docstring)."""
    client = options.get("client_kwargs") or {}
    given = {name: client.get(client_key) or options.get(name) for client_key, name in _CLIENT_KEYS.items()}
    given["key"] = given["key"] or options.get("username")
    given["secret"] = given["secret"] or options.get("password")
    if options.get("anon"):
        if any(given.values()):
            raise Unmapped("anon=True together with keys is ambiguous")
        return {"type": "anonymous"}
    if given["key"] or given["secret"] or given["token"]:
        if not (given["key"] and given["secret"]):
            raise Unmapped("a key without its secret (or a secret without its key)")
        return _credentials_file(str(given["key"]), str(given["secret"]), str(given["token"] or ""))
    return _chain_credentials()


def _chain_credentials() -> dict[str, str]:
    """botocore's default chain, as s3fs would resolve it, where its result is static."""
    import botocore.session

    found = botocore.session.Session().get_credentials()
    if found is None:
        raise Unmapped("no credentials were given or found in the environment")
    method = getattr(found, "method", "")
    if method not in _STATIC_METHODS or hasattr(found, "refresh_needed"):
        raise Unmapped(f"credentials from {method or 'an unknown provider'} are refreshed by botocore")
    frozen = found.get_frozen_credentials()
    return _credentials_file(frozen.access_key, frozen.secret_key, frozen.token or "")


def _botocore_region() -> str | None:
    import botocore.session

    return botocore.session.Session().get_config_variable("region")


def _credentials_file(key: str, secret: str, token: str) -> dict[str, str]:
    """A ``profile`` credentials resource reading this key from an in-memory file (one per key, kept
    for the process's life: tensorstore may read it again)."""
    if not hasattr(os, "memfd_create"):
        raise Unmapped("keys are handed to tensorstore through an in-memory file, which needs Linux")
    if any("\n" in value or "\r" in value for value in (key, secret, token)):
        raise Unmapped("a key holding a line break")
    with _files_lock:
        found = _credential_files.get((key, secret, token))
        if found is None:
            lines = [f"[{PROFILE}]", f"aws_access_key_id = {key}", f"aws_secret_access_key = {secret}"]
            if token:
                lines.append(f"aws_session_token = {token}")
            found = _credential_files[(key, secret, token)] = {
                "type": "profile", "profile": PROFILE,
                "credentials_file": _memory_file("\n".join(lines) + "\n"),
                "config_file": _memory_file(f"[profile {PROFILE}]\n"),
            }
        return dict(found)


def _memory_file(text: str) -> str:
    descriptor = os.memfd_create("timelapse-pipes-s3", os.MFD_CLOEXEC)
    os.write(descriptor, text.encode())
    return f"/proc/self/fd/{descriptor}"
