"""Manifest rows: one per file (or file + scene + time range), never one per timepoint.

A manifest comes from a CSV (local path or fsspec URL), from per-split CSVs
(``{"train": ..., "val": ...}``) or inline (``{"dict_meta": {column: [values]}}``).
Every row is validated here, at start-up, without opening any image file.

Conventions:

* ``stop`` is **exclusive**; empty or ``-1`` means "to the end". cyto-dl's
  ``MultiDimImageDataset`` treats stop as inclusive: pass ``stop_inclusive=True`` when migrating.
* ``step`` (cyto-dl's ``time_step_column``) keeps every step-th frame of ``start..stop``; default 1.
* ``weight`` makes a row drawn with probability weight / sum of weights (default 1; 0 excludes it).
* ``channel`` is an int or a comma list (``"0,2,4"``); empty means every channel.
* ``scene`` is an index or a scene name; ``resolution`` a level index.
* Relative image paths are resolved against the manifest's own folder or URL.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import math
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

import fsspec

from ..errors import ConfigError, ManifestError
from ..reading.storage import options_for, redact
from ..records import ImageRef, ManifestRow
from ..sampling.rows import RowWeights

__all__ = ["DICT_META_KEY", "ImageColumns", "Manifest", "ManifestColumns", "parse_channels", "read_manifest"]

DICT_META_KEY = "dict_meta"
_INTEGER = re.compile(r"-?[0-9]+")


@dataclass(frozen=True)
class ImageColumns:
    """The columns of one further image of each row: its path, and optionally its channels, scene,
    resolution level and reader (without those columns: every channel, scene 0, level 0, the reader
    the path's extension picks)."""

    key: str
    path: str
    channel: str | None = None
    scene: str | None = None
    resolution: str | None = None
    reader: str | None = None
    resize: bool = False  # "resize": "nearest": an image on another grid is resized to the row's grid

    @classmethod
    def parse(cls, key: str, spec: "str | Mapping[str, Any] | ImageColumns") -> "ImageColumns":
        """``"mask_path"`` or ``{"path": "mask_path", "channel": "mask_channel", ...}``."""
        if isinstance(spec, ImageColumns):
            return spec
        if isinstance(spec, str):
            return cls(key=key, path=spec)
        if isinstance(spec, Mapping) and "path" in spec:
            known = {"path", "channel", "scene", "resolution", "reader", "resize"}
            unknown = sorted(set(spec) - known)
            if unknown:
                raise ConfigError(f"image_columns[{key!r}] has unknown keys {unknown}; use {sorted(known)}.")
            resize = spec.get("resize")
            if resize not in (None, False, "nearest"):
                raise ConfigError(f"image_columns[{key!r}] resize={resize!r}: only 'nearest' is supported "
                                  f"(labels and masks keep their values).")
            columns = {name: None if value is None else str(value) for name, value in spec.items() if name != "resize"}
            return cls(key=key, resize=resize == "nearest", **columns)
        raise ConfigError(f"image_columns[{key!r}]={spec!r} must be a column name or a mapping with 'path' "
                          f"(and optional 'channel', 'scene', 'resolution', 'reader').")

    def names(self) -> list[str]:
        """The columns this image reads."""
        return [name for name in (self.path, self.channel, self.scene, self.resolution, self.reader) if name]


@dataclass(frozen=True)
class ManifestColumns:
    """Which CSV column holds which field (defaults follow cyto-dl); ``images`` names the columns of
    each row's further images (``{"target": "target_path", "mask": {"path": "mask_path"}}``)."""

    path: str = "path"
    channel: str = "channel"
    split: str | None = "split"
    scene: str = "scene"
    resolution: str = "resolution"
    start: str = "start"
    stop: str = "stop"
    reader: str = "reader"
    time_axis: str = "time_axis"
    step: str = "step"
    weight: str = "weight"
    images: tuple[ImageColumns, ...] = ()

    def __post_init__(self) -> None:
        images = self.images
        if isinstance(images, Mapping):
            images = tuple(ImageColumns.parse(str(key), spec) for key, spec in images.items())
        elif images is None:
            images = ()
        object.__setattr__(self, "images", tuple(images))
        keys = [image.key for image in self.images]
        if len(set(keys)) != len(keys):
            raise ConfigError(f"image_columns repeats a key: {keys}.")


@dataclass(frozen=True)
class Manifest:
    """Validated rows of one split, in manifest order."""

    rows: tuple[ManifestRow, ...]
    source: str
    split: str | None = None
    columns: ManifestColumns = field(default_factory=ManifestColumns)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> ManifestRow:
        return self.rows[index]

    @functools.cached_property
    def weights(self) -> RowWeights | None:
        """The rows' draw weights, or None when every row has the default weight 1 (uniform)."""
        values = [row.weight for row in self.rows]
        return None if all(v == 1.0 for v in values) else RowWeights(values)

    def fingerprint(self) -> str:
        """A short hash of every row's content; changes whenever a row would yield differently."""
        digest = hashlib.sha256()
        for row in self.rows:
            digest.update(json.dumps(row.key(), separators=(",", ":")).encode())
        return digest.hexdigest()[:16]


def parse_channels(value: Any, where: str = "channel") -> tuple[int, ...] | None:
    """Parse a channel spec: an int, ``"0,2,4"``, a list of ints, or empty for all channels.

    >>> parse_channels("0,2,4")
    (0, 2, 4)
    >>> parse_channels("") is None
    True
    """
    if value is None:
        return None
    if isinstance(value, bool):
        raise ManifestError(f"{where}: channel {value!r} is not a channel index; use an int or '0,2'.")
    if isinstance(value, int):
        items: list[Any] = [value]
    elif isinstance(value, Sequence) and not isinstance(value, str):
        items = list(value)
    else:
        text = str(value).strip().strip("[]()").strip()
        if text == "":
            return None
        items = [part.strip() for part in text.split(",")]
    channels = [_parse_index(item, where, "channel") for item in items]
    if not channels:
        return None
    if len(set(channels)) != len(channels):
        raise ManifestError(f"{where}: channel spec {value!r} repeats a channel; list each channel once.")
    return tuple(channels)


def _parse_index(item: Any, where: str, column: str) -> int:
    if isinstance(item, bool):
        raise ManifestError(f"{where}: {column} {item!r} is not a non-negative integer.")
    if isinstance(item, int):
        number = item
    elif isinstance(item, float) and item.is_integer():
        number = int(item)
    else:
        text = str(item).strip()
        if not _INTEGER.fullmatch(text):
            raise ManifestError(
                f"{where}: {column} {item!r} is not a non-negative integer "
                f"(write e.g. 0 or '0,2' for several channels)."
            )
        number = int(text)
    if number < 0:
        raise ManifestError(f"{where}: {column} {item!r} is negative; indices start at 0.")
    return number


def _parse_optional_int(value: Any, where: str, column: str, default: int | None) -> int | None:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return default
    if isinstance(value, float) and value != value:  # NaN from pandas-made dicts
        return default
    if isinstance(value, float) and value.is_integer():
        return int(value)
    try:
        return int(str(value).strip())
    except ValueError:
        raise ManifestError(f"{where}: column '{column}' value {value!r} is not an integer.") from None


def _parse_scene(value: Any, where: str) -> int | str:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ManifestError(f"{where}: column 'scene' value {value!r} is negative.")
        return value
    text = str(value).strip()
    if _INTEGER.fullmatch(text):
        number = int(text)
        if number < 0:
            raise ManifestError(f"{where}: column 'scene' value {value!r} is negative.")
        return number
    return text


def _parse_range(start_value: Any, stop_value: Any, where: str, columns: ManifestColumns,
                 stop_inclusive: bool) -> tuple[int, int | None]:
    start = _parse_optional_int(start_value, where, columns.start, 0)
    stop = _parse_optional_int(stop_value, where, columns.stop, None)
    assert start is not None
    if start < 0:
        raise ManifestError(f"{where}: column '{columns.start}' is {start}; start must be >= 0.")
    if stop == -1:
        stop = None
    elif stop is not None:
        if stop < 0:
            raise ManifestError(
                f"{where}: column '{columns.stop}' is {stop}; only -1 (to the end) may be negative."
            )
        if stop_inclusive:
            stop += 1
        if start >= stop:
            raise ManifestError(
                f"{where}: start={start} >= stop={stop} (stop is exclusive"
                f"{', after stop_inclusive' if stop_inclusive else ''}); the range holds no frame."
            )
    return start, stop


def _parse_step(value: Any, where: str, column: str) -> int:
    step = _parse_optional_int(value, where, column, 1)
    assert step is not None
    if step < 1:
        raise ManifestError(
            f"{where}: column '{column}' is {step}; step must be a positive integer "
            f"(1 keeps every frame, 2 every other frame)."
        )
    return step


def _parse_weight(value: Any, where: str, column: str) -> float:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return 1.0
    if isinstance(value, float) and value != value:  # NaN from pandas-made dicts
        return 1.0
    try:
        weight = math.nan if isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        weight = math.nan
    if not math.isfinite(weight) or weight < 0:
        raise ManifestError(
            f"{where}: column '{column}' value {value!r} is not a non-negative number; write e.g. 1, "
            f"0.5, or 0 to leave the row out."
        )
    return weight


def _row_from_mapping(record: Mapping[str, Any], row_number: int, source: str, base: str | None,
                      columns: ManifestColumns, extra_columns: Sequence[str],
                      stop_inclusive: bool) -> ManifestRow:
    where = f"{source} row {row_number}"
    raw_path = record.get(columns.path)
    if raw_path is None or str(raw_path).strip() == "":
        raise ManifestError(f"{where}: column '{columns.path}' is empty; every row needs an image path.")
    start, stop = _parse_range(record.get(columns.start), record.get(columns.stop), where, columns,
                               stop_inclusive)
    resolution = _parse_optional_int(record.get(columns.resolution), where, columns.resolution, 0)
    if resolution is None or resolution < 0:
        raise ManifestError(f"{where}: column '{columns.resolution}' must be a level index >= 0.")
    reader = record.get(columns.reader)
    time_axis = record.get(columns.time_axis)
    time_axis = None if time_axis in (None, "") else str(time_axis).strip().upper()
    if time_axis is not None and time_axis not in ("T", "Z", "C"):
        raise ManifestError(f"{where}: column '{columns.time_axis}' is {time_axis!r}; use T, Z or C.")
    split = record.get(columns.split) if columns.split else None
    return ManifestRow(
        row=row_number,
        source=source,
        path=_resolve_path(str(raw_path).strip(), base),
        channels=parse_channels(record.get(columns.channel), f"{where}: column '{columns.channel}'"),
        scene=_parse_scene(record.get(columns.scene), where),
        resolution=resolution,
        start=start,
        stop=stop,
        split=None if split is None else str(split).strip(),
        reader=None if reader in (None, "") else str(reader).strip(),
        time_axis=time_axis,
        step=_parse_step(record.get(columns.step), where, columns.step),
        weight=_parse_weight(record.get(columns.weight), where, columns.weight),
        extras=tuple((name, str(record[name])) for name in extra_columns),
        images=tuple(_image_ref(record, image, where, base) for image in columns.images),
    )


def _image_ref(record: Mapping[str, Any], image: ImageColumns, where: str, base: str | None) -> ImageRef:
    """One further image of a row, from its columns."""
    raw_path = record.get(image.path)
    if raw_path is None or str(raw_path).strip() == "":
        raise ManifestError(f"{where}: column '{image.path}' ({image.key!r}) is empty; every row needs its "
                            f"{image.key!r} image.")
    resolution = _parse_optional_int(record.get(image.resolution), where, image.resolution, 0) \
        if image.resolution else 0
    if resolution is None or resolution < 0:
        raise ManifestError(f"{where}: column '{image.resolution}' must be a level index >= 0.")
    reader = record.get(image.reader) if image.reader else None
    return ImageRef(
        key=image.key,
        path=_resolve_path(str(raw_path).strip(), base),
        channels=parse_channels(record.get(image.channel), f"{where}: column '{image.channel}'")
        if image.channel else None,
        scene=_parse_scene(record.get(image.scene), where) if image.scene else 0,
        resolution=resolution,
        reader=None if reader in (None, "") else str(reader).strip(),
        resize=image.resize,
    )


def _resolve_path(path: str, base: str | None) -> str:
    if base is None or "://" in path or "::" in path or posixpath.isabs(path):
        return path
    return posixpath.normpath(posixpath.join(base, path)) if "://" not in base else f"{base}/{path}"


def _base_of(url: str) -> str:
    if "://" in url:
        return url.rsplit("/", 1)[0]
    return posixpath.dirname(posixpath.abspath(url))


def _read_csv_records(url: str, storage_options: Mapping[str, Any] | None) -> tuple[list[str], list[dict]]:
    try:
        with fsspec.open(url, mode="rb", **options_for(url, storage_options)) as handle:
            data = handle.read()
    except FileNotFoundError:
        raise ManifestError(f"manifest {url} does not exist; check the path or URL.") from None
    except OSError as exc:
        raise ManifestError(
            f"manifest {url} could not be read: {type(exc).__name__}: {redact(str(exc), storage_options)}"
        ) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ManifestError(
            f"manifest {url} is not UTF-8 (byte {exc.start}); re-save it as UTF-8 CSV."
        ) from None
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or not any(cell.strip() for cell in header):
        raise ManifestError(f"manifest {url} is empty; it needs a header row and at least one row.")
    header = [cell.strip() for cell in header]
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise ManifestError(f"manifest {url} has duplicate columns {duplicates}; rename or drop them.")
    records = []
    for line_number, cells in enumerate(reader, start=2):
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            raise ManifestError(
                f"manifest {url} row {len(records) + 1} (line {line_number}) has {len(cells)} cells but the header has "
                f"{len(header)}; quote values that contain commas, e.g. \"0,2\"."
            )
        records.append(dict(zip(header, cells)))
    return header, records


def _check_columns(source: str, header: Iterable[str], columns: ManifestColumns,
                   extra_columns: Sequence[str], need_split: bool) -> None:
    present = set(header)
    if columns.path not in present:
        raise ManifestError(
            f"manifest {source} has no '{columns.path}' column (columns: {sorted(present)}); "
            f"add it or set img_path_column."
        )
    if need_split and columns.split and columns.split not in present:
        raise ManifestError(
            f"manifest {source} has no '{columns.split}' column; add one, or pass "
            f"split_column=None to use every row for every split."
        )
    missing = [name for name in extra_columns if name not in present]
    if missing:
        raise ManifestError(f"manifest {source} lacks extra_columns {missing}; add them or drop them.")
    for image in columns.images:
        missing = [name for name in image.names() if name not in present]
        if missing:
            raise ManifestError(f"manifest {source} lacks the column(s) {missing} of image {image.key!r} "
                                f"(image_columns); add them or fix image_columns.")


def read_manifest(
    path: str | Mapping[str, Any],
    *,
    split: str | None = "train",
    columns: ManifestColumns | None = None,
    extra_columns: Sequence[str] = (),
    stop_inclusive: bool = False,
    storage_options: Mapping[str, Any] | None = None,
) -> Manifest:
    """Read and validate the rows of one split. Opens no image file.

    ``path`` is a CSV path/URL, a per-split dict of them, or ``{"dict_meta": {...}}``.
    """
    columns = columns or ManifestColumns()
    extra_columns = list(extra_columns or ())
    if isinstance(path, Mapping) and DICT_META_KEY in path:
        source, base = "dict_meta", None
        header, records = _records_from_dict_meta(path[DICT_META_KEY])
        need_split = split is not None
    elif isinstance(path, Mapping):
        if split not in path:
            raise ManifestError(
                f"split {split!r} has no manifest; per-split manifests are given for {sorted(path)}."
            )
        source = str(path[split])
        base = _base_of(source)
        header, records = _read_csv_records(source, storage_options)
        need_split = False
    else:
        source = str(path)
        base = _base_of(source)
        header, records = _read_csv_records(source, storage_options)
        need_split = split is not None
    _check_columns(source, header, columns, extra_columns, need_split)
    if not records:
        raise ManifestError(f"manifest {source} has a header but no rows.")
    rows = [
        _row_from_mapping(record, number, source, base, columns, extra_columns, stop_inclusive)
        for number, record in enumerate(records, start=1)
    ]
    if need_split and columns.split and columns.split in header:
        available = sorted({row.split or "" for row in rows})
        rows = [row for row in rows if row.split == split]
        if not rows:
            raise ManifestError(
                f"manifest {source} has no row with {columns.split}={split!r}; "
                f"splits present: {available}."
            )
    if not any(row.weight > 0 for row in rows):
        raise ManifestError(
            f"manifest {source}: every row{f' of split {split!r}' if need_split else ''} has "
            f"{columns.weight}=0, so there is nothing to draw; give at least one row a positive weight."
        )
    return Manifest(rows=tuple(rows), source=source, split=split, columns=columns)


def _records_from_dict_meta(meta: Any) -> tuple[list[str], list[dict]]:
    if not isinstance(meta, Mapping) or not meta:
        raise ManifestError("dict_meta must be a mapping of column name -> list of values.")
    lengths = {name: len(values) for name, values in meta.items()
               if isinstance(values, Sequence) and not isinstance(values, str)}
    if len(lengths) != len(meta):
        bad = sorted(set(meta) - set(lengths))
        raise ManifestError(f"dict_meta columns {bad} are not lists; give one value per row.")
    if len(set(lengths.values())) > 1:
        raise ManifestError(f"dict_meta columns have different lengths {lengths}; give one value per row.")
    count = next(iter(lengths.values()))
    records = [{name: meta[name][i] for name in meta} for i in range(count)]
    return list(meta), records
