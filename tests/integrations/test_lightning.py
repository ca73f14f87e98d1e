"""The guide's YAML through hydra into RandomTimelapseDatamodule; Lightning fit and exact mid-epoch resume."""

from __future__ import annotations

import hydra
import lightning.pytorch as pl
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from omegaconf import OmegaConf

from timelapse_pipes.integrations.lightning import RandomTimelapseDatamodule

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow,
              pytest.mark.filterwarnings("ignore::lightning.fabric.utilities.warnings.PossibleUserWarning"),
              pytest.mark.filterwarnings("ignore:.*does not have many workers.*:UserWarning"),
              pytest.mark.filterwarnings("ignore:.*LeafSpec.*"),
              pytest.mark.filterwarnings("ignore:Be aware that when using `ckpt_path`:UserWarning")]

GUIDE_YAML = """
_target_: timelapse_pipes.lightning.RandomTimelapseDatamodule
path: {manifest}
split_column: split
img_path_column: path
channel_column: channel
time_start_column: start
time_stop_column: stop
num_timepoints: 1
timepoint_sampling: random
spatial_dims: 3
seed: 42
num_workers: 2
batch_size: 2
pin_memory: true
persistent_workers: true
samples_per_epoch:
  train: 10
  val: 2
extra_columns: [cell_id]
transforms:
  train:
    _target_: monai.transforms.Compose
    transforms:
      - _target_: timelapse_pipes.BioIOImageLoaderd
        path_key: original_path
        out_key: raw
        dask_load: true
        dtype: numpy.float32
      - _target_: monai.transforms.RandSpatialCropd
        keys: raw
        roi_size: [2, 16, 16]
        random_size: false
      - _target_: monai.transforms.RandFlipd
        keys: raw
        prob: 0.5
        spatial_axis: [0, 1, 2]
      - _target_: monai.transforms.RandRotate90d
        keys: raw
        prob: 0.5
        spatial_axes: [1, 2]
      - _target_: monai.transforms.RandGaussianNoised
        keys: raw
        prob: 1.0
        mean: 0.0
        std: 0.1
      - _target_: monai.transforms.NormalizeIntensityd
        keys: raw
        channel_wise: true
      - _target_: monai.transforms.ToTensord
        keys: raw
  val:
    _target_: monai.transforms.CenterSpatialCropd
    keys: raw
    roi_size: [2, 16, 16]
"""


class Recorder(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv3d(1, 1, 3, padding=1)
        self.seen: list[tuple[int, int, list[int], float]] = []

    def training_step(self, batch, batch_idx):
        raw = torch.as_tensor(batch["raw"]).float()
        self.seen.append((self.current_epoch, batch_idx, batch["sample_index"].tolist(), float(raw.sum())))
        return self.conv(raw).pow(2).mean()

    def validation_step(self, batch, batch_idx):
        return self.conv(torch.as_tensor(batch["raw"]).float()).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _trainer(tmp_path, callbacks=()):
    return pl.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_progress_bar=False,
                      enable_model_summary=False, num_sanity_val_steps=0, callbacks=list(callbacks),
                      enable_checkpointing=bool(callbacks), default_root_dir=str(tmp_path))


@pytest.fixture
def datamodule_config(synthetic, tmp_path):
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "path,channel,split,start,stop,cell_id\n"
        f"{synthetic['zarr_v3']},0,train,0,10,c1\n{synthetic['zarr_v2']},1,train,2,-1,c2\n"
        f"{synthetic['ome_tiff']},0,val,0,6,c3\n")
    return OmegaConf.create(GUIDE_YAML.format(manifest=manifest))


def test_guide_yaml_fits_and_resumes_mid_epoch(datamodule_config, tmp_path):
    datamodule = hydra.utils.instantiate(datamodule_config)
    assert isinstance(datamodule, RandomTimelapseDatamodule)
    checkpoints = ModelCheckpoint(dirpath=tmp_path / "ckpt", every_n_train_steps=3, save_top_k=-1,
                                  filename="{step}")
    model = Recorder()
    _trainer(tmp_path, [checkpoints]).fit(model, datamodule=datamodule)
    assert len(model.seen) == 10 and [e for e, *_ in model.seen] == [0] * 5 + [1] * 5
    epochs = [sorted(i for e, _, ids, _ in model.seen if e == epoch for i in ids) for epoch in (0, 1)]
    assert epochs == [list(range(10))] * 2  # every sample once per epoch, epochs follow the trainer
    assert model.seen[:5] != model.seen[5:]

    for step in (3, 6):
        resumed = Recorder()
        _trainer(tmp_path).fit(resumed, datamodule=hydra.utils.instantiate(datamodule_config),
                               ckpt_path=str(tmp_path / "ckpt" / f"step={step}.ckpt"))
        assert [s[2:] for s in resumed.seen] == [s[2:] for s in model.seen[step:]]


# The seed guide's YAML verbatim, with only the `_target_`s changed (cyto-dl is not installed).
SEED_GUIDE_YAML = """
_target_: timelapse_pipes.lightning.RandomTimelapseDatamodule

path: {manifest}
split_column: split

# Sample 5 random timepoints per file per batch
num_timepoints: 5
timepoint_sampling: random  # Options: random, sequential, uniform

spatial_dims: 3  # 2 for YX, 3 for ZYX
seed: 42

num_workers: 8
batch_size: 4

transforms:
  train:
    _target_: monai.transforms.Compose
    transforms:
      - _target_: timelapse_pipes.BioIOImageLoaderd
        path_key: original_path
        out_key: raw
        dask_load: True
        dtype: numpy.float32
      # ... your other transforms ...
"""


class TinyVolumeModel(pl.LightningModule):
    """A 3-D convolution over every (timepoint, channel) volume of a [B, T, C, Z, Y, X] batch."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv3d(1, 1, 3, padding=1)
        self.shapes: list[tuple[int, ...]] = []

    def training_step(self, batch, batch_idx):
        raw = torch.as_tensor(batch["raw"]).float()
        self.shapes.append(tuple(raw.shape))
        volumes = raw.reshape(-1, 1, *raw.shape[-3:])
        return self.conv(volumes / (volumes.abs().amax() + 1)).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


@pytest.mark.filterwarnings("ignore:You passed in a `val_dataloader` but have no `validation_step`")
@pytest.mark.parametrize("name,expected_zyx", [
    ("ome-tiff/181003_multi_pos_time_course_1_MMStack.ome.tif", (1, 256, 256)),  # real 2-D+t OME-TIFF
    ("nd2/example-timelapse.nd2", (1, 64, 64)),                                   # real 2-D+t ND2
    ("zarr_v3", (3, 64, 64)),                                                      # synthetic 3-D OME-Zarr
])
def test_the_seed_guide_yaml_fits_2d_and_3d_timelapses(name, expected_zyx, shared_data, synthetic, tmp_path):
    path = synthetic[name] if name in synthetic else shared_data / name
    manifest = tmp_path / "metadata.csv"
    manifest.write_text(f"path,split\n{path},train\n")
    datamodule = hydra.utils.instantiate(OmegaConf.create(SEED_GUIDE_YAML.format(manifest=manifest)))
    model = TinyVolumeModel()
    trainer = pl.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_progress_bar=False,
                         enable_model_summary=False, num_sanity_val_steps=0, enable_checkpointing=False,
                         default_root_dir=str(tmp_path))
    trainer.fit(model, datamodule=datamodule)
    channels = 2 if name == "zarr_v3" else 1
    assert model.shapes == [(1, 5, channels, *expected_zyx)] * 2  # one row: one sample an epoch
    assert all(torch.isfinite(p).all() for p in model.parameters())
