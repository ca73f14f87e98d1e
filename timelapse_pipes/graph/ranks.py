"""This process's place in a ``torch.distributed`` job: its rank and the world size."""

from __future__ import annotations

from ..errors import ConfigError
from ..sampling.sharding import Shard

__all__ = ["resolve_shard"]


def resolve_shard(rank: int | None = None, world_size: int | None = None,
                  drop_last: bool = False) -> Shard:
    """Rank and world size as given, else from an initialized ``torch.distributed`` group."""
    if (rank is None) != (world_size is None):
        raise ConfigError(f"give both rank and world_size or neither (got {rank=}, {world_size=}).")
    if rank is None:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            rank, world_size = dist.get_rank(), dist.get_world_size()
        else:
            rank, world_size = 0, 1
    return Shard(rank=int(rank), world_size=int(world_size), drop_last=drop_last)  # type: ignore[arg-type]
