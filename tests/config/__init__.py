"""Tests of config/: manifests, option validation and refused inputs, and the `_target_` YAML config."""
