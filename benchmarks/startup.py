"""Start-up: ``build_loader`` to its first batch against cyto-dl's ``MultiDimImageDataset`` init."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import timelapse_pipes as tp
from timelapse_pipes.stages.loading import BioIOLoader
from timelapse_pipes.stages.metadata import MetadataCacher

from .baselines import MultiDimImageDataset
from .data import write_manifest, write_ome_zarr
from .measure import clock, dispose, fmt, interleave, log, median, ratio
from .report import Table, Target
from .settings import Settings

__all__ = ["run", "count_opens"]

FRAME_CZYX = (1, 1, 32, 32)


def count_opens(loader: tp.TimelapseLoader) -> tuple[int, int]:
    """(images opened by the reader cache, files whose metadata was read) of a loader so far."""
    opens = files = 0
    for stage in loader.prepared.pipeline.stages:
        if isinstance(stage, BioIOLoader):
            opens = stage.readers.opens
        if isinstance(stage, MetadataCacher):
            files = stage.metadata.files_opened
    return opens, files


def _library(manifest: Path, seed: int) -> Callable[[], float]:
    def run() -> float:
        started = clock()
        loader = tp.build_loader(str(manifest), split="train", batch_size=1, seed=seed, spatial_dims=2)
        next(iter(loader))
        elapsed = clock() - started
        del loader
        dispose()
        return elapsed
    return run


def _baseline(manifest: Path, rows: int) -> Callable[[], float]:
    def run() -> float:
        started = clock()
        MultiDimImageDataset(str(manifest), spatial_dims=2, max_rows=rows)
        return clock() - started
    return run


def run(settings: Settings, folder: Path) -> tuple[list[Table], list[Target]]:
    manifests: dict[int, Path] = {}
    for frames in settings.frames:
        log(f"start-up: writing {settings.startup_files} OME-Zarr files of T={frames}")
        images = [write_ome_zarr(folder / f"startup_T{frames}_{k}.ome.zarr", frames, FRAME_CZYX,
                                 (1, 1, 1, 32, 32), seed=k) for k in range(settings.startup_files)]
        manifests[frames] = write_manifest(folder / f"startup_T{frames}.csv", images, rows=settings.rows)

    # Untimed warm-up of both: imports, bioio's plugin entry points, the OS page cache.
    first = manifests[settings.frames[0]]
    _library(first, settings.seed)()
    _baseline(first, 1)()

    methods: dict[str, Callable[[], float]] = {}
    for frames, manifest in manifests.items():
        methods[f"library T={frames}"] = _library(manifest, settings.seed)
        methods[f"baseline T={frames}"] = _baseline(manifest, settings.baseline_rows)
    values = interleave(methods, settings.repeats, label="start-up")

    loader = tp.build_loader(str(first), split="train", batch_size=1, seed=settings.seed, prefetch=0,
                             spatial_dims=2)
    opens_built = count_opens(loader)
    next(iter(loader))
    opens_first = count_opens(loader)
    del loader
    dispose()

    table = Table(
        f"Start-up: time to the first batch, manifest of {settings.rows:,} rows",
        ["rows", "frames per file (T)", "build_loader → first batch (s)",
         f"baseline 1 init (s), extrapolated from {settings.baseline_rows} rows",
         "baseline 1 per row (ms)", "speed-up"],
    )
    speedups, library_times = [], []
    for frames in settings.frames:
        library = median(values[f"library T={frames}"])
        per_row = median(values[f"baseline T={frames}"]) / settings.baseline_rows
        baseline = per_row * settings.rows
        speedup = ratio(baseline, library)
        speedups.append(speedup or 0.0)
        library_times.append(library)
        table.rows.append([f"{settings.rows:,}", f"{frames:,}", fmt(library), fmt(baseline),
                           fmt(per_row * 1000), f"{fmt(speedup)}x"])
    table.notes += [
        f"Baseline 1 (cyto-dl `MultiDimImageDataset`) opens `BioImage(path)` with plugin discovery for "
        f"every row and builds one dict per timepoint; it was timed on the first {settings.baseline_rows} "
        f"rows and extrapolated linearly to {settings.rows:,} rows (the per-row cost is an open plus T dicts, "
        f"independent of the row's position). The rows cycle over {settings.startup_files} files, so "
        f"the baseline's opens hit a warm OS cache: a favourable case for it.",
        f"`build_loader` opens no image file at start-up: the reader cache had {opens_built[0]} opens "
        f"and {opens_built[1]} metadata reads after `build_loader`, {opens_first[0]} open and "
        f"{opens_first[1]} metadata read after the first batch (batch_size=1, prefetch=0).",
        "The library's time is measured in full (CSV parse and validation of every row, "
        "fingerprint, graph, first read); nothing of it is extrapolated.",
    ]
    flat = max(library_times) / min(library_times)
    goal_ok = min(speedups) >= 1000 and flat < 1.5
    targets = [Target(
        "start-up", ">= 1000x baseline 1, flat in T",
        f"{fmt(min(speedups))}x – {fmt(max(speedups))}x at {settings.rows:,} rows; "
        f"T={settings.frames[0]:,} → {settings.frames[-1]:,}: {fmt(library_times[0])} s → "
        f"{fmt(library_times[-1])} s",
        goal_ok,
    )]
    return [table], targets
