"""Exact resume and determinism: workers, processes, ranks, StatefulDataLoader (issue: resume)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from monai.transforms import Compose, RandFlipd, RandGaussianNoised, RandSpatialCropd
from torchdata.stateful_dataloader import StatefulDataLoader

import timelapse_pipes as tp
from timelapse_pipes.testing import assert_batches_equal, collect, run_state_round_trip

pytestmark = pytest.mark.timeout(600)


def augment() -> Compose:
    return Compose([
        RandSpatialCropd(keys="raw", roi_size=(2, 24, 24), random_size=False),
        RandFlipd(keys="raw", prob=0.5, spatial_axis=[0, 1, 2]),
        RandGaussianNoised(keys="raw", prob=1.0, std=5.0),
    ])


@pytest.fixture(scope="module")
def manifest(synthetic, tmp_path_factory):
    path = tmp_path_factory.mktemp("resume") / "m.csv"
    path.write_text(
        "path,channel,split,start,stop\n"
        f"{synthetic['zarr_v3']},0,train,0,10\n"
        f"{synthetic['zarr_v2']},1,train,2,-1\n"
        f"{synthetic['ome_tiff']},0,train,0,6\n"
    )
    return str(path)


def options(mode: str = "random") -> dict:
    return dict(num_timepoints=3, timepoint_sampling=mode, samples_per_epoch=10, seed=7,
                timepoint_layout="separate",
                transforms=augment())


def loader_batches(manifest, workers, method, mode, epochs=2):
    loader = tp.build_loader(manifest, batch_size=2, num_workers=workers, worker_method=method,
                             **options(mode))
    return [b for _ in range(epochs) for b in collect(loader)]


def dataset_batches(manifest, workers, method, mode, epochs=2):
    dataset = tp.TimelapseDataset(manifest, **options(mode))
    sampler = dataset.sampler()
    kwargs = {"multiprocessing_context": "forkserver"} if workers else {}
    loader = StatefulDataLoader(dataset, batch_size=2, sampler=sampler, num_workers=workers,
                                collate_fn=tp.collate_samples, **kwargs)
    return [b for _ in range(epochs) for b in collect(loader)]


@pytest.fixture(scope="module")
def references(manifest):
    return {mode: loader_batches(manifest, 0, "thread", mode) for mode in ("random", "sequential", "uniform")}


@pytest.mark.parametrize("mode", ["random", "sequential", "uniform"])
@pytest.mark.parametrize("workers,method", [(1, "thread"), (2, "thread"), (4, "thread"),
                                            (1, "process"), (2, "process"), (4, "process")])
def test_loader_stream_independent_of_workers(manifest, references, mode, workers, method):
    assert_batches_equal(loader_batches(manifest, workers, method, mode), references[mode])


@pytest.mark.parametrize("mode", ["random", "sequential", "uniform"])
@pytest.mark.parametrize("workers", [0, 1, 2, 4])
def test_stateful_dataloader_stream_equals_loader(manifest, references, mode, workers):
    assert_batches_equal(dataset_batches(manifest, workers, "process", mode), references[mode])


@pytest.mark.parametrize("workers,method", [(0, "thread"), (2, "thread"), (2, "process")])
def test_loader_resume_round_trip(manifest, workers, method):
    """k at the start, mid-epoch, the last batch of the epoch, and past the epoch boundary."""
    run_state_round_trip(
        lambda: tp.build_loader(manifest, batch_size=2, num_workers=workers, worker_method=method,
                                **options()),
        midpoints=[0, 1, 3, 5, 6], epochs=2)


@pytest.mark.parametrize("workers", [0, 2])
def test_stateful_dataloader_resume(manifest, workers):
    def make():
        dataset = tp.TimelapseDataset(manifest, **options())
        kwargs = {"multiprocessing_context": "forkserver"} if workers else {}
        return StatefulDataLoader(dataset, batch_size=2, sampler=dataset.sampler(), num_workers=workers,
                                  collate_fn=tp.collate_samples, **kwargs)

    reference = make()
    first = collect(reference)
    for k in (1, 3):
        loader = make()
        it = iter(loader)
        for _ in range(k):
            next(it)
        state = loader.state_dict()
        resumed = make()
        resumed.load_state_dict(state)
        assert_batches_equal(collect(resumed), first[k:])


def test_elastic_workers_four_to_one(manifest):
    loader = tp.build_loader(manifest, batch_size=2, num_workers=4, **options())
    it = iter(loader)
    taken = [next(it) for _ in range(2)]
    state = json.loads(json.dumps(loader.state_dict()))
    resumed = tp.build_loader(manifest, batch_size=2, num_workers=1, **options())
    resumed.load_state_dict(state)
    reference = loader_batches(manifest, 0, "thread", "random", epochs=1)
    assert_batches_equal(taken + collect(resumed), reference)


def test_elastic_sampler_state_after_into_other_worker_count(manifest):
    """The library's own state from a StatefulDataLoader run resumes with another worker count."""
    dataset = tp.TimelapseDataset(manifest, **options())
    sampler = dataset.sampler()
    loader = StatefulDataLoader(dataset, batch_size=2, sampler=sampler, num_workers=2,
                                collate_fn=tp.collate_samples, multiprocessing_context="forkserver")
    it = iter(loader)
    taken = [next(it) for _ in range(2)]
    state = sampler.state_after(samples=4)
    resumed = tp.build_loader(manifest, batch_size=2, num_workers=0, **options())
    resumed.load_state_dict(state)
    reference = loader_batches(manifest, 0, "thread", "random", epochs=1)
    assert_batches_equal(taken + collect(resumed), reference)


@pytest.mark.parametrize("new_world", [1, 4])
def test_elastic_world_size(manifest, new_world):
    """Two lockstep ranks consume 2 batches each; resuming at another world size loses and repeats nothing."""
    common = dict(batch_size=2, shard_drop_last=True, **options())
    common["samples_per_epoch"] = 16
    ranks = [tp.build_loader(manifest, rank=r, world_size=2, **common) for r in range(2)]
    consumed = []
    for loader in ranks:
        it = iter(loader)
        for _ in range(2):
            consumed += list(dict.fromkeys(next(it)["sample_index"].tolist()))
    state = json.loads(json.dumps(ranks[0].state_dict()))
    assert state == json.loads(json.dumps(ranks[1].state_dict()))
    rest = []
    for r in range(new_world):
        loader = tp.build_loader(manifest, rank=r, world_size=new_world, **common)
        loader.load_state_dict(state)
        rest += [i for b in collect(loader) for i in dict.fromkeys(b["sample_index"].tolist())]
    assert sorted(consumed) == list(range(8))
    assert sorted(rest) == list(range(8, 16))


def test_other_config_refused_and_force(manifest):
    loader = tp.build_loader(manifest, batch_size=2, **options())
    it = iter(loader)
    next(it)
    state = loader.state_dict()
    other = tp.build_loader(manifest, batch_size=2, **{**options(), "seed": 8})
    with pytest.raises(tp.StateError, match=r"`seed`: checkpoint has 7, this loader has 8"):
        other.load_state_dict(state)
    other.load_state_dict(state, force=True)
    batch = next(iter(other))
    assert list(dict.fromkeys(batch["sample_index"].tolist())) == [2, 3]


@pytest.mark.parametrize("mutate,match", [
    (lambda s: s.update(version=99), "version 99"),
    (lambda s: s.pop("position"), "lacks"),
    (lambda s: s.update(epoch="x"), "wrong type"),
    (lambda s: s.update(yielded=-1), "negative"),
])
def test_bad_states_refused(manifest, mutate, match):
    loader = tp.build_loader(manifest, **options())
    state = loader.state_dict()
    mutate(state)
    with pytest.raises(tp.StateError, match=match):
        tp.build_loader(manifest, **options()).load_state_dict(state)


def test_save_and_load_state_atomic(tmp_path, manifest):
    loader = tp.build_loader(manifest, **options())
    next(iter(loader))
    target = tmp_path / "ckpt" / "state.json"
    tp.save_state(loader.state_dict(), target)
    assert [p.name for p in target.parent.iterdir()] == ["state.json"]
    assert tp.load_state(target) == loader.state_dict()
    target.write_text(target.read_text()[:20])
    with pytest.raises(tp.StateError, match="truncated"):
        tp.load_state(target)


@pytest.mark.slow
def test_fork_after_dask_compute_does_not_hang(manifest):
    """A parent that ran a threaded dask compute, then forks process workers, must not deadlock."""
    script = textwrap.dedent(f"""
        import dask.array as da, timelapse_pipes as tp
        da.ones((256, 256), chunks=64).sum().compute()
        for context in ("fork", "forkserver"):
            loader = tp.build_loader({manifest!r}, num_workers=2, worker_method="process",
                                     multiprocessing_context=context, samples_per_epoch=6)
            print(context, sum(b["raw"].shape[0] for b in loader))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["fork", "6", "forkserver", "6"]


@pytest.mark.parametrize("workers", [0, 2])
def test_iter_twice_loses_no_sample(manifest, workers):
    """tqdm.auto and some trainers call iter() twice; the stale prefetch must not eat indices."""
    opts = {**options(), "timepoint_layout": "stack", "num_timepoints": 1, "transforms": None,
            "crop": {"roi_size": [2, 24, 24]}}
    loader = tp.build_loader(manifest, batch_size=2, num_workers=workers, **opts)
    iter(loader)
    stream = iter(loader)
    indices = [i for batch in stream for i in batch["sample_index"].tolist()]
    assert indices == list(range(10)) and loader.epoch == 0
    assert [i for b in loader for i in b["sample_index"].tolist()] == list(range(10))
    assert loader.epoch == 1
