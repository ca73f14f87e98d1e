"""Scaling: samples/s at 1 and 2 workers, threads and processes, with room for a 16-core run."""

from __future__ import annotations

from typing import Callable

from .frames import Dataset
from .measure import fmt, interleave, median
from .report import Table, Target
from .settings import Settings
from .streams import library_rate

__all__ = ["run"]

FUTURE_COLUMNS = (4, 8, 16)


def run(settings: Settings, data: Dataset) -> tuple[list[Table], list[Target]]:
    methods: dict[str, Callable[[], float]] = {}
    for method in ("thread", "process"):
        for workers in settings.workers:
            methods[f"{method} {workers}"] = library_rate(
                str(data.manifest), data.samples, settings.batch_size, settings.seed, workers=workers,
                method=method, spatial_dims=data.spatial_dims)
    methods["main 0"] = library_rate(str(data.manifest), data.samples, settings.batch_size, settings.seed,
                                     spatial_dims=data.spatial_dims)
    values = interleave(methods, settings.scaling_repeats or settings.repeats, label="scaling")
    reference = median(values["main 0"])
    columns = list(settings.workers) + [w for w in FUTURE_COLUMNS if w not in settings.workers]
    table = Table(
        f"Scaling on {data.name} full frames ({'x'.join(map(str, data.zyx))}), samples/s",
        ["worker_method"] + [f"{w} worker{'s' if w > 1 else ''}" for w in columns],
    )
    for method in ("thread", "process"):
        cells = [fmt(median(values[f"{method} {w}"])) if f"{method} {w}" in values else "" for w in columns]
        table.rows.append([method] + cells)
    table.notes += [
        f"num_workers=0 (everything in the main thread's prefetcher) gave {fmt(reference)} samples/s in "
        "the same rounds.",
        "Process workers start through `forkserver` (the `python -m benchmarks` entry point has the "
        "`if __name__ == \"__main__\":` guard this needs); their start-up is in the untimed warm-up.",
        "Empty columns are for a run on a bigger machine (e.g. 16 cores: `python -m benchmarks "
        "--only scaling --workers 1 2 4 8 16`); this machine has the CPUs listed above.",
    ]
    return [table], []
