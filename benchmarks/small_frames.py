"""Small frames (the real 64x64 ND2): where a sample's time goes, and what the prefetch thread costs.

On a 64x64 frame the read is a few microseconds, so the library's fixed cost per sample decides
the rate. This suite times each stage of the batch assembly directly (in this thread, on warm
readers), the same loader with and without its read-ahead thread, and the machine's thread
hand-off (a round trip between two threads), all interleaved in one run.
"""

from __future__ import annotations

import queue
import threading
import timeit
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
from torchdata.nodes import Batcher, Loader, Mapper

import timelapse_pipes as tp
from timelapse_pipes.nodes.prefetch import AdaptivePrefetcher
from timelapse_pipes.nodes.sample_indices import SampleIndexSource
from timelapse_pipes.records import SampleKey
from timelapse_pipes.stages.pipeline import apply_stages

from .measure import clock, dispose, fmt, interleave, log, median
from .plan import planned_reads
from .report import Table, Target
from .settings import ND2_SAMPLE, Settings
from .streams import raw_rate

__all__ = ["run"]

ROUND_TRIPS = 20_000
ND2_FRAMES = 53  # T of the sample file


def _rate_after(batches: Iterator[dict], warm: int) -> float:
    """Samples/s of the rest of ``batches`` after ``warm`` untimed ones."""
    for _ in range(warm):
        next(batches)
    started, count = clock(), 0
    for batch in batches:
        count += batch["raw"].shape[0]
    return count / (clock() - started)


def _loader_rate(prepared: Any, samples: int, batch_size: int, read_ahead: str) -> Callable[[], float]:
    """Samples/s of one main-thread graph: ``inline`` (prefetch=0), ``adaptive`` (the default) or
    ``thread`` (read ahead from the first batch, like torchdata's Prefetcher)."""
    warm = 8  # past the adaptive prefetcher's warm-up and probes, so each mode runs as it will stay

    def run() -> float:
        node = Mapper(Batcher(SampleIndexSource(samples + warm * batch_size), batch_size=batch_size),
                      prepared.assemble_batch)
        if read_ahead != "inline":
            node = AdaptivePrefetcher(node, 2, **({"min_batch_s": 0.0} if read_ahead == "thread" else {}))
        rate = _rate_after(iter(Loader(node)), warm)
        del node
        dispose()
        return rate
    return run


def _process_rate(rows: dict, samples: int, batch_size: int, seed: int) -> Callable[[], float]:
    """Samples/s of ``build_loader(num_workers=2, worker_method="process")`` (workers started untimed)."""
    warm = 8

    def run() -> float:
        loader = tp.build_loader(rows, split=None, seed=seed, spatial_dims=2, batch_size=batch_size,
                                 num_workers=2, worker_method="process",
                                 samples_per_epoch=samples + warm * batch_size)
        rate = _rate_after(iter(loader), warm)
        loader.close()
        del loader
        dispose()
        return rate
    return run


def _round_trip_us() -> float:
    """Microseconds for one item to go to another thread and back (two wake-ups)."""
    there, back = queue.SimpleQueue(), queue.SimpleQueue()

    def echo() -> None:
        while (item := there.get()) is not None:
            back.put(item)
    thread = threading.Thread(target=echo, daemon=True)
    thread.start()
    started = clock()
    for n in range(ROUND_TRIPS):
        there.put(n)
        back.get()
    elapsed = clock() - started
    there.put(None)
    thread.join()
    return elapsed / ROUND_TRIPS * 1e6


def _stage_costs(prepared: Any, batch_size: int, repeats: int) -> dict[str, float]:
    """Microseconds per sample of each stage of the batch assembly, called directly on warm readers."""
    assemble = prepared.assemble_batch
    loader, stages = assemble.loader, assemble.plan_stages
    keys = [SampleKey(0, i) for i in range(batch_size)]
    assemble(keys)  # open the file, fill the metadata and layout caches
    plans = [apply_stages(key, stages) for key in keys]
    shape = loader.read_shape(plans[0])
    slots = [np.empty(shape, dtype=np.float32) for _ in plans]
    image = loader._image(plans[0], loader.layout(plans[0]))
    native = image.native()
    frame = native.handle.read_frame(native.frames[(plans[0].timepoints[0], 0)])
    inputs = [keys] + [[apply_stages(key, stages[:n]) for key in keys] for n in range(1, len(stages))]
    parts: dict[str, Callable[[], Any]] = {
        f"plan: {type(stage).__name__}": (lambda stage=stage, items=items: [stage(item) for item in items])
        for stage, items in zip(stages, inputs)
    }
    parts.update({
        "read: `BioIOLoader.read_into` (whole)": lambda: loader.read_into(plans, slots),
        "  of which nd2 `read_frame` alone": lambda: [native.handle.read_frame(0) for _ in plans],
        "  of which the float32 cast copy alone": lambda: [np.copyto(slot[0, :, 0], frame[None], casting="unsafe")
                                                          for slot in slots],
        "fields: `BioIOLoader.batch_fields` (collated)": lambda: loader.batch_fields(plans),
        "whole batch: `BatchAssembler` (all of the above + buffer)": lambda: assemble(keys),
    })
    number = max(1, 20_000 // batch_size)
    return {name: min(timeit.repeat(call, number=number, repeat=repeats)) / number / batch_size * 1e6
            for name, call in parts.items()}


def run(settings: Settings, shared: Path | None) -> tuple[list[Table], list[Target]]:
    path = None if shared is None else shared / ND2_SAMPLE
    if path is None or not path.exists():
        log(f"small frames: {path} not found, skipping")
        return [], []
    rows = {"dict_meta": {"path": [str(path)]}}
    batch = settings.batch_size
    samples = settings.nd2_samples
    prepared = tp.graph.assembly.prepare(rows, split=None, seed=settings.seed, spatial_dims=2,
                                   samples_per_epoch=samples + 8 * batch)
    reads = planned_reads([str(path)], [ND2_FRAMES], (1, 64, 64), range(8 * batch, 8 * batch + samples),
                          settings.seed)
    methods = {name: _loader_rate(prepared, samples, batch, name) for name in ("inline", "adaptive", "thread")}
    methods["process"] = _process_rate(rows, samples, batch, settings.seed)
    methods["raw"] = raw_rate(reads, batch, [0], 0, spatial_dims=2)
    methods["round trip"] = _round_trip_us
    values = interleave(methods, settings.repeats, label="small frames")
    costs = _stage_costs(prepared, batch, settings.repeats)
    raw = median(values["raw"])
    rates = Table(
        f"Small frames: the real 64x64 ND2, in the main thread and in processes (samples/s, batch of "
        f"{batch}, float32 out)",
        ["loader", "samples/s", "µs per sample", "vs raw read"],
    )
    labels = {
        "inline": "`build_loader(prefetch=0)`: everything in the calling thread",
        "adaptive": "`build_loader()` (default prefetch=2: `AdaptivePrefetcher`, stays in the calling thread here)",
        "thread": "the same graph reading ahead in a thread from the first batch (`min_batch_s=0`, "
                  "as torchdata's `Prefetcher` does)",
        "process": "`build_loader(num_workers=2, worker_method='process')` (tensors under 1 MiB, here "
                   "all of them, come back pickled inline; larger ones through shared memory)",
        "raw": "raw read (as in the full-frame table): nd2's `read_frame`, float32, stacked into a tensor",
    }
    for name in ("inline", "adaptive", "thread", "process", "raw"):
        rate = median(values[name])
        rates.rows.append([labels[name], fmt(rate), fmt(1e6 / rate), f"{fmt(rate / raw)}x"])
    hand_off = median(values["round trip"])
    rates.notes += [
        f"{samples} samples per round after 8 warm-up batches, {settings.repeats} interleaved rounds, medians.",
        f"Thread round trip on this machine (one item to another thread and back, two wake-ups): "
        f"{fmt(hand_off)} µs, median of {settings.repeats} rounds of {ROUND_TRIPS:,}. A read-ahead thread "
        f"pays that per batch, plus GIL contention between the two threads: reading ahead from the first "
        f"batch added {fmt(batch * (1e6 / median(values['thread']) - 1e6 / median(values['adaptive'])))} µs per "
        f"batch of {batch} here, which is why `AdaptivePrefetcher` keeps batches this cheap in the calling "
        f"thread (it reads ahead once three batches in a row take 0.2 ms or more).",
    ]
    whole = costs["whole batch: `BatchAssembler` (all of the above + buffer)"]
    breakdown = Table(
        f"Small frames: where a sample's time goes (real 64x64 ND2, batch of {batch}, each stage called "
        "directly, µs per sample)",
        ["stage", "µs per sample", "share of the batch"],
        [[name, fmt(cost), f"{100 * cost / whole:.0f}%" if not name.startswith("whole") else "100%"]
         for name, cost in costs.items()],
    )
    breakdown.notes += [
        f"Each stage called on the same {batch} warm samples (file open, metadata and row layout cached), "
        f"fastest of {settings.repeats} repeats of 20,000 samples (`timeit`). The read's two "
        "'of which' rows are nd2's own call and numpy's cast alone: what a raw reader also pays. The "
        "rest of the batch is planning (three stages, about 1 µs of draws each), the non-pixel fields "
        "(seven small tensors and the per-sample `meta` dicts) and the buffer.",
    ]
    return [rates, breakdown], []
