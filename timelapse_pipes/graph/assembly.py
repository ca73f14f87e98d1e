"""Turning user options into a validated manifest, options and sample pipeline (no image I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ..config.fingerprint import config_summary
from ..config.keywords import options_from_keywords
from ..config.manifest import Manifest, ManifestColumns, read_manifest
from ..config.options import ErrorPolicy, ReadOptions, SampleOptions
from ..errors import ConfigError
from ..reading.cache.metadata_cache import MetadataCache
from ..reading.readers import ReaderCache
from ..sampling.grid import GridIndex
from ..sampling.rows import resolve_samples_per_epoch
from ..stages.batch import BatchAssembler
from ..stages.fields import check_image_keys
from ..stages.grid import GridRowPlanner, GridWindowPlanner, build_grid
from ..stages.loading import BioIOLoader
from ..stages.metadata import MetadataCacher
from ..stages.pipeline import SamplePipeline
from ..stages.placement import ForegroundCropPlacer
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
    grid: GridIndex | None = None  # the inference grid's cells, when ``grid=`` tiles the frames
    metadata_cache: MetadataCache | None = None  # this process's metadata cache (and placement maps)

    def close(self) -> None:
        """Write what this process added to the metadata cache file, and close the files it has open
        for these samples (they reopen on demand)."""
        if self.metadata_cache is not None:
            self.metadata_cache.flush()
        self.readers.close()


def _transform_for_split(transforms: Any, split: str | None) -> Callable[[Any], Any] | None:
    if transforms is None or callable(transforms):
        return transforms
    if isinstance(transforms, Mapping):
        return transforms.get(split) if split in transforms else None  # type: ignore[arg-type]
    raise ConfigError(f"transforms={transforms!r} must be a callable or a per-split dict of callables.")


def prepare(
    path: str | Mapping[str, Any],
    *,
    split: str | None = "train",
    sample: SampleOptions | Mapping[str, Any] | None = None,
    columns: ManifestColumns | Mapping[str, Any] | None = None,
    reading: ReadOptions | Mapping[str, Any] | None = None,
    errors: ErrorPolicy | Mapping[str, Any] | None = None,
    transforms: Any = None,
    samples_per_epoch: int | Mapping[str, int] | None = None,
    stop_inclusive: bool = False,
    **keywords: Any,
) -> Prepared:
    """Read the manifest and validate every option; opens no image file (but with ``grid=``, whose
    epoch length depends on the frame sizes: then each row's metadata is read once, or found in a
    persisted ``metadata_cache``).

    Options come as objects (``sample=SampleOptions(...)``, ``columns=ManifestColumns(...)``,
    ``reading=ReadOptions(...)``, ``errors=ErrorPolicy(...)``) or as cyto-dl's flat keywords
    (``num_timepoints=5``, ``img_path_column="file"``, ...; see :mod:`timelapse_pipes.config.keywords`).
    """
    chosen = options_from_keywords(keywords, sample=sample, columns=columns, reading=reading, errors=errors)
    options, read, policy = chosen.sample, chosen.reading, chosen.errors
    check_image_keys(chosen.columns, options)
    manifest = read_manifest(path, split=split, columns=chosen.columns, extra_columns=options.extra_columns,
                             stop_inclusive=stop_inclusive, storage_options=read.storage_options)
    readers = ReaderCache(read.max_open_files, read.stage_dir, read.stage_max_bytes)
    fs_kwargs = dict(read.storage_options or {})
    metadata_cache = MetadataCache(read.metadata_cache, options.reader, fs_kwargs)
    metadata = MetadataCacher(options, metadata_cache, readers)
    grid = None
    if options.grid is not None:
        if samples_per_epoch is not None:
            raise ConfigError("grid= covers every frame once per epoch, so it sets the epoch's length; "
                              "leave samples_per_epoch out.")
        grid = build_grid(manifest, options, metadata)
        num_samples = len(grid)
        plan_stages: list[Callable[[Any], Any]] = [GridRowPlanner(manifest, grid), metadata, GridWindowPlanner(grid)]
    else:
        num_samples = resolve_samples_per_epoch(samples_per_epoch, split, len(manifest))
        plan_stages = [ManifestRowPlanner(manifest, options.seed), metadata, TimepointSampler(options)]
    loader = BioIOLoader(options, readers, fs_kwargs)
    if options.crop is not None and options.crop.placed:
        plan_stages.append(ForegroundCropPlacer(loader, metadata_cache))
    stages = [*plan_stages, loader]
    transform = _transform_for_split(transforms, split)
    if transform is not None:
        stages.append(SeededTransform(transform, options.seed, same_draw_per_frame=options.time_aware,
                                      out_key=options.out_key))
    pipeline = SamplePipeline(stages, seed=options.seed, num_samples=num_samples, on_error=policy.on_error,
                              max_retries=policy.max_retries, max_skips=policy.max_skips)
    config = config_summary(options, manifest.fingerprint(), num_samples)
    config["transform"] = None if transform is None else _describe(transform)
    config["on_error"] = policy.on_error
    assemble_batch = BatchAssembler(pipeline, plan_stages, loader,
                                    per_sample=transform is not None or policy.on_error != "raise")
    return Prepared(manifest, options, num_samples, pipeline, config, readers, assemble_batch, grid, metadata_cache)


def _describe(transform: Any) -> str:
    """A stable name for a transform (its class and the classes it composes)."""
    inner = getattr(transform, "transforms", None)
    names = [type(t).__name__ for t in inner] if isinstance(inner, (list, tuple)) else []
    return type(transform).__name__ + (f"[{','.join(names)}]" if names else "")
