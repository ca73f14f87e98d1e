"""A batch's trip back from a process worker: the same tensors, small ones pickled inline."""

from __future__ import annotations

import io
import pickle
from multiprocessing.reduction import ForkingPickler
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing  # noqa: F401  (registers torch's tensor reductions with ForkingPickler)

from timelapse_pipes.graph import transport


def _cross(batch: dict) -> dict:
    """What a process worker's batch becomes on the loader's side (torch's own pickler)."""
    buffer = io.BytesIO()
    ForkingPickler(buffer, pickle.HIGHEST_PROTOCOL).dump(transport.pack(batch))
    return transport.unpack(pickle.loads(buffer.getvalue()))


def test_small_tensors_cross_inline_and_come_back_equal():
    batch = {
        "raw": torch.arange(4 * 64 * 64, dtype=torch.float32).reshape(4, 1, 64, 64),
        "T": torch.tensor([[1, 2], [3, 4]]),
        "C": torch.tensor([[0], [0]]),
        "flags": torch.tensor([True, False]),
        "u16": torch.from_numpy(np.arange(6, dtype=np.uint16).reshape(2, 3)),
        "half": torch.ones(3, dtype=torch.float16),
        "strided": torch.arange(12).reshape(3, 4)[:, ::2],
        "names": ["a", "b"],
        "meta": [{"dtype": "uint16"}],
    }
    packed = transport.pack(batch)
    assert all(isinstance(packed[key], transport.Inline) for key in ("raw", "T", "C", "flags", "u16", "half", "strided"))
    back = _cross(batch)
    assert list(back) == list(batch)
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            assert type(back[key]) is torch.Tensor and back[key].dtype == value.dtype
            assert back[key].shape == value.shape and torch.equal(back[key], value), key
        else:
            assert back[key] == value


def test_large_tensors_subclasses_and_other_dtypes_keep_torchs_path():
    from monai.data import MetaTensor

    large = torch.zeros(transport.SHARED_MIN_BYTES // 4, dtype=torch.float32)
    batch = {"raw": large, "meta_tensor": MetaTensor(torch.ones(2)), "bf16": torch.ones(2, dtype=torch.bfloat16),
             "array": np.arange(3)}
    packed = transport.pack(batch)
    assert packed["raw"] is large and packed["bf16"] is batch["bf16"] and packed["array"] is batch["array"]
    assert packed["meta_tensor"] is batch["meta_tensor"]
    back = _cross(batch)
    assert isinstance(back["meta_tensor"], MetaTensor) and isinstance(back["array"], np.ndarray)
    assert torch.equal(back["raw"], large) and back["bf16"].dtype == torch.bfloat16
    assert transport.pack([1, 2]) == [1, 2] and transport.unpack("x") == "x"


@pytest.mark.timeout(300)
def test_process_workers_stream_equals_the_main_thread(shared_data):
    import timelapse_pipes as tp
    from timelapse_pipes.testing import assert_batches_equal, collect

    rows = {"dict_meta": {"path": [str(shared_data / "nd2" / "example-timelapse.nd2")] * 2, "start": [0, 9]}}
    common = dict(split=None, samples_per_epoch=24, batch_size=4, seed=6, spatial_dims=2, num_timepoints=2)
    reference = collect(tp.build_loader(rows, **common))
    with tp.build_loader(rows, num_workers=2, worker_method="process", **common) as loader:
        batches = collect(loader)
    assert_batches_equal(batches, reference)
    assert all(type(batch[key]) is torch.Tensor for batch in batches for key in ("raw", "T", "C", "sample_index"))


def test_a_batch_assembled_in_shared_memory_crosses_without_moving_and_equals_the_plain_one(shared_data, monkeypatch):
    from timelapse_pipes._compat import shared_tensor
    from timelapse_pipes.graph.assembly import prepare
    from timelapse_pipes.records import SampleKey

    rows = {"dict_meta": {"path": [str(shared_data / "nd2" / "example-timelapse.nd2")], "start": [0]}}
    assemble = prepare(rows, split=None, seed=3, spatial_dims=2, num_timepoints=2,
                       samples_per_epoch=8).assemble_batch
    keys = [SampleKey(0, i) for i in range(3)]
    plain = assemble(keys)
    assemble.allocate = shared_tensor  # what a process worker sets (graph.loader.ProcessWorkerBatches)
    shared = assemble(keys)
    assert shared["raw"].is_shared() and not plain["raw"].is_shared()
    assert set(shared) == set(plain)
    for key, value in plain.items():
        assert torch.equal(shared[key], value) if isinstance(value, torch.Tensor) else shared[key] == value
    monkeypatch.setattr(transport, "SHARED_MIN_BYTES", 0)  # these small pixels take the large tensors' path
    where = shared["raw"].data_ptr()
    back = _cross(shared)
    assert shared["raw"].data_ptr() == where  # already shared: torch sent its descriptor, copied nothing
    assert torch.equal(back["raw"], plain["raw"])
    moved = plain["raw"].data_ptr()
    _cross(plain)
    assert plain["raw"].data_ptr() != moved  # a plain tensor is first copied into shared memory


def test_a_leased_buffer_is_handed_back_only_when_every_tensor_over_it_is_freed():
    from timelapse_pipes.stages.shared_buffers import FREE, LENT

    flags = torch.full((2,), LENT, dtype=torch.uint8)
    back = transport.unpack({"raw": transport.Lease(torch.arange(12.0).reshape(3, 4), flags, 1), "T": 3})
    view, array = back["raw"][1], back["raw"].numpy()
    del back
    assert flags.tolist() == [LENT, LENT]  # a view and an array keep the buffer
    del view
    assert flags[1] == LENT and array[2, 3] == 11
    del array
    assert flags.tolist() == [LENT, FREE]


@pytest.mark.skipif(not Path("/proc/self/maps").exists(),
                    reason="finds shared-memory segments in /proc/self/maps (Linux)")
def test_process_workers_refill_their_segments_and_never_write_a_batch_still_held(tmp_path):
    import timelapse_pipes as tp
    from timelapse_pipes.testing import collect, write_ome_zarr

    data = np.random.default_rng(4).integers(0, 4000, size=(6, 1, 1, 256, 256), dtype=np.uint16)
    path = write_ome_zarr(tmp_path / "movie.ome.zarr", data, levels=1, chunk=(1, 1, 1, 128, 128))
    rows = {"dict_meta": {"path": [str(path)]}}  # a batch of 4 float32 frames: 1 MB, shared, leased
    common = dict(split=None, samples_per_epoch=48, batch_size=4, seed=8, spatial_dims=2, num_timepoints=1)
    reference = collect(tp.build_loader(rows, **common))
    with tp.build_loader(rows, num_workers=2, worker_method="process", **common) as loader:
        segments, kept = [], None
        for n, batch in enumerate(loader):
            assert torch.equal(batch["raw"], reference[n]["raw"]), n
            segments.append(_segment(batch["raw"].data_ptr()))
            kept = batch["raw"][1:3] if n == 0 else kept  # a view of the first batch, held to the end
    assert torch.equal(kept, reference[0]["raw"][1:3])  # its buffer was never lent again
    assert len(segments) == 12 and len(set(segments)) < 12  # the others were refilled, not new


def _segment(address: int) -> str:
    """The name of the shared-memory mapping holding ``address`` in this process."""
    for line in Path("/proc/self/maps").read_text().splitlines():
        start, end = (int(value, 16) for value in line.split()[0].split("-"))
        if start <= address < end:
            return line.split(maxsplit=5)[-1]
    raise AssertionError(f"{address:#x} is not mapped")
