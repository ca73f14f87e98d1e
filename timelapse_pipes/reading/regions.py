"""Reading exactly the requested timepoints, channels and region from an open image."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..errors import ImageReadError, UnsupportedImageError
from ..records import AXES
from .fast.chunked import OutShapeError, check_out
from .readers import OpenImage

__all__ = ["read_region", "crop_slices"]


def crop_slices(frame: Sequence[int], offset: Sequence[int] | None,
                roi_size: Sequence[int] | None) -> tuple[slice, ...]:
    """Spatial slices for a crop at ``offset`` (full axes when not cropping)."""
    if offset is None or roi_size is None:
        return (slice(None),) * len(frame)
    return tuple(slice(o, o + r) for o, r in zip(offset, roi_size))


def read_region(image: OpenImage, order: str, timepoints: Sequence[int],
                channels: Sequence[int] | None, region: tuple[slice, ...], *,
                where: str = "", out: np.ndarray | None = None) -> np.ndarray:
    """Read ``(len(timepoints), C, Z, Y, X)`` pixels; an RGB ``S`` axis is folded into C.

    ``region`` slices the trailing (Z, Y, X) axes. Slicing the cached lazy array first means only
    the chunks or planes that intersect the region are read (crop pushdown). With a samples axis the
    output channels are ``c0s0, c0s1, c0s2, c1s0, ...``.

    ``out`` (that shape, any dtype): the pixels are written into it, cast as ``astype`` casts, and
    it is returned; the native fast paths decode straight into it (one copy). Without ``out`` the
    pixels come back in the file's dtype.
    """
    native = image.native() if order == AXES else None
    samples = order.endswith("S")
    try:
        if native is not None:
            return native.read(timepoints, channels, region, out=out)
        spatial = (slice(None),) * 2 + tuple(region) + ((slice(None),) if samples else ())
        lazy = image.lazy_array(order)[spatial][list(timepoints)]
        if channels is not None:
            lazy = lazy[:, list(channels)]
        data = np.asarray(lazy.compute(scheduler="synchronous"))
    except OutShapeError:
        raise
    except (ValueError, IndexError, NotImplementedError) as exc:
        raise UnsupportedImageError(
            f"{where}: the reader cannot decode these pixels ({type(exc).__name__}: {exc}). The file "
            f"opens, but this scene's layout is not a T,C,Z,Y,X image the reader supports (for "
            f"example a LIF XZ or lambda scan); drop the row or export the scene to OME-TIFF."
        ) from exc
    except Exception as exc:
        raise ImageReadError(f"{where}: reading T={list(timepoints)} failed: {type(exc).__name__}: {exc}") from exc
    if samples:
        n, c = data.shape[:2]
        data = np.moveaxis(data, -1, 2).reshape((n, c * data.shape[-1]) + data.shape[2:5])
    if out is None:
        return data
    check_out(out, data.shape)
    np.copyto(out, data, casting="unsafe")
    return out
