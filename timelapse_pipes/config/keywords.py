"""cyto-dl's flat keywords (``num_timepoints=5``, ``img_path_column="file"``) mapped onto the option objects.

``build_loader``, ``TimelapseDataset`` and the Lightning datamodule take the option objects
(``sample=SampleOptions(...)``, ``columns=ManifestColumns(...)``, ``reading=ReadOptions(...)``,
``errors=ErrorPolicy(...)``), each also as a plain mapping (a YAML block), or the same options as flat
keywords. An option given both ways, or a keyword no object knows, is refused by name.
"""

from __future__ import annotations

import dataclasses
import difflib
from typing import Any, Mapping, TypeVar

from ..errors import ConfigError
from .manifest import ManifestColumns
from .options import ErrorPolicy, ReadOptions, SampleOptions

__all__ = ["COLUMN_KEYWORDS", "OptionObjects", "options_from_keywords"]

Options = TypeVar("Options")

# cyto-dl's column keywords and the ManifestColumns field each sets.
COLUMN_KEYWORDS = {
    "img_path_column": "path", "channel_column": "channel", "split_column": "split", "scene_column": "scene",
    "resolution_column": "resolution", "time_start_column": "start", "time_stop_column": "stop",
    "reader_column": "reader", "time_axis_column": "time_axis", "time_step_column": "step",
    "weight_column": "weight", "image_columns": "images",
}


def _same_names(cls: type) -> dict[str, str]:
    return {field.name: field.name for field in dataclasses.fields(cls)}


# (argument name, option class, flat keyword -> field)
_OBJECTS: tuple[tuple[str, type, dict[str, str]], ...] = (
    ("sample", SampleOptions, _same_names(SampleOptions)),
    ("columns", ManifestColumns, COLUMN_KEYWORDS),
    ("reading", ReadOptions, _same_names(ReadOptions)),
    ("errors", ErrorPolicy, _same_names(ErrorPolicy)),
)


@dataclasses.dataclass(frozen=True)
class OptionObjects:
    """Every per-sample, manifest-column, reading and error option, as objects."""

    sample: SampleOptions
    columns: ManifestColumns
    reading: ReadOptions
    errors: ErrorPolicy


def options_from_keywords(keywords: Mapping[str, Any], **given: Any) -> OptionObjects:
    """The option objects from ``given`` objects (or mappings) and flat ``keywords``.

    >>> options_from_keywords({"num_timepoints": 3, "img_path_column": "file"}).sample.num_timepoints
    3
    """
    remaining = dict(keywords)
    unknown_objects = set(given) - {name for name, _, _ in _OBJECTS}
    if unknown_objects:
        raise ConfigError(f"unknown option group(s) {sorted(unknown_objects)}; use sample, columns, reading, errors.")
    built = {name: _build(name, cls, mapping, given.get(name), remaining) for name, cls, mapping in _OBJECTS}
    if remaining:
        raise ConfigError(_unknown_message(sorted(remaining)))
    return OptionObjects(**built)


def _build(name: str, cls: type[Options], mapping: dict[str, str], value: Any, remaining: dict[str, Any]) -> Options:
    flat = {field: remaining.pop(keyword) for keyword, field in mapping.items() if keyword in remaining}
    if value is None:
        return cls(**flat)
    if flat:
        keywords = sorted(k for k, f in mapping.items() if f in flat)
        raise ConfigError(f"{keywords} given both as keywords and in {name}=...; give each option once.")
    if isinstance(value, cls):
        return value
    if isinstance(value, Mapping):
        fields = {field.name for field in dataclasses.fields(cls)}  # type: ignore[arg-type]
        wrong = sorted(set(value) - fields)
        if wrong:
            raise ConfigError(f"{name}= has unknown key(s) {wrong}; {cls.__name__} takes {sorted(fields)}.")
        return cls(**value)
    raise ConfigError(f"{name}={value!r} must be a {cls.__name__} or a mapping of its fields.")


def _unknown_message(names: list[str]) -> str:
    known = [keyword for _, _, mapping in _OBJECTS for keyword in mapping]
    hints = [f"{name!r} (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(name, known, 1)) else repr(name)
             for name in names]
    return f"unknown option(s) {', '.join(hints)}; see build_loader's documentation for the options."
