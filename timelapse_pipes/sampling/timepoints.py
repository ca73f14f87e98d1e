"""Which frames a sample gets (pure): the three sampling modes (random, sequential, uniform), an
anchor plus fixed offsets, or a pair of frames at a random gap.

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
from typing import Callable

from ..errors import ConfigError, SampleError
from .draws import TIMEPOINT_TAG, SampleDraws, sample_rng

__all__ = ["FrameRule", "TIMEPOINT_SAMPLERS", "check_distinct_frames", "choose_timepoints", "frames_in_range"]


def _random_timepoints(rng: SampleDraws, start: int, stop: int, count: int, jitter: bool) -> list[int]:
    length = stop - start
    replace = length < count  # documented fallback: too short a range repeats frames
    picks = rng.choice(length, count, replace)
    return sorted(picks) if start == 0 else sorted(start + p for p in picks)


def _sequential_timepoints(rng: SampleDraws, start: int, stop: int, count: int, jitter: bool) -> list[int]:
    first = rng.integers(start, stop - count + 1)
    return list(range(first, first + count))


def _uniform_timepoints(rng: SampleDraws, start: int, stop: int, count: int, jitter: bool) -> list[int]:
    # Integer arithmetic: frame k is start + floor((k * L + phase) / n), phase in [0, L) (exact).
    length = stop - start
    phase = rng.integers(0, length) if jitter else 0
    return [start + (k * length + phase) // count for k in range(count)]


FrameSampler = Callable[[SampleDraws, int, int, int, bool], list[int]]
TIMEPOINT_SAMPLERS: dict[str, FrameSampler] = {
    "random": _random_timepoints,
    "sequential": _sequential_timepoints,
    "uniform": _uniform_timepoints,
}
NEEDS_DISTINCT_FRAMES = frozenset({"sequential", "uniform"})


def frames_in_range(start: int, stop: int, step: int = 1) -> int:
    """How many frames ``start, start + step, ...`` lie below ``stop``."""
    return len(range(start, stop, step))


def check_distinct_frames(start: int, stop: int, count: int, mode: str, where: str = "",
                          step: int = 1) -> None:
    """Refuse a range shorter than ``count`` for the modes that promise distinct frames."""
    available = frames_in_range(start, stop, step)
    if available < count and mode in NEEDS_DISTINCT_FRAMES:
        every = "" if step == 1 else f" at step {step}"
        raise SampleError(
            f"{where}: the range [{start}, {stop}){every} holds {available} frames but "
            f"num_timepoints={count} with timepoint_sampling={mode!r} needs distinct frames; "
            f"widen the range, lower num_timepoints or use 'random'."
        )


def choose_timepoints(seed: int, epoch: int, index: int, start: int, stop: int, count: int,
                      mode: str, jitter: bool = True, where: str = "", step: int = 1) -> tuple[int, ...]:
    """Timepoints of one sample, all among ``start, start + step, ...`` below ``stop``.

    ``random`` draws without replacement (sorted), falling back to replacement only when the
    range is shorter than ``count``. ``sequential`` is a window of consecutive frames of the step
    grid at a random start. ``uniform`` is evenly spaced with a random phase (``jitter=False``: the
    fixed grid starting at ``start``). Draws happen on frame positions ``0..L-1`` of the grid and
    are mapped to ``start + position * step``.
    """
    sampler = TIMEPOINT_SAMPLERS.get(mode)
    if sampler is None:
        raise ConfigError(f"timepoint_sampling={mode!r} must be one of {sorted(TIMEPOINT_SAMPLERS)}.")
    available = frames_in_range(start, stop, step)
    if available < count:
        check_distinct_frames(start, stop, count, mode, where, step)
    positions = sampler(SampleDraws(seed, epoch, index, TIMEPOINT_TAG), 0, available, count, jitter)
    if start == 0 and step == 1:
        return tuple(positions)
    return tuple([start + p * step for p in positions])


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
