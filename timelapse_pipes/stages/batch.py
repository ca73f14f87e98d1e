"""Batch stage: ``list[SampleKey] -> batch``, planning every sample and reading its pixels straight
into one preallocated batch buffer in the final dtype.

It yields exactly what ``collate_samples([pipeline(key) for key in keys])`` yields, with one copy
of the pixels instead of three (read, ``astype``, ``np.stack``) and one graph step per batch
instead of one per sample. Samples with a transform (which may change shapes and types) or with
``on_error`` other than ``"raise"`` (whose retries and substitutes are per sample) take exactly
that per-sample path.

``allocate`` makes the batch's pixel tensors: over buffers reused once the caller has dropped the
batches made from them (:class:`.buffers.RecycledBuffers`: no page faults on every batch); a process
worker's batches are allocated in its shared-memory ring instead
(:class:`.shared_buffers.SharedBufferRing`, set by ``graph.loader``), so the trip back to the
loader's process copies nothing, and its buffers too are reused once the loader lets go.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..errors import BatchShapeError
from ..records import SampleKey, SamplePlan
from .buffers import RecycledBuffers
from .collate import collate_samples, first_difference, mixed_shapes_message
from .loading import BioIOLoader
from .pipeline import SamplePipeline, apply_stages

__all__ = ["Allocate", "BatchAssembler", "plain_tensor"]

Allocate = Callable[[tuple[int, ...], torch.dtype], torch.Tensor]


def plain_tensor(shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """An uninitialised tensor in this process's own memory."""
    return torch.empty(shape, dtype=dtype)


class BatchAssembler:
    """``keys -> collated batch``; ``plan_stages`` turn a key into a complete plan for ``loader``."""

    def __init__(self, pipeline: SamplePipeline, plan_stages: Sequence[Callable[[Any], Any]],
                 loader: BioIOLoader, *, per_sample: bool) -> None:
        self.pipeline = pipeline
        self.plan_stages = list(plan_stages)
        self.loader = loader
        self.per_sample = per_sample
        self.allocate: Allocate = RecycledBuffers()

    def _describe(self, sample: dict[str, Any]) -> str:
        """A sample's manifest row and file, for errors (its ``row`` field indexes the manifest)."""
        manifest = getattr(self.plan_stages[0], "manifest", None) if self.plan_stages else None
        row = sample.get("row")
        if manifest is not None and isinstance(row, int) and 0 <= row < len(manifest):
            return manifest[row].describe()
        return f"row index {row} ({sample.get('original_path')})"

    def __call__(self, keys: Sequence[SampleKey]) -> dict[str, Any]:
        if self.per_sample:
            return collate_samples([self.pipeline(key) for key in keys], self._describe)
        plans = [apply_stages(key, self.plan_stages) for key in keys]
        shapes = [self.loader.read_shape(plan) for plan in plans]
        other = first_difference(shapes)
        if other is not None:
            raise BatchShapeError(mixed_shapes_message(
                _where(plans[0]), self.loader.sample_shape(shapes[0]),
                _where(plans[other]), self.loader.sample_shape(shapes[other])))
        frames = shapes[0][0] if self.loader.options.timepoint_layout == "separate" else 1
        sample_shape = self.loader.sample_shape(shapes[0])
        tensor = self.allocate((len(plans) * frames,) + sample_shape, _torch_dtype(self.loader.options.dtype))
        pixels = tensor.numpy()
        slots = []
        for n in range(len(plans)):
            slot = pixels[n * frames:(n + 1) * frames].view()
            slot.shape = shapes[0]  # a view of the buffer (raises rather than copy)
            slots.append(slot)
        self.loader.read_into(plans, slots)
        batch = self.loader.batch_fields(plans)
        batch[self.loader.options.out_key] = tensor
        for n, image in enumerate(plans[0].row.images):  # every row has the same further images
            batch[image.key] = self._stack_image(plans, n)
        return batch

    def _stack_image(self, plans: list[SamplePlan], n: int) -> torch.Tensor:
        """The plans' ``n``-th further image, one entry per sample (per frame when separate), stacked."""
        entries = [(plan, entry) for plan in plans
                   for entry in self.loader.entry_arrays(self.loader.read_image(plan, n))]
        shapes = [entry.shape for _, entry in entries]
        other = first_difference(shapes)
        if other is not None:
            raise BatchShapeError(mixed_shapes_message(_where(entries[0][0]), shapes[0],
                                                       _where(entries[other][0]), shapes[other]))
        if len({entry.dtype for _, entry in entries}) > 1:
            raise BatchShapeError(f"image {plans[0].row.images[n].key!r}: rows of one batch store it in "
                                  f"different dtypes ({sorted({str(e.dtype) for _, e in entries})}); "
                                  f"write them in one dtype, or use batch_size=1.")
        stacked = self.allocate((len(entries),) + tuple(shapes[0]), _torch_dtype(entries[0][1].dtype))
        np.stack([entry for _, entry in entries], out=stacked.numpy())
        return stacked


def _torch_dtype(dtype: Any) -> torch.dtype:
    """The torch dtype of a numpy dtype (``torch.from_numpy``'s own mapping)."""
    return torch.from_numpy(np.empty(0, dtype=dtype)).dtype


def _where(plan: SamplePlan) -> str:
    return plan.row.describe()
