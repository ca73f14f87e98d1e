"""``timelapse-pipes preview``: a PNG montage of what the model will see.

One row of tiles per manifest row, one tile per (timepoint, channel): max-projected over Z and
contrast-stretched to the 1st-99th percentile of that tile.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .assembly import prepare
from .planning import SampleKey

__all__ = ["render_preview", "stretch"]


def stretch(plane: np.ndarray) -> np.ndarray:
    """Map the 1st..99th percentile of ``plane`` to 0..255 (uint8)."""
    low, high = np.percentile(plane, [1, 99]) if plane.size else (0.0, 1.0)
    if high <= low:
        high = low + 1
    return (np.clip((plane.astype(np.float64) - low) / (high - low), 0, 1) * 255).astype(np.uint8)


def render_preview(manifest: Any, output: str, *, split: str | None = None, rows: int = 8,
                   num_timepoints: int = 3, tile: int = 128, seed: int = 0, spatial_dims: int = 2,
                   **options: Any) -> dict[str, Any]:
    """Write the montage PNG to ``output``; return what it shows."""
    from PIL import Image, ImageDraw

    prepared = prepare(manifest, split=split, seed=seed, num_timepoints=num_timepoints,
                       timepoint_sampling=options.pop("timepoint_sampling", "uniform"),
                       uniform_jitter=False, dtype="float32", spatial_dims=spatial_dims, **options)
    shown = min(rows, len(prepared.manifest))
    tiles: list[list[np.ndarray]] = []
    labels: list[str] = []
    for row_index in range(shown):
        sample = _sample_of_row(prepared, row_index)
        raw = np.asarray(sample[prepared.options.out_key])
        if prepared.options.num_timepoints == 1:
            raw = raw[None]
        if prepared.options.spatial_dims == 3:
            raw = raw.max(axis=2)  # max projection over Z
        tiles.append([stretch(raw[t, c]) for t in range(raw.shape[0]) for c in range(raw.shape[1])])
        labels.append(f"row {prepared.manifest[row_index].row}: T={sample['T']} C={sample['C']}")
    columns = max(len(r) for r in tiles)
    label_height = 14
    canvas = Image.new("L", (columns * tile, shown * (tile + label_height)), color=0)
    draw = ImageDraw.Draw(canvas)
    for r, (row_tiles, label) in enumerate(zip(tiles, labels)):
        top = r * (tile + label_height)
        draw.text((2, top), label, fill=255)
        for c, plane in enumerate(row_tiles):
            image = Image.fromarray(plane).resize((tile, tile), Image.Resampling.NEAREST)
            canvas.paste(image, (c * tile, top + label_height))
    canvas.save(output, format="PNG")
    return {"output": output, "rows": shown, "columns": columns, "labels": labels}


def _sample_of_row(prepared: Any, row_index: int) -> dict[str, Any]:
    """The first sample of epoch 0 that lands on ``row_index`` (a pure lookup, no extra reads)."""
    from .planning import row_for_sample

    count = len(prepared.manifest)
    for index in range(count):
        if row_for_sample(prepared.options.seed, 0, index, count) == row_index:
            result = prepared.pipeline.run_stages(SampleKey(0, index))
            return result[0] if isinstance(result, list) else result
    raise AssertionError("every row appears once in the first pass")
