"""The value types every layer shares: a manifest row, a file's metadata, a sample's key and plan.

Plain immutable records with no I/O and no imports from the rest of the package, so that the pure
sampling core and the readers can both speak of them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Mapping, NamedTuple, Sequence

__all__ = ["AXES", "FrameTimes", "ImageMetadata", "ImageRef", "ManifestRow", "SampleKey", "SamplePlan"]

AXES = "TCZYX"  # the axis order every sample is read in


class SampleKey(NamedTuple):
    """Identifies one sample of the infinite stream: the epoch and the index within it."""

    epoch: int
    index: int


@dataclass(frozen=True, slots=True)
class ImageRef:
    """One more image of a row (a target, a mask), read at the row's timepoints and crop window."""

    key: str  # its key in each sample
    path: str
    channels: tuple[int, ...] | None = None
    scene: int | str = 0
    resolution: int = 0
    reader: str | None = None
    resize: bool = False  # on another (Z, Y, X) grid: resized to the row's grid, nearest neighbour

    def key_fields(self) -> list[Any]:
        """The fields that decide what this image yields (used in fingerprints)."""
        return [self.key, self.path, self.channels, self.scene, self.resolution, self.reader, self.resize]


@dataclass(frozen=True, slots=True)
class ManifestRow:
    """One validated manifest row. ``stop=None`` means the end of the file."""

    row: int
    source: str
    path: str
    channels: tuple[int, ...] | None = None
    scene: int | str = 0
    resolution: int = 0
    start: int = 0
    stop: int | None = None
    split: str | None = None
    reader: str | None = None
    time_axis: str | None = None
    step: int = 1
    weight: float = 1.0
    extras: tuple[tuple[str, str], ...] = ()
    images: tuple[ImageRef, ...] = ()  # the row's further images, beside the one at ``path``

    @property
    def where(self) -> str:
        """Human pointer used in every error message about this row."""
        return f"{self.source} row {self.row}"

    def describe(self, scene: str | None = None) -> str:
        """The row, its file and (given) its scene, e.g. ``manifest.csv row 3 (a.nd2, scene 'Image:0')``."""
        return f"{self.where} ({self.path})" if scene is None else f"{self.where} ({self.path}, scene {scene!r})"

    def key(self) -> list[Any]:
        """The fields that decide what this row yields (used in fingerprints)."""
        key = [self.path, self.channels, self.scene, self.resolution, self.start, self.stop,
               self.reader, self.time_axis, list(self.extras)]
        # Defaults add nothing, so manifests without these columns keep their older fingerprints.
        optional = {"step": (self.step, 1), "weight": (self.weight, 1.0),
                    "images": ([image.key_fields() for image in self.images], [])}
        return key + [[name, value] for name, (value, default) in optional.items() if value != default]

    def for_image(self, image: ImageRef) -> "ManifestRow":
        """This row as it reads ``image`` instead of its own file (same range, step and time axis)."""
        return replace(self, path=image.path, channels=image.channels, scene=image.scene,
                       resolution=image.resolution, reader=image.reader, images=())


class FrameTimes(NamedTuple):
    """Seconds from the first frame for each T index (or None), and the nominal interval (or None)."""

    times_s: tuple[float, ...] | None
    interval_s: float | None

    def of_frames(self, timepoints: Sequence[int]) -> list[float] | None:
        """The times of these frames, or None when the file has no timing."""
        if self.times_s is None:
            return None
        return [self.times_s[t] for t in timepoints]


@dataclass(frozen=True)
class ImageMetadata:
    """What planning needs to know about one (file, scene, level)."""

    path: str
    reader: str
    scenes: tuple[str, ...]
    scene_index: int
    resolution: int
    resolution_levels: tuple[int, ...]
    dims: dict[str, int]
    dtype: str
    physical_pixel_sizes: tuple[float | None, float | None, float | None]
    channel_names: tuple[str, ...] | None
    frame_times_s: tuple[float, ...] | None = None  # per T index, seconds from the first frame
    time_interval_s: float | None = None  # the file's nominal interval

    @property
    def scene(self) -> str:
        return self.scenes[self.scene_index]

    @property
    def has_samples_axis(self) -> bool:
        """True for RGB(A) images whose samples live on a separate S axis."""
        return self.dims.get("S", 1) > 1

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "ImageMetadata":
        return cls(
            path=data["path"], reader=data["reader"], scenes=tuple(data["scenes"]),
            scene_index=int(data["scene_index"]), resolution=int(data["resolution"]),
            resolution_levels=tuple(data["resolution_levels"]), dims=dict(data["dims"]),
            dtype=str(data["dtype"]), physical_pixel_sizes=tuple(data["physical_pixel_sizes"]),  # type: ignore[arg-type]
            channel_names=None if data["channel_names"] is None else tuple(data["channel_names"]),
            frame_times_s=None if data.get("frame_times_s") is None else tuple(data["frame_times_s"]),
            time_interval_s=data.get("time_interval_s"),
        )

    @property
    def frame_times(self) -> FrameTimes:
        """Per-frame times and the nominal interval (read by :mod:`timelapse_pipes.reading.frame_times`)."""
        return FrameTimes(self.frame_times_s, self.time_interval_s)


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
    images: tuple[ImageMetadata, ...] = ()  # the metadata of each of ``row.images``, in order
