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
    zyx, roi, n = settings.crop_zyx, settings.crop_roi, settings.crop_samples
    table = Table(
        f"Random {'x'.join(map(str, roi))} crops from {'x'.join(map(str, zyx))} frames (samples/s)",
        ["chunks (T, C, Z, Y, X)", "timelapse_pipes (crop pushdown)", "raw limit (same crops)",
         "baseline 2 (full frame + RandSpatialCropd)", "vs raw limit", "vs baseline 2"],
    )
    speedups = []
    for k, chunk in enumerate(settings.crop_chunks):
        log(f"crops: writing an OME-Zarr of T={settings.crop_frames}, ZYX={zyx}, chunks {chunk}")
        image = str(write_ome_zarr(folder / f"crops_{k}.ome.zarr", settings.crop_frames, (1, *zyx),
                                   chunk, seed=30))
        manifest = write_manifest(folder / f"crops_{k}.csv", [image])
        warm = warmup_batches(0) * settings.batch_size
        reads = planned_reads([image], [settings.crop_frames], zyx, range(warm, warm + n), settings.seed, roi)
        methods: dict[str, Callable[[], float]] = {
            "library": library_rate(str(manifest), n, settings.batch_size, settings.seed,
                                    crop={"roi_size": list(roi)}),
            "raw": raw_rate(reads, settings.batch_size, [0]),
            "baseline": baseline_rate(reads[: settings.crop_baseline_samples], settings.batch_size, [0],
                                      roi=roi),
        }
        values = interleave(methods, settings.repeats, label=f"crops {chunk}")
        lib, raw, base = (median(values[m]) for m in ("library", "raw", "baseline"))
        speedups.append((chunk, ratio(lib, base), lib, base))
        table.rows.append([str(chunk), fmt(lib), fmt(raw), fmt(base), f"{fmt(ratio(lib, raw))}x",
                           f"{fmt(ratio(lib, base))}x"])
    table.notes.append(
        f"One OME-Zarr per chunk layout, T={settings.crop_frames}, blosc-zstd, uint16 noise; one worker "
        f"(num_workers=0). timelapse_pipes: `build_loader(crop={{'roi_size': {list(roi)}}})`, {n} timed "
        f"samples per round. Raw limit: zarr slicing of exactly the same crops. Baseline 2 reads the "
        f"whole frame per sample, then MONAI `RandSpatialCropd` ({settings.crop_baseline_samples} "
        f"samples per round: it is slow).")
    worst = min(s for _, s, _, _ in speedups if s is not None)
    detail = "; ".join(f"chunks {c}: {fmt(s)}x ({fmt(lib)} vs {fmt(base)} samples/s)"
                       for c, s, lib, base in speedups)
    return [table], [Target("crops", ">= 10x baseline 2", detail, worst >= 10)]
