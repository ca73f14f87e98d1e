"""The library's exception tree.

Every error raised on purpose derives from :class:`TimelapsePipesError`::

    TimelapsePipesError
    ├── ConfigError          a bad argument to build_loader / TimelapseDataset / the CLI
    ├── ManifestError        a bad manifest file, row or column (names manifest, row, column)
    ├── ImageReadError       a file that cannot be opened or read (names the file and scene)
    │   └── UnsupportedImageError   readable container, unreadable content (e.g. LIF XZ scans)
    ├── SampleError          a row whose metadata contradicts the manifest (range, channel, scene)
    ├── BatchShapeError      samples of one batch with different shapes (names two rows and the fixes)
    ├── StateError           a checkpoint that is malformed or belongs to another config
    └── SkipBudgetExceeded   on_error="skip" gave up after too many bad samples

Each class also derives from the closest builtin (``ValueError``, ``OSError``) so that code
written against builtins keeps working.
"""

from __future__ import annotations

__all__ = [
    "TimelapsePipesError",
    "ConfigError",
    "ManifestError",
    "ImageReadError",
    "UnsupportedImageError",
    "SampleError",
    "BatchShapeError",
    "StateError",
    "SkipBudgetExceeded",
]


class TimelapsePipesError(Exception):
    """Root of every error that timelapse_pipes raises on purpose."""


class ConfigError(TimelapsePipesError, ValueError):
    """An argument or option is invalid."""


class ManifestError(TimelapsePipesError, ValueError):
    """A manifest file, row or column is invalid."""


class ImageReadError(TimelapsePipesError, OSError):
    """An image file could not be opened or read."""


class UnsupportedImageError(ImageReadError):
    """The file opens but its content cannot be read as a T,C,Z,Y,X timelapse."""


class SampleError(TimelapsePipesError, ValueError):
    """A manifest row does not fit the image it points at (range, channel, scene, level)."""


class BatchShapeError(TimelapsePipesError, ValueError):
    """Samples of one batch have different shapes, so they cannot be stacked."""


class StateError(TimelapsePipesError, ValueError):
    """A state dict is malformed or was taken from another config or manifest."""


class SkipBudgetExceeded(TimelapsePipesError, RuntimeError):
    """on_error="skip" replaced more samples than its budget allows."""
