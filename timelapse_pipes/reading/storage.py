"""Remote paths: per-protocol storage options, real errors instead of masked ones, local staging.

* ``storage_options`` is either flat (``{"key": ..., "endpoint_url": ...}``, used for every URL)
  or per protocol (``{"s3": {...}, "gs": {...}, "az": {...}}``). Credentials may also come from
  the environment, as fsspec finds them.
* Before bioio opens a remote file, the object is looked up with the user's options: bioio retries
  failed ``s3://`` opens anonymously, which turns "no such key" or "bad credentials" into a masking
  "Forbidden". The lookup fails fast with the URL and the real cause.
* Readers that only read local files (CZI via aicspylibczi, ND2, LIF) get the file staged into a
  local cache folder first (``stage_dir``, bounded by ``stage_max_bytes``, least recently used
  files evicted). OME-Zarr and TIFF stream byte ranges directly.
* Secret values from the options never reach messages: :func:`redact` removes them.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from typing import Any, Mapping

import fsspec

from ..errors import ImageReadError

__all__ = ["is_remote", "protocol_of", "options_for", "redact", "check_remote", "stage_local",
           "LOCAL_ONLY_READERS", "DEFAULT_STAGE_DIR"]

FIX_PATH = "fix the manifest path."
LOCAL_ONLY_READERS = ("bioio_czi", "bioio_nd2", "bioio_lif")
DEFAULT_STAGE_DIR = os.path.join(tempfile.gettempdir(), "timelapse-pipes-stage")
_PROTOCOL_ALIASES = {"s3a": "s3", "gcs": "gs", "abfs": "az", "abfss": "az", "adl": "az", "https": "http"}
_SECRET_KEYS = ("key", "secret", "token", "password", "account_key", "connection_string", "sas_token",
                "client_secret", "aws_secret_access_key", "aws_session_token", "credential")
_stage_lock = threading.Lock()


def is_remote(path: str) -> bool:
    """True for a URL that fsspec opens over a network; local paths and ``file://`` URLs are local."""
    return "://" in path and not path.startswith("file://")


def local_path(path: str) -> str:
    """A local path or ``file://`` URL as a plain path."""
    return path[len("file://"):] if path.startswith("file://") else path


def file_not_found(path: str) -> ImageReadError:
    """The one error for a manifest path that points at nothing."""
    return ImageReadError(f"{path}: file not found; {FIX_PATH}")


def remote_version(info: Mapping[str, Any]) -> str:
    """What tells one version of a remote object from another: its ETag, else its modification time."""
    return str(info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified") or "")


def protocol_of(path: str) -> str:
    protocol = path.split("://", 1)[0].lower() if "://" in path else "file"
    return _PROTOCOL_ALIASES.get(protocol, protocol)


def options_for(path: str, storage_options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The fsspec options for ``path``: its protocol's entry of a per-protocol dict, else the flat dict."""
    options = dict(storage_options or {})
    known = {"s3", "gs", "az", "http", "file", "abfs", "gcs", "s3a"}
    if options and all(key in known and isinstance(value, Mapping) for key, value in options.items()):
        protocol = protocol_of(path)
        for key, value in options.items():
            if _PROTOCOL_ALIASES.get(key, key) == protocol:
                return dict(value)
        return {}
    return options


def _secrets(storage_options: Any) -> list[str]:
    found: list[str] = []
    if isinstance(storage_options, Mapping):
        for key, value in storage_options.items():
            if isinstance(value, Mapping):
                found += _secrets(value)
            elif isinstance(value, str) and len(value) >= 4 and any(s in str(key).lower() for s in _SECRET_KEYS):
                found.append(value)
    return found


def redact(text: str, storage_options: Any) -> str:
    """``text`` with every secret value of ``storage_options`` replaced by ``***``."""
    for secret in _secrets(storage_options):
        text = text.replace(secret, "***")
    return text


def check_remote(path: str, storage_options: Mapping[str, Any] | None) -> dict[str, Any]:
    """``fs.info`` of a remote object with the user's options; a clear error naming URL and cause."""
    options = options_for(path, storage_options)
    try:
        fs, stripped = fsspec.core.url_to_fs(path, **options)
        return dict(fs.info(stripped))
    except FileNotFoundError:
        raise ImageReadError(f"{path}: not found (no such bucket or key); {FIX_PATH}") from None
    except PermissionError as exc:
        raise ImageReadError(
            f"{path}: access denied ({redact(str(exc), storage_options)}); check the credentials in "
            f"storage_options or the environment."
        ) from None
    except OSError as exc:
        raise ImageReadError(f"{path}: {type(exc).__name__}: {redact(str(exc), storage_options)}") from exc


def stage_local(path: str, storage_options: Mapping[str, Any] | None, stage_dir: str | None = None,
                max_bytes: int | None = None) -> str:
    """Copy a remote file into the staging folder once (keyed by URL and ETag/size); return its path."""
    info = check_remote(path, storage_options)
    tag = remote_version(info) or str(info.get("size"))
    folder = stage_dir or DEFAULT_STAGE_DIR
    os.makedirs(folder, exist_ok=True)
    digest = hashlib.sha256(f"{path}|{tag}".encode()).hexdigest()[:24]
    name = os.path.basename(path.rstrip("/")) or "file"
    target = os.path.join(folder, f"{digest}-{name}")
    if os.path.exists(target):
        os.utime(target)
        return target
    options = options_for(path, storage_options)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".staging-")
    try:
        with os.fdopen(handle, "wb") as local, fsspec.open(path, "rb", **options) as remote:
            while chunk := remote.read(8 << 20):
                local.write(chunk)
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    if max_bytes is not None:
        _evict(folder, max_bytes, keep=target)
    return target


def _evict(folder: str, max_bytes: int, keep: str) -> None:
    with _stage_lock:
        entries = [os.path.join(folder, n) for n in os.listdir(folder) if not n.startswith(".")]
        entries.sort(key=lambda p: os.stat(p).st_atime)
        total = sum(os.path.getsize(p) for p in entries)
        for entry in entries:
            if total <= max_bytes:
                break
            if entry != keep:
                total -= os.path.getsize(entry)
                os.unlink(entry)
