"""timelapse_pipes: train deep-learning models straight from microscopy timelapses.

A streaming ``torchdata.nodes`` graph: manifest rows -> sharded sample indices -> seeded
timepoints -> cached metadata -> bioio reads -> transforms -> batches, resumable bit-exactly.

The package is layered; each layer imports only the ones above it in this list (a test checks it):

* :mod:`.errors`, :mod:`.records`, :mod:`._compat`: the exception tree, the shared value types,
  every use of a dependency's private API;
* :mod:`.sampling`: the pure plan of sample i of epoch e (numpy and records only);
* :mod:`.reading`: storage, bioio readers, region reads, metadata and its cache, the fast paths;
* :mod:`.config`: options, manifests, fingerprints and row checks;
* :mod:`.stages`: the plain per-sample callables (plan, metadata, timepoints, read, transform, batch);
* :mod:`.nodes`: the ``torchdata`` ``BaseNode`` subclasses (sample indices, adaptive prefetch);
* :mod:`.graph`: ``build_loader``: assembly, ranks, workers, transport, state;
* :mod:`.testing`: synthetic files and sources, and the state round trips (tests, benchmarks, demo);
* :mod:`.index`, :mod:`.integrations`: the cluster index; DataLoader / Lightning / MONAI adapters;
* :mod:`.cli`: the command line.
"""

from .config.manifest import Manifest, ManifestColumns, parse_channels, read_manifest
from .config.options import ErrorPolicy, ReadOptions, SampleOptions
from .errors import (
    BatchShapeError,
    ConfigError,
    ImageReadError,
    ManifestError,
    SampleError,
    SkipBudgetExceeded,
    StateError,
    TimelapsePipesError,
    UnsupportedImageError,
)
from .graph.loader import TimelapseLoader, build_loader
from .graph.state import load_state, save_state
from .index.build import build_index
from .integrations.dataset import TimelapseDataset, TimelapseSampler
from .integrations.monai import BioIOImageLoaderd
from .nodes import AdaptivePrefetcher, SampleIndexSource
from .reading.cache.metadata_cache import MetadataCache
from .reading.readers import ReaderCache
from .records import ImageMetadata, ManifestRow, SampleKey, SamplePlan
from .sampling.crops import CropSpec
from .sampling.grid import GridSpec
from .sampling.sharding import Shard
from .sampling.stitching import GridStitcher
from .stages import (
    BatchAssembler,
    BioIOLoader,
    ManifestRowPlanner,
    MetadataCacher,
    SamplePipeline,
    SeededTransform,
    TimepointSampler,
    collate_samples,
)

__version__ = "0.1.0"

__all__ = [
    "AdaptivePrefetcher",
    "BatchAssembler",
    "BatchShapeError",
    "BioIOImageLoaderd",
    "BioIOLoader",
    "ConfigError",
    "ErrorPolicy",
    "CropSpec",
    "GridSpec",
    "GridStitcher",
    "ImageMetadata",
    "ImageReadError",
    "Manifest",
    "ManifestColumns",
    "ManifestError",
    "ManifestRow",
    "ManifestRowPlanner",
    "MetadataCache",
    "MetadataCacher",
    "ReadOptions",
    "ReaderCache",
    "SampleError",
    "SampleIndexSource",
    "SampleKey",
    "SampleOptions",
    "SamplePlan",
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


def __getattr__(name: str) -> object:
    """``timelapse_pipes.lightning`` (as in ``_target_: timelapse_pipes.lightning.RandomTimelapseDatamodule``)
    names :mod:`timelapse_pipes.integrations.lightning`, imported on first use (Lightning is optional)."""
    if name == "lightning":
        import importlib

        return importlib.import_module(".integrations.lightning", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
