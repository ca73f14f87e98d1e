"""Synthetic data: noise timelapses and manifest CSVs, written by :mod:`timelapse_pipes.testing`'s
writers (into the benchmark's temp dir). Only the pixel rule and the manifest rows are the benchmarks' own."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from timelapse_pipes import testing

__all__ = ["frame_pixels", "write_ome_zarr", "write_ome_tiff", "write_manifest"]


def frame_pixels(shape: Sequence[int], seed: int) -> np.ndarray:
    """One uint16 frame of noise around a camera offset (compresses about like real data).

    Drawn as uint16 directly, which gives other values than ``testing.noise_movie`` (int64, cast).
    """
    rng = np.random.default_rng(seed)
    return rng.integers(90, 400, size=tuple(shape), dtype=np.uint16)


def _timepoint(czyx: Sequence[int], seed: int, t: int) -> np.ndarray:
    """Frame ``t`` of the movie of ``seed``: every timepoint its own seed."""
    return frame_pixels(czyx, seed * 100_003 + t)


def write_ome_zarr(path: Path, frames: int, czyx: Sequence[int], chunk: Sequence[int],
                   seed: int = 0, shard: Sequence[int] | None = None) -> Path:
    """A single-level OME-Zarr v3 (T, C, Z, Y, X), written a block of timepoints at a time
    (``chunk`` chunks in shards of ``shard`` when given)."""
    return testing.write_ome_zarr_frames(path, frames, czyx, chunk, lambda t: _timepoint(czyx, seed, t),
                                         zarr_format=3, shard=shard)


def write_ome_tiff(path: Path, frames: int, czyx: Sequence[int], seed: int = 0) -> Path:
    """An OME-TIFF (T, C, Z, Y, X) through bioio's writer (one deflate-compressed page per plane)."""
    return testing.write_ome_tiff(path, np.stack([_timepoint(czyx, seed, t) for t in range(frames)]))


def write_manifest(path: Path, image_paths: Sequence[str | Path], rows: int | None = None,
                   channel: str = "0", stop: int | None = None) -> Path:
    """A manifest CSV of ``rows`` rows (default: one per image) cycling over ``image_paths``."""
    count = len(image_paths) if rows is None else rows
    return testing.write_manifest(path, [
        {"path": str(image_paths[i % len(image_paths)]), "channel": channel, "split": "train", "start": 0,
         "stop": -1 if stop is None else stop}
        for i in range(count)])
