"""Zarr in S3 behind a 20 ms proxy: zarr-python over s3fs, tensorstore's own read, and the library.

    python -m benchmarks --only zarr_s3 [--repeats 3] [--quick]

One OME-Zarr v3 (16xYxX uint16 frames, chunks (1, 1, 16, 128, 128), noise around a camera offset) is
uploaded to moto's S3 server (its own process on 127.0.0.1) and read through the loopback proxy of
:mod:`.s3_overlap`, which delays every request by 20 ms. Interleaved, the same frames (or the same
16x128x128 crop windows) per round:

* zarr-python over s3fs, ``a[t, 0]`` (or the crop's slices), one read at a time;
* tensorstore's own read of the same array through its ``s3`` driver, one read at a time;
* the library's loader (``build_loader``: sample fields, batch assembly, 1 frame per sample,
  ``batch_size`` 4) on thread workers, with tensorstore (this path) and with the fast paths off
  (zarr-python over s3fs inside the library, as before tensorstore read S3).

The library's frames/s (crops/s) are timed over a whole second epoch (the first one opens the file
in each worker thread); medians of the rounds.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from timelapse_pipes.reading.fast import threads as decode

from .data import write_ome_zarr
from .decoders import environment
from .measure import clock, dispose, fmt, interleave, log, median, ratio
from .report import Table, Target
from .s3_overlap import s3_server
from .settings import Settings

__all__ = ["run"]

LATENCY_MS = 20.0
CHUNK = (1, 1, 16, 128, 128)
ROI = (16, 128, 128)
WORKERS = 4
TARGET = 2.0  # the library against zarr-python over s3fs


def _sizes(settings: Settings) -> tuple[tuple[int, int, int], int, int, int]:
    """(frame Z, Y, X), frames in the file, full frames and crops read per round (crops are cheap: a
    round of 16 would mostly time the library's per-epoch start, about 0.2 s here)."""
    return ((16, 256, 256), 8, 8, 16) if settings.quick else ((16, 512, 512), 16, 16, 64)


def _windows(zyx: Sequence[int], frames: int, count: int, seed: int) -> list[tuple[int, tuple[slice, ...]]]:
    """``count`` (timepoint, 16x128x128 window) pairs drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    picks = []
    for _ in range(count):
        starts = [int(rng.integers(0, size - roi + 1)) for size, roi in zip(zyx, ROI)]
        picks.append((int(rng.integers(frames)),
                      tuple(slice(start, start + roi) for start, roi in zip(starts, ROI))))
    return picks


def _rate(read: Callable[[int, tuple[slice, ...]], Any], reads: Sequence[tuple[int, tuple[slice, ...]]]
          ) -> Callable[[], float]:
    def run() -> float:
        started = clock()
        for t, window in reads:
            read(t, window)
        return len(reads) / (clock() - started)
    return run


def _zarr_array(url: str, options: dict[str, str]) -> Any:
    import s3fs
    import zarr
    from zarr.storage import FsspecStore

    fs = s3fs.S3FileSystem(asynchronous=True, skip_instance_cache=True, **options)
    return zarr.open_array(FsspecStore(fs, path=url.split("://", 1)[1], read_only=True), mode="r")


def _tensorstore(url: str, options: dict[str, str]) -> Any:
    import tensorstore as ts

    from timelapse_pipes.reading.fast.object_store import s3_kvstore
    from timelapse_pipes.reading.fast.tensorstore import context

    return ts.open({"driver": "zarr3", "kvstore": s3_kvstore(url, options)}, read=True, open=True,
                   context=context()).result()


def _loader_rate(url: str, options: dict[str, str], samples: int, crop: bool, seed: int) -> Callable[[], float]:
    import timelapse_pipes as tp

    def run() -> float:
        loader = tp.build_loader({"dict_meta": {"path": [url]}}, split=None, storage_options={"s3": options},
                                 num_timepoints=1, samples_per_epoch=samples, batch_size=4,
                                 num_workers=WORKERS, seed=seed, crop={"roi_size": list(ROI)} if crop else None)
        with loader:
            for _ in loader:  # the first epoch opens the file in every worker thread: not the steady state
                pass
            started = clock()
            count = sum(batch["raw"].shape[0] for batch in loader)
            rate = count / (clock() - started)
        del loader
        dispose()
        return rate
    return run


def _table(title: str, values: dict[str, list[float]], unit: str, notes: list[str]) -> Table:
    base = median(values["zarr-python over s3fs"])
    table = Table(title, ["reader", f"{unit}/s", "x zarr-python"], notes=notes)
    for name, runs in values.items():
        table.rows.append([name, fmt(median(runs)), fmt(ratio(median(runs), base))])
    return table


def run(settings: Settings, folder: Path) -> tuple[list[Table], list[Target]]:
    import s3fs

    zyx, frames, count, crop_count = _sizes(settings)
    full = [(t % frames, (slice(None),) * 3) for t in range(count)]
    crops = _windows(zyx, frames, crop_count, settings.seed)
    tables, targets = [], []
    with s3_server(LATENCY_MS) as (upload, options):
        movie = write_ome_zarr(folder / "s3-movie.ome.zarr", frames, (1, *zyx), CHUNK, seed=settings.seed)
        bucket = f"bench-{uuid.uuid4().hex[:8]}"
        fs = s3fs.S3FileSystem(**upload, skip_instance_cache=True)
        fs.mkdir(bucket)
        fs.put(str(movie), f"{bucket}/movie.ome.zarr", recursive=True)
        url = f"s3://{bucket}/movie.ome.zarr"
        array, store = _zarr_array(f"{url}/0", options), _tensorstore(f"{url}/0", options)
        for kind, reads in (("full frames", full), ("16x128x128 crops", crops)):
            crop = kind != "full frames"
            methods = {
                "zarr-python over s3fs": _rate(lambda t, w: array[(t, 0) + w], reads),
                "tensorstore, its own read": _rate(lambda t, w: store[(t, 0) + w].read().result(), reads),
                f"library, {WORKERS} thread workers": _loader_rate(url, options, len(reads), crop, settings.seed),
            }
            methods[f"library, {WORKERS} thread workers, tensorstore off (zarr over s3fs)"] = _fast_paths_off(
                _loader_rate(url, options, len(reads), crop, settings.seed))
            values = interleave(methods, settings.repeats, label=f"zarr_s3 {kind}")
            unit = "frames" if not crop else "crops"
            tables.append(_table(
                f"Zarr in S3 behind a {LATENCY_MS:g} ms proxy, {kind} ({zyx[0]}x{zyx[1]}x{zyx[2]} uint16 frames, "
                f"chunks {CHUNK})", values, unit,
                [f"{len(reads)} reads per round, median of {settings.repeats} interleaved rounds; moto (pure Python) "
                 "serves every byte on the same busy cores.",
                 "zarr-python and tensorstore read one frame at a time; the library reads "
                 f"{WORKERS} samples at a time on thread workers, with its sample fields and batch assembly."]))
            measured = ratio(median(values[f"library, {WORKERS} thread workers"]),
                             median(values["zarr-python over s3fs"]))
            targets.append(Target(f"S3 proxy, {kind}: library vs zarr-python over s3fs", f">= {TARGET:g}x",
                                  f"{fmt(measured)}x", None if measured is None else measured >= TARGET))
            log(f"zarr_s3 {kind}: " + ", ".join(f"{n}={fmt(median(v))}" for n, v in values.items()))
    return tables, targets


def _fast_paths_off(measure: Callable[[], float]) -> Callable[[], float]:
    """``measure`` with the library's fast paths off: remote zarr arrays read by zarr-python over s3fs."""
    def run() -> float:
        with environment(decode.FAST_ENV_VAR, "0"):
            return measure()
    return run
