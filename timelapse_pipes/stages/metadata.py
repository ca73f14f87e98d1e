"""Metadata stage: attach the row's image metadata, read once per (file, scene, level) per process,
and check once per row that the row fits the image (channels, range, Z, dtype)."""

from __future__ import annotations

from ..config.checks import check_image_fits, check_row_fits
from ..config.options import SampleOptions
from ..errors import ImageReadError
from ..reading.cache.metadata_cache import MetadataCache
from ..reading.readers import ReaderCache
from ..records import ImageMetadata, ManifestRow, SamplePlan

__all__ = ["MetadataCacher"]


class MetadataCacher:
    """``SamplePlan -> SamplePlan`` with ``metadata`` filled in."""

    def __init__(self, options: SampleOptions, metadata: MetadataCache | None = None,
                 readers: ReaderCache | None = None) -> None:
        self.options = options
        self.metadata = metadata if metadata is not None else MetadataCache(reader=options.reader)
        self.readers = readers if readers is not None else ReaderCache()
        self._checked: set[int] = set()

    def __getstate__(self) -> dict:
        return {"options": self.options, "metadata": self.metadata, "readers": self.readers}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["options"], state["metadata"], state["readers"])  # type: ignore[misc]

    def __call__(self, plan: SamplePlan) -> SamplePlan:
        row = plan.row
        metadata = self._get(row, row.where)
        images = tuple(self._get(row.for_image(image), f"{row.where} ({image.key!r})") for image in row.images)
        if plan.row_index not in self._checked:
            check_row_fits(row, metadata, self.options)
            for image, image_metadata in zip(row.images, images):
                check_image_fits(row, metadata, image, image_metadata, self.options)
            self._checked.add(plan.row_index)
        return SamplePlan(plan.key, plan.row_index, row, metadata, plan.timepoints, plan.crop_offset, images)

    def _get(self, row: ManifestRow, where: str) -> ImageMetadata:
        """The metadata of ``row``'s file; a read error names the manifest row."""
        try:
            return self.metadata.get(row, self.readers)
        except ImageReadError as error:
            if str(error).startswith(row.where):
                raise
            raise type(error)(f"{where}: {error}") from error


