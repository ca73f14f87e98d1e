"""timelapse_pipes: train deep-learning models straight from microscopy timelapses.

A streaming ``torchdata.nodes`` graph: manifest rows -> sharded sample indices -> seeded
timepoints -> cached metadata -> bioio reads -> transforms -> batches, resumable bit-exactly.
"""

from .dataset import TimelapseDataset, TimelapseSampler
from .errors import (
    ConfigError,
    ImageReadError,
    ManifestError,
    SampleError,
    SkipBudgetExceeded,
    StateError,
    TimelapsePipesError,
    UnsupportedImageError,
)
from .index import build_index
from .loader import TimelapseLoader, build_loader
from .manifest import Manifest, ManifestColumns, ManifestRow, parse_channels, read_manifest
from .metadata import ImageMetadata, MetadataCache
from .monai_compat import BioIOImageLoaderd
from .nodes import (
    AdaptivePrefetcher,
    BatchAssembler,
    BioIOLoader,
    ManifestRowPlanner,
    MetadataCacher,
    SampleIndexSource,
    SamplePipeline,
    SeededTransform,
    TimepointSampler,
    collate_samples,
)
from .planning import CropSpec, SampleKey
from .readers import ReaderCache
from .sharding import Shard
from .state import load_state, save_state

__version__ = "0.1.0"

__all__ = [
    "AdaptivePrefetcher",
    "BatchAssembler",
    "BioIOImageLoaderd",
    "BioIOLoader",
    "ConfigError",
    "CropSpec",
    "ImageMetadata",
    "ImageReadError",
    "Manifest",
    "ManifestColumns",
    "ManifestError",
    "ManifestRow",
    "ManifestRowPlanner",
    "MetadataCache",
    "MetadataCacher",
    "ReaderCache",
    "SampleError",
    "SampleIndexSource",
    "SampleKey",
    "SamplePipeline",
    "SeededTransform",
    "Shard",
    "SkipBudgetExceeded",
    "StateError",
    "TimelapseDataset",
    "TimelapseLoader",
    "TimelapsePipesError",
    "TimelapseSampler",
    "TimepointSampler",
    "UnsupportedImageError",
    "build_index",
    "build_loader",
    "collate_samples",
    "load_state",
    "parse_channels",
    "read_manifest",
    "save_state",
]
