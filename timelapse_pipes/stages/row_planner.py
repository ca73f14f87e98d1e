"""Manifest-reader stage: ``SampleKey -> SamplePlan`` with the sample's row (pure, no I/O)."""

from __future__ import annotations

from ..config.manifest import Manifest
from ..records import SampleKey, SamplePlan
from ..sampling.rows import row_for_sample, weighted_row_for_sample

__all__ = ["ManifestRowPlanner"]


class ManifestRowPlanner:
    """Attach the manifest row of each sample: a seeded permutation per pass over the rows, or a
    weighted systematic draw per pass when the manifest has a ``weight`` column."""

    def __init__(self, manifest: Manifest, seed: int) -> None:
        self.manifest = manifest
        self.seed = seed

    def __call__(self, key: SampleKey) -> SamplePlan:
        weights = self.manifest.weights
        row_index = row_for_sample(self.seed, key.epoch, key.index, len(self.manifest)) if weights is None \
            else weighted_row_for_sample(self.seed, key.epoch, key.index, weights)
        return SamplePlan(key=key, row_index=row_index, row=self.manifest[row_index])
