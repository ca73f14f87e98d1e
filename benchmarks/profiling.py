"""``--profile``: where the library's time goes on the full-frame OME-Zarr loop (cProfile)."""

from __future__ import annotations

import cProfile
import io
import pstats

import timelapse_pipes as tp

from .frames import Dataset
from .measure import log
from .settings import Settings

__all__ = ["profile_library"]

TOP = 18


def profile_library(settings: Settings, data: Dataset) -> list[str]:
    """Profile ``num_workers=0, prefetch=0`` (everything in this thread) over the timed samples."""
    loader = tp.build_loader(str(data.manifest), split="train", batch_size=settings.batch_size,
                             seed=settings.seed, prefetch=0, spatial_dims=data.spatial_dims,
                             samples_per_epoch=settings.batch_size * 2 + data.samples)
    iterator = iter(loader)
    next(iterator), next(iterator)  # files open
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in iterator:
        pass
    profiler.disable()
    stream = io.StringIO()
    stats = pstats.Stats(profiler, stream=stream).strip_dirs().sort_stats("cumulative")
    stats.print_stats(TOP)
    text = stream.getvalue().strip()
    log("profile of the library's full-frame loop:\n" + text)
    body = text[text.find("ncalls"):] if "ncalls" in text else text
    total = next((line for line in text.splitlines() if "function calls" in line), "").strip()
    return [f"### Profile: timelapse_pipes on {data.name} full frames (cProfile, cumulative)", "",
            f"{data.samples} samples, num_workers=0, prefetch=0; {total}", "", "```", body, "```"]
