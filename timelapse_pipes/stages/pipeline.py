"""The per-sample stages composed into one callable, with the ``on_error`` policy.

``SamplePipeline(key)`` runs manifest row -> metadata -> timepoints -> bioio read -> transform.
It is what ``build_loader`` hands to one ``ParallelMapper`` (one pickle, one queue hop per
sample); users composing their own graph can chain the stages as separate ``Mapper`` nodes.

``on_error``:

* ``"raise"`` (default): the first failure stops the loader with the library's error.
* ``"retry"``: transient I/O errors (connection, timeout, other OS errors that are not "not found"
  or "permission") are retried with exponential backoff, ``max_retries`` times; then raised.
* ``"skip"``: a failed sample is replaced by a deterministic substitute, sample ``j`` of the same
  epoch where ``j`` is drawn from (seed, epoch, i), so resume stays exact. Each bad file is
  logged once; substitutes are marked ``replaced=True`` in the sample; more than ``max_skips``
  replacements in one process raise :class:`SkipBudgetExceeded`.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Sequence, TypeVar

from ..config.options import ON_ERROR_MODES
from ..errors import ConfigError, SkipBudgetExceeded
from ..reading.retry import retry_transient
from ..records import SampleKey
from ..sampling.draws import SUBSTITUTE_TAG, sample_rng
from .fields import REPLACED_KEY
from .loading import Sample

__all__ = ["SamplePipeline", "apply_stages"]

logger = logging.getLogger("timelapse_pipes")
SUBSTITUTE_ATTEMPTS = 16
T = TypeVar("T")


def apply_stages(item: Any, stages: Sequence[Callable[[Any], Any]]) -> Any:
    """Pass ``item`` through ``stages`` in order (a key becomes a plan, then a sample)."""
    for stage in stages:
        item = stage(item)
    return item


class SamplePipeline:
    """``SampleKey -> sample``: the composed stages plus the error policy."""

    def __init__(self, stages: list[Callable[[Any], Any]], *, seed: int, num_samples: int,
                 on_error: str = "raise", max_retries: int = 3, retry_backoff_s: float = 0.2,
                 max_skips: int = 100) -> None:
        if on_error not in ON_ERROR_MODES:
            raise ConfigError(f"on_error={on_error!r} must be one of {ON_ERROR_MODES}.")
        self.stages = stages
        self.seed = seed
        self.num_samples = num_samples
        self.on_error = on_error
        self.max_retries = max_retries
        self.retry_backoff_s = retry_backoff_s
        self.max_skips = max_skips
        self._init_counters()

    def _init_counters(self) -> None:
        self._lock = threading.Lock()
        self.skips = 0
        self.retries = 0
        self.bad_files: set[str] = set()

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        for name in ("_lock", "skips", "retries", "bad_files"):
            state.pop(name)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._init_counters()

    def run_stages(self, key: SampleKey) -> Sample:
        """The stages alone, no error policy."""
        return apply_stages(key, self.stages)

    def __call__(self, key: SampleKey) -> Sample:
        if self.on_error == "skip":
            return self._with_substitutes(key)
        return self._with_retries(key)

    def _with_retries(self, key: SampleKey) -> Sample:
        if self.on_error != "retry":
            return self.run_stages(key)
        return retry_transient(lambda: self.run_stages(key), max_retries=self.max_retries,
                               backoff_s=self.retry_backoff_s, on_retry=self._count_retry)

    def _count_retry(self) -> None:
        with self._lock:
            self.retries += 1

    def _with_substitutes(self, key: SampleKey) -> Sample:
        rng = sample_rng(self.seed, key.epoch, key.index, SUBSTITUTE_TAG)
        candidate, failure = key, None
        for _ in range(SUBSTITUTE_ATTEMPTS):
            try:
                sample = self.run_stages(candidate)
            except Exception as error:  # noqa: BLE001 - the policy is to replace any failed sample
                failure = error
                self._record_skip(error)
                candidate = SampleKey(key.epoch, rng.integers(0, self.num_samples))
                continue
            return _mark(sample, replaced=candidate != key)
        raise SkipBudgetExceeded(
            f"sample {key.index} of epoch {key.epoch} and {SUBSTITUTE_ATTEMPTS - 1} substitutes all "
            f"failed; last error: {failure}"
        ) from failure

    def _record_skip(self, error: BaseException) -> None:
        with self._lock:
            self.skips += 1
            message = str(error)
            if message not in self.bad_files:
                self.bad_files.add(message)
                logger.warning("timelapse_pipes: skipping a sample: %s", message)
            if self.skips > self.max_skips:
                raise SkipBudgetExceeded(
                    f"on_error='skip' replaced {self.skips} samples, over max_skips={self.max_skips}; "
                    f"last error: {message}. Fix the manifest (`timelapse-pipes inspect`) or raise max_skips."
                ) from error


def _mark(sample: Sample | list[Sample], replaced: bool) -> Sample | list[Sample]:
    for item in sample if isinstance(sample, list) else [sample]:
        item[REPLACED_KEY] = replaced
    return sample
