"""Synthetic data writers: OME-Zarr and OME-TIFF timelapses and manifest CSVs (into a temp dir)."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["frame_pixels", "write_ome_zarr", "write_ome_tiff", "write_manifest"]

AXES = ["t", "c", "z", "y", "x"]
BLOCK_BYTES = 256 * 2**20


def frame_pixels(shape: Sequence[int], seed: int) -> np.ndarray:
    """One uint16 frame of noise around a camera offset (compresses about like real data)."""
    rng = np.random.default_rng(seed)
    return rng.integers(90, 400, size=tuple(shape), dtype=np.uint16)


def write_ome_zarr(path: Path, frames: int, czyx: Sequence[int], chunk: Sequence[int],
                   seed: int = 0) -> Path:
    """A single-level OME-Zarr v3 (T, C, Z, Y, X) written one timepoint at a time."""
    from bioio_ome_zarr.writers import OMEZarrWriter

    shape = (frames, *czyx)
    writer = OMEZarrWriter(str(path), level_shapes=[shape], dtype=np.uint16,
                           chunk_shape=tuple(min(c, s) for c, s in zip(chunk, shape)), zarr_format=3,
                           axes_names=AXES, physical_pixel_size=[1.0, 1.0, 2.0, 0.5, 0.5])
    per_block = max(1, BLOCK_BYTES // (2 * int(np.prod(czyx))))  # timepoints written per call
    for first in range(0, frames, per_block):
        count = min(per_block, frames - first)
        block = np.stack([frame_pixels(czyx, seed * 100_003 + t) for t in range(first, first + count)])
        writer.write_timepoints(block, start_T_dest=first, total_T=count)
    return path


def write_ome_tiff(path: Path, frames: int, czyx: Sequence[int], seed: int = 0) -> Path:
    """An OME-TIFF (T, C, Z, Y, X) through bioio's writer (one deflate-compressed page per plane)."""
    from bioio_ome_tiff.writers import OmeTiffWriter

    data = np.stack([frame_pixels(czyx, seed * 100_003 + t) for t in range(frames)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        OmeTiffWriter.save(data, str(path), dim_order="TCZYX")
    return path


def write_manifest(path: Path, image_paths: Sequence[str | Path], rows: int | None = None,
                   channel: str = "0", stop: int | None = None) -> Path:
    """A manifest CSV of ``rows`` rows (default: one per image) cycling over ``image_paths``."""
    count = len(image_paths) if rows is None else rows
    with open(path, "w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["path", "channel", "split", "start", "stop"])
        for i in range(count):
            writer.writerow([str(image_paths[i % len(image_paths)]), channel, "train", 0,
                             -1 if stop is None else stop])
    return path
