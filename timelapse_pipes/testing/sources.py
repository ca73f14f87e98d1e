"""A graph without files: synthetic samples that are a pure function of their key.

:class:`SyntheticSample` turns a :class:`~timelapse_pipes.records.SampleKey` into a small sample
dict whose pixels are drawn from ``(seed, epoch, index)``, so any node can be tested for exact
resume on a source that reads nothing: :func:`synthetic_source` is the library's own
:class:`~timelapse_pipes.nodes.SampleIndexSource` mapped through it (and batched, on request).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torchdata.nodes import BaseNode, Batcher, Mapper

from ..nodes.sample_indices import SampleIndexSource
from ..records import SampleKey
from ..sampling.sharding import Shard
from ..stages.collate import collate_samples

__all__ = ["SyntheticSample", "synthetic_source"]


class SyntheticSample:
    """``SampleKey -> {"raw", "sample_index", "epoch"}``, the pixels seeded by (seed, epoch, index)."""

    def __init__(self, shape: tuple[int, ...] = (1, 4, 4), seed: int = 0) -> None:
        self.shape = tuple(shape)
        self.seed = int(seed)

    def __call__(self, key: SampleKey) -> dict[str, Any]:
        rng = np.random.default_rng([self.seed, key.epoch, key.index])
        return {"raw": rng.random(self.shape, dtype=np.float32), "sample_index": key.index, "epoch": key.epoch}


def synthetic_source(num_samples: int, *, batch_size: int | None = None, shape: tuple[int, ...] = (1, 4, 4),
                     seed: int = 0, shard: Shard | None = None, initial_epoch: int = 0) -> BaseNode:
    """``num_samples`` synthetic samples per epoch for this shard (collated batches with ``batch_size``)."""
    node: BaseNode = Mapper(SampleIndexSource(num_samples, shard, initial_epoch=initial_epoch,
                                              config={"synthetic": [list(shape), seed]}),
                            SyntheticSample(shape, seed))
    if batch_size is not None:
        node = Mapper(Batcher(node, batch_size=batch_size, drop_last=False), collate_samples)
    return node
