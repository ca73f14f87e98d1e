"""MONAI dict transforms on paired samples: one random draw per sample for every key (raw bilinear,
labels nearest, so labels stay integer-valued), seeded from (seed, epoch, i), and resumable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import timelapse_pipes as tp
from timelapse_pipes.sampling.draws import transform_seeds
from timelapse_pipes.testing import (
    collect,
    noise_movie,
    run_state_round_trip,
    write_manifest,
    write_ome_zarr,
)

KEYS = ["raw", "labels", "copy"]  # "copy" reads the labels file again: it must move exactly as "labels" does


def augment():
    from monai.transforms import Compose, RandAffined, RandRotate90d

    return Compose([RandRotate90d(keys=KEYS, prob=1.0, max_k=3),
                    RandAffined(keys=KEYS, prob=1.0, rotate_range=0.6, translate_range=4, scale_range=0.1,
                                mode=["bilinear", "nearest", "nearest"], padding_mode="zeros")])


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("paired_transforms")
    labels = np.zeros((4, 1, 1, 32, 32), "uint16")
    labels[:, 0, 0, 4:14, 6:20] = 3
    labels[:, 0, 0, 18:28, 10:16] = 7
    write_ome_zarr(folder / "raw.ome.zarr", noise_movie(labels.shape, 1), levels=1)
    write_ome_zarr(folder / "labels.ome.zarr", labels, levels=1)
    return write_manifest(folder / "m.csv", [{"path": str(folder / "raw.ome.zarr"),
                                             "labels": str(folder / "labels.ome.zarr")}])


def loader(manifest: Path, transforms=None, workers: int = 0):
    return tp.build_loader(str(manifest), split=None, spatial_dims=2, batch_size=3, samples_per_epoch=9, seed=8,
                           crop={"roi_size": [24, 24]}, transforms=transforms, num_workers=workers,
                           image_columns={"labels": "labels", "copy": "labels"})


def test_every_key_gets_the_samples_one_draw_and_labels_stay_integer(manifest) -> None:
    plain = collect(loader(manifest))
    augmented = collect(loader(manifest, augment()))
    moved = 0
    for before, after in zip(plain, augmented):
        np.testing.assert_array_equal(np.asarray(after["labels"]), np.asarray(after["copy"]))
        values = set(np.unique(np.asarray(after["labels"])).tolist())
        assert values <= {0, 3, 7} and {3, 7} & values  # nearest: no value between labels
        for n in range(len(after["sample_index"])):  # the same as MONAI applied by hand with the sample's seed
            by_hand = augment()
            by_hand.set_random_state(seed=transform_seeds(8, 0, int(after["sample_index"][n]), 1)[0])
            one = by_hand({key: torch.as_tensor(before[key][n]).float() if key == "raw" else before[key][n]
                           for key in KEYS})
            np.testing.assert_allclose(np.asarray(after["raw"][n]), np.asarray(one["raw"]), rtol=1e-6, atol=1e-3)
            np.testing.assert_array_equal(np.asarray(after["labels"][n]), np.asarray(one["labels"]))
            moved += not np.array_equal(np.asarray(after["labels"][n]), np.asarray(before["labels"][n]))
    assert moved >= 6


def test_paired_transforms_resume_exactly(manifest) -> None:
    run_state_round_trip(lambda: loader(manifest, augment(), workers=2), midpoints=[2])
