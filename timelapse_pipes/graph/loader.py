"""``build_loader``: the convenient assembly of the public nodes into a ``torchdata`` Loader.

Graph::

    SampleIndexSource (sharding filter, the only state)
      -> Batcher (the batch's sample keys)
      -> ParallelMapper(BatchAssembler, in_order=True)   per sample: manifest row, metadata,
             timepoints, read (into one batch buffer) [, transform]; collated
      -> AdaptivePrefetcher (main thread; with workers only an asked-for Prefetcher) [-> PinMemory]
      -> TimelapseLoader

Workers build whole batches (as torch's DataLoader workers do); the stream is the same for any
worker count because batches are delivered in order and each sample is a pure function of its key.
"""

from __future__ import annotations

import copy
import numbers
import os
from typing import Any, Callable, Mapping

from torchdata.nodes import (
    BaseNode,
    Batcher,
    Loader,
    Mapper,
    ParallelMapper,
    PinMemory,
    Prefetcher,
)

from .._compat import (
    LoaderIterator,
    iterator_num_yielded,
    node_children,
    shutdown_node,
)
from ..errors import ConfigError, StateError, TimelapsePipesError
from ..nodes.prefetch import AdaptivePrefetcher
from ..nodes.sample_indices import SampleIndexSource, check_state
from ..reading.fast import threads as decode
from ..reading.readers import ReleasingReaders
from ..sampling.sharding import shard_length
from ..stages.batch import BatchAssembler
from ..stages.shared_buffers import SharedBufferRing
from . import open_loaders, transport
from .assembly import Prepared, prepare
from .ranks import resolve_shard
from .workers import preload_forkserver

__all__ = ["build_loader", "TimelapseLoader", "find_index_state"]

WORKER_METHODS = ("thread", "process")
DEFAULT_PREFETCH = 2  # batches read ahead by the main thread's AdaptivePrefetcher


def find_index_state(state: Any) -> dict[str, Any] | None:
    """The ``SampleIndexSource`` state inside a nested torchdata state dict (or the dict itself)."""
    if not isinstance(state, Mapping):
        return None
    if SampleIndexSource.CONFIG_KEY in state and SampleIndexSource.VERSION_KEY in state:
        return dict(state)
    for value in state.values():
        found = find_index_state(value)
        if found is not None:
            return found
    return None


def shutdown_graph(root: Any) -> None:
    """Stop the threads and processes of a torchdata graph, outermost first.

    torchdata stops them only when its iterators are garbage collected; each node keeps its
    iterator in ``_it`` and its parent in ``source``.
    """
    seen: set[int] = set()
    pending = [root]
    while pending:
        node = pending.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        shutdown_node(node)
        pending.extend(node_children(node))


def unwrap_worker_error(error: TimelapsePipesError) -> TimelapsePipesError:
    """torchdata re-raises errors from its threads as "Caught X in _populate_queue. <traceback>";
    give the user back the library's own one-line message."""
    message = str(error)
    marker = f"{type(error).__module__}.{type(error).__qualname__}: "
    if message.startswith("Caught ") and marker in message:
        return type(error)(message.rsplit(marker, 1)[1].strip())
    return error


class _TimelapseLoaderIterator(LoaderIterator):
    def next(self) -> Any:
        try:
            return super().next()
        except TimelapsePipesError as error:
            clean = unwrap_worker_error(error)
            if clean is error:
                raise
            raise clean from None


class TimelapseLoader(Loader):
    """A ``torchdata.nodes.Loader`` whose state is the library's own small JSON dict.

    ``state_dict()`` returns ``{version, config, epoch, position, yielded, world_size}`` as of the
    last batch delivered (not prefetched). ``load_state_dict`` accepts it, or a nested torchdata
    state, from a loader with any ``num_workers``, ``worker_method``, ``prefetch`` or world size.

    Every ``iter()`` builds a fresh graph over a fresh :class:`SampleIndexSource`. torchdata joins
    the previous graph's threads with a short timeout only, so a slow read could otherwise keep
    pulling indices from a shared source after a restart and silently skip samples. The epoch
    advances only when the previous ``iter()`` delivered a batch.
    """

    def __init__(self, build_root: Callable[[SampleIndexSource], BaseNode],
                 make_source: Callable[[int], SampleIndexSource], prepared: Prepared,
                 batch_size: int, drop_last: bool, initial_epoch: int = 0) -> None:
        self._build_root = build_root
        self._make_source = make_source
        self.index_source = make_source(initial_epoch)
        super().__init__(build_root(self.index_source), restart_on_stop_iteration=True)
        self.prepared = prepared
        self.batch_size = batch_size
        self.drop_last = drop_last
        self._start: dict[str, Any] | None = None  # state the next iter() resumes from
        self._last_start: dict[str, Any] | None = None  # state the current iteration began from
        self._next_epoch = int(initial_epoch)

    def __iter__(self) -> LoaderIterator:
        if self._it is not None and self._start is None:
            if iterator_num_yielded(self._it) > 0:
                self._next_epoch = self.index_source.epoch + 1
            else:  # nothing delivered (e.g. iter() called twice): restart where that iteration began
                self._start = self._last_start
                self._next_epoch = self.index_source.epoch if self._start is None else self._next_epoch
        source = self._make_source(self._next_epoch)
        if self._start is not None:
            source.queue_restore(self._start)
        self._last_start, self._start = self._start, None
        self.index_source = source
        self.root = self._build_root(source)
        self._it = _TimelapseLoaderIterator(self)
        open_loaders.track(self)  # closed at interpreter exit if the user never closes it
        self._it.reset(None)
        return self._it

    def state_dict(self) -> dict[str, Any]:
        if self._start is not None:
            return dict(self._start)
        if self._it is None:  # not iterated yet: answer without starting workers or prefetch
            return self._make_source(self._next_epoch).get_state()
        found = find_index_state(self._it.state_dict())
        assert found is not None, "the graph lost its SampleIndexSource state"
        return found

    def load_state_dict(self, state_dict: Mapping[str, Any], force: bool = False) -> None:
        """Resume from ``state_dict`` on the next ``iter()``. ``force=True`` accepts a state from
        another config or manifest (same position, new content)."""
        found = find_index_state(state_dict)
        if found is None:
            raise StateError("state has no timelapse_pipes position; pass what loader.state_dict() returned.")
        found = copy.deepcopy(found)
        if force and isinstance(found.get(SampleIndexSource.CONFIG_KEY), dict):
            found[SampleIndexSource.CONFIG_KEY] = dict(self.index_source.config)
        check_state(found, self.index_source.config)
        self._start = found

    def set_epoch(self, epoch: int) -> None:
        """Start the next ``iter()`` at the beginning of ``epoch`` (Lightning-style epoch sync).

        A state loaded for that same epoch is kept, so a resumed run continues mid-epoch."""
        if self._start is not None and self._start.get(SampleIndexSource.EPOCH_KEY) == int(epoch):
            return
        self._start = None
        self._last_start = None
        self._next_epoch = int(epoch)
        self._it = None

    @property
    def epoch(self) -> int:
        return self.index_source.epoch

    def __len__(self) -> int:
        """Batches per epoch on this rank."""
        samples = shard_length(self.prepared.num_samples, 0, self.index_source.shard)
        return samples // self.batch_size if self.drop_last else -(-samples // self.batch_size)

    def close(self) -> None:
        """Stop the workers and close every open reader and file handle of this process.

        The loader stays usable: iterating again starts a fresh graph and reopens what it reads,
        continuing where the stream stopped, as a new ``iter()`` always does. Loaders left open are
        closed at interpreter exit (:mod:`.open_loaders`).
        """
        open_loaders.untrack(self)
        shutdown_graph(self.root)
        self.prepared.close()

    def __enter__(self) -> "TimelapseLoader":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def stats(self) -> dict[str, Any]:
        """Counters of this process: skipped samples, retries and the bad files seen."""
        pipeline = self.prepared.pipeline
        return {"skips": pipeline.skips, "retries": pipeline.retries, "bad_files": sorted(pipeline.bad_files)}


def build_loader(
    path: str | Mapping[str, Any],
    *,
    split: str | None = "train",
    batch_size: int = 1,
    drop_last: bool = False,
    num_workers: int = 0,
    worker_method: str = "thread",
    multiprocessing_context: str | None = "forkserver",
    prefetch: int | None = None,
    pin_memory: bool = False,
    rank: int | None = None,
    world_size: int | None = None,
    shard_drop_last: bool = False,
    initial_epoch: int = 0,
    **options: Any,
) -> TimelapseLoader:
    """A resumable ``torchdata.nodes.Loader`` over collated batches of timelapse samples.

    ``options`` are those of :func:`timelapse_pipes.graph.assembly.prepare`: the option objects
    (``sample=SampleOptions(...)``, ``columns=ManifestColumns(...)``, ``reading=ReadOptions(...)``,
    ``errors=ErrorPolicy(...)``) or the same options as cyto-dl's flat keywords, plus ``transforms``,
    ``samples_per_epoch`` and ``stop_inclusive``. Start-up reads the manifest only: no image is opened
    until the first batch is requested. Iterating the loader again starts the next epoch.

    ``prefetch``: batches read ahead. Default (None): 2 with ``num_workers=0``, through
    :class:`~timelapse_pipes.nodes.prefetch.AdaptivePrefetcher` (a thread only once batches are
    slow enough to gain from one); with workers none beyond the ``2 x num_workers`` batches the
    workers already hold in flight. An explicit N > 0 with workers adds torchdata's ``Prefetcher``.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigError(f"batch_size={batch_size!r} must be an integer >= 1.")
    if worker_method not in WORKER_METHODS:
        raise ConfigError(f"worker_method={worker_method!r} must be one of {WORKER_METHODS}.")
    if prefetch is not None:
        if isinstance(prefetch, bool) or not isinstance(prefetch, numbers.Integral):
            raise ConfigError(f"prefetch={prefetch!r} must be an integer >= 0 (or None for the default).")
        prefetch = int(prefetch)
    if num_workers < 0 or (prefetch or 0) < 0:
        raise ConfigError(f"num_workers={num_workers} and prefetch={prefetch} must be >= 0.")
    prepared = prepare(path, split=split, **options)
    shard = resolve_shard(rank, world_size, shard_drop_last)

    def make_source(epoch: int) -> SampleIndexSource:
        return SampleIndexSource(prepared.num_samples, shard, initial_epoch=epoch, config=prepared.config)

    def build_root(source: SampleIndexSource) -> BaseNode:
        return build_graph(source, prepared, batch_size=batch_size, drop_last=drop_last,
                           num_workers=num_workers, worker_method=worker_method,
                           multiprocessing_context=multiprocessing_context, prefetch=prefetch,
                           pin_memory=pin_memory)

    return TimelapseLoader(build_root, make_source, prepared, batch_size, drop_last, initial_epoch)


class ProcessWorkerBatches:
    """A process worker's batch callable: sets that process's decode-thread budget on its first batch
    (:func:`timelapse_pipes.decode.configure`), so workers x decode threads stay within the cores,
    assembles batches into its :class:`SharedBufferRing` (shared memory, sent without a copy and
    reused once the loader's process lets go) and packs each for the trip back
    (:func:`timelapse_pipes.transport.pack`).

    Workers fork from the forkserver, whose environment is the loader process's as of the first
    process-worker loader; each worker takes the loader process's environment as of this graph
    instead (as a spawned or forked worker would), so credentials set later (``AWS_*``...) reach it."""

    def __init__(self, assemble: Callable[[Any], Any], num_workers: int) -> None:
        self.assemble = assemble
        self.num_workers = num_workers
        self.ring = SharedBufferRing(min_bytes=transport.SHARED_MIN_BYTES)  # pickled as a new, empty ring
        self.environment = dict(os.environ)
        self._pid = os.getpid()  # pickled with the parent's pid: a worker process differs

    def __call__(self, keys: Any) -> Any:
        if self._pid != os.getpid():
            adopt_environment(self.environment)
            decode.configure(self.num_workers, "process")
            if isinstance(self.assemble, BatchAssembler):
                self.assemble.allocate = self.ring
            self._pid = os.getpid()
        self.ring.reclaim_unsent()  # buffers of a batch whose assembly raised
        return transport.pack(self.assemble(keys), self.ring)


def adopt_environment(environment: Mapping[str, str]) -> None:
    """Make this process's environment exactly ``environment``."""
    for name in set(os.environ) - set(environment):
        del os.environ[name]
    os.environ.update(environment)


def build_graph(index_source: SampleIndexSource, prepared: Prepared, *, batch_size: int,
                drop_last: bool, num_workers: int, worker_method: str,
                multiprocessing_context: str | None, prefetch: int | None, pin_memory: bool) -> BaseNode:
    """Compose the public nodes into the batch graph that ``build_loader`` wraps."""
    node: BaseNode = Batcher(index_source, batch_size=batch_size, drop_last=drop_last)
    decode.configure(num_workers, worker_method)  # this process's decode threads per reading worker
    batches = ReleasingReaders(prepared.assemble_batch, prepared.readers)  # a batch's opens outlive its thread
    if num_workers == 0:
        node = Mapper(node, batches)
    else:
        context = multiprocessing_context if worker_method == "process" else None
        if context == "forkserver":
            preload_forkserver()
        assemble = ProcessWorkerBatches(prepared.assemble_batch, num_workers) if worker_method == "process" \
            else batches
        node = ParallelMapper(node, assemble, num_workers=num_workers, in_order=True,
                              method=worker_method, multiprocessing_context=context)  # type: ignore[arg-type]
        if worker_method == "process":  # the small tensors came back inline: tensors again
            node = Mapper(node, transport.unpack)
    if num_workers == 0:  # reads ahead once batches are slow enough to gain from it
        if prefetch is None or prefetch > 0:
            node = AdaptivePrefetcher(node, prefetch_factor=DEFAULT_PREFETCH if prefetch is None else prefetch)
    elif prefetch:  # asked for: more batches read ahead than the 2 x num_workers in flight in the workers
        node = Prefetcher(node, prefetch_factor=prefetch)
    if pin_memory:
        import torch

        if torch.cuda.is_available():
            node = PinMemory(node)
    return node
