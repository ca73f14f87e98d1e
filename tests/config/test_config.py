"""Every build_loader argument works from a `_target_` YAML through hydra / OmegaConf."""

from __future__ import annotations

import hydra
import pytest
import torch
from omegaconf import OmegaConf

import timelapse_pipes as tp
from timelapse_pipes.testing import assert_batches_equal, collect

YAML = """
_target_: timelapse_pipes.build_loader
path:
  dict_meta:
    path: [{v3}, {v2}]
    channel: ["1", "0"]
    split: [train, train]
    cell: [a, b]
split: train
split_column: split
img_path_column: path
channel_column: channel
time_start_column: start
time_stop_column: stop
extra_columns: [cell]
num_timepoints: 2
timepoint_sampling: uniform
uniform_jitter: true
spatial_dims: 3
seed: 42
dtype: numpy.float16
crop:
  roi_size: [2, 32, 32]
  mode: random
samples_per_epoch:
  train: 6
  val: 2
batch_size: 2
num_workers: 2
timepoint_layout: separate
transforms:
  train:
    _target_: monai.transforms.Compose
    transforms:
      - _target_: timelapse_pipes.BioIOImageLoaderd
        path_key: original_path
        out_key: raw
        dask_load: true
        dtype: numpy.float16
      - _target_: monai.transforms.RandFlipd
        keys: raw
        prob: 0.5
        spatial_axis: [0, 1, 2]
"""


@pytest.mark.filterwarnings("ignore:.*loses precision:UserWarning")
def test_hydra_instantiates_the_loader(synthetic):
    config = OmegaConf.create(YAML.format(v3=synthetic["zarr_v3"], v2=synthetic["zarr_v2"]))
    loader = hydra.utils.instantiate(config)
    assert isinstance(loader, tp.TimelapseLoader)
    batches = collect(loader)
    assert len(batches) == 3
    assert all(b["raw"].dtype == torch.float16 for b in batches)
    assert {c for b in batches for c in b["cell"]} == {"a", "b"}

    from monai.transforms import Compose, RandFlipd

    python = tp.build_loader(
        {"dict_meta": {"path": [str(synthetic["zarr_v3"]), str(synthetic["zarr_v2"])], "channel": ["1", "0"],
                       "split": ["train", "train"], "cell": ["a", "b"]}},
        extra_columns=["cell"], num_timepoints=2, timepoint_sampling="uniform", seed=42, dtype="float16",
        crop={"roi_size": [2, 32, 32]}, samples_per_epoch={"train": 6}, batch_size=2,
        timepoint_layout="separate",
        transforms=Compose([tp.BioIOImageLoaderd(dtype="float16"), RandFlipd(keys="raw", prob=0.5,
                                                                             spatial_axis=[0, 1, 2])]))
    assert_batches_equal(batches, collect(python))


def test_bioio_image_loaderd_reads_a_bare_dict(synthetic):
    from tests.helpers import bioio_reference

    loaded = tp.BioIOImageLoaderd(path_key="original_path", out_key="raw", dtype="float32")(
        {"original_path": str(synthetic["zarr_v2"]), "T": [3], "C": [1]})
    assert loaded["raw"].shape == (1, 3, 64, 64)
    assert (loaded["raw"] == bioio_reference(str(synthetic["zarr_v2"]), [3], [1])[0]).all()
