"""Slicing one global sample order across ranks, elastically.

The epoch's global order ``0 .. N-1`` never depends on scale. From a global position ``p`` (the
number of samples all ranks together have consumed), rank ``r`` of ``W`` takes
``p + r, p + r + W, p + r + 2W, ...``. With DDP in lockstep every rank consumed the same count
``b``, so the global position after a checkpoint is ``p + b * W`` whatever ``W`` was, and a
resumed run at any other world size continues from there: nothing lost, nothing repeated.

Uneven tails follow ``drop_last``: ``True`` drops the last ``(N - p) % W`` samples so every rank
yields the same count; ``False`` (default) pads by wrapping to the start of the epoch, so some
samples of the epoch appear twice in that epoch (as ``DistributedSampler`` does).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["Shard", "shard_index", "shard_length"]


@dataclass(frozen=True)
class Shard:
    """This process's slice: ``rank`` of ``world_size``, and the tail policy."""

    rank: int = 0
    world_size: int = 1
    drop_last: bool = False

    def __post_init__(self) -> None:
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise ConfigError(f"rank={self.rank} must be in [0, world_size={self.world_size}).")


def shard_length(num_samples: int, position: int, shard: Shard) -> int:
    """How many samples this rank yields from global ``position`` to the end of the epoch."""
    remaining = max(num_samples - position, 0)
    if shard.drop_last:
        return remaining // shard.world_size
    return -(-remaining // shard.world_size)


def shard_index(num_samples: int, position: int, shard: Shard, step: int) -> int:
    """The global sample index of this rank's ``step``-th sample (wrapped when padding)."""
    return (position + shard.rank + shard.world_size * step) % num_samples
