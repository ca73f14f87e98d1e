"""``timelapse-pipes preview``: a PNG montage of what the model will see, for any readable file.

One row of tiles per manifest row, one tile per (timepoint, channel), read through the library's
own sample pipeline, max-projected over Z (whatever its size) and contrast-stretched to the
1st-99th percentile of that tile, scaled to fit the tile. Every row is read as 3-D and gets the
timepoint count its range allows, so Z-stacks, 2-D timelapses and single frames share one
picture. A row that cannot be read gets its reason written over its tile area; the montage is
written anyway. With further images (``image_columns``), each image's label outlines are drawn over
the raw tiles in a colour per key (the PNG is then RGB, with a legend line on top).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ..graph.assembly import Prepared, prepare
from ..records import SampleKey, SamplePlan
from ..sampling.dims import effective_dims
from ..sampling.timepoints import frames_in_range
from ..stages.metadata import MetadataCacher
from ..stages.pipeline import apply_stages
from ..stages.row_planner import ManifestRowPlanner
from .outlines import key_colours, outline_keys, sample_outlines, tint

__all__ = ["RowPicture", "render_preview", "stretch"]

LABEL_HEIGHT = 14
ERROR_BACKGROUND = "#303030"  # grey (48), so a failed row is never mistaken for a dark image
TEXT = "white"  # colours by name, so one drawing serves the grey and the RGB montage


def stretch(plane: np.ndarray) -> np.ndarray:
    """Map the 1st..99th percentile of ``plane`` to 0..255 (uint8)."""
    low, high = np.percentile(plane, [1, 99]) if plane.size else (0.0, 1.0)
    if high <= low:
        high = low + 1
    return (np.clip((plane.astype(np.float64) - low) / (high - low), 0, 1) * 255).astype(np.uint8)


@dataclass
class RowPicture:
    """What one manifest row contributes: its tiles (grey ``(Y, X)``, or ``(Y, X, 3)`` with
    outlines), or the error that stopped it."""

    row: int
    label: str
    tiles: list[np.ndarray] = field(default_factory=list)
    error: str | None = None


class RowReader:
    """Reads the first epoch-0 sample of each manifest row with options fitted to that row.

    Every row is read as 3-D (``spatial_dims=3``: a 2-D image gives Z=1, a Z-stack all its planes)
    and its timepoint count is capped at the frames its range holds, so a single-frame Z-stack
    and a long movie share one picture. Pipelines are prepared lazily, one per timepoint count.
    """

    def __init__(self, manifest: Any, *, num_timepoints: int, options: Mapping[str, Any]) -> None:
        self.source = manifest
        self.num_timepoints = num_timepoints
        self.options = dict(options)
        self._prepared: dict[int, Prepared] = {}
        self.probe = self.prepared(num_timepoints)  # validates the manifest and every option
        self.manifest = self.probe.manifest

    def prepared(self, num_timepoints: int) -> Prepared:
        """The 3-D pipeline for this timepoint count, prepared on first use (no image I/O)."""
        if num_timepoints not in self._prepared:
            self._prepared[num_timepoints] = prepare(self.source, spatial_dims=3,
                                                     num_timepoints=num_timepoints, **self.options)
        return self._prepared[num_timepoints]

    def read(self, row_index: int) -> tuple[np.ndarray, dict[str, Any], int]:
        """``(planes [T, C, Y, X] max-projected over Z, the sample, Z)`` of the row."""
        row = self.manifest[row_index]
        cacher = next(s for s in self.probe.pipeline.stages if isinstance(s, MetadataCacher))
        metadata = cacher.metadata.get(row, cacher.readers)  # opened once, through the probe's cache
        dims = effective_dims(metadata, row.time_axis or self.probe.options.time_axis)
        stop = dims["T"] if row.stop is None else row.stop
        count = max(1, min(self.num_timepoints, frames_in_range(row.start, stop, row.step)))
        prepared = self.prepared(count)
        sample = _sample_of_row(prepared, row_index)
        raw = np.asarray(sample[prepared.options.out_key])
        if prepared.options.num_timepoints == 1:
            raw = raw[None]
        return raw.max(axis=2), sample, dims["Z"]  # max projection over Z

    def close(self) -> None:
        """Close the files the pipelines opened (where the library can)."""
        for prepared in self._prepared.values():
            close = getattr(prepared, "close", None)
            if callable(close):
                close()


def _sample_of_row(prepared: Prepared, row_index: int) -> dict[str, Any]:
    """Sample ``row_index`` of epoch 0, planned for that row whatever rows the sampler would draw
    (row weights may never draw it): the stages after the row planner, on a plan for this row."""
    planner, *stages = prepared.pipeline.stages
    assert isinstance(planner, ManifestRowPlanner), "the pipeline starts with the row planner"
    plan = SamplePlan(key=SampleKey(0, row_index), row_index=row_index, row=prepared.manifest[row_index])
    sample = apply_stages(plan, stages)
    return sample[0] if isinstance(sample, list) else sample


def error_text(error: BaseException, where: str) -> str:
    """The error's message, its leading ``manifest row N`` dropped (the row is shown beside it).

    ``m.csv row 3 (file, scene 'x'): msg`` becomes ``file, scene 'x': msg``.
    """
    message = str(error) or type(error).__name__
    if message.startswith(where + ": "):
        message = message[len(where) + 2:]
    elif message.startswith(where + " (") and "): " in message:
        inner, rest = message[len(where) + 2:].split("): ", 1)
        message = f"{inner}: {rest}"
    if type(error).__module__.split(".")[0] != "timelapse_pipes":  # e.g. a reader's own exception
        message = f"{type(error).__name__}: {message}"
    return message


def picture_row(reader: RowReader, row_index: int, outlines: Sequence[str] = ()) -> RowPicture:
    """Read one row into tiles, with the ``outlines`` images' outlines drawn over them; any failure
    becomes the row's error instead of an exception."""
    row = reader.manifest[row_index]
    try:
        planes, sample, depth = reader.read(row_index)
        # one timepoint: the sample's arrays have no T axis (as the raw, see RowReader.read)
        frames = sample_outlines(sample, outlines, single_frame=planes.shape[0] == 1) if outlines else None
    except Exception as error:  # noqa: BLE001 - one bad row must not stop the montage
        return RowPicture(row.row, f"row {row.row}: failed", error=error_text(error, row.where))
    tiles = [stretch(planes[t, c]) if frames is None else tint(stretch(planes[t, c]), frames[t])
             for t in range(planes.shape[0]) for c in range(planes.shape[1])]
    label = f"row {row.row}: T={list(sample['T'])} C={list(sample['C'])}"
    return RowPicture(row.row, label + (f" Z={depth} max-projected" if depth > 1 else ""), tiles)


def render_preview(manifest: Any, output: str, *, split: str | None = None, rows: int = 8,
                   num_timepoints: int = 3, tile: int = 128, seed: int = 0,
                   outline: Sequence[str] | None = None, **options: Any) -> dict[str, Any]:
    """Write the montage PNG to ``output``; return what it shows and which rows failed.

    ``options`` are :func:`timelapse_pipes.graph.assembly.prepare` options (manifest columns,
    ``image_columns``, reader, time_axis...). Every row is read as 3-D (Z=1 for a 2-D image) and
    max-projected over Z. ``outline`` names the further images whose outlines are drawn (default:
    every one; ``["none"]``: none).
    """
    options = {"timepoint_sampling": "uniform", **options, "split": split, "seed": seed,
               "uniform_jitter": False, "dtype": "float32"}
    reader = RowReader(manifest, num_timepoints=num_timepoints, options=options)
    keys = outline_keys(outline, [image.key for image in reader.manifest.columns.images])
    shown = min(rows, len(reader.manifest))
    try:
        pictures = [picture_row(reader, i, keys) for i in range(shown)]
    finally:
        reader.close()
    widths = [len(p.tiles) for p in pictures if p.tiles]
    columns = max(widths) if widths else num_timepoints  # every row failed: the usual width
    draw_montage(pictures, columns, tile, keys).save(output, format="PNG")
    return {"output": output, "rows": shown, "columns": columns, "labels": [p.label for p in pictures],
            "outlines": key_colours(keys), "failures": [(p.row, p.error) for p in pictures if p.error is not None]}


def draw_montage(pictures: list[RowPicture], columns: int, tile: int, outlines: Sequence[str] = ()) -> Any:
    """The PIL image: per row a label line, then its tiles or its error written over the tile area;
    with ``outlines``, in RGB under a legend line naming each outlined image in its colour."""
    from PIL import Image, ImageDraw

    legend = LABEL_HEIGHT if outlines else 0
    width = max(columns * tile, _legend_width(ImageDraw.Draw(Image.new("L", (1, 1))), outlines))
    canvas = Image.new("RGB" if outlines else "L",
                       (width, legend + max(1, len(pictures)) * (tile + LABEL_HEIGHT)), color=0)
    draw = ImageDraw.Draw(canvas)
    if outlines:
        _draw_legend(draw, outlines)
    for r, picture in enumerate(pictures):
        top = legend + r * (tile + LABEL_HEIGHT)
        draw.text((2, top), picture.label, fill=TEXT)
        if picture.error is not None:
            box = (0, top + LABEL_HEIGHT, columns * tile - 1, top + LABEL_HEIGHT + tile - 1)
            draw.rectangle(box, fill=ERROR_BACKGROUND, outline=TEXT)
            _draw_wrapped(draw, picture.error, box)
        for c, plane in enumerate(picture.tiles):
            image = _fit(Image.fromarray(plane), tile)
            canvas.paste(image, (c * tile + (tile - image.width) // 2,
                                 top + LABEL_HEIGHT + (tile - image.height) // 2))
    return canvas


def _legend_items(keys: Sequence[str]) -> list[tuple[str, Any]]:
    return [("outlines:", TEXT), *key_colours(keys).items()] if keys else []


def _legend_width(draw: Any, keys: Sequence[str]) -> int:
    """The pixels the legend line needs (0 without outlines): the montage is at least that wide."""
    items = _legend_items(keys)
    return 0 if not items else 4 + int(draw.textlength(" ".join(text for text, _ in items)) + 0.999)


def _draw_legend(draw: Any, keys: Sequence[str]) -> None:
    """``outlines: target mask`` on the top line, each key in its outline colour."""
    left = 2.0
    for text, colour in _legend_items(keys):
        draw.text((left, 0), text, fill=colour)
        left += draw.textlength(text + " ")


def _fit(image: Any, tile: int) -> Any:
    """``image`` scaled so its longer side is ``tile`` pixels, keeping its aspect ratio."""
    from PIL import Image

    scale = tile / max(image.width, image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, Image.Resampling.NEAREST)


def _draw_wrapped(draw: Any, text: str, box: tuple[int, int, int, int]) -> None:
    """Write ``text`` inside ``box``, wrapped to its width, cut with an ellipsis when it overflows."""
    left, top, right, bottom = box
    char_width = max(1.0, draw.textlength("M" * 10) / 10)
    line_height = LABEL_HEIGHT - 2
    width = max(1, int((right - left - 6) // char_width))
    lines = textwrap.wrap(text, width=width, break_long_words=True, break_on_hyphens=False) or [text]
    fits = max(1, (bottom - top - 4) // line_height)
    if len(lines) > fits:
        lines = lines[:fits]
        lines[-1] = lines[-1][: max(0, width - 3)] + "..."
    for i, line in enumerate(lines):
        draw.text((left + 3, top + 3 + i * line_height), line, fill=TEXT)
