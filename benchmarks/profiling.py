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
    ("`read_region` (the library's read of one sample)", "timelapse_pipes/reading.py", "read_region"),
    ("native fast path (`NativeArray.read`, one zarr selection)", "timelapse_pipes/native.py", "read"),
    ("dask `compute` (graph optimisation + scheduler)", "dask/base.py", "compute"),
    ("dask ordering of the graph (`dask.order.order`)", "dask/order.py", "order"),
    ("zarr `sync` (one event-loop round trip per call)", "zarr/core/sync.py", "sync"),
    ("thread lock waits", "~", "<method 'acquire' of '_thread.lock' objects>"),
)


def _per_sample(stats: pstats.Stats, samples: int) -> tuple[list[str], dict[str, float]]:
    lines, calls_by_label = [], {}
    for label, suffix, name in WATCHED:
        calls = cumulative = 0.0
        for (filename, _, function), (_, ncalls, _, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
            if function == name and filename.replace("\\", "/").endswith(suffix):
                calls = max(calls, ncalls)  # same-named wrappers (dask's two `compute`s): count once
                cumulative = max(cumulative, cumtime)  # recursive entries repeat the outer time
        if calls:
            lines.append(f"| {label} | {calls / samples:.3g} | {fmt(cumulative / samples * 1000)} |")
        calls_by_label[suffix + ":" + name] = calls / samples
    return lines, calls_by_label


def _explain(calls: dict[str, float], chunks: int) -> str:
    """One factual sentence on how the sample was read, from the call counts."""
    syncs = calls.get("zarr/core/sync.py:sync", 0.0)
    computes = calls.get("dask/base.py:compute", 0.0)
    native = calls.get("timelapse_pipes/native.py:read", 0.0)
    head = f"A frame here is {chunks} chunks; per sample the profile shows {syncs:.3g} zarr `sync` call(s)"
    if native >= 1 and computes < 1:
        return (head + " and no dask compute: the library read through its native fast path, one zarr "
                "selection per sample, fetched and decoded by zarr as one concurrent batch (like the "
                "raw limit).")
    if computes >= 1 and syncs >= 0.9 * chunks:
        return (head + f" inside {computes:.3g} dask compute(s): bioio's dask array makes a task per "
                "chunk, and the synchronous scheduler runs each as a separate blocking round trip to "
                "zarr's event-loop thread, so the chunks are fetched and decoded one at a time. The raw "
                "limit reads the same frame with one zarr selection, fetched and decoded as one "
                "concurrent batch.")
    return head + f" and {computes:.3g} dask compute(s)."


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
    summary, calls = _per_sample(stats, data.samples)
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
        _explain(calls, chunks), "",
        "<details><summary>top entries by cumulative time</summary>", "", "```", body, "```", "",
        "</details>",
    ]
