"""Saving and loading checkpoints of the library's state: JSON only, written atomically."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from .errors import StateError

__all__ = ["save_state", "load_state"]


def save_state(state: dict[str, Any], path: str | os.PathLike) -> None:
    """Write ``state`` as JSON to ``path`` atomically (temporary file in the same folder, then rename)."""
    target = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(target))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".state-", suffix=".json.tmp")
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(state, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise


def load_state(path: str | os.PathLike) -> dict[str, Any]:
    """Read a state saved by :func:`save_state`; a damaged file raises :class:`StateError`."""
    try:
        with open(os.fspath(path)) as stream:
            state = json.load(stream)
    except FileNotFoundError:
        raise StateError(f"checkpoint {os.fspath(path)} does not exist.") from None
    except json.JSONDecodeError as exc:
        raise StateError(f"checkpoint {os.fspath(path)} is not valid JSON ({exc}); it is truncated or damaged.") from None
    if not isinstance(state, dict):
        raise StateError(f"checkpoint {os.fspath(path)} does not hold a state dict.")
    return state
