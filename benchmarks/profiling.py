"""``--profile``: where the library's time goes on the full-frame OME-Zarr loop (cProfile)."""

from __future__ import annotations

import cProfile
import io
import pstats

import timelapse_pipes as tp

from .frames import Dataset
from .measure import fmt, log
from .settings import Settings

__all__ = ["profile_library"]

TOP = 18
# (label, file suffix, function name) of the entries summarised per sample
WATCHED = (
    ("`read_region` (bioio lazy slice + compute)", "timelapse_pipes/reading.py", "read_region"),
    ("dask `compute` (graph optimisation + scheduler)", "dask/base.py", "compute"),
    ("dask ordering of the graph (`dask.order.order`)", "dask/order.py", "order"),
    ("zarr `sync` (one event-loop round trip per call)", "zarr/core/sync.py", "sync"),
    ("thread lock waits", "~", "<method 'acquire' of '_thread.lock' objects>"),
)


def _per_sample(stats: pstats.Stats, samples: int) -> list[str]:
    lines = []
    for label, suffix, name in WATCHED:
        calls = cumulative = 0.0
        for (filename, _, function), (_, ncalls, _, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
            if function == name and filename.replace("\\", "/").endswith(suffix):
                calls = max(calls, ncalls)  # same-named wrappers (dask's two `compute`s): count once
                cumulative = max(cumulative, cumtime)  # recursive entries repeat the outer time
        if calls:
            lines.append(f"| {label} | {calls / samples:.3g} | {fmt(cumulative / samples * 1000)} |")
    return lines


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
    stats = pstats.Stats(profiler, stream=stream)
    summary = _per_sample(stats, data.samples)
    stats.strip_dirs().sort_stats("cumulative").print_stats(TOP)
    text = stream.getvalue().strip()
    log("profile of the library's full-frame loop:\n" + text)
    body = text[text.find("ncalls"):] if "ncalls" in text else text
    total = next((line for line in text.splitlines() if "function calls" in line), "").strip()
    frame = "x".join(map(str, data.zyx))
    chunks = 1
    for size, chunk in zip(data.zyx, settings.frame_chunk[2:]):
        chunks *= -(-size // chunk)
    return [
        f"### Profile: timelapse_pipes on {data.name} full frames ({frame}, cProfile)", "",
        f"{data.samples} samples, num_workers=0, prefetch=0, chunks {settings.frame_chunk}; {total}. "
        "Per sample (profiler overhead included, so times are inflated):", "",
        "| entry | calls per sample | cumulative ms per sample |", "|---|---|---|", *summary, "",
        f"A frame here is {chunks} chunks. bioio hands the library a dask array; one sample is one "
        "dask compute (synchronous scheduler) with a task per chunk, and each chunk task is a separate "
        "blocking round trip to zarr's event-loop thread (`sync`), so the chunks are fetched and "
        "decoded one at a time. The raw limit reads the same frame with one zarr selection, which "
        "zarr fetches and decodes as one concurrent batch.", "",
        "<details><summary>top entries by cumulative time</summary>", "", "```", body, "```", "",
        "</details>",
    ]
