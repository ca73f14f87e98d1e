"""Resume: ``load_state_dict`` of a state deep in an epoch, to the first batch, against a fresh start."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import timelapse_pipes as tp

from .measure import clock, dispose, fmt, interleave, median
from .report import Table, Target
from .settings import Settings
from .startup import count_opens

__all__ = ["run"]

EPOCH = 10_000_000


def run(settings: Settings, manifest: Path, spatial_dims: int = 3) -> tuple[list[Table], list[Target]]:
    position = settings.resume_position
    options: dict[str, Any] = dict(split="train", batch_size=1, seed=settings.seed, prefetch=0,
                                   samples_per_epoch=EPOCH, spatial_dims=spatial_dims)
    state = tp.build_loader(str(manifest), **options).state_dict()
    state["yielded"] = position  # what state_dict() says after `position` samples on one rank
    seen: dict[str, Any] = {}

    def first_batch(name: str, resume: dict[str, Any] | None) -> Callable[[], float]:
        """Seconds from a built loader (given ``resume``, ``load_state_dict`` of it) to its first batch."""
        def run() -> float:
            loader = tp.build_loader(str(manifest), **options)
            started = clock()
            if resume is not None:
                loader.load_state_dict(resume)
            batch = next(iter(loader))
            elapsed = clock() - started
            seen[name] = (int(batch["sample_index"][0]), count_opens(loader))
            del loader, batch
            dispose()
            return elapsed
        return run

    methods: dict[str, Callable[[], float]] = {"scratch": first_batch("scratch", None),
                                               "resumed": first_batch("resumed", state)}
    values = interleave(methods, settings.repeats, label="resume")
    first_scratch, first_resumed = median(values["scratch"]), median(values["resumed"])
    table = Table(
        f"Resume at sample {position:,} of a {EPOCH:,}-sample epoch",
        ["start", "first sample index", "time to first batch (s)", "images opened", "metadata reads"],
        [
            ["fresh loader, `iter()`", str(seen["scratch"][0]), fmt(first_scratch),
             str(seen["scratch"][1][0]), str(seen["scratch"][1][1])],
            ["`load_state_dict(state)` then `iter()`", f"{seen['resumed'][0]:,}", fmt(first_resumed),
             str(seen["resumed"][1][0]), str(seen["resumed"][1][1])],
        ],
        ["The state is the small JSON dict `state_dict()` returns after "
         f"{position:,} delivered samples on one rank (`yielded={position}`); resuming computes the "
         "sample's plan from (seed, epoch, index) and replays nothing: the resumed loader opened as "
         "many images as a fresh one (one, for its first sample) and took about as long.",
         "Both loaders are built before the clock starts (batch_size=1, prefetch=0, full-frame OME-Zarr)."],
    )
    target = Target("resume", "< 1 s to the first batch", f"{fmt(first_resumed)} s "
                    f"(fresh start {fmt(first_scratch)} s)", first_resumed < 1.0)
    return [table], [target]
