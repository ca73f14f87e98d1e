"""``timelapse-pipes inspect``: validate a manifest up front and open each file once."""

from __future__ import annotations

from typing import Any

from .dims import read_order
from .errors import TimelapsePipesError
from .manifest import read_manifest
from .metadata import MetadataCache
from .nodes.metadata_cacher import check_row_fits
from .options import SampleOptions
from .readers import ReaderCache, load_reader_class, reader_options
from .reading import read_region

__all__ = ["inspect_manifest", "render_report"]


def inspect_manifest(path: str, *, split: str | None = None, spatial_dims: int | None = None,
                     num_timepoints: int = 1, timepoint_sampling: str = "random",
                     storage_options: dict | None = None) -> dict[str, Any]:
    """Check every row against its file (and read one tiny region); list every problem with its row."""
    report: dict[str, Any] = {"manifest": str(path), "rows": [], "problems": []}
    try:
        manifest = read_manifest(path, split=split, storage_options=storage_options)
    except TimelapsePipesError as error:
        report["problems"].append({"row": None, "path": str(path), "error": str(error)})
        return report
    options = SampleOptions(spatial_dims=spatial_dims or 3, num_timepoints=num_timepoints,
                            timepoint_sampling=timepoint_sampling)
    readers, cache = ReaderCache(), MetadataCache(fs_kwargs=storage_options)
    from tqdm.auto import tqdm

    for row in tqdm(manifest.rows, desc="inspecting", unit="row", disable=None):
        try:
            metadata = cache.get(row, readers)
            check_row_fits(row, metadata, options, check_spatial_dims=spatial_dims is not None)
            image = readers.get(row.path, load_reader_class(metadata.reader), metadata.scene_index,
                                metadata.resolution, storage_options,
                                reader_options(metadata.reader, metadata.dims))
            order = read_order(row.time_axis or "T", metadata.has_samples_axis)
            read_region(image, order, [row.start], [0], (slice(0, 1), slice(0, 1), slice(0, 1)),
                        where=f"{row.where} ({row.path}, scene {metadata.scene!r})")
        except TimelapsePipesError as error:
            report["problems"].append({"row": row.row, "path": row.path, "error": str(error)})
            continue
        report["rows"].append({
            "row": row.row, "path": row.path, "scene": metadata.scene, "scenes": list(metadata.scenes),
            "levels": list(metadata.resolution_levels), "dims": metadata.dims, "dtype": metadata.dtype,
            "reader": metadata.reader,
        })
    return report


def render_report(report: dict[str, Any]) -> str:
    """A plain-text table of the rows followed by the problems."""
    lines = [f"manifest: {report['manifest']}", f"{'row':>4}  {'dims':<28} {'dtype':<8} {'scenes':>6} "
             f"{'levels':>6}  {'reader':<22} path"]
    for row in report["rows"]:
        dims = " ".join(f"{k}{v}" for k, v in row["dims"].items())
        lines.append(f"{row['row']:>4}  {dims:<28} {row['dtype']:<8} {len(row['scenes']):>6} "
                     f"{len(row['levels']):>6}  {row['reader']:<22} {row['path']}")
    if report["problems"]:
        lines.append(f"{len(report['problems'])} problem(s):")
        lines += [f"  row {p['row']}: {p['error']}" for p in report["problems"]]
    else:
        lines.append("no problems found")
    return "\n".join(lines)
