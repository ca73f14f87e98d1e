"""Turning user options into a validated manifest, options and sample pipeline (no image I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from ..config.fingerprint import config_summary
from ..config.manifest import Manifest, ManifestColumns, read_manifest
from ..config.options import SampleOptions
from ..reading.cache.metadata_cache import MetadataCache
from ..reading.readers import ReaderCache
from ..sampling.rows import resolve_samples_per_epoch
from ..stages.batch import BatchAssembler
from ..stages.loading import BioIOLoader
from ..stages.metadata import MetadataCacher
from ..stages.pipeline import SamplePipeline
from ..stages.row_planner import ManifestRowPlanner
from ..stages.timepoints import TimepointSampler
from ..stages.transform import SeededTransform

__all__ = ["Prepared", "prepare"]


@dataclass
class Prepared:
    """What both the ``Loader`` graph and the map-style dataset are built from."""

    manifest: Manifest
    options: SampleOptions
    num_samples: int
    pipeline: SamplePipeline
    config: dict[str, Any]
    readers: ReaderCache
    assemble_batch: BatchAssembler  # keys -> collated batch, what build_loader's graph maps

    def close(self) -> None:
        """Close the files this process has open for these samples (they reopen on demand)."""
        self.readers.close()


def _transform_for_split(transforms: Any, split: str | None) -> Callable[[Any], Any] | None:
    if transforms is None or callable(transforms):
        return transforms
    if isinstance(transforms, Mapping):
        return transforms.get(split) if split in transforms else None  # type: ignore[arg-type]
    from ..errors import ConfigError

    raise ConfigError(f"transforms={transforms!r} must be a callable or a per-split dict of callables.")


def prepare(
    path: str | Mapping[str, Any],
    *,
    split: str | None = "train",
    seed: int = 0,
    num_timepoints: int = 1,
    timepoint_sampling: str = "random",
    uniform_jitter: bool = True,
    spatial_dims: int = 3,
    dtype: Any = "float32",
    timepoint_layout: str = "stack",
    out_key: str = "raw",
    crop: Mapping[str, Any] | None = None,
    reader: str | None = None,
    time_axis: str = "T",
    frame_offsets: Sequence[int] | None = None,
    frame_gap: Sequence[int] | None = None,
    transforms: Any = None,
    samples_per_epoch: int | Mapping[str, int] | None = None,
    img_path_column: str = "path",
    channel_column: str = "channel",
    split_column: str | None = "split",
    scene_column: str = "scene",
    resolution_column: str = "resolution",
    time_start_column: str = "start",
    time_stop_column: str = "stop",
    reader_column: str = "reader",
    time_axis_column: str = "time_axis",
    time_step_column: str = "step",
    weight_column: str = "weight",
    extra_columns: Sequence[str] = (),
    stop_inclusive: bool = False,
    metadata_cache: str | None = None,
    max_open_files: int = 64,
    storage_options: Mapping[str, Any] | None = None,
    stage_dir: str | None = None,
    stage_max_bytes: int | None = None,
    on_error: str = "raise",
    max_retries: int = 3,
    max_skips: int = 100,
) -> Prepared:
    """Read the manifest and validate every option; opens no image file."""
    options = SampleOptions(
        seed=seed, num_timepoints=num_timepoints, timepoint_sampling=timepoint_sampling,
        uniform_jitter=uniform_jitter, spatial_dims=spatial_dims, dtype=dtype,
        timepoint_layout=timepoint_layout, out_key=out_key, crop=crop, reader=reader,  # type: ignore[arg-type]
        time_axis=time_axis, extra_columns=tuple(extra_columns or ()),
        frame_offsets=frame_offsets, frame_gap=frame_gap,  # type: ignore[arg-type]
    )
    columns = ManifestColumns(
        path=img_path_column, channel=channel_column, split=split_column, scene=scene_column,
        resolution=resolution_column, start=time_start_column, stop=time_stop_column,
        reader=reader_column, time_axis=time_axis_column, step=time_step_column,
        weight=weight_column,
    )
    manifest = read_manifest(path, split=split, columns=columns, extra_columns=options.extra_columns,
                             stop_inclusive=stop_inclusive, storage_options=storage_options)
    num_samples = resolve_samples_per_epoch(samples_per_epoch, split, len(manifest))
    readers = ReaderCache(max_open_files, stage_dir, stage_max_bytes)
    fs_kwargs = dict(storage_options or {})
    plan_stages: list[Callable[[Any], Any]] = [
        ManifestRowPlanner(manifest, options.seed),
        MetadataCacher(options, MetadataCache(metadata_cache, options.reader, fs_kwargs), readers),
        TimepointSampler(options),
    ]
    loader = BioIOLoader(options, readers, fs_kwargs)
    stages = [*plan_stages, loader]
    transform = _transform_for_split(transforms, split)
    if transform is not None:
        stages.append(SeededTransform(transform, options.seed, same_draw_per_frame=options.time_aware,
                                      out_key=options.out_key))
    pipeline = SamplePipeline(stages, seed=options.seed, num_samples=num_samples, on_error=on_error,
                              max_retries=max_retries, max_skips=max_skips)
    config = config_summary(options, manifest.fingerprint(), num_samples)
    config["transform"] = None if transform is None else _describe(transform)
    config["on_error"] = on_error
    assemble_batch = BatchAssembler(pipeline, plan_stages, loader,
                                    per_sample=transform is not None or on_error != "raise")
    return Prepared(manifest, options, num_samples, pipeline, config, readers, assemble_batch)


def _describe(transform: Any) -> str:
    """A stable name for a transform (its class and the classes it composes)."""
    inner = getattr(transform, "transforms", None)
    names = [type(t).__name__ for t in inner] if isinstance(inner, (list, tuple)) else []
    return type(transform).__name__ + (f"[{','.join(names)}]" if names else "")
