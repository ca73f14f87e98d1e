"""Synthetic timelapses written with the formats' real writers, and manifest CSVs.

Every writer takes (T, C, Z, Y, X) pixels and returns the path it wrote. The format plugins are
imported on use, so this module imports with only the core installed.
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

__all__ = ["FRAME_INTERVAL_S", "noise_movie", "write_demo_data", "write_czi", "write_imagej_tiff", "write_manifest", "write_ome_tiff", "write_ome_zarr",
           "write_ome_zarr_frames"]

AXES_NAMES = ["t", "c", "z", "y", "x"]
PIXEL_SIZES = (1.0, 1.0, 2.0, 0.5, 0.5)  # T, C, Z, Y, X as OME-Zarr's scale: Z 2 µm, Y and X 0.5 µm
BLOCK_BYTES = 256 * 2**20  # write_ome_zarr_frames writes this much per call at most


def noise_movie(shape: Sequence[int], seed: int, low: int = 0, high: int = 4000,
                dtype: str = "uint16") -> np.ndarray:
    """Seeded uniform noise in ``[low, high)`` of ``shape`` (any axes), in ``dtype``."""
    kind = np.dtype(dtype)
    if kind.kind in "ui" and not np.iinfo(kind).min <= low < high <= np.iinfo(kind).max + 1:
        raise ValueError(f"noise in [{low}, {high}) does not fit {kind.name}; give a range inside it.")
    return np.random.default_rng(seed).integers(low, high, size=tuple(shape)).astype(dtype)


def _zarr_writer(path: Path, shapes: list[tuple[int, ...]], dtype: Any, chunk: Sequence[int], zarr_format: int,
                 pixel_sizes: Sequence[float], axes_units: Sequence[str | None] | None,
                 shard: Sequence[int] | None = None) -> Any:
    from bioio_ome_zarr.writers import OMEZarrWriter

    extra: dict[str, Any] = {} if axes_units is None else {"axes_units": list(axes_units)}
    if shard is not None:
        extra["shard_shape"] = tuple(min(c, s) for c, s in zip(shard, shapes[0]))
    return OMEZarrWriter(str(path), level_shapes=shapes, dtype=dtype,
                         chunk_shape=tuple(min(c, s) for c, s in zip(chunk, shapes[0])), zarr_format=zarr_format,
                         axes_names=AXES_NAMES, physical_pixel_size=list(pixel_sizes), **extra)


def write_ome_zarr(path: Path, data: np.ndarray, zarr_format: int = 3, levels: int = 2,
                   chunk: Sequence[int] = (1, 1, 1, 32, 32), pixel_sizes: Sequence[float] = PIXEL_SIZES,
                   axes_units: Sequence[str | None] | None = None) -> Path:
    """An OME-Zarr of ``data`` with ``levels`` pyramid levels (Y and X halved per level)."""
    t, c, z, y, x = data.shape
    shapes = [(t, c, z, y // 2**k, x // 2**k) for k in range(levels)]
    _zarr_writer(path, shapes, data.dtype, chunk, zarr_format, pixel_sizes, axes_units).write_full_volume(data)
    return path


def write_ome_zarr_frames(path: Path, frames: int, czyx: Sequence[int], chunk: Sequence[int],
                          frame: Callable[[int], np.ndarray], zarr_format: int = 3,
                          shard: Sequence[int] | None = None) -> Path:
    """A one-level OME-Zarr of ``frames`` timepoints, ``frame(t)`` each (C, Z, Y, X), written a
    block of timepoints at a time so that a long movie never sits in memory whole; ``chunk``
    chunks in shards of ``shard`` (zarr v3) when given."""
    first_frame = frame(0)
    shape = (frames, *czyx)
    writer = _zarr_writer(path, [shape], first_frame.dtype, chunk, zarr_format, PIXEL_SIZES, None, shard)
    per_block = max(1, BLOCK_BYTES // max(1, first_frame.nbytes))
    for first in range(0, frames, per_block):
        count = min(per_block, frames - first)
        block = np.stack([first_frame if t == 0 else frame(t) for t in range(first, first + count)])
        writer.write_timepoints(block, start_T_dest=first, total_T=count)
    return path


def write_ome_tiff(path: Path, scenes: np.ndarray | Sequence[np.ndarray]) -> Path:
    """An OME-TIFF with one image per scene (each T, C, Z, Y, X), named ``pos0``, ``pos1``, ..."""
    from bioio_ome_tiff.writers import OmeTiffWriter

    images = [scenes] if isinstance(scenes, np.ndarray) else list(scenes)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the writer's own deprecation notices
        OmeTiffWriter.save(images if len(images) > 1 else images[0], str(path), dim_order="TCZYX",
                           image_name=[f"pos{i}" for i in range(len(images))] if len(images) > 1 else None)
    return path


def write_imagej_tiff(path: Path, data: np.ndarray) -> Path:
    """An ImageJ hyperstack TIFF (tifffile), T, Z and C as ImageJ orders them."""
    import tifffile

    tifffile.imwrite(str(path), data.transpose(0, 2, 1, 3, 4), imagej=True, metadata={"axes": "TZCYX"})
    return path


def write_czi(path: Path, data: np.ndarray) -> Path:
    """A CZI written plane by plane with pylibCZIrw (2-D planes; Z as its own dimension)."""
    from pylibCZIrw import czi as pyczi

    if path.exists():
        path.unlink()
    with pyczi.create_czi(str(path), exist_ok=True) as writer:
        for t in range(data.shape[0]):
            for c in range(data.shape[1]):
                for z in range(data.shape[2]):
                    writer.write(data[t, c, z][..., np.newaxis], plane={"T": t, "C": c, "Z": z})
    return path


def write_manifest(path: Path, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> Path:
    """A manifest CSV of ``rows`` (dicts); ``columns`` defaults to the first row's keys."""
    with open(path, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(columns or rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow(row)
    return path


FRAME_INTERVAL_S = 30.0  # the demo movies are "acquired" one frame every 30 s


def write_demo_data(folder: Path, files: int = 3, frames: int = 40, size: int = 128) -> Path:
    """Write ``files`` OME-Zarr timelapses (T, 2 channels, Y, X; one frame every 30 s, 0.65 µm
    pixels) and a manifest CSV; return the CSV."""
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size]
    lines = ["path,channel,split,start,stop"]
    for n in range(files):
        data = np.empty((frames, 2, 1, size, size), dtype=np.uint16)
        for t in range(frames):  # a blob drifting across the field, plus noise
            cy, cx = size / 2 + size / 4 * np.sin(t / 7 + n), size / 2 + size / 4 * np.cos(t / 5 + n)
            blob = 3000 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (size / 12) ** 2))
            noise = np.random.default_rng([n, t]).normal(200, 30, size=(2, size, size))
            data[t, 0, 0] = np.clip(blob + noise[0], 0, 65535)
            data[t, 1, 0] = np.clip(blob[::-1] + noise[1], 0, 65535)
        path = folder / f"movie_{n}.ome.zarr"
        write_ome_zarr(path, data, levels=1, chunk=(1, 1, 1, 64, 64),
                       pixel_sizes=(FRAME_INTERVAL_S, 1.0, 1.0, 0.65, 0.65),
                       axes_units=("second", None, "micrometer", "micrometer", "micrometer"))
        lines.append(f"{path.name},\"0,1\",{'val' if n == files - 1 else 'train'},0,-1")
    manifest = folder / "manifest.csv"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest
