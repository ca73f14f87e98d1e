"""Writing a JSON document atomically: a temporary file in the same folder, fsynced, then renamed."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

__all__ = ["write_json_atomic"]


def write_json_atomic(path: str | os.PathLike, document: Any, *, prefix: str, newline: bool = False) -> None:
    """Replace ``path`` with ``document`` as JSON, so a reader sees the old file or the new one, whole.

    The temporary file (``prefix``...``.json.tmp``) is removed if anything fails, a kill included
    where Python gets to run.
    """
    target = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(target))
    try:
        os.makedirs(folder, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=prefix, suffix=".json.tmp")
    except OSError as error:  # name the file the caller asked for, not our temporary one
        raise OSError(error.errno, f"cannot write here ({error.strerror})", target) from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(document, stream)
            if newline:
                stream.write("\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
