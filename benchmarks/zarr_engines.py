"""Local zarr engines side by side: zarr-python, the ``zarrs`` pipeline, tensorstore's own read, the
library's chunk decoder and the library's loader, on the same planned reads, interleaved.

Per case (a chunk layout, full frames or random crops): every engine reads exactly the samples the
library's loader reads in that round (its pure plan, :mod:`.plan`), one sample at a time, in the
array's own dtype. The loader runs with its sample fields and batch assembly (uint16 and float32
batches, in the main thread), and with 2 thread workers and 2 process workers (float32). The
target: the library's loader at >= 0.95x tensorstore's own read on every case.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .baselines import open_zarrs, zarrs_installed
from .data import write_manifest, write_ome_zarr
from .frames import read_path
from .measure import clock, fmt, interleave, log, median, ratio
from .plan import PlannedRead, planned_reads
from .report import Table, Target
from .settings import Settings
from .streams import library_rate, warmup_batches

__all__ = ["run", "TARGET"]

TARGET = 0.95  # x tensorstore's own read
ENGINES = ("zarr-python", "zarrs", "tensorstore", "chunk decoder")
LIBRARY = {  # column -> (workers, worker_method, dtype)
    "library uint16": (0, "thread", "uint16"),
    "library float32": (0, "thread", "float32"),
    "library 2 threads": (2, "thread", "float32"),
    "library 2 processes": (2, "process", "float32"),
}


@dataclass(frozen=True)
class Layout:
    name: str
    path: str  # the OME-Zarr
    manifest: Path
    chunks: tuple[int, ...]


def write_layouts(settings: Settings, folder: Path) -> list[Layout]:
    """One OME-Zarr per chunk layout of ``settings.engine_chunks``, and one sharded."""
    czyx, frames = (1, *settings.frame_zyx), settings.stream_frames
    inner, shard = settings.shard_chunk
    specs = [(f"chunks {'x'.join(map(str, c[2:]))}", tuple(c), None) for c in settings.engine_chunks]
    specs.append((f"sharded {'x'.join(map(str, inner[2:]))} in {'x'.join(map(str, shard[2:]))}", inner, shard))
    layouts = []
    for number, (name, chunk, sharding) in enumerate(specs):
        log(f"zarr engines: writing an OME-Zarr of T={frames}, CZYX={czyx}, {name}")
        path = str(write_ome_zarr(folder / f"engines_{number}.ome.zarr", frames, czyx, chunk, seed=50 + number,
                                  shard=sharding))
        layouts.append(Layout(name, path, write_manifest(folder / f"engines_{number}.csv", [path]), chunk))
    return layouts


def _selection(read: PlannedRead) -> tuple[Any, ...]:
    return (read.t, 0) + tuple(read.region)


def _rate(read_one: Callable[[PlannedRead], Any], reads: Sequence[PlannedRead]) -> Callable[[], float]:
    for read in reads[:2]:  # untimed: the first read of each engine opens its caches and pools
        read_one(read)

    def run() -> float:
        started = clock()
        for read in reads:
            read_one(read)
        return len(reads) / (clock() - started)
    return run


def engine_methods(path: str, reads: Sequence[PlannedRead]) -> dict[str, Callable[[], float]]:
    """frames/s of each engine on ``reads`` (the array at level 0, opened once, native dtype)."""
    import tensorstore as ts
    import zarr

    from timelapse_pipes.reading.fast.threads import decode_threads
    from timelapse_pipes.reading.fast.zarr import ZarrChunks

    array = zarr.open_array(f"{path}/0", mode="r")
    store = ts.open({"driver": "zarr3", "kvstore": {"driver": "file", "path": f"{path}/0"}},
                    read=True).result()  # tensorstore's own default context: every core
    methods = {"zarr-python": _rate(lambda r: array[_selection(r)], reads)}
    if zarrs_installed():
        fast = open_zarrs(f"{path}/0", decode_threads())
        methods["zarrs"] = _rate(lambda r: fast[_selection(r)], reads)
    methods["tensorstore"] = _rate(lambda r: store[_selection(r)].read().result(), reads)
    chunks = ZarrChunks.from_array(array, "TCZYX")
    if chunks is not None:
        methods["chunk decoder"] = _rate(lambda r: chunks.read([r.t], [0], r.region), reads)
    return methods


def _check(path: str, reads: Sequence[PlannedRead]) -> str:
    """Untimed: tensorstore's own read equals zarr-python's on the first reads."""
    import tensorstore as ts
    import zarr

    array = zarr.open_array(f"{path}/0", mode="r")
    store = ts.open({"driver": "zarr3", "kvstore": {"driver": "file", "path": f"{path}/0"}}, read=True).result()
    same = all(np.array_equal(array[_selection(r)], store[_selection(r)].read().result()) for r in reads[:2])
    return "same pixels" if same else "MISMATCH"


def run(settings: Settings, folder: Path) -> tuple[list[Table], list[Target]]:
    layouts = write_layouts(settings, folder)
    zyx, roi, samples = settings.frame_zyx, settings.engine_roi, settings.samples
    columns = [*ENGINES, *LIBRARY]
    table = Table(f"Local zarr engines, one {'x'.join(map(str, zyx))} uint16 frame per sample (samples/s)",
                  ["array", "read", *columns, "library read path", *[f"{c} / tensorstore" for c in LIBRARY]])
    worst: list[tuple[str, float]] = []
    for layout in layouts:
        for label, crop in (("full frames", None), (f"{'x'.join(map(str, roi))} crops", roi)):
            options: dict[str, Any] = {} if crop is None else {"crop": {"roi_size": list(crop)}}
            methods: dict[str, Callable[[], float]] = {}
            for column, (workers, method, dtype) in LIBRARY.items():
                # workers: the batches in flight (2 per worker) are drained in the warm-up, so the
                # timed ones were read while the clock ran
                warm = warmup_batches(workers) + 2 * workers
                methods[column] = library_rate(str(layout.manifest), samples, settings.batch_size, settings.seed,
                                               workers=workers, method=method, dtype=dtype, warm=warm, **options)
            first = warmup_batches(0) * settings.batch_size  # the main-thread loader's timed samples
            reads = planned_reads([layout.path], [settings.stream_frames], zyx, range(first, first + samples),
                                  settings.seed, crop)
            methods.update(engine_methods(layout.path, reads))
            check = _check(layout.path, reads)
            values = interleave(methods, settings.engine_repeats or settings.repeats,
                                label=f"zarr engines {layout.name} {label}")
            medians = {name: median(found) for name, found in values.items()}
            versus = {column: ratio(medians[column], medians.get("tensorstore")) for column in LIBRARY}
            worst.extend((f"{layout.name} {label} {column}", v) for column, v in versus.items() if v is not None)
            table.rows.append([layout.name, label, *[fmt(medians.get(c)) for c in columns],
                               f"{read_path(layout.path)} ({check})", *[f"{fmt(versus[c])}x" for c in LIBRARY]])
    table.notes += [
        f"One OME-Zarr v3 per layout (T={settings.stream_frames}, blosc-zstd with bit shuffle, uint16 noise); "
        f"the sharded one holds {settings.shard_chunk[0]} chunks in {settings.shard_chunk[1]} shards. Crops: "
        f"the library's random {list(roi)} crop offsets; each engine reads exactly the main-thread loader's samples "
        f"({samples} per round, after its warm-up), one at a time (the worker loaders time later samples).",
        "zarr-python: `array[t, 0, z, y, x]` on a `LocalStore`; zarrs: the same through the `zarrs` codec "
        "pipeline (on the library's decode-thread budget; '—' where zarrs is not installed); tensorstore: `store[t, 0, z, y, x].read().result()` "
        "on tensorstore's default context (its own thread pools, every core); chunk decoder: the library's "
        "`ZarrChunks.read` (uint16). The chunk decoder refuses shards.",
        "library: `build_loader(dtype=..., num_workers=W, worker_method=...)`, a batch of "
        f"{settings.batch_size} with every sample field, a fresh loader per round, timed after its warm-up "
        "(process start-up and, with workers, the 2 batches per worker in flight untimed). Library read path: the fast path it found for the array.",
    ]
    low = [(name, v) for name, v in worst if v < TARGET]
    detail = "; ".join(f"{name}: {fmt(v)}x" for name, v in low) or \
        f"every case >= {TARGET}x (lowest {fmt(min(v for _, v in worst))}x)"
    return [table], [Target("zarr engines", f"library >= {TARGET}x tensorstore's own read, every local case",
                            detail, not low)]
