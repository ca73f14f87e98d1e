"""Saving and loading checkpoints of the library's state: JSON only, written atomically."""

from __future__ import annotations

import json
import os
from typing import Any

from ..errors import StateError
from ..reading.cache.atomic import write_json_atomic

__all__ = ["save_state", "load_state"]


def save_state(state: dict[str, Any], path: str | os.PathLike) -> None:
    """Write ``state`` as JSON to ``path`` atomically (temporary file in the same folder, then rename)."""
    write_json_atomic(path, state, prefix=".state-")


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
