"""The plan of one sample, filled in stage by stage: row, then metadata, then timepoints and crop."""

from __future__ import annotations

from typing import NamedTuple

from .manifest import ManifestRow
from .metadata import ImageMetadata
from .planning import SampleKey

__all__ = ["SamplePlan"]


class SamplePlan(NamedTuple):
    """Everything needed to read one sample; later stages fill the optional fields.

    An immutable named tuple: filling a field makes a copy in about a microsecond (a frozen
    dataclass's ``replace`` costs several), which matters at tens of thousands of samples a second.
    """

    key: SampleKey
    row_index: int
    row: ManifestRow
    metadata: ImageMetadata | None = None
    timepoints: tuple[int, ...] | None = None
    crop_offset: tuple[int, ...] | None = None

    def with_(self, **changes: object) -> "SamplePlan":
        """A copy with some fields filled in."""
        return self._replace(**changes)  # type: ignore[arg-type]
