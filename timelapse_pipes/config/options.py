"""The option objects: how samples are planned and read, where files come from, what errors do.

:class:`SampleOptions` is shared by the planning and loading stages and validated once;
:class:`ReadOptions` and :class:`ErrorPolicy` group the reading and error options of
``build_loader``. Each also has flat keywords (cyto-dl's style), mapped by :mod:`.keywords`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ..errors import ConfigError
from ..sampling.crops import CropSpec
from ..sampling.grid import GridSpec
from ..sampling.timepoints import TIMEPOINT_SAMPLERS, FrameRule

__all__ = ["ON_ERROR_MODES", "ErrorPolicy", "ReadOptions", "SampleOptions", "TIMEPOINT_LAYOUTS", "dtype_name"]

TIMEPOINT_LAYOUTS = ("stack", "separate")
ON_ERROR_MODES = ("raise", "skip", "retry")
TIME_AXES = ("T", "Z", "C")


def dtype_name(dtype: Any) -> str:
    if isinstance(dtype, str) and dtype.startswith("numpy."):
        dtype = dtype[len("numpy."):]
    try:
        return np.dtype(dtype).name
    except TypeError:
        raise ConfigError(f"dtype={dtype!r} is not a numpy dtype (e.g. 'float32', numpy.uint16).") from None


@dataclass(frozen=True)
class SampleOptions:
    """How every sample is planned and read. See ``build_loader`` for each option."""

    seed: int = 0
    num_timepoints: int = 1
    timepoint_sampling: str = "random"
    uniform_jitter: bool = True
    spatial_dims: int = 3
    dtype: str = "float32"
    timepoint_layout: str = "stack"
    out_key: str = "raw"
    crop: CropSpec | None = None
    reader: str | None = None
    time_axis: str = "T"
    extra_columns: tuple[str, ...] = field(default_factory=tuple)
    frame_offsets: tuple[int, ...] | None = None
    frame_gap: tuple[int, int] | None = None
    grid: GridSpec | None = None  # tile every row's frames in a fixed order (inference) instead of drawing

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ConfigError(f"seed={self.seed!r} must be a non-negative integer.")
        if isinstance(self.num_timepoints, bool) or not isinstance(self.num_timepoints, (int, np.integer)) \
                or self.num_timepoints < 1:
            raise ConfigError(f"num_timepoints={self.num_timepoints!r} must be an integer >= 1.")
        if self.timepoint_sampling not in TIMEPOINT_SAMPLERS:
            raise ConfigError(
                f"timepoint_sampling={self.timepoint_sampling!r} must be one of {sorted(TIMEPOINT_SAMPLERS)}."
            )
        if self.spatial_dims not in (2, 3):
            raise ConfigError(f"spatial_dims={self.spatial_dims!r} must be 2 (YX) or 3 (ZYX).")
        if self.timepoint_layout not in TIMEPOINT_LAYOUTS:
            raise ConfigError(f"timepoint_layout={self.timepoint_layout!r} must be one of {TIMEPOINT_LAYOUTS}.")
        if self.time_axis not in TIME_AXES:
            raise ConfigError(f"time_axis={self.time_axis!r} must be one of {TIME_AXES}.")
        object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "num_timepoints", int(self.num_timepoints))
        object.__setattr__(self, "dtype", dtype_name(self.dtype))
        object.__setattr__(self, "crop", CropSpec.parse(self.crop))  # type: ignore[arg-type]
        object.__setattr__(self, "extra_columns", tuple(self.extra_columns or ()))
        self._normalize_time_aware()
        object.__setattr__(self, "grid", GridSpec.parse(self.grid, self.spatial_dims))  # type: ignore[arg-type]
        if self.grid is not None and (self.crop is not None or self.time_aware):
            other = "crop" if self.crop is not None else "frame_offsets / frame_gap"
            raise ConfigError(f"grid tiles every frame in a fixed order, so it replaces {other}; give the tile "
                              f"size as grid={{'roi_size': [...]}} and the frames per sample as num_timepoints.")
        if self.crop is not None and len(self.crop.roi_size) != self.spatial_dims:
            raise ConfigError(
                f"crop roi_size={list(self.crop.roi_size)} must have {self.spatial_dims} sizes "
                f"for spatial_dims={self.spatial_dims}."
            )

    def _normalize_time_aware(self) -> None:
        """``frame_offsets`` / ``frame_gap`` fix the frame count (``num_timepoints`` may repeat it)."""
        offsets = None if self.frame_offsets is None else tuple(_integers(self.frame_offsets, "frame_offsets"))
        gap = None if self.frame_gap is None else tuple(_integers(self.frame_gap, "frame_gap"))
        if gap is not None and len(gap) != 2:
            raise ConfigError(f"frame_gap={list(gap)} must be two numbers (min, max).")
        object.__setattr__(self, "frame_offsets", offsets)
        object.__setattr__(self, "frame_gap", gap)
        count = len(offsets) if offsets is not None else 2 if gap is not None else None
        if count is not None:
            if self.num_timepoints not in (1, count):
                name = "frame_offsets" if offsets is not None else "frame_gap"
                raise ConfigError(f"num_timepoints={self.num_timepoints} disagrees with {name}, which gives "
                                  f"{count} frames per sample; leave num_timepoints out.")
            object.__setattr__(self, "num_timepoints", count)
        rule = FrameRule(self.num_timepoints, self.timepoint_sampling, self.uniform_jitter,
                         offsets, gap)  # type: ignore[arg-type]  # validated now, at start-up
        object.__setattr__(self, "_frame_rule", rule)

    @property
    def frame_rule(self) -> FrameRule:
        """How each sample's frames are chosen."""
        return self._frame_rule  # type: ignore[attr-defined]

    @property
    def time_aware(self) -> bool:
        """True when frames are an anchor plus offsets or a gap pair (one transform draw per sample)."""
        return self.frame_offsets is not None or self.frame_gap is not None

    def fingerprint_fields(self) -> dict[str, Any]:
        """Every option that changes what a sample holds (workers and batch size do not)."""
        return {
            "seed": self.seed, "num_timepoints": self.num_timepoints,
            "timepoint_sampling": self.timepoint_sampling, "uniform_jitter": self.uniform_jitter,
            "spatial_dims": self.spatial_dims, "dtype": self.dtype,
            "timepoint_layout": self.timepoint_layout,
            "crop": None if self.crop is None else self.crop.fingerprint(),
            "reader": self.reader, "time_axis": self.time_axis,
        } | ({"frame_offsets": list(self.frame_offsets)} if self.frame_offsets is not None else {}) \
          | ({"frame_gap": list(self.frame_gap)} if self.frame_gap is not None else {}) \
          | ({"grid": self.grid.fingerprint()} if self.grid is not None else {})


@dataclass(frozen=True)
class ReadOptions:
    """Where image files and their metadata come from, and how many files stay open per process."""

    metadata_cache: str | None = None  # a JSON cache file or an index (local path or URL)
    max_open_files: int = 64  # open images kept per process (LRU)
    storage_options: Mapping[str, Any] | None = None  # fsspec options, flat or per protocol
    stage_dir: str | None = None  # where remote files that must be local (CZI, ND2, LIF) are copied
    stage_max_bytes: int | None = None  # evict the oldest staged files beyond this size


@dataclass(frozen=True)
class ErrorPolicy:
    """What a failed sample does: ``on_error`` is "raise", "retry" (transient I/O) or "skip"."""

    on_error: str = "raise"
    max_retries: int = 3
    max_skips: int = 100


def _integers(values: Any, name: str) -> list[int]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ConfigError(f"{name}={values!r} must be a list of integers.")
    items = list(values)
    if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in items):
        raise ConfigError(f"{name}={items!r} must be a list of integers.")
    return [int(v) for v in items]


