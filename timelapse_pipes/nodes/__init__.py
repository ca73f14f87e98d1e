"""The public nodes and stages of the graph, one per module, in pipeline order."""

from .sample_indices import SampleIndexSource
from .manifest_rows import ManifestRowPlanner
from .metadata_cacher import MetadataCacher
from .timepoint_sampler import TimepointSampler
from .bioio_loader import BioIOLoader
from .transform import SeededTransform
from .pipeline import SamplePipeline
from .collate import collate_samples
from .batch_assembler import BatchAssembler
from .prefetch import AdaptivePrefetcher

__all__ = [
    "SampleIndexSource",
    "ManifestRowPlanner",
    "MetadataCacher",
    "TimepointSampler",
    "BioIOLoader",
    "SeededTransform",
    "SamplePipeline",
    "collate_samples",
    "BatchAssembler",
    "AdaptivePrefetcher",
]
