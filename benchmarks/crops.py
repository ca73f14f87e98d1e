"""Random crops from large chunked OME-Zarr frames: crop pushdown against full frame + crop."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from .data import write_manifest, write_ome_zarr
from .measure import fmt, interleave, log, median, ratio
from .plan import planned_reads
from .report import Table, Target
from .settings import Settings
from .streams import baseline_rate, library_rate, raw_rate, warmup_batches

__all__ = ["run"]


def run(settings: Settings, folder: Path) -> tuple[list[Table], list[Target]]:
    zyx, roi = settings.crop_zyx, settings.crop_roi
    log(f"crops: writing an OME-Zarr of T={settings.crop_frames}, ZYX={zyx}, chunks {settings.crop_chunk}")
    image = str(write_ome_zarr(folder / "crops.ome.zarr", settings.crop_frames, (1, *zyx),
                               settings.crop_chunk, seed=30))
    manifest = write_manifest(folder / "crops.csv", [image])
    warm = warmup_batches(0) * settings.batch_size
    n = settings.crop_samples
    reads = planned_reads([image], [settings.crop_frames], zyx, range(warm, warm + n), settings.seed, roi)
    baseline_reads = reads[: settings.crop_baseline_samples]
    methods: dict[str, Callable[[], float]] = {
        "library": library_rate(str(manifest), n, settings.batch_size, settings.seed,
                                crop={"roi_size": list(roi)}),
        "raw": raw_rate(reads, settings.batch_size, [0]),
        "baseline": baseline_rate(baseline_reads, settings.batch_size, [0], roi=roi),
    }
    values = interleave(methods, settings.repeats, label="crops")
    lib, raw, base = (median(values[k]) for k in ("library", "raw", "baseline"))
    speedup = ratio(lib, base)
    table = Table(
        f"Random {'x'.join(map(str, roi))} crops from {'x'.join(map(str, zyx))} frames (samples/s)",
        ["workers", "timelapse_pipes (crop pushdown)", "raw limit (same crops)",
         "baseline 2 (full frame + RandSpatialCropd)", "vs raw limit", "vs baseline 2"],
        [["0 (main)", fmt(lib), fmt(raw), fmt(base), f"{fmt(ratio(lib, raw))}x", f"{fmt(speedup)}x"]],
        [f"One OME-Zarr, T={settings.crop_frames}, chunks {settings.crop_chunk} (T, C, Z, Y, X), blosc-zstd, "
         f"uint16 noise. timelapse_pipes: `build_loader(crop={{'roi_size': {list(roi)}}})` "
         f"({n} timed samples per round). Raw limit: zarr slicing of the same crops. Baseline 2 reads "
         f"the whole frame per sample, then MONAI `RandSpatialCropd` ({len(baseline_reads)} samples per "
         f"round: it is slow)."],
    )
    target = Target("crops", ">= 10x baseline 2", f"{fmt(speedup)}x ({fmt(lib)} vs {fmt(base)} samples/s)",
                    None if speedup is None else speedup >= 10)
    return [table], [target]
