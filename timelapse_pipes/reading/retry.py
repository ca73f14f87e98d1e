"""Retrying transient I/O errors (connection drops, timeouts) with exponential backoff."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

from ..errors import TimelapsePipesError

__all__ = ["is_transient", "retry_transient"]

T = TypeVar("T")


def retry_transient(call: Callable[[], T], *, max_retries: int, backoff_s: float,
                    on_retry: Callable[[], None] | None = None) -> T:
    """``call()``, retried up to ``max_retries`` times on transient errors (:func:`is_transient`)
    with exponential backoff (``backoff_s``, doubled each time); other errors are raised at once."""
    attempt = 0
    while True:
        try:
            return call()
        except Exception as error:
            if attempt >= max_retries or not is_transient(error):
                raise
            if on_retry is not None:
                on_retry()
            time.sleep(backoff_s * 2 ** attempt)
            attempt += 1


def is_transient(error: BaseException) -> bool:
    """True for errors worth retrying: connection drops, timeouts, other non-permanent OS errors."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, (ConnectionError, TimeoutError)):
            return True
        if isinstance(seen, OSError) and not isinstance(
                seen, (FileNotFoundError, PermissionError, IsADirectoryError, TimelapsePipesError)):
            return True
        seen = seen.__cause__
    return False
