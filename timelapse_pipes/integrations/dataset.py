"""Map-style access for ``torch.utils.data.DataLoader`` and ``StatefulDataLoader``.

``TimelapseDataset[i]`` is the same pure (seed, epoch, i) sample that ``build_loader`` yields.
``TimelapseSampler`` yields ``SampleKey(epoch, i)`` keys for this rank, in order, so the epoch
travels with each index into worker processes and the stream cannot depend on ``num_workers``.
"""

from __future__ import annotations

import os
from typing import Any, Iterator, Mapping

import torch.utils.data

from ..graph.assembly import prepare
from ..graph.ranks import resolve_shard
from ..graph.workers import preload_forkserver
from ..nodes.sample_indices import SampleIndexSource
from ..reading.fast import threads as decode
from ..records import SampleKey

__all__ = ["TimelapseDataset", "TimelapseSampler"]


class TimelapseDataset(torch.utils.data.Dataset):
    """A map-style dataset over one split; options are those of ``build_loader``."""

    def __init__(self, path: str | Mapping[str, Any], *, split: str | None = "train",
                 initial_epoch: int = 0, **options: Any) -> None:
        self.prepared = prepare(path, split=split, **options)
        self.epoch = int(initial_epoch)
        preload_forkserver()

    def set_epoch(self, epoch: int) -> None:
        """Used for integer indices; ``SampleKey`` indices carry their own epoch."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.prepared.num_samples

    def close(self) -> None:
        """Close every reader and file handle this process opened (worker processes close theirs
        when they exit). Reading again reopens what it needs."""
        self.prepared.close()

    def __enter__(self) -> "TimelapseDataset":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __getitem__(self, key: int | SampleKey | tuple[int, int]) -> Any:
        if isinstance(key, tuple):
            epoch, index = int(key[0]), int(key[1])
        else:
            epoch, index = self.epoch, int(key)
        if not 0 <= index < self.prepared.num_samples:
            raise IndexError(f"sample {index} is outside the epoch of {self.prepared.num_samples} samples")
        self._budget_decode_threads()
        return self.prepared.pipeline(SampleKey(epoch, index))

    def _budget_decode_threads(self) -> None:
        """In a DataLoader worker process, share the cores among the workers' decode threads once."""
        info = torch.utils.data.get_worker_info()
        if info is not None and getattr(self, "_budgeted_pid", None) != os.getpid():
            decode.configure(info.num_workers, "process")
            self._budgeted_pid = os.getpid()

    def sampler(self, *, rank: int | None = None, world_size: int | None = None,
                drop_last: bool = False, initial_epoch: int | None = None) -> "TimelapseSampler":
        """An ordered, resumable sampler over this dataset's epochs for this rank."""
        return TimelapseSampler(self, rank=rank, world_size=world_size, drop_last=drop_last,
                                initial_epoch=self.epoch if initial_epoch is None else initial_epoch)


class TimelapseSampler(torch.utils.data.Sampler):
    """Yields this rank's ``SampleKey(epoch, i)``; each new ``iter()`` is the next epoch.

    ``state_dict()`` / ``load_state_dict()`` make it resumable inside ``StatefulDataLoader``.
    ``state_after(samples)`` gives the library's own elastic state for a run that has consumed
    ``samples`` samples of the current epoch on this rank; load it into any sampler or loader.
    """

    def __init__(self, dataset: TimelapseDataset, *, rank: int | None = None,
                 world_size: int | None = None, drop_last: bool = False, initial_epoch: int = 0) -> None:
        self.source = SampleIndexSource(dataset.prepared.num_samples,
                                        resolve_shard(rank, world_size, drop_last),
                                        initial_epoch=initial_epoch, config=dataset.prepared.config)
        self._epoch_start: dict[str, Any] | None = None

    def __iter__(self) -> Iterator[SampleKey]:
        self.source.reset(None)
        self._epoch_start = self.source.get_state()
        while True:
            try:
                yield self.source.next()
            except StopIteration:
                return

    def __len__(self) -> int:
        from ..sampling.sharding import shard_length

        return shard_length(self.source.num_samples, 0, self.source.shard)

    def set_epoch(self, epoch: int) -> None:
        self.source.set_epoch(epoch)

    def state_dict(self) -> dict[str, Any]:
        return self.source.get_state()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.source.queue_restore(state)

    def state_after(self, samples: int) -> dict[str, Any]:
        """The library's state after this rank consumed ``samples`` of the current epoch."""
        start = self._epoch_start or self.source.get_state()
        return {**start, SampleIndexSource.YIELDED_KEY: start[SampleIndexSource.YIELDED_KEY] + int(samples)}
