"""Crop windows drawn by their centre pixel (pure): a pixel of a label class, as MONAI's
``RandCropByLabelClassesd`` does, or a pixel drawn in proportion to a weight map, as torchio's
``WeightedSampler`` does. Both draw from the sample's own crop stream.

* **Class centres (MONAI's rule).** A pixel of the class is drawn uniformly among the frame's pixels
  of that class; the window is centred on it (start = pixel - roi // 2) and, where that would leave
  the frame, shifted inward (MONAI's ``correct_crop_centers``), so it always holds the pixel.
* **Weighted centres (torchio's rule).** The centre ``c`` is drawn with probability
  ``w[c] / sum(w)`` among the pixels where the whole window fits (start = c - roi // 2, so the
  weights within ``roi // 2`` of the start and ``(roi - 1) // 2`` of the end are left out), by
  inverse transform sampling of the cumulative weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .draws import CROP_TAG, sample_rng

__all__ = ["ClassPixels", "WeightTable", "centred_window", "choose_class_window", "choose_weighted_window"]


@dataclass(frozen=True)
class ClassPixels:
    """The flat indices of every class's pixels in a (Z, Y, X) frame: class k's are
    ``order[starts[k]:starts[k + 1]]``."""

    shape: tuple[int, ...]
    order: np.ndarray
    starts: np.ndarray

    @classmethod
    def of(cls, labels: np.ndarray, num_classes: int) -> "ClassPixels":
        """From (C, Z, Y, X) labels: one channel holds class values (class k: ``== k``, MONAI's argmax
        labels); several channels are one-hot (class k: channel k nonzero)."""
        if labels.shape[0] == 1:
            flat = labels[0].reshape(-1)
            members = [np.flatnonzero(flat == k) for k in range(num_classes)]
        else:
            members = [np.flatnonzero(labels[k].reshape(-1)) for k in range(num_classes)]
        starts = np.zeros(num_classes + 1, dtype=np.int64)
        starts[1:] = np.cumsum([len(m) for m in members])
        dtype = np.int32 if labels[0].size < 2**31 else np.int64
        order = np.concatenate(members).astype(dtype, copy=False) if members else np.zeros(0, dtype)
        return cls(tuple(labels.shape[1:]), order, starts)

    def count(self, k: int) -> int:
        """How many pixels of class ``k`` the frame holds."""
        return int(self.starts[k + 1] - self.starts[k])


def centred_window(centre: Sequence[int], roi: Sequence[int], frame: Sequence[int]) -> tuple[int, ...]:
    """The start of the ``roi`` window centred on ``centre`` (start = centre - roi // 2), shifted
    inward to fit the ``frame``."""
    return tuple(int(min(max(c - r // 2, 0), f - r)) for c, r, f in zip(centre, roi, frame))


def choose_class_window(seed: int, epoch: int, index: int, pixels: ClassPixels, k: int,
                        roi: Sequence[int]) -> tuple[int, ...]:
    """The window of a pixel of class ``k`` drawn uniformly (the class must have pixels)."""
    pick = sample_rng(seed, epoch, index, CROP_TAG).integers(0, pixels.count(k))
    flat = int(pixels.order[int(pixels.starts[k]) + pick])
    return centred_window(np.unravel_index(flat, pixels.shape), roi, pixels.shape)


@dataclass(frozen=True)
class WeightTable:
    """The cumulative weights of the centres where a ``roi`` window fits, by window start."""

    starts_shape: tuple[int, ...]
    cumulative: np.ndarray

    @classmethod
    def of(cls, weights: np.ndarray, roi: Sequence[int]) -> "WeightTable":
        """From non-negative (Z, Y, X) weights (float64 sums: float32 cumulative sums drift)."""
        centres = tuple(slice(r // 2, n - (r - 1) // 2) for n, r in zip(weights.shape, roi))
        fit = np.asarray(weights[centres], dtype=np.float64)
        return cls(tuple(fit.shape), np.cumsum(fit.reshape(-1)))

    @property
    def total(self) -> float:
        """The sum of the weights where a window fits (0: no centre can be drawn)."""
        return float(self.cumulative[-1]) if self.cumulative.size else 0.0


def choose_weighted_window(seed: int, epoch: int, index: int, table: WeightTable) -> tuple[int, ...]:
    """The start of a window whose centre is drawn with probability proportional to its weight
    (``table.total`` must be positive)."""
    draw = sample_rng(seed, epoch, index, CROP_TAG).random()
    target = max(draw, np.finfo(np.float64).tiny) * table.total  # > 0: a zero-weight centre is never taken
    flat = min(int(np.searchsorted(table.cumulative, target)), table.cumulative.size - 1)
    return tuple(int(v) for v in np.unravel_index(flat, table.starts_shape))
