"""Crops where the labels are: foreground-aware placement against MONAI on full frames and against
rejection sampling, on a sparse synthetic label movie (about 2 % foreground); and what planning
costs when the low-resolution foreground counts (crop "map_block") are already in the metadata
cache file, against a first run that reads every mask frame."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Callable

import numpy as np

from timelapse_pipes import testing

from .measure import clock, dispose, fmt, interleave, log, median, ratio
from .report import Table, Target
from .settings import Settings

__all__ = ["run", "sparse_label_movie"]

MIN_FOREGROUND = 0.1
MAP_BLOCK = 8  # tiles of the low-resolution foreground map in the planning table


def sparse_label_movie(frames: int, size: int, seed: int) -> np.ndarray:
    """(T, 1, 1, Y, X) uint16 labels: round cells of radius 6 covering about 2 % of each frame."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    labels = np.zeros((frames, 1, 1, size, size), np.uint16)
    cells = max(1, int(0.02 * size * size / (np.pi * 36)))
    for t in range(frames):
        for label in range(1, cells + 1):
            cy, cx = rng.integers(8, size - 8, size=2)
            labels[t, 0, 0][(yy - cy) ** 2 + (xx - cx) ** 2 <= 36] = label
    return labels


def run(settings: Settings, folder: Path) -> tuple[list[Table], list[Target]]:
    frames, size, roi = (4, 256, 32) if settings.quick else (16, 1024, 64)
    n = 16 if settings.quick else 64
    labels = sparse_label_movie(frames, size, seed=40)
    raw_path = testing.write_ome_zarr(folder / "placement_raw.ome.zarr", testing.noise_movie(labels.shape, 41),
                                      levels=1, chunk=(1, 1, 1, 128, 128))
    label_path = testing.write_ome_zarr(folder / "placement_labels.ome.zarr", labels, levels=1,
                                        chunk=(1, 1, 1, 128, 128))
    manifest = testing.write_manifest(folder / "placement.csv", [{"path": str(raw_path), "labels": str(label_path)}])
    fraction = float((labels > 0).mean())
    log(f"placement: {frames} frames of {size}x{size}, {fraction:.1%} foreground, {roi}x{roi} crops")
    met: dict[str, list[float]] = {}
    methods: dict[str, Callable[[], float]] = {
        "library": _library(str(manifest), roi, n, met),
        "monai": _monai_full_frames(str(raw_path), str(label_path), frames, roi, max(4, n // 4), met),
        "rejection": _rejection(str(raw_path), str(label_path), frames, size, roi, n, met),
    }
    values = interleave(methods, settings.repeats, label="placement")
    rates = {name: median(values[name]) for name in methods}
    table = Table(f"Crops of {roi}x{roi} where the labels are, {size}x{size} frames, {fraction:.1%} foreground "
                  f"(samples/s)", ["route", "samples/s", f"crops with >= {MIN_FOREGROUND:.0%} foreground",
                                   "vs MONAI full frames"])
    names = {"library": "timelapse_pipes `crop={'where': 'labels', 'min_foreground': 0.1}`",
             "monai": "full frames + MONAI `RandCropByPosNegLabeld(pos=1, neg=0)`",
             "rejection": "random crop read, rejected until >= 10 % foreground"}
    for name in methods:
        share = float(np.mean(met[name])) if met[name] else float("nan")
        table.rows.append([names[name], fmt(rates[name]), f"{share:.0%}", f"{fmt(ratio(rates[name], rates['monai']))}x"])
    table.notes.append(
        "One worker (num_workers=0), batch size 4, OME-Zarr chunks 1x128x128 (raw uint16 noise, labels uint16). "
        "The library's rate is after a warm-up of one pass over the frames, whose window maps are then kept; "
        "MONAI reads both whole frames per sample from bioio's lazy arrays (files opened once), then crops around a foreground pixel; rejection "
        "reads a random crop of the labels (crop pushdown) until one holds enough foreground, then the raw crop.")
    speedup = ratio(rates["library"], rates["monai"])
    share = float(np.mean(met["library"]))
    planning = _planning_table(str(manifest), folder, frames, roi, settings.repeats)
    planning.notes.append(_kept_share(labels, roi))
    return [table, planning], [Target("placement", ">= 10x MONAI on full frames, 100 % of crops meet min_foreground",
                            f"{fmt(speedup)}x; {share:.0%} of crops meet it", bool(speedup and speedup >= 10 and share == 1.0))]


def _library(manifest: str, roi: int, n: int, met: dict[str, list[float]]) -> Callable[[], float]:
    import timelapse_pipes as tp

    met["library"] = []
    batch_size = 4

    def measure() -> float:
        loader = tp.build_loader(manifest, split=None, spatial_dims=2, batch_size=batch_size, seed=1,
                                 samples_per_epoch=10_000, image_columns={"labels": "labels"},
                                 crop={"roi_size": [roi, roi], "where": "labels", "min_foreground": MIN_FOREGROUND})
        iterator = iter(loader)
        for _ in range(8):  # warm-up: files open, window maps of the first frames computed
            next(iterator)
        start = clock()
        for _ in range(n // batch_size):
            batch = next(iterator)
            met["library"].extend(float(v) >= MIN_FOREGROUND for v in (batch["labels"] > 0).float().mean(dim=(1, 2, 3)))
        elapsed = clock() - start
        loader.close()
        del loader, iterator
        dispose()
        return n // batch_size * batch_size / elapsed

    return measure


def _monai_full_frames(raw: str, labels: str, frames: int, roi: int, n: int,
                       met: dict[str, list[float]]) -> Callable[[], float]:
    from bioio import BioImage
    from monai.transforms import RandCropByPosNegLabeld

    met["monai"] = []
    crop = RandCropByPosNegLabeld(keys=["raw", "labels"], label_key="labels", spatial_size=[roi, roi], pos=1, neg=0,
                                  num_samples=1)
    crop.set_random_state(0)
    rng = np.random.default_rng(2)
    raw_lazy = BioImage(raw).get_image_dask_data("TCYX")  # opened once, as a cached reader would be
    label_lazy = BioImage(labels).get_image_dask_data("TCYX")

    def measure() -> float:
        start = clock()
        for _ in range(n):
            t = int(rng.integers(0, frames))
            sample = {"raw": raw_lazy[t].compute(scheduler="synchronous"),
                      "labels": label_lazy[t].compute(scheduler="synchronous")}
            out = crop(sample)[0]
            met["monai"].append(float((np.asarray(out["labels"]) > 0).mean() >= MIN_FOREGROUND))
        return n / (clock() - start)

    return measure


def _rejection(raw: str, labels: str, frames: int, size: int, roi: int, n: int,
               met: dict[str, list[float]]) -> Callable[[], float]:
    from bioio import BioImage

    met["rejection"] = []
    rng = np.random.default_rng(3)
    raw_lazy = BioImage(raw).get_image_dask_data("TCYX")
    label_lazy = BioImage(labels).get_image_dask_data("TCYX")

    def measure() -> float:
        start = clock()
        for _ in range(n):
            t = int(rng.integers(0, frames))
            for _attempt in range(1000):
                y, x = (int(v) for v in rng.integers(0, size - roi + 1, size=2))
                window = label_lazy[t, :, y:y + roi, x:x + roi].compute(scheduler="synchronous")
                if (window > 0).mean() >= MIN_FOREGROUND:
                    break
            raw_lazy[t, :, y:y + roi, x:x + roi].compute(scheduler="synchronous")
            met["rejection"].append(float((window > 0).mean() >= MIN_FOREGROUND))
        return n / (clock() - start)

    return measure


def _planning_table(manifest: str, folder: Path, frames: int, roi: int, repeats: int) -> Table:
    """Planning alone (row, metadata, timepoints, placement; no pixels read for the samples) in fresh
    loaders whose cache file already holds the files' metadata: a first run, whose placement reads
    every mask frame, against a second run whose cache file also holds the foreground counts."""
    samples = 8 * frames
    metadata_only = folder / "placement_cache_metadata.json"
    with_counts = folder / "placement_cache_counts.json"
    _plan(manifest, metadata_only, roi, None, 1)  # the metadata of both files, no maps
    _plan(manifest, with_counts, roi, MAP_BLOCK, samples)  # and the counts of every frame planned
    names = {"first": "first run (metadata in the cache file, no counts)",
             "second": "second run (counts in the cache file)",
             "exact": "exact windows, no map_block (metadata in the cache file)"}
    reads: dict[str, list[int]] = {name: [] for name in names}
    runs = [0]

    def measure(name: str) -> Callable[[], float]:
        def plan() -> float:
            cache = with_counts
            if name != "second":  # a fresh copy of the metadata-only file: its run adds counts to it
                runs[0] += 1
                cache = folder / f"placement_cache_{runs[0]}.json"
                shutil.copyfile(metadata_only, cache)
            seconds, frames_read = _plan(manifest, cache, roi, None if name == "exact" else MAP_BLOCK, samples)
            reads[name].append(frames_read)
            return 1000 * seconds / samples
        return plan

    values = interleave({name: measure(name) for name in names}, repeats, label="planning")
    first = median(values["first"])
    table = Table(f"Planning {samples} placed crops of {roi}x{roi} over {frames} frames (ms per sample, fresh loader)",
                  ["route", "ms/sample", "mask frames read", "vs first run"])
    for name, title in names.items():
        cost = median(values[name])
        table.rows.append([title, fmt(cost), str(int(median([float(v) for v in reads[name]]))),
                           f"{fmt(ratio(first, cost))}x"])
    table.notes.append(
        f"crop={{'where': 'labels', 'min_foreground': {MIN_FOREGROUND}, 'map_block': {MAP_BLOCK}}}; each run is a "
        "fresh loader (empty in-memory caches) planning through the row, metadata, timepoint and placement stages, "
        "timepoints drawn at random, with the files' metadata already in its cache file. The first run reads each "
        "mask frame once and adds its tile counts to the cache file; the second reads them from it instead.")
    return table


def _plan(manifest: str, cache: Path | None, roi: int, block: int | None, samples: int) -> tuple[float, int]:
    """Seconds to plan ``samples`` samples in a fresh loader, and the mask frames it read."""
    import timelapse_pipes as tp
    from timelapse_pipes.records import SampleKey
    from timelapse_pipes.stages.pipeline import apply_stages

    crop = {"roi_size": [roi, roi], "where": "labels", "min_foreground": MIN_FOREGROUND}
    loader = tp.build_loader(manifest, split=None, spatial_dims=2, seed=1, samples_per_epoch=samples,
                             image_columns={"labels": "labels"}, metadata_cache=None if cache is None else str(cache),
                             crop=crop if block is None else {**crop, "map_block": block})
    stages = loader.prepared.pipeline.stages
    placer = next(stage for stage in stages if type(stage).__name__ == "ForegroundCropPlacer")
    plan_stages = stages[:stages.index(placer) + 1]
    start = clock()
    for i in range(samples):
        apply_stages(SampleKey(0, i), plan_stages)
    elapsed = clock() - start
    loader.close()
    frames_read = placer.maps.frames_read
    del loader
    dispose()
    return elapsed, frames_read


def _kept_share(labels: np.ndarray, roi: int) -> str:
    """How many of the windows the exact map allows the tile counts guarantee, by tile size."""
    from timelapse_pipes.sampling.block_maps import (
        TileWindows,
        block_counts,
        run_bounds,
    )
    from timelapse_pipes.sampling.crops import window_fractions

    shares = []
    for block in (4, 8, 16):
        kept, exact = 0, 0
        for frame in labels[:, 0] > 0:
            tiles = (1, block, block)
            runs, lower, _ = run_bounds(block_counts(frame, tiles), tiles, frame.shape, (1, roi, roi))
            kept += TileWindows(runs, lower >= MIN_FOREGROUND).count
            exact += int((window_fractions(frame, (1, roi, roi)) >= MIN_FOREGROUND).sum())
        shares.append(f"{block}: {kept / exact:.0%}")
    return ("Share of the windows meeting min_foreground (exact map) that the tile counts guarantee, and so may be "
            f"drawn, by map_block: {', '.join(shares)}.")
