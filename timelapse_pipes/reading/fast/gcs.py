"""tensorstore's own GCS driver for remote zarr arrays, at the endpoint and with the credentials
gcsfs was given.

bioio-ome-zarr opens a ``gs://`` (``gcs://``) OME-Zarr through gcsfs with the manifest's
``storage_options``; :func:`gcs_kvstore` turns that ``GCSFileSystem``'s options into a kvstore spec
for tensorstore's ``gcs`` driver (its JSON API over HTTP), reading the same bucket and path:

* credentials: tensorstore's GCS driver has no credentials in its spec; it signs every request of
  the process with the identity it finds in the environment. The row's ``token`` is accepted only
  where gcsfs signs with that same identity (:mod:`.google_auth`); no secret is ever in the spec.
* endpoint: gcsfs's (``endpoint_url``, else ``STORAGE_EMULATOR_HOST``, else
  ``https://storage.{GOOGLE_CLOUD_UNIVERSE_DOMAIN}``). tensorstore 0.1 takes a GCS endpoint only
  from the process-wide ``TENSORSTORE_GCS_HTTP_URL``, read when a store is opened. So a process
  reads GCS through tensorstore at one endpoint: the one ``TENSORSTORE_GCS_HTTP_URL`` already names,
  else the first one a row asks for (set into ``TENSORSTORE_GCS_HTTP_URL`` then, once, when it is
  not Google's). A row at another endpoint is refused, and read by zarr-python over gcsfs.
  Process workers inherit the variable, or claim their own the same way. The variable is written
  once, under a lock, before the first GCS open; a write to the environment while another thread
  reads it is not safe in C, so changing it later (by anyone) refuses every later GCS row instead.
* ``requester_pays``: a project name, or ``True`` with an explicit ``project``: tensorstore's
  ``gcs_user_project`` (gcsfs's ``userProject``).

Refused with :class:`.object_store.Unmapped` (zarr-python reads the array over gcsfs): a token
tensorstore cannot sign as (:mod:`.google_auth`), a second endpoint, mutual TLS
(``GOOGLE_API_USE_CLIENT_CERTIFICATE``), a non-http(s) endpoint, ``requester_pays=True`` without
``project``, ``version_aware``, ``session_kwargs``, an unknown option, and stores that are not GCS.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Mapping, MutableMapping

from .google_auth import check_token, process_identity
from .object_store import Unmapped, refuse_unknown

__all__ = ["DEFAULT_ENDPOINT", "ENDPOINT_VARIABLE", "EndpointClaim", "gcs_endpoint", "gcs_kvstore"]

DEFAULT_ENDPOINT = "https://storage.googleapis.com"
ENDPOINT_VARIABLE = "TENSORSTORE_GCS_HTTP_URL"
# gcsfs tries a request 6 times, backing off 2**n s (plus jitter) up to 32 s: tensorstore's own delays
RETRIES = {"max_retries": 6, "initial_delay": "1s", "max_delay": "32s"}

# gcsfs options that change nothing about which bytes are read, or with which credentials
_INERT = frozenset({"project", "access", "block_size", "consistency", "cache_timeout", "secure_serialize",
                    "check_connection", "requests_timeout", "timeout", "default_location", "asynchronous", "loop",
                    "skip_instance_cache", "use_listings_cache", "listings_expiry_time", "max_paths",
                    "finalize_on_close", "mrd_pool_cache_size", "max_mrd_pool_cache_queue_size",
                    "default_block_size", "default_fill_cache", "default_cache_type"})
_MAPPED = frozenset({"token", "endpoint_url", "requester_pays", "version_aware", "session_kwargs"})


class EndpointClaim:
    """The one GCS endpoint tensorstore reads in this process (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.endpoint: str | None = None

    def take(self, endpoint: str, environ: MutableMapping[str, str]) -> None:
        """Accept ``endpoint`` (claiming it when none is yet), or raise :class:`Unmapped`."""
        with self._lock:
            named = (environ.get(ENDPOINT_VARIABLE) or "").rstrip("/") or None
            if self.endpoint is not None and named not in (None, self.endpoint):
                raise Unmapped(f"{ENDPOINT_VARIABLE} changed to {named} after tensorstore read GCS at "
                               f"{self.endpoint} in this process")
            active = named or self.endpoint
            if active is None:
                if endpoint != DEFAULT_ENDPOINT:
                    environ[ENDPOINT_VARIABLE] = endpoint
                self.endpoint = active = endpoint
            if endpoint != active:
                raise Unmapped(f"tensorstore reads GCS at one endpoint per process ({ENDPOINT_VARIABLE}), "
                               f"here {active}, not {endpoint}")
            self.endpoint = active


_claim = EndpointClaim()


def gcs_kvstore(url: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """tensorstore's ``gcs`` kvstore spec for the zarr array at ``url``, read as gcsfs reads it with
    ``options`` (the ones its ``GCSFileSystem`` was made with).

    Raises :class:`Unmapped` naming what cannot be handed over (see the module docstring). Claims
    the process's tensorstore GCS endpoint (and may set ``TENSORSTORE_GCS_HTTP_URL``) only when
    everything else is accepted.
    """
    protocol, _, rest = url.partition("://")
    if protocol not in ("gs", "gcs"):
        raise Unmapped(f"not a GCS URL: {protocol or 'a local path'}")
    bucket, _, prefix = rest.partition("/")
    _check_keys(options)
    spec: dict[str, Any] = {"driver": "gcs", "bucket": bucket, "path": prefix.strip("/") + "/" if prefix else "",
                            "gcs_request_retries": dict(RETRIES)}
    project = _user_project(options)
    if project:
        spec["gcs_user_project"] = {"project_id": project}
    endpoint = gcs_endpoint(options, os.environ)
    check_token(options.get("token"), process_identity(), os.environ)
    _claim.take(endpoint, os.environ)
    return spec


def gcs_endpoint(options: Mapping[str, Any], environ: Mapping[str, str]) -> str:
    """The endpoint gcsfs sends these options' requests to, without a trailing slash."""
    endpoint = options.get("endpoint_url")
    if not endpoint:
        emulator = environ.get("STORAGE_EMULATOR_HOST", "")
        if emulator not in ("", "default"):
            endpoint = emulator if emulator.startswith(("http://", "https://")) else f"http://{emulator}"
        elif environ.get("GOOGLE_API_USE_CLIENT_CERTIFICATE", "").lower() == "true":
            raise Unmapped("mutual TLS (GOOGLE_API_USE_CLIENT_CERTIFICATE) has no tensorstore equivalent")
        else:
            endpoint = f"https://storage.{environ.get('GOOGLE_CLOUD_UNIVERSE_DOMAIN') or 'googleapis.com'}"
    if not str(endpoint).startswith(("http://", "https://")):
        raise Unmapped(f"endpoint_url {endpoint!r} is not an http(s) URL")
    return str(endpoint).rstrip("/")


def _check_keys(options: Mapping[str, Any]) -> None:
    refuse_unknown(options, _INERT | _MAPPED)
    if options.get("version_aware"):
        raise Unmapped("version_aware=True has no tensorstore equivalent")
    if options.get("session_kwargs"):
        raise Unmapped("session_kwargs (aiohttp's session settings) have no tensorstore equivalent")


def _user_project(options: Mapping[str, Any]) -> str | None:
    """The project billed for a requester-pays bucket, as gcsfs sends it (``userProject``)."""
    pays = options.get("requester_pays")
    if not pays:
        return None
    if isinstance(pays, str):
        return pays
    if not options.get("project"):
        raise Unmapped("requester_pays=True bills the project google-auth finds, which tensorstore cannot "
                       "look up: give requester_pays='<project>' or project='<project>'")
    return str(options["project"])
