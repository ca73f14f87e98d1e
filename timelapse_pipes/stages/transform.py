"""Transform stage: apply a user callable or MONAI ``Compose``, re-seeded for every sample.

Random MONAI transforms (anything with ``set_random_state``) are seeded from the sample's own
seed, a pure function of (seed, epoch, index), so augmentation is reproducible, independent of
worker count and survives a resume. ``set_random_state`` mutates the transform, so every thread
works on its own deep copy.

With ``same_draw_per_frame`` (frame offsets and gap pairs) every frame of a sample gets the same
random parameters: each frame of a stacked sample is transformed on its own, re-seeded with the
sample's one seed, and the results are stacked again; separate frames all get that seed.
"""

from __future__ import annotations

import copy
import threading
from typing import Any, Callable

import numpy as np
import torch

from ..sampling.draws import transform_seeds

__all__ = ["SeededTransform"]


class SeededTransform:
    """Apply ``transform`` to each sample dict (or each dict of a list) with per-sample seeds."""

    def __init__(self, transform: Callable[[Any], Any], seed: int, *, same_draw_per_frame: bool = False,
                 out_key: str = "raw") -> None:
        self.transform = transform
        self.seed = seed
        self.same_draw_per_frame = same_draw_per_frame
        self.out_key = out_key
        self._local = threading.local()

    def __getstate__(self) -> dict:
        return {"transform": self.transform, "seed": self.seed,
                "same_draw_per_frame": self.same_draw_per_frame, "out_key": self.out_key}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state.pop("transform"), state.pop("seed"), **state)  # type: ignore[misc]

    def _own_copy(self) -> Callable[[Any], Any]:
        mine = getattr(self._local, "transform", None)
        if mine is None:
            mine = copy.deepcopy(self.transform)
            self._local.transform = mine
        return mine

    def __call__(self, sample: Any) -> Any:
        items = sample if isinstance(sample, list) else [sample]
        first = items[0]
        draws = 1 if self.same_draw_per_frame else len(items)
        seeds = transform_seeds(self.seed, int(first["epoch"]), int(first["sample_index"]), draws)
        seeds = seeds * len(items) if self.same_draw_per_frame else seeds
        transform = self._own_copy()
        if self.same_draw_per_frame and not isinstance(sample, list) and len(sample["T"]) > 1:
            return self._per_frame(transform, sample, seeds[0])
        out = [self._apply(transform, item, item_seed) for item, item_seed in zip(items, seeds)]
        return out if isinstance(sample, list) else out[0]

    @staticmethod
    def _apply(transform: Callable[[Any], Any], item: Any, seed: int) -> Any:
        if hasattr(transform, "set_random_state"):
            transform.set_random_state(seed=seed)
        return transform(item)

    def _per_frame(self, transform: Callable[[Any], Any], sample: dict, seed: int) -> dict:
        """Transform each frame of a ``[T, ...]`` stack with the same seed, then stack again."""
        frames = [self._apply(transform, {**sample, self.out_key: frame}, seed) for frame in sample[self.out_key]]
        stacked = [frame[self.out_key] for frame in frames]
        together = torch.stack([torch.as_tensor(f) for f in stacked]) if isinstance(stacked[0], torch.Tensor) \
            else np.stack(stacked)
        return {**frames[0], self.out_key: together}
