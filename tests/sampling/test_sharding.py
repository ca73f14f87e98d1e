"""Elastic sharding of the global sample order, and the stateful SampleIndexSource node."""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from timelapse_pipes import ConfigError, SampleIndexSource, SampleKey, Shard, StateError
from timelapse_pipes.graph.ranks import resolve_shard
from timelapse_pipes.sampling.sharding import shard_index, shard_length

PROPERTY_SETTINGS = settings(max_examples=100, deadline=None, database=None)


def shard_of(num_samples: int, position: int, shard: Shard) -> list[int]:
    return [shard_index(num_samples, position, shard, step)
            for step in range(shard_length(num_samples, position, shard))]


def drain(node: SampleIndexSource, limit: int | None = None) -> list[SampleKey]:
    out = []
    while limit is None or len(out) < limit:
        try:
            out.append(next(node))
        except StopIteration:
            break
    return out


# --------------------------------------------------------------------------------------------
# sharding.py
# --------------------------------------------------------------------------------------------

sharding_cases = st.integers(1, 200).flatmap(
    lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, 8))
)


@PROPERTY_SETTINGS
@given(case=sharding_cases)
def test_drop_last_shards_partition_the_even_prefix(case: tuple[int, int, int]) -> None:
    num_samples, position, world = case
    shards = [shard_of(num_samples, position, Shard(rank, world, drop_last=True)) for rank in range(world)]
    per_rank = (num_samples - position) // world
    assert all(len(s) == per_rank for s in shards)
    union: list[int] = [i for s in shards for i in s]
    assert len(union) == len(set(union))  # pairwise disjoint, no repeats within a rank
    assert sorted(union) == list(range(position, position + world * per_rank))
    # rank r takes p + r, p + r + W, ...
    for rank, s in enumerate(shards):
        assert s == list(range(position + rank, position + world * per_rank, world))


@PROPERTY_SETTINGS
@given(case=sharding_cases)
def test_padded_shards_cover_the_tail_and_wrap(case: tuple[int, int, int]) -> None:
    num_samples, position, world = case
    shards = [shard_of(num_samples, position, Shard(rank, world, drop_last=False)) for rank in range(world)]
    per_rank = math.ceil((num_samples - position) / world)
    assert all(len(s) == per_rank for s in shards)
    union = [i for s in shards for i in s]
    assert set(range(position, num_samples)) <= set(union)
    assert all(0 <= i < num_samples for i in union)
    # in global order p, p+1, ...: positions past N wrap to the start of the epoch (0, 1, ...)
    by_global = {position + rank + world * step: s[step]
                 for rank, s in enumerate(shards) for step in range(len(s))}
    assert sorted(by_global) == list(range(position, position + world * per_rank))
    for global_position, index in by_global.items():
        expected = global_position if global_position < num_samples else (global_position - num_samples) % num_samples
        assert index == expected
    # the padding is shorter than one sample per rank
    assert len(union) - (num_samples - position) < world


def test_padded_example() -> None:
    # 10 samples on 4 ranks: 12 slots, the last two wrap to 0 and 1.
    shards = [shard_of(10, 0, Shard(rank, 4)) for rank in range(4)]
    assert shards == [[0, 4, 8], [1, 5, 9], [2, 6, 0], [3, 7, 1]]
    assert [shard_of(10, 0, Shard(rank, 4, drop_last=True)) for rank in range(4)] == [
        [0, 4], [1, 5], [2, 6], [3, 7]]


def test_position_past_the_end_yields_nothing() -> None:
    assert shard_length(5, 7, Shard(0, 2)) == 0
    assert shard_length(5, 5, Shard(1, 2, drop_last=True)) == 0


@pytest.mark.parametrize("rank, world", [(2, 2), (-1, 2), (0, 0)])
def test_bad_shard(rank: int, world: int) -> None:
    with pytest.raises(ConfigError):
        Shard(rank=rank, world_size=world)


def test_resolve_shard() -> None:
    assert resolve_shard(1, 3, drop_last=True) == Shard(1, 3, True)
    assert resolve_shard() == Shard(0, 1, False)  # no process group initialised
    with pytest.raises(ConfigError):
        resolve_shard(rank=1)


# --------------------------------------------------------------------------------------------
# SampleIndexSource
# --------------------------------------------------------------------------------------------


def test_yields_sample_keys_of_the_epoch() -> None:
    node = SampleIndexSource(5)
    node.reset(None)
    keys = drain(node)
    assert keys == [SampleKey(0, i) for i in range(5)]
    assert all(isinstance(k, SampleKey) for k in keys)
    with pytest.raises(StopIteration):
        next(node)


def test_lazy_reset_on_first_next() -> None:
    node = SampleIndexSource(3)
    assert next(node) == SampleKey(0, 0)


def test_iterating_with_for_loop() -> None:
    node = SampleIndexSource(4, Shard(1, 2))
    node.reset(None)
    assert list(node) == [SampleKey(0, 1), SampleKey(0, 3)]


def test_fresh_reset_after_iteration_starts_next_epoch() -> None:
    node = SampleIndexSource(4)
    node.reset(None)
    assert {k.epoch for k in drain(node)} == {0}
    node.reset(None)
    assert drain(node) == [SampleKey(1, i) for i in range(4)]
    node.reset(None)
    assert drain(node)[0] == SampleKey(2, 0)


def test_reset_without_iterating_keeps_the_epoch() -> None:
    node = SampleIndexSource(4, initial_epoch=3)
    node.reset(None)
    node.reset(None)
    assert next(node) == SampleKey(3, 0)


def test_partial_epoch_then_fresh_reset_moves_on() -> None:
    node = SampleIndexSource(6)
    node.reset(None)
    drain(node, 2)
    node.reset(None)
    assert drain(node) == [SampleKey(1, i) for i in range(6)]


@PROPERTY_SETTINGS
@given(num_samples=st.integers(1, 40), world=st.integers(1, 4), data=st.data(),
       drop_last=st.booleans(), epoch=st.integers(0, 5))
def test_mid_epoch_state_resumes_exactly(num_samples: int, world: int, data, drop_last: bool,
                                         epoch: int) -> None:
    rank = data.draw(st.integers(0, world - 1))
    shard = Shard(rank, world, drop_last)
    config = {"seed": 3, "manifest": "abc", "num_samples": num_samples}

    reference = SampleIndexSource(num_samples, shard, initial_epoch=epoch, config=config)
    reference.reset(None)
    full = drain(reference)
    taken = data.draw(st.integers(0, len(full)))

    first = SampleIndexSource(num_samples, shard, initial_epoch=epoch, config=config)
    first.reset(None)
    head = drain(first, taken)
    state = json.loads(json.dumps(first.state_dict()))  # checkpoints travel as JSON
    assert state == first.get_state()
    assert first.global_position == world * taken

    resumed = SampleIndexSource(num_samples, shard, config=config)
    resumed.reset(state)
    tail = drain(resumed)
    assert head + tail == full
    # the resumed run then moves to the next epoch like the uninterrupted one
    reference.reset(None)
    resumed.reset(None)
    assert drain(resumed) == drain(reference)
    assert resumed.epoch == epoch + 1


def test_state_after_resume_resumes_again() -> None:
    node = SampleIndexSource(12)
    node.reset(None)
    drain(node, 3)
    second = SampleIndexSource(12)
    second.reset(node.state_dict())
    drain(second, 4)
    third = SampleIndexSource(12)
    third.reset(second.state_dict())
    assert drain(third) == [SampleKey(0, i) for i in range(7, 12)]


@PROPERTY_SETTINGS
@given(num_samples=st.integers(2, 60), data=st.data(), new_world=st.sampled_from([1, 3]),
       drop_last=st.booleans())
def test_elastic_resume_from_two_ranks(num_samples: int, data, new_world: int, drop_last: bool) -> None:
    old = [SampleIndexSource(num_samples, Shard(rank, 2, drop_last)) for rank in range(2)]
    for node in old:
        node.reset(None)
    per_rank = shard_length(num_samples, 0, Shard(0, 2, drop_last=True))  # lockstep, no padding yet
    consumed_each = data.draw(st.integers(0, per_rank))
    consumed = [key for node in old for key in drain(node, consumed_each)]
    states = [node.state_dict() for node in old]
    assert states[0] == states[1]  # lockstep ranks save the same state
    assert states[0]["yielded"] == consumed_each

    new = [SampleIndexSource(num_samples, Shard(rank, new_world, drop_last)) for rank in range(new_world)]
    for node in new:
        node.reset(states[0])
        assert node.global_position == 2 * consumed_each
    rest = [key for node in new for key in drain(node)]

    assert {k.epoch for k in consumed + rest} <= {0}
    assert sorted(k.index for k in consumed) == list(range(2 * consumed_each))
    remaining = num_samples - 2 * consumed_each
    rest_indices = [k.index for k in rest]
    if drop_last:
        kept = (remaining // new_world) * new_world
        assert sorted(rest_indices) == list(range(2 * consumed_each, 2 * consumed_each + kept))
    else:
        # every remaining sample exactly once, plus fewer than new_world pads wrapped to 0, 1, ...
        leftover = Counter(rest_indices)
        leftover.subtract(Counter(range(2 * consumed_each, num_samples)))
        assert all(count >= 0 for count in leftover.values())
        pads = sorted(leftover.elements())
        assert len(pads) == len(rest_indices) - remaining < new_world
        assert pads == list(range(len(pads)))


def test_elastic_example() -> None:
    a, b = SampleIndexSource(10, Shard(0, 2)), SampleIndexSource(10, Shard(1, 2))
    a.reset(None)
    b.reset(None)
    assert drain(a, 2) + drain(b, 2) == [SampleKey(0, 0), SampleKey(0, 2), SampleKey(0, 1), SampleKey(0, 3)]
    state = a.state_dict()
    single = SampleIndexSource(10)
    single.reset(state)
    assert [k.index for k in drain(single)] == [4, 5, 6, 7, 8, 9]
    ranks = [SampleIndexSource(10, Shard(r, 3)) for r in range(3)]
    for node in ranks:
        node.reset(state)
    assert [[k.index for k in drain(node)] for node in ranks] == [[4, 7], [5, 8], [6, 9]]


def test_set_epoch_applies_to_next_fresh_reset() -> None:
    node = SampleIndexSource(3)
    node.reset(None)
    drain(node)
    node.set_epoch(5)
    node.reset(None)
    assert drain(node) == [SampleKey(5, i) for i in range(3)]
    node.reset(None)
    assert next(node) == SampleKey(6, 0)


def test_set_epoch_before_first_reset() -> None:
    node = SampleIndexSource(3)
    node.set_epoch(5)
    node.reset(None)
    assert next(node) == SampleKey(5, 0)


def test_restore_overrides_set_epoch() -> None:
    donor = SampleIndexSource(4, initial_epoch=2)
    donor.reset(None)
    drain(donor, 1)
    node = SampleIndexSource(4)
    node.set_epoch(9)
    node.reset(donor.state_dict())
    assert drain(node) == [SampleKey(2, i) for i in (1, 2, 3)]


def test_state_from_another_config_names_the_key() -> None:
    saved = SampleIndexSource(4, config={"seed": 1, "num_timepoints": 2, "manifest": "aa"})
    saved.reset(None)
    drain(saved, 1)
    state = saved.state_dict()
    other = SampleIndexSource(4, config={"seed": 1, "num_timepoints": 3, "manifest": "aa"})
    with pytest.raises(StateError) as exc:
        other.reset(state)
    message = str(exc.value)
    assert "`num_timepoints`" in message
    assert "`seed`" not in message and "`manifest`" not in message
    with pytest.raises(StateError) as exc:
        other.queue_restore(state)
    assert "num_timepoints" in str(exc.value)


def test_state_with_an_extra_config_key_names_it() -> None:
    saved = SampleIndexSource(4, config={"seed": 1})
    saved.reset(None)
    state = saved.state_dict()
    other = SampleIndexSource(4, config={"seed": 1, "crop": [1, 2]})
    with pytest.raises(StateError) as exc:
        other.reset(state)
    assert "crop" in str(exc.value)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda s: s.pop("position"),
        lambda s: s.update(epoch="1"),
        lambda s: s.update(yielded=True),
        lambda s: s.update(version=99),
        lambda s: s.update(position=-1),
        lambda s: s.update(world_size=0),
        lambda s: s.update(config=[]),
    ],
)
def test_malformed_state(mutate) -> None:
    node = SampleIndexSource(4)
    node.reset(None)
    state = node.state_dict()
    mutate(state)
    with pytest.raises(StateError):
        SampleIndexSource(4).reset(state)


def test_non_dict_state() -> None:
    with pytest.raises(StateError):
        SampleIndexSource(4).queue_restore([1, 2])  # type: ignore[arg-type]


def test_queue_restore_mid_epoch() -> None:
    donor = SampleIndexSource(6, initial_epoch=1)
    donor.reset(None)
    drain(donor, 2)
    node = SampleIndexSource(6)
    node.queue_restore(donor.state_dict())
    assert node.get_state() == SampleIndexSource(6).get_state()  # queued: nothing applied before the reset
    node.reset(None)
    # the restored node is where the donor was: its state resumes exactly as the donor's does
    assert (node.epoch, node.global_position) == (donor.epoch, donor.global_position)
    from_node, from_donor = SampleIndexSource(6), SampleIndexSource(6)
    from_node.reset(json.loads(json.dumps(node.get_state())))
    from_donor.reset(donor.state_dict())
    assert drain(from_node) == drain(from_donor) == [SampleKey(1, i) for i in range(2, 6)]
    assert drain(node) == [SampleKey(1, i) for i in range(2, 6)]
    node.reset(None)
    assert next(node) == SampleKey(2, 0)


@pytest.mark.parametrize("world, drop_last", [(1, False), (2, False), (2, True), (4, True)])
def test_queue_restore_of_end_of_epoch_moves_to_next_epoch(world: int, drop_last: bool) -> None:
    donors = [SampleIndexSource(10, Shard(rank, world, drop_last), initial_epoch=3) for rank in range(world)]
    for donor in donors:
        donor.reset(None)
        drain(donor)
    state = donors[0].state_dict()
    node = SampleIndexSource(10, Shard(0, world, drop_last))
    node.queue_restore(state)
    node.reset(None)
    keys = drain(node)
    assert keys == shard_keys(10, Shard(0, world, drop_last), epoch=4)


def shard_keys(num_samples: int, shard: Shard, epoch: int) -> list[SampleKey]:
    return [SampleKey(epoch, i) for i in shard_of(num_samples, 0, shard)]


def test_reset_with_end_of_epoch_state_then_fresh_reset() -> None:
    donor = SampleIndexSource(5, initial_epoch=2)
    donor.reset(None)
    drain(donor)
    node = SampleIndexSource(5)
    node.reset(donor.state_dict())
    assert drain(node) == []
    node.reset(None)
    assert drain(node) == [SampleKey(3, i) for i in range(5)]
