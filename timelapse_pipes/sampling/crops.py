"""Where a sample's crop window lies in its frame (pure): centred, or drawn from the sample's stream."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from ..errors import ConfigError, SampleError
from .draws import CROP_TAG, sample_rng

__all__ = ["CropSpec", "choose_crop_offset"]


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
