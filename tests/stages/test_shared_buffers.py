"""A process worker's shared-memory ring lends a buffer again only once its flag is cleared."""

from __future__ import annotations

import pickle

import torch

from timelapse_pipes.stages.shared_buffers import FREE, LENT, SharedBufferRing


def test_a_buffer_is_lent_again_only_after_its_flag_is_cleared():
    ring = SharedBufferRing(keep=2)
    first = ring((2, 3, 4), torch.float32)
    assert first.is_shared() and first.shape == (2, 3, 4) and first.dtype == torch.float32
    where = first.data_ptr()
    assert ring.send(first) == 0 and ring.flags[0] == LENT
    assert ring.send(first) is None  # sent once only
    assert ring((2, 3, 4), torch.float32).data_ptr() != where  # still lent: another buffer
    ring.reclaim_unsent()  # the second was never sent: free again
    assert ring.flags.tolist() == [LENT, FREE]
    ring.flags[0] = FREE  # what the loader's process does when the batch is freed
    again = ring((2, 3, 4), torch.float32)
    assert again.data_ptr() == where


def test_a_full_ring_lends_fresh_buffers_and_makes_room_for_other_sizes():
    ring = SharedBufferRing(keep=1)
    held = ring((8,), torch.int64)
    ring.send(held)
    extra = ring((8,), torch.int64)  # every kept buffer is out: one of its own
    assert extra.is_shared() and extra.data_ptr() != held.data_ptr() and ring.send(extra) is None
    ring.flags[0] = FREE
    other = ring((3, 5), torch.float64)  # another size replaces the free buffer
    assert other.shape == (3, 5) and len(ring._buffers) == 1 and ring._buffers[0].numel() == 3 * 5 * 8


def test_small_tensors_are_plain_and_pickling_gives_an_empty_ring():
    ring = SharedBufferRing(keep=3, min_bytes=1024)
    small = ring((4, 4), torch.float32)
    assert not small.is_shared() and ring.send(small) is None and ring._buffers == []
    copy = pickle.loads(pickle.dumps(ring))
    assert (copy.keep, copy.min_bytes, copy._buffers, copy._flags) == (3, 1024, [], None)
