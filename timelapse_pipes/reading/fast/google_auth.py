"""Which Google credentials tensorstore's ``gcs`` driver signs with, and whether a row's gcsfs
``token`` means the same ones.

tensorstore's GCS driver takes no credentials in its spec. The whole process signs with one
identity, which tensorstore looks up once, on its first GCS request, in this order:

1. ``GOOGLE_AUTH_TOKEN_FOR_TESTING``: a fixed token;
2. the JSON file that ``GOOGLE_APPLICATION_CREDENTIALS`` names, then gcloud's application-default
   file (``$CLOUDSDK_CONFIG`` or ``~/.config/gcloud``), each either a service account's key or an
   ``authorized_user`` refresh token;
3. the GCE metadata server (``GCE_METADATA_ROOT``, else ``metadata.google.internal``);
4. nothing found: anonymous requests.

:func:`process_identity` makes the same lookup once per process, before tensorstore's first GCS
read. :func:`check_token` accepts a row's gcsfs ``token`` only where gcsfs signs with that same
identity:

* ``"anon"``: tensorstore finds nothing;
* ``None`` or ``"google_default"``: google-auth's default chain finds the same file or GCE (or, for
  ``None``, nothing, where gcsfs falls back to anonymous, unless gcsfs's own token cache exists);
* ``"cloud"``: the GCE metadata server;
* the path of a JSON file: that same file.

Refused with :class:`.object_store.Unmapped`: credentials given as a dict, a ``Credentials`` object,
a raw access token, ``"browser"`` / ``"cache"``, a file of another kind (``external_account``,
impersonation), a fixed test token, and any token when the lookup is unclear (a
``GOOGLE_APPLICATION_CREDENTIALS`` that is no file, a metadata server that did not answer in time).
No message names a token's value.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Mapping

from .object_store import Unmapped

__all__ = ["ANONYMOUS", "FILE", "GCE", "FIXED", "UNCLEAR", "Identity", "check_token", "find_identity",
           "process_identity"]

ANONYMOUS, FILE, GCE, FIXED, UNCLEAR = "anonymous", "file", "gce", "fixed", "unclear"
FILE_KINDS = {"service_account": {"private_key", "client_email"},
              "authorized_user": {"client_id", "client_secret", "refresh_token"}}
PROBE_TIMEOUT_S = 2.0
GCSFS_TOKEN_CACHE = os.path.join(os.path.expanduser("~"), ".gcs_tokens")  # gcsfs's "cache" method reads it

_lock = threading.Lock()
_identity: "Identity | None" = None


@dataclass(frozen=True)
class Identity:
    """What tensorstore signs GCS requests with: ``kind`` (one of the constants above) and, for a
    file, its real path and kind (``service_account``, ``authorized_user`` or ``other``)."""

    kind: str
    path: str = ""
    file_kind: str = ""
    why: str = ""

    def describe(self) -> str:
        """Words for an error message (no secret: a file is named by its path)."""
        return {ANONYMOUS: "no credentials (anonymous requests)",
                FILE: f"the credentials file {self.path} ({self.file_kind})",
                GCE: "this machine's GCE service account",
                FIXED: "the fixed token in GOOGLE_AUTH_TOKEN_FOR_TESTING",
                UNCLEAR: f"credentials that cannot be told in advance ({self.why})"}[self.kind]


def process_identity() -> Identity:
    """This process's :func:`find_identity`, looked up once (tensorstore, too, looks once)."""
    global _identity
    with _lock:
        if _identity is None:
            _identity = find_identity(os.environ)
        return _identity


def find_identity(environ: Mapping[str, str]) -> Identity:
    """The identity tensorstore's GCS driver finds with this environment (see the module docstring)."""
    if environ.get("GOOGLE_AUTH_TOKEN_FOR_TESTING") is not None:
        return Identity(FIXED)
    named = environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if named and not os.path.isfile(named):
        # tensorstore skips to the next source; google-auth raises and gcsfs goes on to anonymous
        return Identity(UNCLEAR, why=f"GOOGLE_APPLICATION_CREDENTIALS={named} is not a file")
    config = environ.get("CLOUDSDK_CONFIG") or os.path.join(environ.get("HOME", ""), ".config", "gcloud")
    well_known = os.path.join(config, "application_default_credentials.json")
    for path in (named, well_known):
        if path and os.path.isfile(path):
            return Identity(FILE, path=os.path.realpath(path), file_kind=_file_kind(path))
    return _probe_metadata_server(environ.get("GCE_METADATA_ROOT") or "metadata.google.internal")


def check_token(token: Any, identity: Identity, environ: Mapping[str, str]) -> None:
    """Raise :class:`Unmapped` unless gcsfs, given ``token``, signs as ``identity`` does."""
    given = _token_form(token)
    if identity.kind in (FIXED, UNCLEAR):
        raise Unmapped(f"tensorstore's GCS driver would sign with {identity.describe()}")
    if identity.kind == FILE and identity.file_kind not in FILE_KINDS:
        raise Unmapped(f"tensorstore's GCS driver cannot sign with {identity.describe()}")
    if given == "anon":
        if identity.kind != ANONYMOUS:
            raise Unmapped(f"token='anon', but tensorstore's GCS driver would sign with {identity.describe()} "
                           "(it takes credentials from the environment only)")
    elif given in ("default", "google_default"):
        if given == "google_default" and identity.kind == ANONYMOUS:
            raise Unmapped("token='google_default', but tensorstore's GCS driver finds no credentials")
        if identity.kind == GCE and environ.get("NO_GCE_CHECK", "").lower() == "true":
            raise Unmapped("NO_GCE_CHECK keeps gcsfs off the metadata server that tensorstore would use")
        if given == "default" and identity.kind in (ANONYMOUS, GCE) and os.path.exists(GCSFS_TOKEN_CACHE):
            raise Unmapped(f"gcsfs may sign with a token cached in {GCSFS_TOKEN_CACHE}, which tensorstore does "
                           "not read")
    elif given == "cloud":
        if identity.kind != GCE:
            raise Unmapped(f"token='cloud', but tensorstore's GCS driver would sign with {identity.describe()}")
    elif given == "file":
        if identity.kind != FILE or os.path.realpath(token) != identity.path:
            raise Unmapped(f"the token file {token} is not the one tensorstore's GCS driver reads ("
                           f"{identity.describe()}); name it in GOOGLE_APPLICATION_CREDENTIALS to read with "
                           "tensorstore")
    else:
        raise Unmapped(f"a token given as {given} cannot be handed to tensorstore's GCS driver")


def _token_form(token: Any) -> str:
    """What kind of gcsfs ``token`` this is, in words that never hold its value."""
    if token is None:
        return "default"
    if isinstance(token, str):
        if token in ("anon", "google_default", "cloud", "browser", "cache"):
            return token if token in ("anon", "google_default", "cloud") else f"{token!r}"
        return "file" if os.path.exists(token) else "a raw access token"
    if isinstance(token, Mapping):
        return "a dict"
    return f"an object of type {type(token).__name__}"


def _file_kind(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as handle:
            content = json.load(handle)
    except (OSError, ValueError):
        return "other"
    kind = content.get("type") if isinstance(content, dict) else None
    return kind if kind in FILE_KINDS and FILE_KINDS[kind] <= set(content) else "other"


def _probe_metadata_server(host: str) -> Identity:
    """GCE when the metadata server answers (any 2xx, as tensorstore decides), anonymous when it
    cannot be reached at all, unclear when it did not answer in time."""
    request = urllib.request.Request(f"http://{host}", headers={"Metadata-Flavor": "Google"})
    try:
        with urllib.request.urlopen(request, timeout=PROBE_TIMEOUT_S) as response:
            return Identity(GCE) if 200 <= response.status < 300 else Identity(ANONYMOUS)
    except urllib.error.HTTPError:
        return Identity(ANONYMOUS)
    except urllib.error.URLError as error:
        if isinstance(error.reason, (socket.gaierror, ConnectionRefusedError)):
            return Identity(ANONYMOUS)
        return Identity(UNCLEAR, why=f"the metadata server {host} did not answer: {error.reason}")
    except (TimeoutError, OSError) as error:
        return Identity(UNCLEAR, why=f"the metadata server {host} did not answer: {error}")
