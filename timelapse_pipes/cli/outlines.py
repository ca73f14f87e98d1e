"""Outlines of a sample's further images (targets, masks) for ``timelapse-pipes preview``.

A label image's outline is its boundary: the pixels whose label differs from a 4-neighbour (both
sides of an edge; the image border is no edge). Like the raw tile, it is max-projected over Z, and
over the image's channels: a pixel is outlined where any plane of the frame has a boundary there.
Each image key gets its own colour, drawn over the grey tile.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError

__all__ = ["OUTLINE_COLOURS", "Outline", "key_colours", "label_boundaries", "outline_keys", "sample_outlines", "tint"]

# Distinct from grey (never r == g == b) and from each other; a seventh key takes the first again.
OUTLINE_COLOURS: tuple[tuple[int, int, int], ...] = (
    (255, 48, 48), (48, 255, 48), (64, 160, 255), (255, 220, 0), (255, 0, 255), (0, 255, 255))
NO_OUTLINES = "none"

Outline = tuple[np.ndarray, tuple[int, int, int]]  # a (Y, X) boolean mask and its colour


def outline_keys(chosen: Sequence[str] | None, images: Sequence[str]) -> list[str]:
    """The image keys to outline: ``chosen`` (default every further image; ``["none"]``: none),
    each checked against the manifest's ``images``."""
    if chosen is None:
        return list(images)
    if list(chosen) == [NO_OUTLINES]:
        return []
    unknown = [key for key in chosen if key not in images]
    if unknown:
        raise ConfigError(f"outline {unknown} is not an image of image_columns ({list(images)}); "
                          f"name one of those (with --image KEY=COLUMN), or 'none'.")
    return list(dict.fromkeys(chosen))


def key_colours(keys: Sequence[str]) -> dict[str, tuple[int, int, int]]:
    """One colour per key, in order."""
    return {key: OUTLINE_COLOURS[n % len(OUTLINE_COLOURS)] for n, key in enumerate(keys)}


def label_boundaries(labels: np.ndarray) -> np.ndarray:
    """``(..., Y, X)`` labels -> the ``(Y, X)`` pixels whose label differs from a 4-neighbour in any
    of the leading planes (channels, Z)."""
    edges = np.zeros(labels.shape, dtype=bool)
    down = labels[..., 1:, :] != labels[..., :-1, :]
    edges[..., 1:, :] |= down
    edges[..., :-1, :] |= down
    right = labels[..., :, 1:] != labels[..., :, :-1]
    edges[..., :, 1:] |= right
    edges[..., :, :-1] |= right
    return edges.reshape(-1, *labels.shape[-2:]).any(axis=0)


def sample_outlines(sample: Mapping[str, Any], keys: Sequence[str], single_frame: bool) -> list[list[Outline]]:
    """Per timepoint, the outline of each key of a 3-D sample (``(T, C, Z, Y, X)`` arrays, without T
    when ``single_frame``)."""
    colours = key_colours(keys)
    frames: list[list[Outline]] = []
    for key in keys:
        data = np.asarray(sample[key])
        if single_frame:
            data = data[None]
        for t in range(data.shape[0]):
            if t == len(frames):
                frames.append([])
            frames[t].append((label_boundaries(data[t]), colours[key]))
    return frames


def tint(grey: np.ndarray, outlines: Sequence[Outline]) -> np.ndarray:
    """The ``(Y, X)`` uint8 tile as ``(Y, X, 3)`` RGB with each outline painted in its colour (a later
    outline over an earlier one)."""
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    for mask, colour in outlines:
        rgb[mask] = colour
    return rgb
