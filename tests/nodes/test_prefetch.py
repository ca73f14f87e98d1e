"""The adaptive read-ahead: the same batches and states inline, read ahead, and across the switch."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from torchdata.nodes import Batcher, Loader, Mapper

import timelapse_pipes as tp
from timelapse_pipes.graph.loader import shutdown_graph
from timelapse_pipes.nodes.prefetch import AdaptivePrefetcher
from timelapse_pipes.nodes.sample_indices import SampleIndexSource
from timelapse_pipes.testing import assert_batches_equal, collect

ND2 = "nd2/example-timelapse.nd2"
SLOW_FROM = 24  # batches whose first sample index is at least this take SLOW_S longer
SLOW_S = 0.02  # far from the ~0.1 ms fast batches, so a loaded machine cannot blur the two


def _graph(prepared, prefetch: str | None, release_readers: bool = False) -> Loader:
    """SampleIndexSource -> Batcher -> Mapper(assemble, slow tail) [-> AdaptivePrefetcher]; with
    ``release_readers``, each batch hands its open images back, as ``build_graph`` makes it."""
    from timelapse_pipes.reading.readers import ReleasingReaders

    def assemble(keys):
        if keys[0].index >= SLOW_FROM:  # only the timing changes, never the content
            time.sleep(SLOW_S)
        return prepared.assemble_batch(keys)

    batches = ReleasingReaders(assemble, prepared.readers) if release_readers else assemble
    node = Mapper(Batcher(SampleIndexSource(prepared.num_samples), batch_size=4), batches)
    if prefetch is not None:
        min_batch_s = {"ahead": 0.0, "never": float("inf"), "switch": SLOW_S / 2}[prefetch]
        node = AdaptivePrefetcher(node, prefetch_factor=2, min_batch_s=min_batch_s)
    return Loader(node)


@pytest.fixture(scope="module")
def prepared(shared_data):
    rows = {"dict_meta": {"path": [str(shared_data / ND2)] * 3, "start": [0, 5, 20]}}
    return tp.graph.assembly.prepare(rows, split=None, samples_per_epoch=48, seed=3, spatial_dims=2, num_timepoints=2)


@pytest.mark.parametrize("prefetch", ["ahead", "never", "switch"])
def test_the_stream_and_its_states_do_not_depend_on_reading_ahead(prepared, prefetch):
    reference = collect(_graph(prepared, None))
    loader = _graph(prepared, prefetch)
    iterator = iter(loader)
    batches = [next(iterator) for _ in reference]
    assert loader.root.reading_ahead == (prefetch != "never")  # (the end of the stream ends the thread)
    assert_batches_equal(batches + list(iterator), reference)
    for k in (1, 5, 8, 9, 10, 11):  # inline, around the switch (during batch 9) and ahead
        loader = _graph(prepared, prefetch)
        iterator = iter(loader)
        for _ in range(k):
            next(iterator)
        state = json.loads(json.dumps(loader.state_dict()))
        resumed = _graph(prepared, prefetch)
        resumed.load_state_dict(state)
        assert_batches_equal(collect(resumed), reference[k:])


def test_a_slow_tail_moves_reading_to_the_thread_only_after_it_starts(prepared):
    loader = _graph(prepared, "switch")
    iterator = iter(loader)
    for _ in range(SLOW_FROM // 4):  # fast batches: read in the calling thread
        next(iterator)
    assert not loader.root.reading_ahead
    for _ in range(3):  # three slow batches in a row
        next(iterator)
    assert loader.root.reading_ahead


@pytest.mark.timeout(60)  # a read-ahead thread that ended must not leave the next call waiting
@pytest.mark.parametrize("min_batch_s", [0.0, float("inf")])
def test_an_error_reaches_the_caller_in_order_and_the_stream_goes_on(prepared, min_batch_s):
    def fail_once(keys):
        if keys[0].index == 12:
            raise tp.SampleError(f"sample {keys[0].index} is bad")
        return prepared.assemble_batch(keys)

    node = AdaptivePrefetcher(Mapper(Batcher(SampleIndexSource(24), batch_size=4), fail_once), 2,
                              min_batch_s=min_batch_s)
    node.reset()
    firsts = [next(node)["sample_index"].tolist()[0] for _ in range(3)]
    with pytest.raises(tp.SampleError, match="sample 12 is bad"):
        next(node)
    firsts += [batch["sample_index"].tolist()[0] for batch in node]  # as an inline read goes on
    assert firsts == [0, 4, 8, 16, 20]
    for _ in range(2):  # the end stays the end
        with pytest.raises(StopIteration):
            next(node)


def test_a_restored_read_ahead_reports_its_state_before_the_first_item(prepared):
    def build(min_batch_s):
        node = AdaptivePrefetcher(Mapper(Batcher(SampleIndexSource(48), batch_size=4), prepared.assemble_batch),
                                  2, min_batch_s=min_batch_s)
        node.reset()
        return node

    inline = build(float("inf"))
    for _ in range(5):
        next(inline)
    state = inline.state_dict()
    for min_batch_s in (0.0, float("inf")):
        node = build(min_batch_s)
        node.reset(state)
        checkpoint = node.state_dict()  # taken before any item: it must still point at item 5
        assert next(node)["sample_index"].tolist()[0] == 20
        node._shutdown()
        again = build(float("inf"))
        again.reset(checkpoint)
        assert next(again)["sample_index"].tolist()[0] == 20


def test_shutdown_and_close_stop_the_thread(prepared):
    loader = Loader(AdaptivePrefetcher(Mapper(Batcher(SampleIndexSource(48), batch_size=4),
                                              prepared.assemble_batch), 2, min_batch_s=0))
    next(iter(loader))
    thread = loader.root._ahead.thread
    assert thread.is_alive() and thread.name == "timelapse_pipes-prefetch"
    shutdown_graph(loader.root)  # what TimelapseLoader.close() runs
    assert not thread.is_alive() and not loader.root.reading_ahead


def test_switching_to_read_ahead_opens_no_file_again(prepared):
    """Each batch hands its open images back (``ReleasingReaders``, as ``build_graph`` wraps it), so
    the read-ahead thread takes over what the calling thread opened, and the caller takes them back."""
    readers = prepared.readers
    node = _graph(prepared, "switch", release_readers=True).root
    node.reset()
    for _ in range(SLOW_FROM // 4):  # inline: every row's file opened in this thread
        next(node)
    opens = readers.opens
    for _ in range(4):  # slow: the switch, then batches read ahead
        next(node)
    assert node.reading_ahead and readers.opens == opens
    node._shutdown()
    node.reset()
    next(node)  # inline again, in this thread, with the same images
    assert readers.opens == opens


def test_build_loaders_read_ahead_node_follows_workers_and_prefetch(shared_data):
    from torchdata.nodes import ParallelMapper, Prefetcher

    rows = {"dict_meta": {"path": [str(shared_data / ND2)] * 2, "start": [0, 10]}}
    common = dict(split=None, samples_per_epoch=24, batch_size=4, seed=9, spatial_dims=2, num_timepoints=2)
    cases = {  # (num_workers, prefetch) -> the node on top of the graph
        (0, None): AdaptivePrefetcher, (0, 3): AdaptivePrefetcher, (0, 0): ParallelMapper,  # Mapper is one
        (2, None): ParallelMapper, (2, 3): Prefetcher,
    }
    reference = collect(tp.build_loader(rows, prefetch=0, **common))
    for (workers, prefetch), expected in cases.items():
        loader = tp.build_loader(rows, num_workers=workers, prefetch=prefetch, **common)
        assert type(loader.root) is expected, (workers, prefetch)
        assert_batches_equal(collect(loader), reference)
    with pytest.raises(tp.ConfigError, match="prefetch"):
        tp.build_loader(rows, prefetch=1.5, **common)
    assert type(tp.build_loader(rows, prefetch=np.int64(2), **common).root) is AdaptivePrefetcher
