"""State round trips: resuming from a state yields exactly what the uninterrupted run yields.

:func:`run_test_save_load_state` checks one ``BaseNode`` the way torchdata checks its own nodes: a
state taken at the start, at ``midpoint``, and at the end of an epoch, each passed through JSON and
restored with ``reset(state)``, must give the rest of that epoch and then the next epoch exactly.
:func:`run_state_round_trip` does the same for a whole loader (``state_dict`` / ``load_state_dict``)
built fresh by ``make_loader`` for every resume.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torchdata.nodes import BaseNode

__all__ = ["assert_batches_equal", "assert_items_equal", "collect", "run_state_round_trip",
           "run_test_save_load_state"]


def collect(iterable: Iterable[Any], limit: int | None = None) -> list[Any]:
    """The items of ``iterable`` (the first ``limit`` of them, pulling no further item)."""
    if limit is None:
        return list(iterable)
    iterator, out = iter(iterable), []
    for _ in range(limit):
        try:
            out.append(next(iterator))
        except StopIteration:
            break
    return out


def assert_items_equal(left: Any, right: Any, where: str = "item") -> None:
    """Equal structure and bit-identical arrays and tensors (dtype and shape included)."""
    if isinstance(left, torch.Tensor) or isinstance(right, torch.Tensor):
        assert isinstance(left, torch.Tensor) and isinstance(right, torch.Tensor), f"{where}: tensor vs not"
        assert left.dtype == right.dtype and left.shape == right.shape, f"{where}: dtype or shape differs"
        assert torch.equal(left, right), f"{where}: values differ"
    elif isinstance(left, np.ndarray) or isinstance(right, np.ndarray):
        assert isinstance(left, np.ndarray) and isinstance(right, np.ndarray), f"{where}: array vs not"
        assert left.dtype == right.dtype and np.array_equal(left, right), f"{where}: array differs"
    elif isinstance(left, dict):
        assert isinstance(right, dict) and left.keys() == right.keys(), f"{where}: keys differ"
        for key in left:
            assert_items_equal(left[key], right[key], f"{where}[{key!r}]")
    elif isinstance(left, (list, tuple)):
        assert type(left) is type(right) and len(left) == len(right), f"{where}: lengths or types differ"
        for n, (a, b) in enumerate(zip(left, right)):
            assert_items_equal(a, b, f"{where}[{n}]")
    else:
        assert left == right, f"{where}: {left!r} != {right!r}"


def assert_batches_equal(left: list[Any], right: list[Any]) -> None:
    """Bit-identical tensors and identical metadata, batch by batch."""
    assert len(left) == len(right), f"{len(left)} batches vs {len(right)}"
    for n, (a, b) in enumerate(zip(left, right)):
        assert_items_equal(a, b, f"batch {n}")


def _epoch(node: BaseNode, state: dict[str, Any] | None = None) -> list[Any]:
    node.reset(state)
    return collect(node)


def _through_json(state: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(state))


def run_test_save_load_state(node: BaseNode, midpoint: int) -> None:
    """Resume ``node`` from states taken at the start, at ``midpoint`` and at the end of an epoch.

    Each resumed run must yield exactly the rest of that epoch, and a fresh ``reset()`` after it
    exactly the following epoch of an uninterrupted run. States must survive JSON.
    """
    node.reset()
    at_start = _through_json(node.get_state())
    head = collect(node, midpoint)
    at_midpoint = _through_json(node.get_state())
    first = head + collect(node)
    at_end = _through_json(node.get_state())
    second = _epoch(node)
    assert first, "the node yielded nothing: the round trip would prove nothing"
    assert 0 < midpoint < len(first), f"{midpoint=} must lie inside the epoch of {len(first)} items"
    for state, expected in ((at_start, first), (at_midpoint, first[midpoint:]), (at_end, [])):
        assert_batches_equal(_epoch(node, state), expected)
        assert_batches_equal(_epoch(node), second)


def run_state_round_trip(make_loader: Callable[[], Any], midpoints: Iterable[int], epochs: int = 2) -> None:
    """For each midpoint k, the state after k batches resumed in a fresh loader yields exactly what
    the uninterrupted run yields from k on, into the next epoch."""
    reference_loader = make_loader()
    reference = [collect(reference_loader) for _ in range(epochs)]
    flat = [batch for epoch in reference for batch in epoch]
    per_epoch = len(reference[0])
    for k in midpoints:
        loader = make_loader()
        seen = 0
        state = loader.state_dict() if k == 0 else None
        for _ in range(epochs if k else 0):
            for _batch in loader:
                seen += 1
                if seen == k:
                    state = loader.state_dict()
                    break
            if state is not None:
                break
        assert state is not None, f"midpoint {k} is beyond {epochs} epochs"
        resumed = make_loader()
        resumed.load_state_dict(_through_json(state))
        rest = collect(resumed)
        epoch_of_k, offset = divmod(k, per_epoch)
        if k == 0:  # a state taken before the first batch resumes at the first batch
            expected = reference[0]
        elif offset == 0:  # resumed at an epoch boundary: the next iteration is the next epoch
            expected = reference[epoch_of_k] if epoch_of_k < epochs else []
        else:
            expected = flat[k: (epoch_of_k + 1) * per_epoch]
        assert_batches_equal(rest, expected)
        if epoch_of_k + 1 < epochs:
            assert_batches_equal(collect(resumed), reference[epoch_of_k + 1])
