import torch

from neurotoken.kernels import workspace


def test_buffer_is_reused_only_once_no_tensor_or_view_holds_it():
    a = workspace.empty((3, 1000))
    view = a[1:]
    address = a.data_ptr()
    del a
    b = workspace.empty((3, 1000))
    assert b.data_ptr() != address  # the view keeps the first buffer alive
    del view
    c = workspace.empty((3000,))
    assert c.data_ptr() == address and c.shape == (3000,)
    assert workspace.empty((2, 5), torch.complex64).dtype == torch.complex64
    assert b.data_ptr() != c.data_ptr()


def test_callers_taking_turns_with_different_sizes_reuse_their_buffers(monkeypatch):
    monkeypatch.setattr(workspace, "_POOL", [])
    monkeypatch.setattr(workspace, "_USED", [])
    monkeypatch.setattr(workspace, "LIMIT", 3)
    first = {n: workspace.empty((n,)).data_ptr() for n in (1000, 2000, 3000)}  # each freed at once
    again = {n: workspace.empty((n,)).data_ptr() for n in (3000, 1000, 2000)}
    assert again == first  # while the pool has room, a new size does not evict a free buffer


def test_a_full_pool_gives_up_the_free_buffer_unused_longest(monkeypatch):
    monkeypatch.setattr(workspace, "_POOL", [])
    monkeypatch.setattr(workspace, "_USED", [])
    monkeypatch.setattr(workspace, "LIMIT", 2)
    a = workspace.empty((1000,)).data_ptr()
    workspace.empty((2000,))
    assert workspace.empty((1000,)).data_ptr() == a  # 1000 is now the most recently used
    workspace.empty((3000,))  # evicts 2000, not 1000
    assert sorted(array.size for array in workspace._POOL) == [1000, 3000]
    assert workspace.empty((1000,)).data_ptr() == a
