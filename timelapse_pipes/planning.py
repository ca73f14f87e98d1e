"""The pure planning core: what the i-th sample of epoch e is, as a function of (seed, epoch, i).

Nothing here does I/O or keeps random state. Every draw of a sample comes from a counter-based
stream keyed by a tuple (:class:`~timelapse_pipes.draws.SampleDraws` of ``(seed, epoch, i, TAG)``,
about 1 µs), so any worker, rank or resumed process computes the same plan for the same sample.
The row permutation of a pass is drawn once per pass with ``numpy.random.default_rng``.

* Row of sample i: let R be the row count and k = i // R the pass. The row is
  ``permutation(R, rng([seed, epoch, k, ROW_TAG]))[i % R]``: every row appears once per full
  pass and at most once in the last partial pass (the "±1" fairness).
* Timepoints, crop offsets and the transform seed each come from their own tagged generator, so
  changing one option never shifts another draw.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Mapping, NamedTuple, Sequence

import numpy as np

from .draws import SampleDraws
from .errors import ConfigError, SampleError

__all__ = [
    "SampleKey",
    "CropSpec",
    "TIMEPOINT_SAMPLERS",
    "row_for_sample",
    "sample_rng",
    "transform_seed",
    "frames_in_range",
    "check_distinct_frames",
    "choose_timepoints",
    "choose_crop_offset",
    "resolve_samples_per_epoch",
]

ROW_TAG = 1
TIMEPOINT_TAG = 2
CROP_TAG = 3
TRANSFORM_TAG = 4
SUBSTITUTE_TAG = 5
MAX_TRANSFORM_SEED = 2**32 - 1  # MONAI's MAX_SEED is 2**32; numpy RandomState takes < 2**32


class SampleKey(NamedTuple):
    """Identifies one sample of the infinite stream: the epoch and the index within it."""

    epoch: int
    index: int


@dataclass(frozen=True)
class CropSpec:
    """A region of interest read by crop pushdown. ``roi_size`` is (Z, Y, X) or (Y, X)."""

    roi_size: tuple[int, ...]
    mode: str = "random"

    @classmethod
    def parse(cls, value: "CropSpec | Mapping[str, object] | None") -> "CropSpec | None":
        """Accept a CropSpec, a ``{"roi_size": [...], "mode": ...}`` mapping, or None."""
        if value is None or isinstance(value, CropSpec):
            return value
        if not isinstance(value, Mapping) or "roi_size" not in value:
            raise ConfigError(f"crop={value!r} must be a mapping with 'roi_size' (and optional 'mode').")
        unknown = set(value) - {"roi_size", "mode"}
        if unknown:
            raise ConfigError(f"crop has unknown keys {sorted(unknown)}; use 'roi_size' and 'mode'.")
        roi = tuple(int(v) for v in value["roi_size"])  # type: ignore[union-attr]
        mode = str(value.get("mode", "random"))
        if mode not in ("random", "center"):
            raise ConfigError(f"crop mode={mode!r} must be 'random' or 'center'.")
        if not roi or any(v <= 0 for v in roi):
            raise ConfigError(f"crop roi_size={list(roi)} must hold positive sizes.")
        return cls(roi_size=roi, mode=mode)


def sample_rng(seed: int, epoch: int, index: int, tag: int) -> SampleDraws:
    """The draws for one purpose (``tag``) of one sample."""
    return SampleDraws(seed, epoch, index, tag)


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


def transform_seed(seed: int, epoch: int, index: int) -> int:
    """The seed handed to random transforms for this sample."""
    return sample_rng(seed, epoch, index, TRANSFORM_TAG).integers(0, MAX_TRANSFORM_SEED)


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


TimepointSampler = Callable[[SampleDraws, int, int, int, bool], list[int]]
TIMEPOINT_SAMPLERS: dict[str, TimepointSampler] = {
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


def choose_crop_offset(seed: int, epoch: int, index: int, frame_shape: Sequence[int],
                       crop: CropSpec, where: str = "") -> tuple[int, ...]:
    """Offsets of the crop in the spatial ``frame_shape`` (same length as ``crop.roi_size``)."""
    if len(frame_shape) != len(crop.roi_size):
        raise ConfigError(
            f"crop roi_size={list(crop.roi_size)} has {len(crop.roi_size)} axes but the samples have "
            f"{len(frame_shape)} spatial axes; give one size per spatial axis."
        )
    too_small = [(f, r) for f, r in zip(frame_shape, crop.roi_size) if r > f]
    if too_small:
        flat = len(frame_shape) == 3 and frame_shape[0] == 1 < crop.roi_size[0]
        hint = " (the image is 2-D: Z=1, so give a depth of 1, e.g. roi_size=[1, y, x])" if flat else ""
        raise SampleError(
            f"{where}: frame {list(frame_shape)} is smaller than crop roi_size {list(crop.roi_size)}{hint}; "
            f"use a smaller roi_size or drop this row."
        )
    if crop.mode == "center":
        return tuple((f - r) // 2 for f, r in zip(frame_shape, crop.roi_size))
    rng = sample_rng(seed, epoch, index, CROP_TAG)
    return tuple(rng.integers(0, f - r + 1) for f, r in zip(frame_shape, crop.roi_size))


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
