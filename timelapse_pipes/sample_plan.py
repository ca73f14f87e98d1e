"""The plan of one sample, filled in stage by stage: row, then metadata, then timepoints and crop."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .manifest import ManifestRow
from .metadata import ImageMetadata
from .planning import SampleKey

__all__ = ["SamplePlan"]


@dataclass(frozen=True)
class SamplePlan:
    """Everything needed to read one sample; later stages fill the optional fields."""

    key: SampleKey
    row_index: int
    row: ManifestRow
    metadata: ImageMetadata | None = None
    timepoints: tuple[int, ...] | None = None
    crop_offset: tuple[int, ...] | None = None

    def with_(self, **changes: object) -> "SamplePlan":
        """A copy with some fields filled in."""
        return replace(self, **changes)  # type: ignore[arg-type]
