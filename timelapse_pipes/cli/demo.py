"""The built-in demo: write a small synthetic timelapse set, stream it, checkpoint, resume, verify."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

from ..graph.loader import build_loader
from ..graph.state import load_state, save_state
from ..testing.writers import write_demo_data

__all__ = ["run_demo"]


def _batches(loader: Any, count: int | None, progress: Callable[[Any], Any]) -> list[dict]:
    out = []
    for batch in progress(loader):
        out.append(batch)
        if count is not None and len(out) == count:
            break
    return out


def run_demo(out: str | None = None, num_workers: int = 2, echo: Callable[[str], None] = print) -> bool:
    """Run the demo; return True when the resumed stream equalled the uninterrupted one."""
    from tqdm.auto import tqdm

    folder = Path(out) if out else Path(tempfile.mkdtemp(prefix="timelapse-pipes-demo-"))
    started = time.perf_counter()
    manifest = write_demo_data(folder)
    echo(f"wrote 3 synthetic OME-Zarr timelapses (40 frames, 2 channels, 128x128) and {manifest}")
    options = dict(split="train", batch_size=4, num_timepoints=4, timepoint_sampling="sequential",
                   spatial_dims=2, crop={"roi_size": [64, 64]}, samples_per_epoch=32, seed=2026,
                   num_workers=num_workers)

    def progress(loader: Any) -> Any:
        return tqdm(loader, total=len(loader), desc="streaming", unit="batch",
                    disable=None if os.environ.get("TQDM_DISABLE") is None else True)

    # Each loader is closed when done: the interrupted one still has batches in flight in its worker
    # threads, which must not be left running while the interpreter shuts down.
    with build_loader(str(manifest), **options) as loader:
        t0 = time.perf_counter()
        reference = _batches(loader, None, progress)
        seconds = time.perf_counter() - t0
    samples = sum(b["raw"].shape[0] for b in reference)
    echo(f"epoch 0: {len(reference)} batches of raw {tuple(reference[0]['raw'].shape)} "
         f"({samples} samples, {samples / seconds:.0f} samples/s)")

    with build_loader(str(manifest), **options) as interrupted:
        head = _batches(interrupted, 3, progress)
        checkpoint = folder / "checkpoint.json"
        save_state(interrupted.state_dict(), checkpoint)
    echo(f"checkpoint after 3 batches -> {checkpoint} ({checkpoint.stat().st_size} bytes of JSON)")

    with build_loader(str(manifest), **options) as resumed:
        resumed.load_state_dict(load_state(checkpoint))
        tail = _batches(resumed, None, progress)
    stitched = head + tail
    same = len(stitched) == len(reference) and all(
        torch.equal(a["raw"], b["raw"]) and a["T"].tolist() == b["T"].tolist()
        for a, b in zip(stitched, reference))
    echo(f"resumed {len(tail)} batches: stream {'bit-identical' if same else 'DIFFERENT'} to the "
         f"uninterrupted run")
    echo(f"done in {time.perf_counter() - started:.1f} s; files in {folder}")
    return same
