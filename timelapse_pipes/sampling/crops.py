"""Where a sample's crop window lies in its frame (pure): centred, drawn from the sample's stream, or
drawn among the windows where a mask is (foreground-aware placement, decided without rejection)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from ..errors import ConfigError, SampleError
from .class_ratios import whole_ratios
from .draws import CROP_TAG, sample_rng

__all__ = ["PLACEMENT_KEYS", "AllowedWindows", "CropSpec", "check_crop_fits", "choose_crop_offset", "choose_window", "is_positive", "nearest_indices", "window_fractions"]


PLACEMENT_KEYS = ("where", "min_foreground", "pos_neg", "ratios", "num_classes", "map_block", "weights")


@dataclass(frozen=True)
class CropSpec:
    """A region of interest read by crop pushdown. ``roi_size`` is (Z, Y, X) or (Y, X).

    Placement (each a pure function of (seed, epoch, i) and the files): by an image's foreground
    (``where``, with ``min_foreground``, ``pos_neg`` and ``map_block``), by its label classes
    (``where`` with ``ratios`` or ``num_classes``), or by a weight map (``weights``).
    """

    roi_size: tuple[int, ...]
    mode: str = "random"
    where: str | None = None  # the key of an image (image_columns) whose foreground places the crop
    min_foreground: float | None = None  # a positive window holds at least this fraction of foreground
    pos_neg: tuple[int, int] | None = None  # positive : negative windows, as MONAI's RandCropByPosNegLabeld
    ratios: tuple[int, ...] | None = None  # windows per label class (background first), as RandCropByLabelClassesd
    num_classes: int | None = None  # the label classes of one-channel labels (ratios 1 each when ratios is None)
    map_block: int | None = None  # plan from a foreground map of block x block x block tiles (kept in the cache)
    weights: str | None = None  # the key of an image whose values weight the window centres (torchio's WeightedSampler)

    @property
    def placed(self) -> bool:
        """True when the crop is placed by an image of the row (foreground, classes or weights)."""
        return self.where is not None or self.weights is not None

    @property
    def by_class(self) -> bool:
        """True when the crop is centred on a label class drawn by ``ratios``."""
        return self.ratios is not None

    @property
    def placing_image(self) -> str | None:
        """The key of the image that places the crop."""
        return self.where if self.where is not None else self.weights

    def fingerprint(self) -> list[object]:
        """What changes the crops (the placement options only when given)."""
        placement = [] if self.where is None else [self.where, self.min_foreground,
                                                   None if self.pos_neg is None else list(self.pos_neg)]
        later = {"ratios": None if self.ratios is None else list(self.ratios), "num_classes": self.num_classes,
                 "map_block": self.map_block, "weights": self.weights}
        given = {name: value for name, value in later.items() if value is not None}
        return [list(self.roi_size), self.mode, *placement, *([given] if given else [])]

    @classmethod
    def parse(cls, value: "CropSpec | Mapping[str, object] | None") -> "CropSpec | None":
        """Accept a CropSpec, a ``{"roi_size": [...], "mode": ...}`` mapping, or None."""
        if value is None or isinstance(value, CropSpec):
            return value
        if not isinstance(value, Mapping) or "roi_size" not in value:
            raise ConfigError(f"crop={value!r} must be a mapping with 'roi_size' (and optional 'mode').")
        known = {"roi_size", "mode", *PLACEMENT_KEYS}
        unknown = set(value) - known
        if unknown:
            raise ConfigError(f"crop has unknown keys {sorted(unknown)}; use {sorted(known)}.")
        roi = tuple(int(v) for v in value["roi_size"])  # type: ignore[union-attr]
        mode = str(value.get("mode", "random"))
        if mode not in ("random", "center"):
            raise ConfigError(f"crop mode={mode!r} must be 'random' or 'center'.")
        if not roi or any(v <= 0 for v in roi):
            raise ConfigError(f"crop roi_size={list(roi)} must hold positive sizes.")
        placement = _placement(value)
        if (placement["where"] is not None or placement["weights"] is not None) and mode != "random":
            raise ConfigError("crop 'where' and 'weights' place crops at random among the windows the image allows; "
                              "leave mode out (or 'random').")
        return cls(roi_size=roi, mode=mode, **placement)  # type: ignore[arg-type]


def _placement(value: Mapping[str, object]) -> dict[str, object]:
    """The placement keys of a crop mapping, checked together."""
    where, weights = value.get("where"), value.get("weights")
    fraction, pos_neg, block = value.get("min_foreground"), value.get("pos_neg"), value.get("map_block")
    ratios, num_classes = value.get("ratios"), value.get("num_classes")
    foreground = [name for name in ("min_foreground", "pos_neg", "map_block") if value.get(name) is not None]
    classes = [name for name in ("ratios", "num_classes") if value.get(name) is not None]
    if where is None and (foreground or classes):
        raise ConfigError(f"crop {' and '.join(foreground + classes)} place crops by an image's foreground; "
                          f"name that image with crop 'where' (e.g. 'where': 'mask').")
    if weights is not None and where is not None:
        raise ConfigError("crop 'where' and 'weights' both place the crop; give one (weights: centres drawn in "
                          "proportion to that image, where: by its foreground or label classes).")
    if foreground and classes:
        raise ConfigError(f"crop {foreground} choose windows by foreground, {classes} by label class; give one kind.")
    if fraction is not None:
        fraction = float(fraction)  # type: ignore[arg-type]
        if not 0 < fraction <= 1:
            raise ConfigError(f"crop min_foreground={fraction} must be in (0, 1].")
    if pos_neg is not None:
        ratio = [int(v) for v in pos_neg]  # type: ignore[attr-defined]
        if len(ratio) != 2 or min(ratio) < 0 or sum(ratio) == 0:
            raise ConfigError(f"crop pos_neg={pos_neg!r} must be two counts [positive, negative], not both 0.")
        pos_neg = tuple(ratio)
    if block is not None and (isinstance(block, bool) or not isinstance(block, (int, np.integer)) or block < 1):
        raise ConfigError(f"crop map_block={block!r} must be a whole number of pixels >= 1 (e.g. 8).")
    if num_classes is not None and (isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer))
                                    or num_classes < 1):
        raise ConfigError(f"crop num_classes={num_classes!r} must be a whole number >= 1 (background included).")
    if ratios is not None:
        if isinstance(ratios, (str, bytes)) or not isinstance(ratios, Sequence):
            raise ConfigError(f"crop ratios={ratios!r} must be a list of numbers, one per class (background first).")
        ratios = whole_ratios(ratios, "crop ratios")
        if num_classes is not None and len(ratios) != num_classes:
            raise ConfigError(f"crop ratios has {len(ratios)} values but num_classes={num_classes}; give one ratio "
                              f"per class, background (class 0) first.")
    elif num_classes is not None:
        ratios = (1,) * int(num_classes)  # type: ignore[call-overload]  # MONAI: every class equally often
    return {"where": None if where is None else str(where), "min_foreground": fraction, "pos_neg": pos_neg,
            "ratios": ratios, "num_classes": None if num_classes is None else int(num_classes),  # type: ignore[call-overload]
            "map_block": None if block is None else int(block),  # type: ignore[call-overload]
            "weights": None if weights is None else str(weights)}


def choose_crop_offset(seed: int, epoch: int, index: int, frame_shape: Sequence[int],
                       crop: CropSpec, where: str = "") -> tuple[int, ...]:
    """Offsets of the crop in the spatial ``frame_shape`` (same length as ``crop.roi_size``)."""
    check_crop_fits(frame_shape, crop, where)
    if crop.mode == "center":
        return tuple((f - r) // 2 for f, r in zip(frame_shape, crop.roi_size))
    rng = sample_rng(seed, epoch, index, CROP_TAG)
    return tuple(rng.integers(0, f - r + 1) for f, r in zip(frame_shape, crop.roi_size))


def check_crop_fits(frame_shape: Sequence[int], crop: CropSpec, where: str = "") -> None:
    """Refuse a crop with another number of axes than the frame, or larger than it, naming ``where``."""
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


def window_fractions(foreground: np.ndarray, roi_size: Sequence[int]) -> np.ndarray:
    """The fraction of foreground in every window of ``roi_size`` in a boolean (Z, Y, X) map, indexed
    by the window's offset: shape ``frame - roi + 1`` per axis. A summed-area table makes it one pass."""
    table = np.zeros(tuple(n + 1 for n in foreground.shape), dtype=np.int64)
    table[1:, 1:, 1:] = foreground.astype(np.int64).cumsum(0).cumsum(1).cumsum(2)
    dz, dy, dx = roi_size
    z, y, x = (n - r + 1 for n, r in zip(foreground.shape, roi_size))
    sums = (table[dz:dz + z, dy:dy + y, dx:dx + x] - table[:z, dy:dy + y, dx:dx + x]
            - table[dz:dz + z, :y, dx:dx + x] - table[dz:dz + z, dy:dy + y, :x]
            + table[:z, :y, dx:dx + x] + table[:z, dy:dy + y, :x] + table[dz:dz + z, :y, :x] - table[:z, :y, :x])
    return sums / float(dz * dy * dx)


def is_positive(index: int, pos_neg: tuple[int, int] | None) -> bool:
    """Whether sample ``index`` takes a positive window: exactly ``pos`` of every ``pos + neg``
    consecutive samples do, so the ratio holds within one in any pass."""
    if pos_neg is None:
        return True
    pos, neg = pos_neg
    total = pos + neg
    return (index + 1) * pos // total - index * pos // total == 1


class AllowedWindows:
    """The starts of the windows a sample may take (the ``True`` entries of a map by window start),
    kept as flat indices so that a draw does not scan the map again."""

    def __init__(self, flat: np.ndarray, shape: tuple[int, ...]) -> None:
        self.flat = flat
        self.shape = shape

    @classmethod
    def of(cls, allowed: np.ndarray) -> "AllowedWindows":
        flat = np.flatnonzero(allowed)
        return cls(flat.astype(np.int32) if allowed.size < 2**31 else flat, tuple(allowed.shape))

    @property
    def count(self) -> int:
        """How many window starts are allowed."""
        return int(self.flat.size)

    def at(self, n: int) -> tuple[int, ...]:
        """The ``n``-th allowed start, in C order."""
        return tuple(int(v) for v in np.unravel_index(int(self.flat[n]), self.shape))


def choose_window(seed: int, epoch: int, index: int, allowed: "np.ndarray | AllowedWindows") -> tuple[int, ...] | None:
    """One start drawn uniformly among the allowed windows (a map by window start, or those already
    listed), or None when there is none."""
    windows = allowed if not isinstance(allowed, np.ndarray) else AllowedWindows.of(allowed)
    if windows.count == 0:
        return None
    return windows.at(sample_rng(seed, epoch, index, CROP_TAG).integers(0, windows.count))


def nearest_indices(own: int, other: int, start: int, size: int) -> np.ndarray:
    """For pixels ``start .. start + size - 1`` of an axis of length ``own``, the nearest pixel of
    the same axis sampled at length ``other`` (``floor(i * other / own)``): the window to read from
    a coarser (or finer) image, and how to resize it."""
    return (np.arange(start, start + size, dtype=np.int64) * other) // own
