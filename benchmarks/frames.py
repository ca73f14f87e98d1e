"""Steady state on full frames: OME-Zarr (one file set per chunk layout), OME-TIFF and the real ND2,
against the raw reader's default read and baseline 2, single-threaded and with 2 threads."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

import timelapse_pipes as tp
from timelapse_pipes.reading.fast import threads as decode

from .data import write_manifest, write_ome_tiff, write_ome_zarr
from .measure import dispose, fmt, interleave, log, median, ratio
from .plan import check_same_pixels, planned_reads
from .report import Table, Target
from .settings import ND2_SAMPLE, Settings
from .streams import RawPool, baseline_rate, library_rate, raw_rate, warmup_batches

__all__ = ["run", "Dataset", "stream_datasets", "read_path", "FULL_FRAME_GOAL", "SMALL_FRAME_GOAL"]

FULL_FRAME_GOAL = (1.25, 5.0)  # x the raw default read, x baseline 2 (single worker)
SMALL_FRAME_GOAL = 0.3  # x the raw read (the real 64x64 ND2, main thread)


class Dataset:
    def __init__(self, name: str, manifest: Path, paths: list[str], frames: list[int],
                 zyx: Sequence[int], spatial_dims: int = 3, samples: int = 32, short: str = "",
                 kind: str = "zarr", chunks: Sequence[int] | None = None) -> None:
        self.name, self.manifest, self.paths, self.frames = name, manifest, paths, frames
        self.short = short or name
        self.zyx, self.spatial_dims, self.samples = tuple(zyx), spatial_dims, samples
        self.kind, self.chunks = kind, None if chunks is None else tuple(chunks)

    @property
    def array_path(self) -> str:
        """The first file's array (the OME-Zarr's level 0, or the TIFF file itself)."""
        return f"{self.paths[0]}/0" if self.kind == "zarr" else self.paths[0]


def stream_datasets(settings: Settings, folder: Path, shared: Path | None) -> list[Dataset]:
    czyx = (1, *settings.frame_zyx)
    n, files = settings.stream_frames, settings.stream_files
    sets = []
    for number, chunk in enumerate(settings.frame_chunks):
        log(f"full frames: writing {files} OME-Zarr files of T={n}, CZYX={czyx}, chunks {chunk}")
        zarrs = [str(write_ome_zarr(folder / f"frames_{number}_{k}.ome.zarr", n, czyx, chunk, seed=10 + k))
                 for k in range(files)]
        label = "x".join(map(str, chunk[2:]))
        sets.append(Dataset(f"OME-Zarr, chunks {label}", write_manifest(folder / f"frames_zarr_{number}.csv", zarrs),
                            zarrs, [n] * files, settings.frame_zyx, 3, settings.samples,
                            f"OME-Zarr {label}", "zarr", chunk))
    log(f"full frames: writing {files} OME-TIFF files of T={n}, CZYX={czyx}")
    tiffs = [str(write_ome_tiff(folder / f"frames_{k}.ome.tiff", n, czyx, seed=20 + k)) for k in range(files)]
    sets.append(Dataset("OME-TIFF", write_manifest(folder / "frames_tiff.csv", tiffs), tiffs, [n] * files,
                        settings.frame_zyx, 3, settings.samples, kind="tiff"))
    nd2_path = None if shared is None else shared / ND2_SAMPLE
    if nd2_path is not None and nd2_path.exists():
        sets.append(Dataset("ND2 (real, 2-D 64x64, T=53)",
                            write_manifest(folder / "frames_nd2.csv", [str(nd2_path)]),
                            [str(nd2_path)], [53], (1, 64, 64), 2, settings.nd2_samples, "ND2", "nd2"))
    else:
        log(f"full frames: {nd2_path} not found, skipping the ND2 row")
    return sets


def read_path(path: str) -> str:
    """How the library reads this file: its fast path's class (and zarr codec pipeline)."""
    from timelapse_pipes.reading.readers import load_reader_class, reader_for_path

    opened = tp.ReaderCache().get(path, load_reader_class(reader_for_path(path)), 0, 0)
    native = opened.native()
    name = type(native).__name__ if native is not None else "bioio dask"
    inner = getattr(getattr(native, "array", None), "_async_array", None)
    if inner is not None:
        name += f" ({type(inner.codec_pipeline).__name__})"
    opened.close()
    return name


def _verify(data: Dataset, settings: Settings) -> str:
    """Untimed: the library's first batch equals the raw read of the same plan."""
    loader = tp.build_loader(str(data.manifest), split="train", batch_size=settings.batch_size,
                             seed=settings.seed, spatial_dims=data.spatial_dims, prefetch=0,
                             samples_per_epoch=settings.batch_size)
    batch = next(iter(loader))
    reads = planned_reads(data.paths, data.frames, data.zyx, range(settings.batch_size), settings.seed)
    pool = RawPool()
    arrays = [pool.reader(r.path).read(r.t, [0], r.region) for r in reads]
    verdict = check_same_pixels(batch, reads, [a[:, 0] if data.spatial_dims == 2 else a for a in arrays])
    del loader, batch
    dispose()
    return verdict


def methods_for(data: Dataset, settings: Settings, threads: int) -> dict[str, Callable[[], float]]:
    warm = warmup_batches(threads) * settings.batch_size
    reads = planned_reads(data.paths, data.frames, data.zyx, range(warm, warm + data.samples), settings.seed)
    common: dict[str, Any] = dict(spatial_dims=data.spatial_dims)
    methods = {
        f"library {threads}": library_rate(str(data.manifest), data.samples, settings.batch_size,
                                           settings.seed, workers=threads, **common),
        f"raw {threads}": raw_rate(reads, settings.batch_size, [0], threads, data.spatial_dims),
        f"baseline {threads}": baseline_rate(reads[: settings.baseline_samples], settings.batch_size, [0],
                                             threads, data.spatial_dims),
    }
    if threads == 0 and data.kind != "nd2":  # the same loader with the chunk and page decoders off
        methods["decoders off 0"] = library_rate(str(data.manifest), data.samples, settings.batch_size,
                                                 settings.seed, workers=threads, fast_decode=False, **common)
    return methods


def run(settings: Settings, datasets: list[Dataset]) -> tuple[list[Table], list[Target]]:
    table = Table(
        "Steady state, full frames (samples/s, batch of "
        f"{settings.batch_size}, float32 tensors out)",
        ["format", "frame (ZYX)", "workers", "timelapse_pipes", "its decoders off", "raw default read",
         "baseline 2", "vs raw default", "vs baseline 2", "decode threads", "library read path",
         "first batch check"],
    )
    full, small, per_sample, headroom = [], [], [], []
    for data in datasets:
        check = _verify(data, settings)
        path = read_path(data.paths[0])
        methods: dict[str, Callable[[], float]] = {}
        for threads in (0, 2):
            methods.update(methods_for(data, settings, threads))
        values = interleave(methods, settings.repeats, label=f"full frames {data.name}")
        for threads in (0, 2):
            lib, raw, base = (median(values[f"{m} {threads}"]) for m in ("library", "raw", "baseline"))
            vs_raw, vs_base = ratio(lib, raw), ratio(lib, base)
            if threads == 0:
                (small if data.kind == "nd2" else full).append((data.short, vs_raw or 0, vs_base or 0))
                per_sample.append(f"{data.short} {fmt(1000 / lib)} ms vs raw {fmt(1000 / raw)} ms")
                headroom.append(f"{data.short} {fmt(ratio(raw, base))}x")
            off = values.get(f"decoders off {threads}")
            table.rows.append([
                data.name, "x".join(map(str, data.zyx[-data.spatial_dims:])),
                "0 (main)" if threads == 0 else f"{threads} threads",
                fmt(lib), fmt(median(off)) if off else "", fmt(raw), fmt(base), f"{fmt(vs_raw)}x",
                f"{fmt(vs_base)}x",
                str(decode.budget(threads)), path, check if threads == 0 else "",
            ])
    table.notes += [
        "OME-Zarr: one set of files per chunk layout (T, C, Z, Y, X chunks (1, 1, Z, Y, X) as named), "
        "blosc-zstd with bit shuffle (the bioio writer's default), uint16 noise; OME-TIFF written by "
        "bioio's `OmeTiffWriter` (one deflate page per plane, 2 strips each); ND2 is the real sample file, "
        "read as `spatial_dims=2`.",
        "timelapse_pipes: `build_loader(num_workers=W, worker_method='thread')`, a fresh loader per round, "
        "timed after a warm-up of a few batches (files open), with the default read-ahead: with "
        "`num_workers=0` the `AdaptivePrefetcher` (2 batches, read ahead once three batches in a row take "
        "0.2 ms or more, so the full-frame rows move to its thread after their seventh batch and the ND2 "
        "row stays in the calling thread; see the small-frame tables), with threads the 2 x num_workers "
        "batches in flight in torchdata's `ParallelMapper`. "
        "Decode threads: the library's budget per reading worker, `max(1, CPUs // max(1, num_workers))` "
        "(see `timelapse_pipes/reading/fast/threads.py`). Library read path: the fast path the library found for the "
        "file (`ZarrChunks`: its chunk decoder; `TiffPages`: its page decoder; `ND2Frames`: nd2's "
        "`read_frame`).",
        "Its decoders off: the same loader with `TIMELAPSE_PIPES_FAST_DECODE=0`, so zarr-python (one "
        "orthogonal selection per sample) and tifffile's zarr store read the pixels, as the library did "
        "before its own decoders; single worker only.",
        "Raw default read: the file opened once per file (and per thread) with its own library and read "
        "its plain default way: zarr-python's `array[t, c, z, y, x]` on a `LocalStore`, tifffile's "
        "`TiffFile.asarray(key=<the frame's pages>)` (tifffile's default thread count), nd2's "
        "`ND2File.read_frame`; exactly the timepoints of the library's pure plan, converted to float32 "
        "and stacked into a tensor like the library's batches. With 2 threads every read is submitted to "
        "a 2-thread pool up front (in order), so the pool keeps reading while the main thread stacks batches.",
        "Baseline 2: a new `BioImage(path)` per sample (plugin discovery), the full frame through "
        "`get_image_dask_data(...).compute()`, a float32 `MetaTensor`, stacked; the first "
        f"{settings.baseline_samples} of the same samples per round (it is slow), same thread counts.",
        "Time per sample, single-threaded: " + "; ".join(per_sample) + ". On small frames (the 64x64 "
        "ND2) the raw read is microseconds, so its ratio measures the library's fixed per-sample cost.",
        "For reference, the raw default read itself is " + ", ".join(headroom) + " baseline 2 "
        "(single-threaded).",
    ]
    goal_raw, goal_base = FULL_FRAME_GOAL
    targets = [Target(
        "full frames", f">= {goal_raw}x the raw default read and >= {fmt(goal_base)}x baseline 2, single worker",
        "; ".join(f"{name}: {fmt(r)}x raw, {fmt(b)}x b2" for name, r, b in full),
        bool(full) and all(r >= goal_raw and b >= goal_base for _, r, b in full))]
    if small:
        targets.append(Target(
            "small frames", f">= {SMALL_FRAME_GOAL}x the raw read (real 64x64 ND2), single worker",
            "; ".join(f"{name}: {fmt(r)}x raw, {fmt(b)}x b2" for name, r, b in small),
            all(r >= SMALL_FRAME_GOAL for _, r, _ in small)))
    return [table], targets
