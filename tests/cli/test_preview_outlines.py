"""``timelapse-pipes preview`` with further images: each image's label outlines over the raw tiles.

The label images are rectangles, so the boundary pixels are known by construction: the rectangle's
own border ring and the 4-neighbours just outside it. Frames are 32 x 32 and tiles 32 pixels, so
the tile scaling is 1:1 and every outline pixel can be checked where it lands.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from timelapse_pipes.testing import noise_movie, write_manifest, write_ome_zarr

SIZE = TILE = 32
LABEL = 14  # the legend line, and each row's label line
# (z, y0, y1, x0, x1, label) per timepoint: Z=2 planes whose outlines the max projection unites
TARGET = {0: [(0, 8, 16, 8, 20, 1), (1, 12, 22, 14, 26, 2)],  # overlapping: not the outline of a max of labels
          1: [(0, 10, 18, 12, 24, 1), (1, 22, 28, 20, 27, 3)]}
MASK = [(0, 2, 6, 24, 30, 1)]  # one frame: the same mask at every timepoint


def ring(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """The boundary of the rectangle [y0:y1, x0:x1] on an empty frame: its border and the pixels
    4-adjacent to it outside (no diagonal corners)."""
    inside = np.zeros((SIZE, SIZE), dtype=bool)
    inside[y0:y1, x0:x1] = True
    inner = inside.copy()
    inner[y0 + 1:y1 - 1, x0 + 1:x1 - 1] = False
    outer = np.zeros_like(inside)
    outer[y0 - 1, x0:x1] = outer[y1, x0:x1] = True
    outer[y0:y1, x0 - 1] = outer[y0:y1, x1] = True
    return inner | outer


def labels(frames: list[list[tuple[int, ...]]], dtype: str) -> np.ndarray:
    data = np.zeros((len(frames), 1, 2, SIZE, SIZE), dtype=dtype)
    for t, rectangles in enumerate(frames):
        for z, y0, y1, x0, x1, value in rectangles:
            data[t, 0, z, y0:y1, x0:x1] = value
    return data


def expected(rectangles: list[tuple[int, ...]]) -> np.ndarray:
    return np.logical_or.reduce([ring(y0, y1, x0, x1) for _, y0, y1, x0, x1, _ in rectangles])


@pytest.fixture(scope="module")
def triple(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("outlines")
    chunk = (1, 1, 2, SIZE, SIZE)
    raw = write_ome_zarr(folder / "raw.ome.zarr", noise_movie((2, 1, 2, SIZE, SIZE), seed=3), levels=1, chunk=chunk)
    target = write_ome_zarr(folder / "target.ome.zarr", labels([TARGET[0], TARGET[1]], "uint16"), levels=1, chunk=chunk)
    mask = write_ome_zarr(folder / "mask.ome.zarr", labels([MASK], "uint8"), levels=1, chunk=chunk)
    return write_manifest(folder / "m.csv", [{"path": str(raw), "target_path": str(target), "mask_path": str(mask)}])


def test_outlines_are_exactly_the_label_boundaries(triple: Path) -> None:
    from PIL import Image

    output = triple.parent / "preview.png"
    env = {**os.environ, "TQDM_DISABLE": "1"}
    done = subprocess.run([sys.executable, "-m", "timelapse_pipes", "preview", str(triple), "-o", str(output),
                           "--split-column", "none", "--num-timepoints", "2", "--tile", str(TILE),
                           "--image", "target=target_path", "--image", 'mask={"path": "mask_path"}'],
                          capture_output=True, text=True, timeout=240, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    from timelapse_pipes.cli.outlines import OUTLINE_COLOURS

    target_colour, mask_colour = OUTLINE_COLOURS[:2]
    image = np.asarray(Image.open(output))
    assert image.shape[0] == LABEL + LABEL + TILE and image.shape[2] == 3
    assert image.shape[1] > 2 * TILE and image[2 * LABEL:, 2 * TILE:].max() == 0  # widened to fit the legend
    legend = image[:LABEL].astype(int)  # antialiased text: "outlines:" grey, "target" red, then "mask" green
    red = np.nonzero((legend[..., 0] - legend[..., 1] > 100).any(axis=0))[0]
    green = np.nonzero((legend[..., 1] - legend[..., 0] > 100).any(axis=0))[0]
    assert len(red) > 10 and len(green) > 10 and red.max() < green.min()
    grey = np.asarray(Image.open(_grey_preview(triple)))  # the same montage without outlines
    assert grey.ndim == 2 and grey.shape == (LABEL + TILE, 2 * TILE)
    for t in range(2):
        tile = image[2 * LABEL:, t * TILE:(t + 1) * TILE]
        np.testing.assert_array_equal((tile == target_colour).all(axis=-1), expected(TARGET[t]))
        np.testing.assert_array_equal((tile == mask_colour).all(axis=-1), expected(MASK))
        coloured = (tile != tile[..., :1]).any(axis=-1)
        np.testing.assert_array_equal(coloured, expected(TARGET[t] + MASK))  # nothing else is coloured
        plain = grey[LABEL:, t * TILE:(t + 1) * TILE]
        np.testing.assert_array_equal(tile[~coloured], np.repeat(plain[~coloured, None], 3, axis=-1))


def _grey_preview(triple: Path) -> Path:
    from timelapse_pipes.cli.preview import render_preview

    output = triple.parent / "grey.png"
    shown = render_preview(str(triple), str(output), split_column=None, num_timepoints=2, tile=TILE,
                           image_columns={"target": "target_path"}, outline=["none"])
    assert shown["outlines"] == {} and shown["failures"] == []
    return output


def test_outline_picks_keys_and_names_unknown_ones(triple: Path) -> None:
    from PIL import Image

    from timelapse_pipes.cli.outlines import OUTLINE_COLOURS
    from timelapse_pipes.cli.preview import render_preview
    from timelapse_pipes.errors import ConfigError

    images = {"target": "target_path", "mask": "mask_path"}
    shown = render_preview(str(triple), str(triple.parent / "mask.png"), split_column=None, num_timepoints=1,
                           tile=TILE, image_columns=images, outline=["mask"])
    assert shown["outlines"] == {"mask": OUTLINE_COLOURS[0]} and shown["failures"] == []
    tile = np.asarray(Image.open(triple.parent / "mask.png"))[2 * LABEL:, :TILE]  # one timepoint: no T axis
    np.testing.assert_array_equal((tile != tile[..., :1]).any(axis=-1), expected(MASK))
    with pytest.raises(ConfigError, match=r"outline \['nope'\] is not an image of image_columns \(\['target', 'mask'\]\)"):
        render_preview(str(triple), str(triple.parent / "x.png"), split_column=None, tile=TILE,
                       image_columns=images, outline=["nope"])
