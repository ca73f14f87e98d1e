"""The counter-based per-sample draws: pure, in range, exactly uniform enough to trust."""

from __future__ import annotations

import collections

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from timelapse_pipes.sampling.draws import SampleDraws

KEYS = st.tuples(st.integers(0, 2**40), st.integers(0, 10**6), st.integers(0, 2**40), st.integers(0, 9))


@settings(max_examples=300, deadline=None)
@given(key=KEYS, low=st.integers(-10**6, 10**6), span=st.integers(1, 2**63))
def test_integers_are_pure_and_in_range(key, low, span):
    first = [SampleDraws(*key).integers(low, low + span) for _ in range(2)]
    assert first[0] == first[1] and low <= first[0] < low + span


@settings(max_examples=200, deadline=None)
@given(key=KEYS, population=st.integers(1, 500), data=st.data())
def test_choice_without_replacement_is_distinct(key, population, data):
    size = data.draw(st.integers(1, population))
    picks = SampleDraws(*key).choice(population, size)
    assert len(picks) == size == len(set(picks)) and all(0 <= p < population for p in picks)
    assert picks == SampleDraws(*key).choice(population, size)


def test_every_part_of_the_key_changes_the_stream():
    base = SampleDraws(1, 2, 3, 4).next64()
    for key in [(0, 2, 3, 4), (1, 0, 3, 4), (1, 2, 0, 4), (1, 2, 3, 0), (2, 1, 3, 4)]:
        assert SampleDraws(*key).next64() != base


@pytest.mark.parametrize("span", [3, 10, 1000])
def test_bounded_integers_are_uniform(span):
    # 60,000 samples from consecutive sample indices: each value within 5 sigma of its share.
    draws = 60_000
    counts = collections.Counter(SampleDraws(7, 0, i, 2).integers(0, span) for i in range(draws))
    expected = draws / span
    sigma = (expected * (1 - 1 / span)) ** 0.5
    assert set(counts) == set(range(span))
    assert max(abs(c - expected) for c in counts.values()) < 5 * sigma


def test_floats_and_replacement_draws():
    stream = SampleDraws(3, 1, 4, 1)
    values = [stream.random() for _ in range(10_000)]
    assert 0 <= min(values) and max(values) < 1 and abs(sum(values) / len(values) - 0.5) < 0.02
    assert len(SampleDraws(3, 1, 4, 1).choice(2, 50, replace=True)) == 50
    with pytest.raises(ValueError):
        SampleDraws(0, 0, 0, 0).choice(3, 4)


def _reference_stream(seed: int, epoch: int, index: int, tag: int, count: int) -> list[int]:
    """The documented formula, written plainly: key = mix chain of the tuple, draw k = mix(key + k*golden)."""
    mask, golden = 2**64 - 1, 0x9E3779B97F4A7C15

    def mix(value: int) -> int:
        value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & mask
        value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & mask
        return value ^ (value >> 31)

    key = 0
    for part in (seed, epoch, index, tag):
        key = mix(((key ^ (part & mask)) + golden) & mask)
    return [mix((key + k * golden) & mask) for k in range(1, count + 1)]


@settings(max_examples=300, deadline=None)
@given(key=KEYS, population=st.integers(1, 10**6))
def test_draws_follow_the_documented_formula(key, population):
    # Speed-ups of the key mixing or of one-draw choices must never change a stream (that would
    # change every sample a checkpoint resumes into).
    stream = SampleDraws(*key)
    assert [stream.next64() for _ in range(3)] == _reference_stream(*key, 3)
    single, floyd = SampleDraws(*key).choice(population, 1), SampleDraws(*key).integers(0, population)
    assert single == [floyd] == SampleDraws(*key).choice(population, 1, replace=True)


def test_numpy_integers_draw_as_the_ints_they_equal_and_floats_are_refused():
    import numpy as np

    first = SampleDraws(np.uint64(7), np.int64(0), 1, 2).integers(0, 10**6)
    assert SampleDraws(7, 0, 1, 2).integers(0, 10**6) == first == SampleDraws(7, 0, 1, 2).integers(0, 10**6)
    with pytest.raises(TypeError):
        SampleDraws(7.0, 0, 1, 2)
