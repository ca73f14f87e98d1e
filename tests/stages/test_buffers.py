"""Batch buffers are reused only once nothing made from them is alive."""

from __future__ import annotations

import pickle
import threading

import torch

from timelapse_pipes.stages.buffers import RecycledBuffers


def test_a_buffer_is_reused_only_after_every_tensor_view_and_array_over_it_is_gone():
    pool = RecycledBuffers(keep=3)
    first = pool((2, 3, 4), torch.float32)
    where = first.data_ptr()
    first.fill_(7)
    second = pool((2, 3, 4), torch.float32)
    assert second.data_ptr() != where  # the first is still held
    view, array = first[1], first.numpy()
    del first
    assert pool((2, 3, 4), torch.float32).data_ptr() != where  # a view and an array keep it
    del view
    assert pool((2, 3, 4), torch.float32).data_ptr() != where
    assert (array == 7).all()  # never written while held
    del array
    again = pool((2, 3, 4), torch.float32)
    assert again.data_ptr() == where and again.shape == (2, 3, 4) and again.dtype == torch.float32


def test_other_sizes_and_dtypes_a_full_pool_and_pickling():
    pool = RecycledBuffers(keep=1)
    small = pool((4,), torch.uint16)
    where = small.data_ptr()
    del small
    assert pool((4,), torch.uint16).data_ptr() == where
    big = pool((3, 5), torch.float64)  # another size: the free small buffer makes room
    assert big.numpy().shape == (3, 5) and len(pool._buffers) == 1
    held = pool((3, 5), torch.float64)  # the pool is full and its buffer held: a buffer of its own
    assert held.data_ptr() != big.data_ptr() and len(pool._buffers) == 1
    assert pool((0, 2), torch.float32).shape == (0, 2)
    copy = pickle.loads(pickle.dumps(pool))
    assert copy.keep == 1 and copy._buffers == []


def test_threads_never_share_a_buffer():
    pool = RecycledBuffers(keep=4)
    seen: list[int] = []
    errors: list[str] = []

    def work(value: int) -> None:
        for _ in range(200):
            tensor = pool((64,), torch.int64)
            tensor.fill_(value)
            seen.append(tensor.data_ptr())
            if not bool((tensor == value).all()):
                errors.append(f"thread {value} saw another thread's writes")

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(set(seen)) < len(seen)  # buffers were reused
