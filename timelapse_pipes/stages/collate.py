"""Collating samples into batches: arrays and numbers to stacked tensors, the rest to lists."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..errors import BatchShapeError

__all__ = ["collate_samples", "collate_values", "first_difference", "mixed_shapes_message"]


def collate_values(values: list[Any]) -> Any:
    """One field of a batch: arrays and numbers stacked into tensors, (lists of) ints into int64
    tensors, anything else kept as a list."""
    first = values[0]
    if isinstance(first, (torch.Tensor, np.ndarray)):
        shapes = [tuple(v.shape) for v in values]
        other = first_difference(shapes)
        if other is not None:
            raise BatchShapeError(mixed_shapes_message("sample 0", shapes[0], f"sample {other}", shapes[other]))
        if isinstance(first, torch.Tensor):
            return torch.stack(values)
        return torch.from_numpy(np.stack(values))
    if type(first) is int and all(type(v) is int for v in values):
        return _int64(values)
    if isinstance(first, (bool, int, float, np.number)) and not isinstance(first, np.bool_):
        return torch.tensor(values)
    if isinstance(first, list) and first and all(isinstance(v, list) and len(v) == len(first) for v in values) \
            and all(isinstance(x, int) for v in values for x in v):
        return _int64(values)
    return values


def _int64(values: list[Any]) -> torch.Tensor:
    """What ``torch.tensor`` gives for (lists of) Python ints, through numpy in a third of the time."""
    return torch.from_numpy(np.array(values, dtype=np.int64))


def collate_samples(samples: Sequence[Any], describe: Callable[[dict[str, Any]], str] | None = None) -> dict[str, Any]:
    """Collate sample dicts; lists of dicts (the "separate" layout) are flattened first.

    ``raw`` becomes a ``[B, ...]`` tensor, ``T``/``C`` ``[B, n]`` int tensors when lengths agree,
    strings and ``meta`` stay lists. Samples of different shapes raise :class:`BatchShapeError`
    naming two of them: by ``describe(sample)`` when given, else by their ``row`` and ``original_path``.
    """
    flat: list[dict[str, Any]] = []
    for sample in samples:
        flat.extend(sample if isinstance(sample, list) else [sample])
    keys = flat[0].keys()
    batch = {}
    for key in keys:
        values = [s[key] for s in flat]
        try:
            batch[key] = collate_values(values)
        except BatchShapeError:
            raise BatchShapeError(_name_mixed_samples(flat, values, describe)) from None
    return batch


def first_difference(shapes: Sequence[Any]) -> int | None:
    """The index of the first shape that differs from the first one, or None when all agree."""
    return next((n for n, shape in enumerate(shapes) if shape != shapes[0]), None)


def mixed_shapes_message(first: str, first_shape: tuple[int, ...], other: str, other_shape: tuple[int, ...]) -> str:
    """Why two samples cannot share a batch, naming both and the three fixes."""
    return (f"cannot batch samples of different shapes: {first} has shape {list(first_shape)} but {other} has "
            f"{list(other_shape)}; use batch_size=1, a crop (crop={{'roi_size': [...]}}) so every sample has "
            f"one size, or a transform that resizes every sample to one shape.")


def _name_mixed_samples(samples: list[dict[str, Any]], values: list[Any],
                        describe: Callable[[dict[str, Any]], str] | None) -> str:
    """The mixed-shape message naming the two samples by their manifest row and file, where known."""
    shapes = [tuple(getattr(v, "shape", ())) for v in values]
    other = first_difference(shapes)
    assert other is not None, "called on samples of one shape"

    def name(n: int) -> str:
        sample = samples[n]
        if describe is not None:
            return describe(sample)
        if "row" in sample and "original_path" in sample:
            return f"manifest row index {sample['row']} ({sample['original_path']})"
        return f"sample {n} of the batch"

    return mixed_shapes_message(name(0), shapes[0], name(other), shapes[other])
