"""``build_loader``: the nodes and stages assembled into a resumable ``torchdata`` Loader.

* :mod:`.assembly`: manifest, options and stages prepared once;
* :mod:`.loader`: the graph (``Batcher`` / ``ParallelMapper`` / prefetch) and :class:`TimelapseLoader`;
* :mod:`.ranks`: this process's rank and world size;
* :mod:`.workers` and :mod:`.transport`: process workers and how their batches come back;
* :mod:`.state`: saving and loading a state dict;
* :mod:`.open_loaders`: loaders left open are closed at interpreter exit.
"""
