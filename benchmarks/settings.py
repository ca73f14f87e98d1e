"""Sizes of every measurement: the ``--quick`` preset (CI, < 60 s on 2 cores) and the full one."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["Settings", "preset"]

ND2_SAMPLE = "nd2/example-timelapse.nd2"


@dataclass(frozen=True)
class Settings:
    quick: bool
    repeats: int
    seed: int = 2026
    batch_size: int = 4
    # start-up: a manifest of `rows` rows over files of each of `frames` timepoints
    rows: int = 10_000
    frames: tuple[int, ...] = (100, 1000)
    startup_files: int = 4
    baseline_rows: int = 40  # baseline 1 is measured on this many rows, then extrapolated
    # steady state, full frames (OME-Zarr and OME-TIFF) and scaling
    frame_zyx: tuple[int, int, int] = (16, 512, 512)
    # one OME-Zarr dataset per chunk layout (the first is the one resume, scaling and the profile use)
    frame_chunks: tuple[tuple[int, ...], ...] = ((1, 1, 16, 128, 128), (1, 1, 1, 256, 256))
    shard_chunk: tuple[tuple[int, ...], tuple[int, ...]] = ((1, 1, 1, 256, 256), (1, 1, 16, 512, 512))  # inner, shard
    decode_frames: int = 8  # full frames read per round in the decoder comparison
    stream_frames: int = 8  # timepoints per file
    stream_files: int = 2
    samples: int = 32  # timed samples per round
    nd2_samples: int = 2000  # small frames: 2,000 samples take ~50 ms, long enough to time steadily
    baseline_samples: int = 16  # baseline 2 is slow: it reads the first N of the same samples
    # local zarr engines side by side (zarr_engines): full frames and crops of frame_zyx, per layout
    engine_chunks: tuple[tuple[int, ...], ...] = ((1, 1, 16, 128, 128), (1, 1, 1, 512, 512))
    engine_roi: tuple[int, int, int] = (16, 128, 128)
    engine_repeats: int | None = None
    # random crops
    crop_zyx: tuple[int, int, int] = (64, 1024, 1024)
    crop_roi: tuple[int, int, int] = (64, 128, 128)
    crop_chunks: tuple[tuple[int, ...], ...] = ((1, 1, 1, 256, 256), (1, 1, 16, 128, 128))
    crop_frames: int = 2
    crop_samples: int = 8
    crop_baseline_samples: int = 4
    # resume and memory
    resume_position: int = 100_000
    memory_rows: int = 10_000
    memory_frames: int = 1000
    memory_baseline_rows: int = 50
    workers: tuple[int, ...] = (1, 2)
    scaling_repeats: int | None = 3  # rounds for scaling (its process loaders are slow to start)
    suites: tuple[str, ...] = field(default=("startup", "frames", "small", "decoders", "crops", "placement",
                                             "resume", "memory", "scaling"))  # zarr_engines, zarr_s3: --only

    def describe(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("suites",)}


QUICK = dict(
    repeats=3, rows=500, frames=(10, 100), startup_files=2, baseline_rows=6,
    frame_zyx=(8, 128, 128), frame_chunks=((1, 1, 8, 64, 64), (1, 1, 1, 128, 128)),
    shard_chunk=((1, 1, 1, 64, 64), (1, 1, 8, 128, 128)), engine_chunks=((1, 1, 8, 64, 64), (1, 1, 1, 128, 128)),
    engine_roi=(8, 64, 64), decode_frames=4, stream_frames=4, samples=8,
    nd2_samples=32, baseline_samples=4, crop_zyx=(16, 256, 256), crop_roi=(8, 64, 64), crop_chunks=((1, 1, 1, 128, 128), (1, 1, 8, 64, 64)),
    crop_frames=2, crop_samples=8, crop_baseline_samples=4, resume_position=100_000,
    memory_rows=2_000, scaling_repeats=2, memory_frames=1000, memory_baseline_rows=10,
)


def preset(quick: bool, **overrides: Any) -> Settings:
    base = Settings(quick=quick, repeats=5)
    if quick:
        base = replace(base, **QUICK)
    return replace(base, **{k: v for k, v in overrides.items() if v is not None})
