"""``timelapse-pipes inspect``: validate a manifest up front and open each file once.

Each row is checked by :func:`check_metadata` (its file's metadata) then :func:`check_row` (the row
fits the image, and one pixel decodes). Serially here, or on a dask cluster through the index
engine (``index=`` / ``scheduler=`` / ``client=``, :mod:`timelapse_pipes.index`), with the same
messages.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from ..config.checks import (
    ERROR_KEY,
    PATH_KEY,
    ROW_KEY,
    check_metadata,
    check_row,
    inspect_options,
    problem,
    problem_lines,
)
from ..config.manifest import Manifest, read_manifest
from ..config.options import SampleOptions
from ..errors import TimelapsePipesError
from ..reading.cache.metadata_cache import MetadataCache
from ..reading.readers import ReaderCache
from ..records import ImageMetadata, ManifestRow

__all__ = ["inspect_manifest", "render_report", "row_report"]

def row_report(row: ManifestRow, metadata: ImageMetadata) -> dict[str, Any]:
    """A report's entry for a row with no problem."""
    return {"row": row.row, "path": row.path, "scene": metadata.scene, "scenes": list(metadata.scenes),
            "levels": list(metadata.resolution_levels), "dims": metadata.dims, "dtype": metadata.dtype,
            "reader": metadata.reader}


def inspect_manifest(path: str, *, split: str | None = None, spatial_dims: int | None = None,
                     num_timepoints: int = 1, timepoint_sampling: str = "random",
                     storage_options: dict | None = None, index: str | None = None,
                     scheduler: str | None = None, client: Any = None) -> dict[str, Any]:
    """Check every row against its file (and read one tiny region); list every problem with its row.

    With ``index`` (a path to build or update), ``scheduler`` (a dask scheduler address) or
    ``client`` (a ``distributed.Client``), the files are read in parallel on dask through
    :func:`timelapse_pipes.build_index`; without ``index`` that index is temporary.
    """
    report: dict[str, Any] = {"manifest": str(path), "rows": [], "problems": []}
    try:
        manifest = read_manifest(path, split=split, storage_options=storage_options)
    except TimelapsePipesError as error:
        report["problems"].append({ROW_KEY: None, PATH_KEY: str(path), ERROR_KEY: str(error)})
        return report
    options = inspect_options(spatial_dims, num_timepoints, timepoint_sampling)
    if index is not None or scheduler is not None or client is not None:
        return _inspect_on_dask(report, manifest, options, spatial_dims is not None, storage_options,
                                index, scheduler, client)
    readers, cache = ReaderCache(), MetadataCache(fs_kwargs=storage_options)
    from tqdm.auto import tqdm

    for row in tqdm(manifest.rows, desc="inspecting", unit="row", disable=None):
        try:
            metadata = check_metadata(row, cache, readers)
            check_row(row, metadata, readers, options, storage_options, check_spatial_dims=spatial_dims is not None)
        except TimelapsePipesError as error:
            report["problems"].append(problem(row, error))
            continue
        report["rows"].append(row_report(row, metadata))
    readers.close()
    return report


def _inspect_on_dask(report: dict[str, Any], manifest: Manifest, options: SampleOptions, check_spatial_dims: bool,
                     storage_options: dict | None, index: str | None, scheduler: str | None,
                     client: Any) -> dict[str, Any]:
    from ..index.build import run_index

    with tempfile.TemporaryDirectory(prefix="timelapse-pipes-inspect-") as folder:
        run = run_index(manifest, out=index or os.path.join(folder, "index.json"), options=options,
                        check_spatial_dims=check_spatial_dims, storage_options=storage_options,
                        client=client, scheduler=scheduler)
    report["rows"] = [row_report(row, run.metadata[n]) for n, row in enumerate(manifest.rows)
                      if n not in run.failed and n in run.metadata]
    report["problems"] = list(run.problems)
    summary = run.summary()
    del summary["problems"]
    report["index"] = summary if index is not None else {**summary, "index": None}  # a temporary one is gone
    return report


def render_report(report: dict[str, Any]) -> str:
    """A plain-text table of the rows followed by the problems."""
    lines = [f"manifest: {report['manifest']}", f"{'row':>4}  {'dims':<28} {'dtype':<8} {'scenes':>6} "
             f"{'levels':>6}  {'reader':<22} path"]
    for row in report["rows"]:
        dims = " ".join(f"{k}{v}" for k, v in row["dims"].items())
        lines.append(f"{row['row']:>4}  {dims:<28} {row['dtype']:<8} {len(row['scenes']):>6} "
                     f"{len(row['levels']):>6}  {row['reader']:<22} {row['path']}")
    return "\n".join(lines + problem_lines(report["problems"]))


