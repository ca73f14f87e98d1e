"""A counter-based random stream per (seed, epoch, index, tag): cheap, pure, exact.

``numpy.random.default_rng([seed, epoch, i, tag])`` hashes a seed sequence and builds a generator,
which at tens of thousands of samples a second costs more than the rest of a small sample's plan.
Here a stream is a 64-bit key mixed from the tuple with SplitMix64's finalizer (a bijection on 64
bits with full avalanche), and draw k is ``mix(key + k * golden)``: a few integer operations per
draw, in plain Python, with no state beyond the counter. Bounded integers use Lemire's multiply-and-reject method, so they are
exactly uniform.
"""

from __future__ import annotations

import functools
import operator

__all__ = ["SampleDraws", "sample_rng", "ROW_TAG", "TIMEPOINT_TAG", "CROP_TAG", "TRANSFORM_TAG",
           "SUBSTITUTE_TAG", "MAX_TRANSFORM_SEED", "transform_seeds"]

# What a stream is for: each purpose of a sample draws from its own stream, so changing one
# option never shifts another draw.
ROW_TAG = 1
TIMEPOINT_TAG = 2
CROP_TAG = 3
TRANSFORM_TAG = 4
SUBSTITUTE_TAG = 5
MAX_TRANSFORM_SEED = 2**32 - 1  # MONAI's MAX_SEED is 2**32; numpy RandomState takes < 2**32

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


def _mix(value: int) -> int:
    """SplitMix64's finalizer: a bijection of 64-bit integers whose output bits all depend on all input bits."""
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
    return value ^ (value >> 31)


@functools.lru_cache(maxsize=64)
def _epoch_key(seed: int, epoch: int) -> int:
    """The stream key mixed from (seed, epoch), shared by every sample of that epoch."""
    key = 0
    for part in (seed, epoch):
        key = _mix(((key ^ (part & _MASK)) + _GOLDEN) & _MASK)
    return key


class SampleDraws:
    """The draws of one purpose (``tag``) of one sample; the same tuple always gives the same draws."""

    __slots__ = ("_key", "_counter")

    def __init__(self, seed: int, epoch: int, index: int, tag: int) -> None:
        # operator.index: numpy integers key the cache as the Python ints they equal (never as
        # numpy scalars that would wrap later arithmetic), and floats are refused as before.
        key = _epoch_key(operator.index(seed), operator.index(epoch))
        for part in (index, tag):  # _mix inlined: this runs several times per sample
            key = ((key ^ (part & _MASK)) + _GOLDEN) & _MASK
            key = ((key ^ (key >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
            key = ((key ^ (key >> 27)) * 0x94D049BB133111EB) & _MASK
            key ^= key >> 31
        self._key = key
        self._counter = 0

    def next64(self) -> int:
        """The next 64-bit draw of the stream."""
        self._counter += 1
        return _mix((self._key + self._counter * _GOLDEN) & _MASK)

    def integers(self, low: int, high: int) -> int:
        """A uniform integer in ``[low, high)`` (exact: multiply-and-reject, no modulo bias)."""
        span = high - low
        if span <= 0:
            raise ValueError(f"empty range [{low}, {high})")
        if span > _MASK:
            raise ValueError(f"range [{low}, {high}) is wider than 2**64")
        product = self.next64() * span
        if (product & _MASK) < span:
            threshold = ((1 << 64) - span) % span
            while (product & _MASK) < threshold:
                product = self.next64() * span
        return low + (product >> 64)

    def random(self) -> float:
        """A uniform float in ``[0, 1)`` with 53 random bits."""
        return (self.next64() >> 11) * (1.0 / (1 << 53))

    def choice(self, population: int, size: int, replace: bool = False) -> list[int]:
        """``size`` draws from ``range(population)``: distinct (Floyd's algorithm), or with replacement."""
        if size == 1:  # what either branch gives for one draw, without their loops
            return [self.integers(0, population)]
        if replace:
            return [self.integers(0, population) for _ in range(size)]
        if size > population:
            raise ValueError(f"cannot draw {size} distinct values from {population}")
        chosen: dict[int, None] = {}
        for upper in range(population - size, population):
            pick = self.integers(0, upper + 1)
            chosen[upper if pick in chosen else pick] = None
        return list(chosen)


def sample_rng(seed: int, epoch: int, index: int, tag: int) -> SampleDraws:
    """The draws for one purpose (``tag``) of one sample."""
    return SampleDraws(seed, epoch, index, tag)


def transform_seeds(seed: int, epoch: int, index: int, count: int) -> list[int]:
    """One transform seed per item of a sample (``count`` > 1 for the "separate" layout)."""
    rng = sample_rng(seed, epoch, index, TRANSFORM_TAG)
    return [rng.integers(0, MAX_TRANSFORM_SEED) for _ in range(count)]
