"""The plain per-sample callables of the graph, in pipeline order, one per module.

``SampleKey -> SamplePlan`` (:class:`ManifestRowPlanner`), ``-> + metadata`` (:class:`MetadataCacher`),
``-> + timepoints and crop`` (:class:`TimepointSampler`), ``-> sample dict`` (:class:`BioIOLoader`),
``-> transformed`` (:class:`SeededTransform`); :class:`SamplePipeline` composes them with the
``on_error`` policy, :func:`collate_samples` and :class:`BatchAssembler` make batches. With
``grid=``, :class:`GridRowPlanner` and :class:`GridWindowPlanner` take the row planner's and the
timepoint sampler's places. Each is a
picklable callable, so users can run them as separate ``torchdata`` ``Mapper`` nodes.
"""

from .batch import BatchAssembler
from .collate import collate_samples
from .grid import GridRowPlanner, GridWindowPlanner
from .loading import BioIOLoader
from .metadata import MetadataCacher
from .pipeline import SamplePipeline
from .row_planner import ManifestRowPlanner
from .timepoints import TimepointSampler
from .transform import SeededTransform

__all__ = ["BatchAssembler", "BioIOLoader", "GridRowPlanner", "GridWindowPlanner", "ManifestRowPlanner", "MetadataCacher", "SamplePipeline",
           "SeededTransform", "TimepointSampler", "collate_samples"]
