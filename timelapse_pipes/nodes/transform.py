"""Transform stage: apply a user callable or MONAI ``Compose``, re-seeded for every sample.

Random MONAI transforms (anything with ``set_random_state``) are seeded from the sample's own
seed, a pure function of (seed, epoch, index), so augmentation is reproducible, independent of
worker count and survives a resume. ``set_random_state`` mutates the transform, so every thread
works on its own deep copy.
"""

from __future__ import annotations

import copy
import threading
from typing import Any, Callable

from ..planning import TRANSFORM_TAG, sample_rng, MAX_TRANSFORM_SEED

__all__ = ["SeededTransform", "transform_seeds"]


def transform_seeds(seed: int, epoch: int, index: int, count: int) -> list[int]:
    """One transform seed per item of a sample (``count`` > 1 for the "separate" layout)."""
    rng = sample_rng(seed, epoch, index, TRANSFORM_TAG)
    return [int(s) for s in rng.integers(0, MAX_TRANSFORM_SEED, size=count)]


class SeededTransform:
    """Apply ``transform`` to each sample dict (or each dict of a list) with per-sample seeds."""

    def __init__(self, transform: Callable[[Any], Any], seed: int) -> None:
        self.transform = transform
        self.seed = seed
        self._local = threading.local()

    def __getstate__(self) -> dict:
        return {"transform": self.transform, "seed": self.seed}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["transform"], state["seed"])  # type: ignore[misc]

    def _own_copy(self) -> Callable[[Any], Any]:
        mine = getattr(self._local, "transform", None)
        if mine is None:
            mine = copy.deepcopy(self.transform)
            self._local.transform = mine
        return mine

    def __call__(self, sample: Any) -> Any:
        items = sample if isinstance(sample, list) else [sample]
        first = items[0]
        seeds = transform_seeds(self.seed, int(first["epoch"]), int(first["sample_index"]), len(items))
        transform = self._own_copy()
        out = []
        for item, item_seed in zip(items, seeds):
            if hasattr(transform, "set_random_state"):
                transform.set_random_state(seed=item_seed)
            out.append(transform(item))
        return out if isinstance(sample, list) else out[0]
