"""Read-ahead that pays for itself: a background thread only once batches are slow enough.

A prefetch thread hides a batch's reading behind the consumer's work, but every batch it hands
over costs two thread wake-ups, and the two threads contend for the GIL. For batches of small
frames that costs more than reading ahead can hide (the small-frame suite of ``python -m
benchmarks`` measures both; figures in ``docs/benchmarks.md``).

:class:`AdaptivePrefetcher` assembles batches in the calling thread while they are fast and starts
reading ahead, for the rest of the iteration, as soon as each of the last three batches (after the
first four, which open files and warm caches) took ``min_batch_s`` or longer: a lone slow batch (a
garbage collection, a cold file) does not decide.

Either way the batches and their order are the same (the stream is a pure function of its keys),
and the state is that of the source after the last batch delivered. An error (or the end of the
stream) raised in the thread reaches the caller after the batches before it; the thread then ends
and the next call reads inline again, as it would have without the thread.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any, Deque, Generic, TypeVar

from torchdata.nodes import BaseNode

__all__ = ["AdaptivePrefetcher", "DEFAULT_MIN_BATCH_S"]

T = TypeVar("T")
DEFAULT_MIN_BATCH_S = 0.0002  # several times a thread hand-off (see the small-frame benchmark)
WARMUP_ITEMS = 4  # not timed: the first items open files and warm caches, whatever their size
PROBE_ITEMS = 3  # then this many recent items, all slow, decide
JOIN_TIMEOUT_S = 5.0


class _ReadAhead(Generic[T]):
    """The background half: a thread pulling ``source`` into a bounded buffer of (item, state, error)."""

    def __init__(self, source: BaseNode[T], size: int) -> None:
        self.buffer: Deque[tuple[Any, Any, BaseException | None]] = collections.deque()
        self.ready = threading.Condition()
        self.size = size
        self.halted = False
        # The thread holds this object, never the node, so a dropped node is still collected.
        self.thread = threading.Thread(target=self._run, args=(source,), daemon=True,
                                       name="timelapse_pipes-prefetch")
        self.thread.start()

    def _run(self, source: BaseNode[T]) -> None:
        while True:
            with self.ready:
                while len(self.buffer) >= self.size and not self.halted:
                    self.ready.wait()
                if self.halted:
                    return
            try:
                entry: tuple[Any, Any, BaseException | None] = (next(source), source.state_dict(), None)
            except BaseException as error:  # StopIteration included: handed over, then the thread ends
                entry = (None, None, error)
            with self.ready:
                self.buffer.append(entry)
                self.ready.notify_all()
            if entry[2] is not None:
                return

    def take(self) -> tuple[Any, Any]:
        """The next item and the source's state after it; raises what the source raised."""
        with self.ready:
            while not self.buffer:
                self.ready.wait()
            item, state, error = self.buffer.popleft()
            self.ready.notify_all()
        if error is not None:
            raise error
        return item, state

    def stop(self) -> None:
        with self.ready:
            self.halted = True
            self.ready.notify_all()
        if self.thread is not threading.current_thread():
            self.thread.join(JOIN_TIMEOUT_S)


class AdaptivePrefetcher(BaseNode[T]):
    """Up to ``prefetch_factor`` items read ahead in a thread, once items take ``min_batch_s`` or more.

    ``min_batch_s=0`` reads ahead from the first item (as ``torchdata.nodes.Prefetcher`` does);
    ``float("inf")`` never does. State: ``{"source": <the source's state after the last item
    delivered>}``.
    """

    SOURCE_KEY = "source"

    def __init__(self, source: BaseNode[T], prefetch_factor: int,
                 min_batch_s: float = DEFAULT_MIN_BATCH_S) -> None:
        super().__init__()
        if prefetch_factor < 1:
            raise ValueError(f"prefetch_factor={prefetch_factor} must be >= 1.")
        self.source = source
        self.prefetch_factor = prefetch_factor
        self.min_batch_s = min_batch_s
        self._ahead: _ReadAhead[T] | None = None
        self._state: Any = None  # the source's state after the last item delivered by the thread
        self._recent: Deque[float] = collections.deque(maxlen=PROBE_ITEMS)
        self._inline = 0  # items delivered inline in this iteration

    @property
    def reading_ahead(self) -> bool:
        """True once this iteration has moved its reading to the background thread."""
        return self._ahead is not None

    def reset(self, initial_state: dict | None = None) -> None:
        super().reset(initial_state)
        self._shutdown()
        self.source.reset(None if initial_state is None else initial_state[self.SOURCE_KEY])
        self._state = None
        self._recent.clear()
        self._inline = 0
        if self.min_batch_s <= 0:
            self._state = self.source.state_dict()  # the state until the first item is delivered
            self._ahead = _ReadAhead(self.source, self.prefetch_factor)

    def next(self) -> T:
        if self._ahead is not None:
            try:
                item, self._state = self._ahead.take()
            except BaseException:  # the thread ended on it: go on inline, as an inline read would
                self._shutdown()
                self._recent.clear()
                raise
            return item
        started = time.perf_counter()
        item = next(self.source)
        self._inline += 1
        if self._inline > WARMUP_ITEMS:
            self._recent.append(time.perf_counter() - started)
        if len(self._recent) == PROBE_ITEMS and min(self._recent) >= self.min_batch_s:
            self._state = self.source.state_dict()  # as of this item, the last one read inline
            self._ahead = _ReadAhead(self.source, self.prefetch_factor)
        return item

    def get_state(self) -> dict[str, Any]:
        if self._ahead is None:
            return {self.SOURCE_KEY: self.source.state_dict()}
        return {self.SOURCE_KEY: self._state}

    def _shutdown(self) -> None:
        """Stop the read-ahead thread (what ``shutdown_graph`` and a new ``reset`` call)."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None:
            ahead.stop()

    def __del__(self) -> None:
        try:
            self._shutdown()
        except Exception:
            pass
