"""A metadata index of a whole manifest, built in parallel on dask.distributed and shared by every rank.

* :mod:`.build`: ``build_index`` (plan, run, append, finish);
* :mod:`.tasks`: what one dask task does with a batch of files;
* :mod:`.cluster`: which cluster (a client, a scheduler address, or a LocalCluster).

The index file's format is :mod:`timelapse_pipes.reading.cache.file_format`; loaders read it through
:class:`timelapse_pipes.MetadataCache`.
"""

from .build import INDEX_FORMAT, IndexRun, build_index, render_summary, run_index

__all__ = ["build_index", "run_index", "render_summary", "IndexRun", "INDEX_FORMAT"]
