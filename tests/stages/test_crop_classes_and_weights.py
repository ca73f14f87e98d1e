"""Crops centred on a label class by per-class ratios (MONAI's RandCropByLabelClassesd) and on a weight
map (torchio's WeightedSampler): MONAI's and torchio's rules, the ratios per pass, errors, resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import timelapse_pipes as tp
from timelapse_pipes.sampling.centre_draws import (
    WeightTable,
    centred_window,
    choose_weighted_window,
)
from timelapse_pipes.sampling.class_ratios import class_cycle, class_of
from timelapse_pipes.testing import (
    collect,
    noise_movie,
    run_state_round_trip,
    write_manifest,
    write_ome_zarr,
)

SHAPE = (4, 1, 1, 48, 48)
ROI = [8, 8]


def class_labels() -> np.ndarray:
    """Three classes (0 background, 1 a square, 2 a bar); class 2 is missing from frame 3."""
    labels = np.zeros(SHAPE, "uint16")
    labels[:, 0, 0, 6:14, 30:38] = 1
    labels[:3, 0, 0, 40:44, 4:28] = 2
    labels[:, 0, 0, 0:2, 0:2] = 2  # a corner pixel block: its window is shifted inward
    labels[3, 0, 0, 0:2, 0:2] = 0
    return labels


def weight_map() -> np.ndarray:
    """Weights 1 and 3 at two pixels, and a large weight at the edge, where no window can be centred."""
    weights = np.zeros(SHAPE, "float32")
    weights[:, 0, 0, 20, 20] = 1.0
    weights[:, 0, 0, 30, 12] = 3.0
    weights[:, 0, 0, 47, 47] = 100.0
    return weights


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("classes")
    write_ome_zarr(folder / "raw.ome.zarr", noise_movie(SHAPE, 1), levels=1)
    write_ome_zarr(folder / "labels.ome.zarr", class_labels(), levels=1)
    write_ome_zarr(folder / "weights.ome.zarr", weight_map(), levels=1)
    return write_manifest(folder / "m.csv", [{"path": str(folder / "raw.ome.zarr"),
                                             "labels": str(folder / "labels.ome.zarr"),
                                             "weights": str(folder / "weights.ome.zarr")}])


def centre_classes(frame: np.ndarray, start: list[int], roi: list[int]) -> set[int]:
    """The classes of the pixels whose window (MONAI's rule) starts at ``start``: the centre, or the
    pixels between it and the edge where the window was shifted inward."""
    box = []
    for s, r, n in zip(start, roi, frame.shape):
        low = 0 if s == 0 else s + r // 2
        high = n - 1 if s == n - r else s + r // 2
        box.append(slice(low, high + 1))
    return {int(v) for v in np.unique(frame[tuple(box)])}


def by_class(manifest: Path, ratios, **options):
    defaults = dict(split=None, spatial_dims=2, batch_size=6, samples_per_epoch=36, seed=3,
                    timepoint_sampling="random", image_columns={"labels": "labels"},
                    crop={"roi_size": ROI, "where": "labels", "ratios": ratios})
    return tp.build_loader(str(manifest), **(defaults | options))


def test_the_class_cycle_is_exact_per_cycle_and_within_one_on_every_prefix() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        ratios = tuple(int(v) for v in rng.integers(0, 9, size=int(rng.integers(1, 6))))
        if not sum(ratios):
            continue
        cycle = class_cycle(ratios)
        assert [cycle.count(k) for k in range(len(ratios))] == list(ratios)
        counts = np.zeros(len(ratios))
        for n in range(1, 2 * len(cycle) + 1):
            counts[class_of(n - 1, ratios)] += 1
            assert np.abs(counts - n * np.array(ratios) / sum(ratios)).max() < 1


def test_windows_shift_inward_as_monais_crop_centres_do() -> None:
    from monai.transforms.utils import correct_crop_centers

    rng = np.random.default_rng(1)
    for _ in range(200):
        frame = [int(v) for v in rng.integers(1, 40, size=3)]
        roi = [int(rng.integers(1, n + 1)) for n in frame]
        centre = [int(rng.integers(0, n)) for n in frame]
        monai = [int(c) - r // 2 for c, r in zip(correct_crop_centers(centre, roi, frame), roi)]
        assert list(centred_window(centre, roi, frame)) == monai


def test_each_crop_is_centred_on_its_scheduled_class(manifest) -> None:
    labels = class_labels()
    with pytest.warns(UserWarning, match=r"no pixel of class\(es\) \[2\] at T=3"):
        batches = collect(by_class(manifest, [1, 2, 3]))
    classes = []
    for batch in batches:
        for n in range(len(batch["T"])):
            t = int(batch["T"][n].reshape(-1)[0])
            y, x = batch["crop_start"][n].tolist()
            index = int(batch["sample_index"][n])
            present = (1, 2, 3) if t < 3 else (1, 2, 0)  # class 2 is missing from frame 3: its ratio is 0 there
            k = class_of(index, present)
            window = labels[t, 0, 0, y:y + 8, x:x + 8]
            assert k in centre_classes(labels[t, 0, 0], [y, x], ROI)  # centred on it, or shifted inward from it
            np.testing.assert_array_equal(batch["labels"][n].numpy()[0], window)
            classes.append((t < 3, k))
    full = [k for whole, k in classes if whole]
    assert {0, 1, 2} <= set(full) and len(set(k for _, k in classes)) == 3


def test_the_ratio_of_each_class_holds_per_pass(manifest, tmp_path) -> None:
    frames = np.repeat(class_labels()[:1], 2, axis=0)  # every frame holds every class
    frames[:, 0, 0, 0:2, 0:2] = 0  # and no class but background lies within half a window of an edge
    write_ome_zarr(tmp_path / "labels.ome.zarr", frames, levels=1)
    write_ome_zarr(tmp_path / "raw.ome.zarr", noise_movie(frames.shape, 2), levels=1)
    rows = write_manifest(tmp_path / "m.csv", [{"path": str(tmp_path / "raw.ome.zarr"),
                                               "labels": str(tmp_path / "labels.ome.zarr")}])
    found = []
    for batch in collect(by_class(rows, [1, 2, 3], samples_per_epoch=30)):
        for n in range(len(batch["T"])):
            classes = centre_classes(frames[0, 0, 0], batch["crop_start"][n].tolist(), ROI)
            assert len(classes) == 1
            found.extend(classes)
    assert [found.count(k) for k in range(3)] == [5, 10, 15]
    for n in range(1, len(found) + 1):  # and within one of its share from the start of the pass on
        assert all(abs(found[:n].count(k) - n * share / 6) < 1 for k, share in enumerate((1, 2, 3)))


def test_class_errors_name_the_row_and_file(manifest, tmp_path) -> None:
    with pytest.raises(tp.ConfigError, match=r"ratios has 3 values but num_classes=2"):
        by_class(manifest, [1, 1, 1], crop={"roi_size": ROI, "where": "labels", "ratios": [1, 1, 1], "num_classes": 2})
    with pytest.raises(tp.ConfigError, match=r"give one kind"):
        by_class(manifest, None, crop={"roi_size": ROI, "where": "labels", "ratios": [1, 1], "min_foreground": 0.1})
    with pytest.raises(tp.ConfigError, match=r"'where' and 'weights' both place the crop"):
        by_class(manifest, None, crop={"roi_size": ROI, "where": "labels", "weights": "labels"})
    with pytest.raises(tp.ConfigError, match=r"crop 'weights': 'nope' must name an image of image_columns"):
        by_class(manifest, None, crop={"roi_size": ROI, "weights": "nope"})
    with pytest.raises(tp.SampleError, match=r"m.csv row 1 .*raw.ome.zarr.*frame \[48, 48\] is smaller than crop"):
        collect(by_class(manifest, None, image_columns={"weights": "weights"}, crop={"roi_size": [64, 64], "weights": "weights"}))
    two = np.zeros((2, 2, 1, 16, 16), "uint8")
    write_ome_zarr(tmp_path / "two.ome.zarr", two, levels=1)
    write_ome_zarr(tmp_path / "raw.ome.zarr", noise_movie(two.shape, 1), levels=1)
    rows = write_manifest(tmp_path / "t.csv", [{"path": str(tmp_path / "raw.ome.zarr"), "labels": str(tmp_path / "two.ome.zarr")}])
    with pytest.raises(tp.SampleError, match=r"t.csv row 1 .*two.ome.zarr.*3 classes but the image has 2 channels"):
        collect(by_class(rows, [1, 1, 1]))
    with pytest.raises(tp.SampleError, match=r"t.csv row 1 .*no pixel at T=\d belongs to a class with a nonzero"):
        collect(by_class(rows, [0, 1]))


def test_weighted_centres_follow_the_map_as_torchios_sampler_does() -> None:
    rng = np.random.default_rng(2)
    weights = rng.random((1, 9, 11)) * (rng.random((1, 9, 11)) < 0.5)
    roi = (1, 4, 5)
    table = WeightTable.of(weights, roi)
    expected = weights[:, 2:9 - 1, 2:11 - 2]  # torchio: centres at least roi // 2 from the start, (roi - 1) // 2 from the end
    expected = expected / expected.sum()
    counts = np.zeros(table.starts_shape)
    draws = 20_000
    for i in range(draws):
        counts[choose_weighted_window(0, 0, i, table)] += 1
    assert counts[expected == 0].sum() == 0
    assert np.abs(counts / draws - expected).max() < 0.01


def test_weighted_crops_centre_on_weighted_pixels_and_resume_exactly(manifest) -> None:
    def make(workers: int = 0):
        return tp.build_loader(str(manifest), split=None, spatial_dims=2, batch_size=4, samples_per_epoch=80, seed=5,
                               image_columns={"weights": "weights"}, crop={"roi_size": ROI, "weights": "weights"},
                               num_workers=workers)
    starts = [tuple(s) for batch in collect(make()) for s in batch["crop_start"].tolist()]
    assert set(starts) == {(16, 16), (26, 8)}  # centres (20, 20) and (30, 12); never the edge pixel
    assert 40 <= starts.count((26, 8)) <= 75  # 3 : 1
    run_state_round_trip(lambda: make(2), midpoints=[3, 25])


def test_class_crops_resume_exactly(manifest) -> None:
    run_state_round_trip(lambda: by_class(manifest, [2, 1], samples_per_epoch=12, num_workers=2, batch_size=3),
                         midpoints=[2])


def test_the_new_keys_enter_the_fingerprint_only_when_given() -> None:
    old = tp.SampleOptions(spatial_dims=2, crop={"roi_size": ROI, "where": "labels", "min_foreground": 0.1})
    assert old.crop.fingerprint() == [ROI, "random", "labels", 0.1, None]
    plain = tp.SampleOptions(spatial_dims=2, crop={"roi_size": ROI})
    assert plain.crop.fingerprint() == [ROI, "random"]
    ratios = tp.SampleOptions(spatial_dims=2, crop={"roi_size": ROI, "where": "labels", "ratios": [2, 4]})
    assert ratios.crop.fingerprint()[-1] == {"ratios": [1, 2]}
    weights = tp.SampleOptions(spatial_dims=2, crop={"roi_size": ROI, "weights": "w"})
    assert weights.crop.fingerprint() == [ROI, "random", {"weights": "w"}]
