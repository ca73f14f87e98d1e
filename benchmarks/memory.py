"""Memory per manifest row: ``read_manifest`` against cyto-dl's per-timepoint dicts."""

from __future__ import annotations

import csv
import gc
import tracemalloc
from pathlib import Path
from typing import Any, Callable

import timelapse_pipes as tp
from timelapse_pipes.testing import write_manifest

from .baselines import timepoint_dicts
from .measure import fmt, log
from .report import Table, Target
from .settings import Settings

__all__ = ["run", "traced"]


def traced(build: Callable[[], Any]) -> tuple[int, int, Any]:
    """(bytes still held by the result, peak bytes while building, the result)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = build()
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return current - before, peak - before, result


def _write_rows(path: Path, rows: int, frames: int) -> Path:
    """Realistic, distinct paths (never opened: nothing reads them)."""
    return write_manifest(path, [
        {"path": f"/data/imaging/experiment_{i // 100:04d}/position_{i:05d}.ome.zarr", "channel": "0,1",
         "split": "train", "scene": 0, "start": 0, "stop": frames}
        for i in range(rows)])


def run(settings: Settings, folder: Path) -> tuple[list[Table], list[Target]]:
    rows, frames = settings.memory_rows, settings.memory_frames
    manifest = _write_rows(folder / "memory.csv", rows, frames)
    log(f"memory: read_manifest of {rows:,} rows; baseline 1 dicts for {settings.memory_baseline_rows} rows x T={frames}")
    held, peak, result = traced(lambda: tp.read_manifest(str(manifest), split="train"))
    assert len(result) == rows
    del result
    with open(manifest, newline="") as stream:
        records = [row for _, row in zip(range(settings.memory_baseline_rows), csv.DictReader(stream))]
    # cyto-dl's stop is inclusive: stop=frames-1 lists exactly `frames` timepoints per row.
    base_held, base_peak, dicts = traced(lambda: [d for r in records for d in timepoint_dicts(
        {**r, "stop": str(frames - 1)}, [0], frames)])
    assert len(dicts) == settings.memory_baseline_rows * frames
    del dicts
    per_row, per_row_peak = held / rows, peak / rows
    base_per_row = base_held / settings.memory_baseline_rows
    table = Table(
        "Memory per manifest row (tracemalloc)",
        ["", "bytes per row held", "peak bytes per row while building", "ratio"],
        [
            [f"timelapse_pipes `read_manifest`, {rows:,} rows", fmt(per_row), fmt(per_row_peak), "1x"],
            [f"baseline 1 per-timepoint dicts, T={frames:,} (from {settings.memory_baseline_rows} rows)",
             fmt(base_per_row), fmt(base_peak / settings.memory_baseline_rows),
             f"{fmt(base_per_row / per_row)}x"],
        ],
        [f"Baseline 1's dicts are built exactly as `MultiDimImageDataset` builds them, without opening "
         f"files; {rows:,} rows of it would hold {fmt(base_per_row * rows / 2**30)} GiB.",
         "Held bytes are measured after `gc.collect()` with the result alive; the CSV's own text "
         "and parse buffers count only in the peak."],
    )
    target = Target("memory", "< 2 KB per manifest row", f"{fmt(per_row)} B/row held "
                    f"(peak {fmt(per_row_peak)} B/row)", per_row < 2048)
    return [table], [target]
