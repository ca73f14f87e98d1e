"""The public names: everything the package promised before its restructure is still importable
from ``timelapse_pipes``, and each subpackage's ``__all__`` names only what it defines or re-exports."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import timelapse_pipes as tp

# Every name importable from the package root before the layered layout, plus the additions since.
PUBLIC = {
    "AdaptivePrefetcher", "BatchAssembler", "BioIOImageLoaderd", "BioIOLoader", "ConfigError", "CropSpec",
    "ImageMetadata", "ImageReadError", "Manifest", "ManifestColumns", "ManifestError", "ManifestRow",
    "ManifestRowPlanner", "MetadataCache", "MetadataCacher", "ReaderCache", "SampleError", "SampleIndexSource",
    "SampleKey", "SamplePipeline", "SeededTransform", "Shard", "SkipBudgetExceeded", "StateError",
    "TimelapseDataset", "TimelapseLoader", "TimelapsePipesError", "TimelapseSampler", "TimepointSampler",
    "UnsupportedImageError", "build_index", "build_loader", "collate_samples", "load_state", "parse_channels",
    "read_manifest", "save_state",
}
ADDED = {"BatchShapeError", "ErrorPolicy", "GridSpec", "GridStitcher", "ReadOptions", "SampleOptions", "SamplePlan"}


def test_the_root_exports_exactly_the_public_names() -> None:
    assert set(tp.__all__) == PUBLIC | ADDED
    for name in tp.__all__:
        assert getattr(tp, name) is not None


def test_every_error_derives_from_the_root_error() -> None:
    errors = [getattr(tp, name) for name in tp.__all__ if name.endswith("Error") or name == "SkipBudgetExceeded"]
    assert errors and all(issubclass(error, tp.TimelapsePipesError) for error in errors)


def test_the_lightning_target_path_of_cyto_dl_configs_still_resolves() -> None:
    pytest.importorskip("lightning")
    hydra_utils = pytest.importorskip("hydra.utils")
    located = hydra_utils.get_class("timelapse_pipes.lightning.RandomTimelapseDatamodule")
    from timelapse_pipes.integrations.lightning import RandomTimelapseDatamodule

    assert located is RandomTimelapseDatamodule
    with pytest.raises(AttributeError):
        tp.no_such_module  # noqa: B018


MODULES = sorted(info.name for info in pkgutil.walk_packages(tp.__path__, "timelapse_pipes.")
                 if not info.name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_every_module_lists_only_names_it_has(name: str) -> None:
    module = importlib.import_module(name)
    missing = [item for item in getattr(module, "__all__", []) if not hasattr(module, item)]
    assert not missing, f"{name}.__all__ names {missing}, which it does not have"
