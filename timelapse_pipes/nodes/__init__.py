"""The library's own ``torchdata.nodes.BaseNode`` subclasses, one per module.

* :class:`SampleIndexSource`: the epoch's sample keys for this rank, resumable from a small dict;
* :class:`AdaptivePrefetcher`: builds batches inline, and reads ahead in a thread only when they are slow.

The per-sample work is done by plain callables (:mod:`timelapse_pipes.stages`) that these nodes
and torchdata's own ``Mapper`` / ``ParallelMapper`` / ``Batcher`` run.
"""

from .prefetch import AdaptivePrefetcher
from .sample_indices import SampleIndexSource

__all__ = ["AdaptivePrefetcher", "SampleIndexSource"]
