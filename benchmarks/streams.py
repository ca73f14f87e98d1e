"""Steady-state throughput runners (samples/s) for the library, the raw limit and baseline 2."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Sequence

import timelapse_pipes as tp
from timelapse_pipes.reading.fast import threads as decode

from .baselines import RandomCrop, RawReader, bioio_image_loaderd, open_raw, to_batch
from .measure import clock, dispose
from .plan import PlannedRead

__all__ = ["library_rate", "raw_rate", "baseline_rate", "RawPool", "warmup_batches"]


def warmup_batches(workers: int) -> int:
    """Batches consumed untimed so every worker has opened the files (steady state)."""
    return 1 + max(workers, 1)


def library_rate(manifest: str, samples: int, batch_size: int, seed: int, workers: int = 0,
                 method: str = "thread", fast_decode: bool = True, warm: int | None = None,
                 **options: Any) -> Callable[[], float]:
    """Samples/s of ``build_loader`` over ``samples`` samples after ``warm`` batches (default
    :func:`warmup_batches`; its own loader per call).

    ``fast_decode=False``: with the library's chunk and page decoders off (how it read before them).
    """
    warm = warmup_batches(workers) if warm is None else warm
    batches = -(-samples // batch_size)

    def run() -> float:
        before = os.environ.get(decode.FAST_ENV_VAR)
        os.environ[decode.FAST_ENV_VAR] = "1" if fast_decode else "0"
        try:
            return measure()
        finally:
            if before is None:
                os.environ.pop(decode.FAST_ENV_VAR, None)
            else:
                os.environ[decode.FAST_ENV_VAR] = before

    def measure() -> float:
        # The decode-thread budget for this worker count (what build_loader is to set; process
        # workers are their own processes, which start unconfigured: one decode thread each).
        decode.configure(workers, method)
        loader = tp.build_loader(manifest, split="train", batch_size=batch_size, seed=seed,
                                 num_workers=workers, worker_method=method,
                                 samples_per_epoch=(warm + batches) * batch_size, **options)
        iterator = iter(loader)
        for _ in range(warm):
            next(iterator)
        started = clock()
        count = 0
        for _ in range(batches):
            count += next(iterator)["raw"].shape[0]
        elapsed = clock() - started
        for _ in iterator:  # drain the epoch untimed so workers shut down
            pass
        del iterator, loader
        dispose()
        return count / elapsed
    return run


class RawPool:
    """Raw readers opened once per (path, thread), like the library's reader cache but bare."""

    def __init__(self) -> None:
        import threading

        self._local = threading.local()

    def reader(self, path: str) -> RawReader:
        readers = getattr(self._local, "readers", None)
        if readers is None:
            readers = self._local.readers = {}
        if path not in readers:
            readers[path] = open_raw(path)
        return readers[path]


def _in_batches(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    return [items[k:k + size] for k in range(0, len(items), size)]


def raw_rate(reads: Sequence[PlannedRead], batch_size: int, channels: Sequence[int], threads: int = 0,
             spatial_dims: int = 3, pool: RawPool | None = None) -> Callable[[], float]:
    """Samples/s of the raw readers on exactly ``reads`` (readers opened before the clock starts)."""
    pool = pool or RawPool()

    def read(item: PlannedRead) -> Any:
        data = pool.reader(item.path).read(item.t, channels, item.region)
        return data[:, 0] if spatial_dims == 2 else data

    executor = ThreadPoolExecutor(threads) if threads else None
    for item in reads[: max(1, threads) * 4]:  # open every (path, thread) untimed
        (executor.submit(read, item).result() if executor else read(item))

    def run() -> float:
        started = clock()
        if executor is None:
            for chunk in _in_batches(reads, batch_size):
                to_batch([read(item) for item in chunk])
        else:  # every read submitted up front: the pool keeps reading while this thread stacks
            results = executor.map(read, reads)
            for chunk in _in_batches(reads, batch_size):
                to_batch([next(results) for _ in chunk])
        return len(reads) / (clock() - started)
    return run


def baseline_rate(reads: Sequence[PlannedRead], batch_size: int, channels: Sequence[int],
                  threads: int = 0, spatial_dims: int = 3,
                  roi: Sequence[int] | None = None) -> Callable[[], float]:
    """Samples/s of baseline 2 (new BioImage per sample, full frame, optional RandSpatialCropd)."""
    import threading

    import torch

    executor = ThreadPoolExecutor(threads) if threads else None
    local = threading.local()  # one RandSpatialCropd per thread: set_random_state mutates it

    def read(item: PlannedRead) -> Any:
        crop = None
        if roi is not None:
            crop = getattr(local, "crop", None) or RandomCrop(roi)
            local.crop = crop
        return bioio_image_loaderd(item.path, item.t, channels, spatial_dims, crop, item.seed)

    read(reads[0])  # untimed: first use of bioio's plugin discovery and MONAI in this process

    def run() -> float:
        started = clock()
        for chunk in _in_batches(reads, batch_size):
            tensors = list(executor.map(read, chunk)) if executor else [read(item) for item in chunk]
            torch.stack([t.as_tensor() if hasattr(t, "as_tensor") else t for t in tensors])
        return len(reads) / (clock() - started)
    return run
