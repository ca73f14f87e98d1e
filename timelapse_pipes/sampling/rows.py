"""Which manifest row sample i of epoch e reads (pure), uniformly or by row weights.

Uniform: let R be the row count and k = i // R the pass. The row is
``permutation(R, rng([seed, epoch, k, ROW_TAG]))[i % R]``: every row appears once per full pass and
at most once in the last partial pass (the "±1" fairness).

Weighted: row i is drawn with probability weight_i / sum of weights.

The scheme keeps the per-pass fairness of the unweighted permutation. A pass is R samples
(R rows). Systematic sampling over the cumulative weights scaled to R picks the pass's R rows:
one uniform offset u from ``rng([seed, epoch, pass, ROW_TAG])`` and the points u, u + 1, ...,
u + R - 1; row i is picked once per point in its interval, so it appears floor or ceil of its
expected count R * w_i / W times in every pass (within ±1), and never with weight 0. The picks are
then shuffled with the same generator. Everything is a pure function of (seed, epoch, i).
"""

from __future__ import annotations

import functools
from typing import Mapping, Sequence

import numpy as np

from ..errors import ConfigError
from .draws import ROW_TAG

__all__ = ["RowWeights", "resolve_samples_per_epoch", "row_for_sample", "weighted_row_for_sample"]


class RowWeights:
    """Non-negative per-row weights (not all zero); hashed once so per-pass caching is cheap."""

    def __init__(self, values: Sequence[float]) -> None:
        array = np.asarray(values, dtype=np.float64)
        if array.ndim != 1 or not len(array) or not np.all(np.isfinite(array)) or np.any(array < 0) \
                or not np.any(array > 0):
            raise ValueError("row weights must be finite, non-negative, and not all zero")
        array.setflags(write=False)
        self.values = array
        self._hash = hash(array.tobytes())

    def __len__(self) -> int:
        return len(self.values)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RowWeights) and self._hash == other._hash and \
            np.array_equal(self.values, other.values)

    def __repr__(self) -> str:
        return f"RowWeights({len(self)} rows)"


@functools.lru_cache(maxsize=8)
def _weighted_pass(seed: int, epoch: int, pass_index: int, weights: RowWeights) -> np.ndarray:
    rows = len(weights)
    rng = np.random.default_rng([seed, epoch, pass_index, ROW_TAG])
    edges = np.cumsum(weights.values) * (rows / weights.values.sum())
    points = rng.random() + np.arange(rows)
    picks = np.searchsorted(edges, points, side="right")
    last_drawable = int(np.flatnonzero(weights.values > 0)[-1])
    picks = np.minimum(picks, last_drawable)  # rounding at the top edge never reaches a zero-weight row
    order = picks[rng.permutation(rows)]
    order.setflags(write=False)
    return order


def weighted_row_for_sample(seed: int, epoch: int, index: int, weights: RowWeights) -> int:
    """The manifest row of sample ``index`` of ``epoch`` under ``weights``."""
    pass_index, offset = divmod(index, len(weights))
    return int(_weighted_pass(seed, epoch, pass_index, weights)[offset])


@functools.lru_cache(maxsize=8)
def _row_permutation(seed: int, epoch: int, pass_index: int, num_rows: int) -> np.ndarray:
    order = np.random.default_rng([seed, epoch, pass_index, ROW_TAG]).permutation(num_rows)
    order.setflags(write=False)
    return order


def row_for_sample(seed: int, epoch: int, index: int, num_rows: int) -> int:
    """The manifest row of sample ``index`` of ``epoch``."""
    if num_rows == 1:
        return 0
    pass_index, offset = divmod(index, num_rows)
    return int(_row_permutation(seed, epoch, pass_index, num_rows)[offset])


def resolve_samples_per_epoch(value: int | Mapping[str, int] | None, split: str | None,
                              num_rows: int) -> int:
    """The epoch length: ``value`` (int or per-split dict) or, by default, one sample per row."""
    if isinstance(value, Mapping):
        value = value.get(split) if split in value else None  # type: ignore[arg-type]
    if value is None:
        return num_rows
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ConfigError(f"samples_per_epoch={value!r} must be a positive integer (or a per-split dict).")
    return int(value)
