"""The built-in demo: write a small synthetic timelapse set, stream it, checkpoint, resume, verify."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .loader import build_loader
from .state import load_state, save_state

__all__ = ["write_demo_data", "run_demo"]


FRAME_INTERVAL_S = 30.0  # the demo movies are "acquired" one frame every 30 s


def write_demo_data(folder: Path, files: int = 3, frames: int = 40, size: int = 128) -> Path:
    """Write ``files`` OME-Zarr timelapses (T, 2 channels, Y, X; one frame every 30 s, 0.65 µm
    pixels) and a manifest CSV; return the CSV."""
    try:
        from bioio_ome_zarr.writers import OMEZarrWriter
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise SystemExit("the demo writes OME-Zarr: install it with `pip install timelapse-pipes[formats]`") from exc
    folder.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:size, 0:size]
    lines = ["path,channel,split,start,stop"]
    for n in range(files):
        data = np.empty((frames, 2, 1, size, size), dtype=np.uint16)
        for t in range(frames):  # a blob drifting across the field, plus noise
            cy, cx = size / 2 + size / 4 * np.sin(t / 7 + n), size / 2 + size / 4 * np.cos(t / 5 + n)
            blob = 3000 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * (size / 12) ** 2))
            noise = np.random.default_rng([n, t]).normal(200, 30, size=(2, size, size))
            data[t, 0, 0] = np.clip(blob + noise[0], 0, 65535)
            data[t, 1, 0] = np.clip(blob[::-1] + noise[1], 0, 65535)
        path = folder / f"movie_{n}.ome.zarr"
        writer = OMEZarrWriter(str(path), level_shapes=[data.shape], dtype=data.dtype,
                               chunk_shape=(1, 1, 1, 64, 64), zarr_format=3,
                               axes_names=["t", "c", "z", "y", "x"],
                               axes_units=["second", None, "micrometer", "micrometer", "micrometer"],
                               physical_pixel_size=[FRAME_INTERVAL_S, 1.0, 1.0, 0.65, 0.65])
        writer.write_full_volume(data)
        lines.append(f"{path.name},\"0,1\",{'val' if n == files - 1 else 'train'},0,-1")
    manifest = folder / "manifest.csv"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


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

    loader = build_loader(str(manifest), **options)
    t0 = time.perf_counter()
    reference = _batches(loader, None, progress)
    seconds = time.perf_counter() - t0
    samples = sum(b["raw"].shape[0] for b in reference)
    echo(f"epoch 0: {len(reference)} batches of raw {tuple(reference[0]['raw'].shape)} "
         f"({samples} samples, {samples / seconds:.0f} samples/s)")

    interrupted = build_loader(str(manifest), **options)
    head = _batches(interrupted, 3, progress)
    checkpoint = folder / "checkpoint.json"
    save_state(interrupted.state_dict(), checkpoint)
    echo(f"checkpoint after 3 batches -> {checkpoint} ({checkpoint.stat().st_size} bytes of JSON)")

    resumed = build_loader(str(manifest), **options)
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
