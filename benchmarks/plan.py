"""Which regions a run reads: the library's own pure planning functions, for the baselines to match.

``timelapse_pipes.sampling`` makes the i-th sample of epoch e a pure function of (seed, epoch, i),
so the raw-reader limit can read exactly the same timepoints and crop offsets without running the
library. :func:`check_same_pixels` confirms it once per dataset (untimed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from timelapse_pipes.sampling.crops import CropSpec, choose_crop_offset
from timelapse_pipes.sampling.draws import transform_seeds
from timelapse_pipes.sampling.rows import row_for_sample
from timelapse_pipes.sampling.timepoints import choose_timepoints

__all__ = ["PlannedRead", "planned_reads", "check_same_pixels"]


@dataclass(frozen=True)
class PlannedRead:
    index: int
    path: str
    t: int
    region: tuple[slice, slice, slice]  # Z, Y, X
    offset: tuple[int, ...] | None
    seed: int  # the sample's transform seed (used to seed the baseline's RandSpatialCropd)


def planned_reads(paths: Sequence[str], frames: Sequence[int], zyx: Sequence[int], indices: range,
                  seed: int, roi: Sequence[int] | None = None, epoch: int = 0) -> list[PlannedRead]:
    """The reads of samples ``indices`` (``num_timepoints=1``, random sampling, spatial_dims=3)."""
    crop = None if roi is None else CropSpec(tuple(int(r) for r in roi))
    reads = []
    for i in indices:
        row = row_for_sample(seed, epoch, i, len(paths))
        (t,) = choose_timepoints(seed, epoch, i, 0, frames[row], 1, "random")
        offset = None
        region = tuple(slice(0, s) for s in zyx)
        if crop is not None:
            offset = choose_crop_offset(seed, epoch, i, list(zyx), crop)
            region = tuple(slice(o, o + r) for o, r in zip(offset, crop.roi_size))
        reads.append(PlannedRead(i, str(paths[row]), t, region, offset,  # type: ignore[arg-type]
                                 transform_seeds(seed, epoch, i, 1)[0]))
    return reads


def check_same_pixels(batch: dict[str, Any], reads: Sequence[PlannedRead], raw_arrays: Sequence[np.ndarray]) -> str:
    """Compare the library's first batch with the raw reads of the same plan; a short verdict."""
    pixels = batch["raw"].numpy()
    if len(reads) != pixels.shape[0]:
        return f"not checked (batch of {pixels.shape[0]}, plan of {len(reads)})"
    for k, (read, raw) in enumerate(zip(reads, raw_arrays)):
        if int(batch["T"][k][0]) != read.t or int(batch["sample_index"][k]) != read.index:
            return f"MISMATCH: sample {k} planned T={read.t}, the library read T={batch['T'][k].tolist()}"
        if not np.array_equal(pixels[k], raw.astype(np.float32).reshape(pixels[k].shape)):
            return f"MISMATCH: sample {k} pixels differ from the raw read"
    return "identical pixels to the raw read of the same plan"
