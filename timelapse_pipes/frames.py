"""Which frames a sample gets (pure): the guide's three modes, an anchor plus fixed offsets, or a
pair of frames at a random gap.

Every rule works on the row's frame grid ``start, start + step, ...`` below ``stop``: offsets and
gaps count frames of that grid (with ``step=1``, plain frames). Draws come from the sample's
timepoint generator, so they are a pure function of (seed, epoch, i) like every other plan.

* ``offsets=(0, 1, 4)``: an anchor position p is drawn where every ``p + k`` lies on the grid;
  the frames are returned in the order of the offsets (negative offsets look back).
* ``gap=(low, high)``: a gap g is drawn from ``[low, high]`` (capped at what the row holds), then
  an anchor p where ``p + g`` lies on the grid; the frames are ``(p, p + g)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError, SampleError
from .planning import TIMEPOINT_TAG, check_distinct_frames, choose_timepoints, frames_in_range, sample_rng

__all__ = ["FrameRule"]


@dataclass(frozen=True)
class FrameRule:
    """How the frames of one sample are chosen; ``offsets`` and ``gap`` replace ``mode``."""

    count: int = 1
    mode: str = "random"
    jitter: bool = True
    offsets: tuple[int, ...] | None = None
    gap: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.offsets is not None and self.gap is not None:
            raise ConfigError("frame_offsets and frame_gap are alternatives; give one of them.")
        if self.offsets is not None:
            if not self.offsets or len(set(self.offsets)) != len(self.offsets):
                raise ConfigError(f"frame_offsets={list(self.offsets)} must list distinct frame offsets.")
        if self.gap is not None:
            low, high = self.gap
            if not 1 <= low <= high:
                raise ConfigError(f"frame_gap={list(self.gap)} must be (min, max) with 1 <= min <= max.")

    @property
    def describe(self) -> str:
        """The rule in words, for error messages."""
        if self.offsets is not None:
            return f"frame_offsets={list(self.offsets)}"
        if self.gap is not None:
            return f"frame_gap={list(self.gap)}"
        return f"num_timepoints={self.count} with timepoint_sampling={self.mode!r}"

    def check(self, start: int, stop: int, step: int = 1, where: str = "") -> None:
        """Refuse a row whose frame range cannot hold what this rule asks for, naming the row."""
        if self.offsets is None and self.gap is None:
            check_distinct_frames(start, stop, self.count, self.mode, where, step)
            return
        frames = frames_in_range(start, stop, step)
        every = "" if step == 1 else f" at step {step}"
        needed = max(self.offsets) - min(self.offsets) + 1 if self.offsets is not None else self.gap[0] + 1  # type: ignore[index]
        if frames < needed:
            raise SampleError(
                f"{where}: the range [{start}, {stop}){every} holds {frames} frames but {self.describe} "
                f"needs {needed}; widen the range or use smaller offsets."
            )

    def choose(self, seed: int, epoch: int, index: int, start: int, stop: int, step: int = 1,
               where: str = "") -> tuple[int, ...]:
        """The frames of sample ``index`` of ``epoch`` in this row's range."""
        if self.offsets is None and self.gap is None:
            return choose_timepoints(seed, epoch, index, start, stop, self.count, self.mode, self.jitter,
                                     where, step)
        self.check(start, stop, step, where)
        frames = frames_in_range(start, stop, step)
        rng = sample_rng(seed, epoch, index, TIMEPOINT_TAG)
        if self.offsets is not None:
            anchor = rng.integers(-min(self.offsets), frames - max(self.offsets))
            positions: tuple[int, ...] = tuple(anchor + k for k in self.offsets)
        else:
            low, high = self.gap  # type: ignore[misc]
            gap = rng.integers(low, min(high, frames - 1) + 1)
            anchor = rng.integers(0, frames - gap)
            positions = (anchor, anchor + gap)
        return tuple(start + p * step for p in positions)
