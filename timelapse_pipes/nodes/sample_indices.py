"""The sharding filter: a stateful node yielding this rank's ``SampleKey(epoch, index)``.

It is the only stateful node in the graph. Everything downstream is a pure function of the key, so
the whole graph resumes from this node's small JSON state: the epoch, the global position and a
summary of the config it belongs to. No generator state, queue contents or replay.
"""

from __future__ import annotations

from typing import Any, Mapping

from torchdata.nodes import BaseNode

from ..config.fingerprint import summary_differences
from ..errors import StateError
from ..records import SampleKey
from ..sampling.sharding import Shard, shard_index, shard_length

__all__ = ["SampleIndexSource", "STATE_VERSION"]

STATE_VERSION = 2  # the version of the draw scheme; a state of another version would resume another stream


class SampleIndexSource(BaseNode[SampleKey]):
    """Yields ``SampleKey(epoch, i)`` for this rank's share of each epoch's ``num_samples``.

    Each fresh ``reset()`` after the first starts the next epoch. A state taken with another
    world size resumes at the same global position (elastic resume).
    """

    VERSION_KEY = "version"
    CONFIG_KEY = "config"
    EPOCH_KEY = "epoch"
    POSITION_KEY = "position"
    YIELDED_KEY = "yielded"
    WORLD_SIZE_KEY = "world_size"

    def __init__(self, num_samples: int, shard: Shard | None = None, *, initial_epoch: int = 0,
                 config: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self.num_samples = int(num_samples)
        self.shard = shard or Shard()
        self.config = dict(config or {})
        self.epoch = int(initial_epoch)
        self._position = 0
        self._yielded = 0
        self._started = False
        self._next_epoch: int | None = None
        self._pending: Mapping[str, Any] | None = None

    def queue_restore(self, state: Mapping[str, Any]) -> None:
        """Make the next ``reset(None)`` resume from ``state`` (checked now, applied then).

        A state taken at the very end of an epoch resumes at the start of the next one.
        """
        check_state(state, self.config)
        self._pending = state

    def set_epoch(self, epoch: int) -> None:
        """Make the next fresh ``reset()`` start ``epoch`` (e.g. to follow a trainer's epoch)."""
        self._next_epoch = int(epoch)

    def reset(self, initial_state: dict | None = None) -> None:
        super().reset(initial_state)
        if initial_state is not None:
            self._restore(initial_state)
            self._started = True  # a restored epoch counts as begun, so its end advances the epoch
            return
        if self._pending is not None:
            self._restore(self._pending)
            self._pending = None
            self._started = True
            if self._yielded >= shard_length(self.num_samples, self._position, self.shard):
                self.epoch, self._position, self._started = self.epoch + 1, 0, False
            return
        if self._next_epoch is not None:
            self.epoch, self._next_epoch = self._next_epoch, None
        elif self._started:
            self.epoch += 1
        self._position = 0
        self._yielded = 0
        self._started = False

    def _restore(self, state: Mapping[str, Any]) -> None:
        check_state(state, self.config)
        self.epoch = int(state[self.EPOCH_KEY])
        # Lockstep ranks each consumed `yielded`, so the global position is the same for all.
        self._position = int(state[self.POSITION_KEY]) + int(state[self.WORLD_SIZE_KEY]) * int(
            state[self.YIELDED_KEY])
        self._yielded = 0
        self._next_epoch = None

    def next(self) -> SampleKey:
        if self._yielded >= shard_length(self.num_samples, self._position, self.shard):
            raise StopIteration
        index = shard_index(self.num_samples, self._position, self.shard, self._yielded)
        self._yielded += 1
        self._started = True
        return SampleKey(self.epoch, index)

    def get_state(self) -> dict[str, Any]:
        return {
            self.VERSION_KEY: STATE_VERSION,
            self.CONFIG_KEY: dict(self.config),
            self.EPOCH_KEY: self.epoch,
            self.POSITION_KEY: self._position,
            self.YIELDED_KEY: self._yielded,
            self.WORLD_SIZE_KEY: self.shard.world_size,
        }

    @property
    def global_position(self) -> int:
        """Samples of the current epoch consumed by all ranks together (assuming lockstep)."""
        return self._position + self.shard.world_size * self._yielded


_REQUIRED = {
    SampleIndexSource.VERSION_KEY: int, SampleIndexSource.CONFIG_KEY: dict,
    SampleIndexSource.EPOCH_KEY: int, SampleIndexSource.POSITION_KEY: int,
    SampleIndexSource.YIELDED_KEY: int, SampleIndexSource.WORLD_SIZE_KEY: int,
}


def check_state(state: Any, config: Mapping[str, Any]) -> None:
    """Refuse a malformed state, a state of another version, or one of another config."""
    if not isinstance(state, Mapping):
        raise StateError(f"state must be a dict, got {type(state).__name__}; pass loader.state_dict().")
    missing = [key for key in _REQUIRED if key not in state]
    if missing:
        raise StateError(f"state lacks {missing}; it is truncated or not from timelapse_pipes.")
    wrong = [key for key, kind in _REQUIRED.items()
             if not isinstance(state[key], kind) or isinstance(state[key], bool)]
    if wrong:
        raise StateError(f"state fields {wrong} have the wrong type; the checkpoint is damaged.")
    version = state[SampleIndexSource.VERSION_KEY]
    if version != STATE_VERSION:
        raise StateError(
            f"state version {version} is not this timelapse_pipes' version {STATE_VERSION}: its samples were "
            f"drawn differently, so it cannot resume the same stream; start the epoch again (the position is "
            f"in the state) or finish the run with the version that wrote it."
        )
    if min(state[SampleIndexSource.EPOCH_KEY], state[SampleIndexSource.POSITION_KEY],
           state[SampleIndexSource.YIELDED_KEY]) < 0 or state[SampleIndexSource.WORLD_SIZE_KEY] < 1:
        raise StateError("state has negative counters; the checkpoint is damaged.")
    differences = summary_differences(state[SampleIndexSource.CONFIG_KEY], config)
    if differences:
        raise StateError(
            "The checkpoint was taken with another config or manifest: " + "; ".join(differences)
            + ". Load it with force=True to resume anyway at the same position."
        )
