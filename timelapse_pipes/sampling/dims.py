"""How a file's reported axes map onto the T, C, Z, Y, X a sample is read in.

``time_axis`` lets a row say which reported axis is really time, for files without axis metadata
(a plain TIFF movie whose pages bioio reports as Z): ``time_axis="Z"`` swaps T and Z.
"""

from __future__ import annotations

import functools

from ..records import AXES, ImageMetadata

__all__ = ["read_order", "effective_dims"]


@functools.lru_cache(maxsize=None)
def read_order(time_axis: str, with_samples: bool) -> str:
    """The dimension order to request from bioio so that axis 0 is time and axis 1 channels."""
    order = list(AXES)
    if time_axis != "T":
        swap = order.index(time_axis)
        order[0], order[swap] = order[swap], order[0]
    return "".join(order) + ("S" if with_samples else "")


def effective_dims(metadata: ImageMetadata, time_axis: str) -> dict[str, int]:
    """Sizes of T, C, Z, Y, X after the ``time_axis`` swap (S excluded)."""
    order = read_order(time_axis, False)
    return {axis: metadata.dims[source] for axis, source in zip(AXES, order)}
