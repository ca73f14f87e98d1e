"""Tests of integrations/: the Lightning datamodule and Hydra configs."""
