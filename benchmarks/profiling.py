"""``--profile``: where the library's time goes on the full-frame OME-Zarr loop (cProfile), before and
after the chunk decoder: the same loop with ``TIMELAPSE_PIPES_FAST_DECODE=0`` (zarr-python reads,
as the library did before) and with it on, both on one decode thread so cProfile sees every call."""

from __future__ import annotations

import cProfile
import io
import pstats
from typing import Iterator

import timelapse_pipes as tp
from timelapse_pipes.reading.fast import threads as decode

from .decoders import decode_threads, environment
from .frames import Dataset
from .measure import fmt, log
from .settings import Settings

__all__ = ["profile_library"]

TOP = 18
# (label, file suffix, function name) of the entries summarised per sample
WATCHED = (
    ("`read_region` (the library's read of one sample)", "timelapse_pipes/reading/regions.py", "read_region"),
    ("one chunk: read + decode + cast copy (`decode_and_copy`)", "timelapse_pipes/reading/fast/chunked.py",
     "decode_and_copy"),
    ("one chunk: read + decode (`ZarrChunks.chunk`)", "timelapse_pipes/reading/fast/zarr.py", "chunk"),
    ("chunk files read (`read_file`)", "timelapse_pipes/reading/fast/chunked.py", "read_file"),
    ("blosc decompress (numcodecs)", "~", "<numcodecs.blosc.decompress>"),
    ("zarr `sync` (one event-loop round trip per call)", "zarr/core/sync.py", "sync"),
    ("thread lock waits", "~", "<method 'acquire' of '_thread.lock' objects>"),
    ("dask `compute` (graph optimisation + scheduler)", "dask/base.py", "compute"),
    ("collate (`collate_samples`)", "timelapse_pipes/stages/collate.py", "collate_samples"),
)


def _fast(enabled: bool) -> Iterator[None]:
    """The library's own decoders on or off inside the block."""
    return environment(decode.FAST_ENV_VAR, "1" if enabled else "0")


def _per_sample(stats: pstats.Stats, samples: int) -> dict[str, tuple[float, float]]:
    """label -> (calls per sample, cumulative ms per sample)."""
    found = {}
    for label, suffix, name in WATCHED:
        calls = cumulative = 0.0
        for (filename, _, function), (_, ncalls, _, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
            if function == name and filename.replace("\\", "/").endswith(suffix):
                calls = max(calls, ncalls)  # same-named wrappers (dask's two `compute`s): count once
                cumulative = max(cumulative, cumtime)  # recursive entries repeat the outer time
        found[label] = (calls / samples, cumulative / samples * 1000)
    return found


def _profile(settings: Settings, data: Dataset) -> tuple[pstats.Stats, str, str]:
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
    stats.sort_stats("cumulative").print_stats(TOP)
    text = stream.getvalue().strip()
    total = next((line for line in text.splitlines() if "function calls" in line), "").strip()
    body = text[text.find("ncalls"):] if "ncalls" in text else text
    loader.close()
    return stats, total, body


def profile_library(settings: Settings, data: Dataset) -> list[str]:
    """The before/after profile of the library's full-frame loop on ``data`` (an OME-Zarr dataset)."""
    runs = {}
    with decode_threads(1):
        for name, enabled in (("before", False), ("after", True)):
            with _fast(enabled):
                runs[name] = _profile(settings, data)
            log(f"profile of the library's full-frame loop, {name}:\n{runs[name][2][:3000]}")
    summary = {name: _per_sample(stats, data.samples) for name, (stats, _, _) in runs.items()}
    totals = {name: run[0].total_tt / data.samples * 1000 for name, run in runs.items()}  # type: ignore[attr-defined]
    frame = "x".join(map(str, data.zyx))
    lines = [
        f"### Profile: timelapse_pipes on {data.name} full frames ({frame}, cProfile), before and after", "",
        f"{data.samples} samples, num_workers=0, prefetch=0, one decode thread (so the profiler, which "
        "sees only its own thread, sees every decode). Before: `TIMELAPSE_PIPES_FAST_DECODE=0`, zarr-python "
        f"reads each sample with one selection, as the library did before issue 12 ({runs['before'][1]}). "
        f"After: the library's chunk decoder ({runs['after'][1]}). Per sample, profiler overhead "
        "included (times are inflated):", "",
        "| entry | before: calls per sample | before: ms per sample | after: calls per sample | "
        "after: ms per sample |", "|---|---|---|---|---|",
        f"| everything (profile total) | | {fmt(totals['before'])} | | {fmt(totals['after'])} |",
    ]
    for label, _, _ in WATCHED:
        (calls_b, ms_b), (calls_a, ms_a) = summary["before"][label], summary["after"][label]
        if calls_b or calls_a:
            lines.append(f"| {label} | {calls_b:.3g} | {fmt(ms_b) if calls_b else ''} | {calls_a:.3g} | "
                         f"{fmt(ms_a) if calls_a else ''} |")
    lines += [
        "", "Before, the frame's time sits in zarr's event-loop round trip (`sync`, waited on as lock "
        "waits): fetching and decoding run on zarr's threads, with a task and a thread hop per chunk and "
        "per codec. After, the same bytes are read with one `read_file` per chunk, decoded with one "
        "numcodecs call per chunk and copied into the float32 output with one `np.copyto` per chunk (the "
        "difference of the two chunk rows); what is left besides those is the graph and collate.", "",
    ]
    for name in ("before", "after"):
        lines += [f"<details><summary>{name}: top entries by cumulative time</summary>", "", "```",
                  runs[name][2], "```", "", "</details>", ""]
    return lines
