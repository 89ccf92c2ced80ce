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
