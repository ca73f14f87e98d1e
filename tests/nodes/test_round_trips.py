"""Every BaseNode of the graph resumes exactly from a state, on a synthetic source (no file read).

Each case goes through :func:`timelapse_pipes.testing.run_test_save_load_state`: states taken at
the start, at several midpoints and at the end of an epoch, passed through JSON and restored with
``reset(state)``, must give the rest of that epoch and then the next epoch exactly.
"""

from __future__ import annotations

import pytest
from torchdata.nodes import Batcher, Mapper

from timelapse_pipes.graph.loader import shutdown_graph
from timelapse_pipes.nodes.prefetch import AdaptivePrefetcher
from timelapse_pipes.nodes.sample_indices import SampleIndexSource
from timelapse_pipes.sampling.sharding import Shard
from timelapse_pipes.stages.collate import collate_samples
from timelapse_pipes.testing import SyntheticSample, run_test_save_load_state, synthetic_source

NUM_SAMPLES = 10  # one epoch: 10 keys, or 3 batches of 4 (the last one short)
SAMPLE_MIDPOINTS = [1, 4, 9]  # after the first key, mid-epoch, before the last key
BATCH_MIDPOINTS = [1, 2]  # after the first batch, before the short last one


@pytest.mark.parametrize("midpoint", SAMPLE_MIDPOINTS)
def test_sample_index_source(midpoint):
    run_test_save_load_state(SampleIndexSource(NUM_SAMPLES, config={"seed": 1}), midpoint)


@pytest.mark.parametrize("midpoint", [1, 2, 3])
@pytest.mark.parametrize("rank", [0, 2])
def test_sample_index_source_of_one_rank(rank, midpoint):
    # 10 samples on 3 ranks, padded: 4 keys per rank (rank 2's last one wraps to sample 1)
    run_test_save_load_state(SampleIndexSource(NUM_SAMPLES, Shard(rank, 3), initial_epoch=2), midpoint)


@pytest.mark.parametrize("midpoint", [1, 2])
@pytest.mark.parametrize("rank", [0, 2])
def test_sample_index_source_with_drop_last(rank, midpoint):
    # 10 samples on 3 ranks, the tail dropped: 3 keys per rank
    run_test_save_load_state(SampleIndexSource(NUM_SAMPLES, Shard(rank, 3, drop_last=True)), midpoint)


@pytest.mark.parametrize("midpoint", BATCH_MIDPOINTS)
@pytest.mark.parametrize("min_batch_s", [float("inf"), 0.0], ids=["inline", "reading-ahead"])
def test_adaptive_prefetcher(min_batch_s, midpoint):
    node = AdaptivePrefetcher(synthetic_source(NUM_SAMPLES, batch_size=4), prefetch_factor=2,
                              min_batch_s=min_batch_s)
    try:
        run_test_save_load_state(node, midpoint)
        node.reset()
        next(node)
        assert node.reading_ahead == (min_batch_s == 0.0)  # the case tested the path it names
    finally:
        shutdown_graph(node)


@pytest.mark.parametrize("midpoint", SAMPLE_MIDPOINTS)
def test_synthetic_source_unbatched(midpoint):
    run_test_save_load_state(synthetic_source(NUM_SAMPLES, seed=3, initial_epoch=1), midpoint)


@pytest.mark.parametrize("midpoint", [1, 2])
def test_a_hand_built_mapper_batcher_chain(midpoint):
    """A graph as users compose one: keys -> samples -> a transform -> batches of 3 -> collate."""

    def scale(sample: dict) -> dict:
        return {**sample, "raw": sample["raw"] * 2 + sample["epoch"]}

    keys = SampleIndexSource(NUM_SAMPLES, Shard(1, 2), config={"custom": True})  # 5 keys for rank 1
    samples = Mapper(Mapper(keys, SyntheticSample((2, 3, 3), seed=7)), scale)
    batches = Mapper(Batcher(samples, batch_size=2, drop_last=False), collate_samples)
    run_test_save_load_state(batches, midpoint)
