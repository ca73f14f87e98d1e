"""``timelapse-pipes bench``: samples/s and MB/s of ``build_loader`` on your own manifest.

For each worker method and count, a loader is built with the user's options, its first batch is
taken as warm-up (worker start-up, first file opens), and batches are then counted for a fixed
number of seconds, cycling epochs when one ends early. The recommendation is the fastest
setting, preferring fewer workers when they come within ``TOLERANCE`` of the best.
"""

from __future__ import annotations

import gc
import os
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..errors import ConfigError

__all__ = ["Measurement", "default_worker_counts", "measure", "recommend", "render_table", "run_throughput"]

DEFAULT_WORKERS = (0, 1, 2, 4)
METHODS = ("thread", "process")
TOLERANCE = 0.05  # fewer workers win when within 5% of the best samples/s


@dataclass(frozen=True)
class Measurement:
    """One timed run: ``samples`` delivered in ``seconds`` after the warm-up batch."""

    method: str
    workers: int
    samples: int
    batches: int
    bytes: int
    seconds: float
    epochs: int
    warmup_s: float

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds if self.seconds > 0 else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "seconds": round(self.seconds, 4), "warmup_s": round(self.warmup_s, 4),
                "samples_per_s": round(self.samples_per_s, 3),
                "mb_per_s": round(self.mb_per_s, 3)}


def default_worker_counts(cpu_count: int | None = None) -> list[int]:
    """``0 1 2 4``, without counts above the machine's CPUs (0 and 1 are always kept)."""
    cpus = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
    return [n for n in DEFAULT_WORKERS if n <= max(1, cpus)]


def settings(workers: Iterable[int], methods: Iterable[str]) -> list[tuple[str, int]]:
    """The (method, workers) pairs to measure: process workers only for counts >= 1."""
    pairs: list[tuple[str, int]] = []
    for method in methods:
        if method not in METHODS:
            raise ConfigError(f"worker method {method!r} must be one of {METHODS}.")
        for count in workers:
            if count < 0:
                raise ConfigError(f"worker count {count} must be >= 0.")
            if (method == "process" and count == 0) or (method, count) in pairs:
                continue  # 0 workers reads in the main thread: measured once, as "thread"
            pairs.append((method, count))
    if not pairs:
        raise ConfigError("nothing to measure: give at least one worker count (and a method).")
    return pairs


def _batch_size_and_bytes(batch: Mapping[str, Any], out_key: str) -> tuple[int, int]:
    tensor = batch[out_key]
    return int(tensor.shape[0]), int(tensor.numel() * tensor.element_size())


def measure(make_loader: Callable[[], Any], *, method: str, workers: int, seconds: float,
            out_key: str = "raw") -> Measurement:
    """Time one loader: the first batch is warm-up, then batches are counted for ``seconds``."""
    loader = make_loader()
    samples = batches = size = epochs = 0
    start = time.perf_counter()
    first: float | None = None
    try:
        while True:
            epochs += 1
            delivered = False
            for batch in loader:
                delivered, now = True, time.perf_counter()
                if first is None:  # warm-up ends with the first batch, which is not counted
                    first = now
                    continue
                count, nbytes = _batch_size_and_bytes(batch, out_key)
                samples, batches, size = samples + count, batches + 1, size + nbytes
                if now - first >= seconds:
                    return Measurement(method, workers, samples, batches, size, now - first, epochs,
                                       first - start)
            if not delivered:
                raise ConfigError("an epoch of this loader yields no batch; lower --batch-size "
                                  "or raise --samples-per-epoch.")
    finally:
        close = getattr(loader, "close", None)
        if callable(close):
            close()
        else:  # torchdata's nodes shut their threads and processes down when collected
            del loader
            gc.collect()


def recommend(rows: Sequence[Measurement], tolerance: float = TOLERANCE) -> dict[str, Any]:
    """The fastest setting, preferring fewer workers (then threads) within ``tolerance`` of the best."""
    best = max(rows, key=lambda m: m.samples_per_s)
    close_enough = [m for m in rows if m.samples_per_s >= (1 - tolerance) * best.samples_per_s]
    chosen = min(close_enough, key=lambda m: (m.workers, m.method != "thread", -m.samples_per_s))
    return {"num_workers": chosen.workers, "worker_method": chosen.method,
            "samples_per_s": round(chosen.samples_per_s, 3), "mb_per_s": round(chosen.mb_per_s, 3),
            "best_samples_per_s": round(best.samples_per_s, 3)}


def run_throughput(manifest: Any, *, workers: Sequence[int] | None = None,
                   methods: Sequence[str] = METHODS, seconds: float = 5.0,
                   progress: Callable[[str], None] | None = None, **options: Any) -> dict[str, Any]:
    """Measure every (method, workers) setting on ``manifest``; ``options`` go to ``build_loader``."""
    from ..graph.loader import build_loader

    if seconds <= 0:
        raise ConfigError(f"seconds={seconds} must be > 0.")
    counts = list(workers) if workers else default_worker_counts()
    out_key = str(options.get("out_key", "raw"))
    rows: list[Measurement] = []
    for method, count in settings(counts, methods):
        if progress is not None:
            progress(f"measuring {count} {method} worker(s) for {seconds:g} s ...")

        def make_loader(method: str = method, count: int = count) -> Any:
            return build_loader(manifest, num_workers=count, worker_method=method, **options)

        rows.append(measure(make_loader, method=method, workers=count, seconds=seconds, out_key=out_key))
    return {"manifest": str(manifest), "cpu_count": os.cpu_count(), "seconds": seconds,
            "options": {k: v for k, v in options.items()}, "rows": [m.to_json() for m in rows],
            "recommendation": recommend(rows)}


def render_table(result: Mapping[str, Any]) -> str:
    """The human report: one line per setting, then the recommendation."""
    lines = [f"{'method':<8} {'workers':>7} {'samples/s':>10} {'MB/s':>9} {'batches':>8} {'epochs':>6} "
             f"{'warm-up s':>9}"]
    for row in result["rows"]:
        lines.append(f"{row['method']:<8} {row['workers']:>7} {row['samples_per_s']:>10.1f} "
                     f"{row['mb_per_s']:>9.1f} {row['batches']:>8} {row['epochs']:>6} {row['warmup_s']:>9.2f}")
    best = result["recommendation"]
    lines.append("")
    lines.append(f"recommended: num_workers={best['num_workers']}, worker_method={best['worker_method']!r} "
                 f"({best['samples_per_s']:.1f} samples/s, {best['mb_per_s']:.1f} MB/s; best measured "
                 f"{best['best_samples_per_s']:.1f}; fewer workers preferred within {TOLERANCE:.0%})")
    lines.append(f"{result['cpu_count']} CPUs, {result['seconds']:g} s per setting after a warm-up batch; "
                 f"0 workers reads in the main thread.")
    if any(row["epochs"] > 1 and row["workers"] > 0 for row in result["rows"]):
        lines.append("note: epochs ended during the measurements, and each epoch starts its workers "
                     "again; pass the --samples-per-epoch you train with to measure the same.")
    return "\n".join(lines)
