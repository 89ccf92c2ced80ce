"""Output buffers for the CPU kernels, reused once nothing holds them.

A fresh large CPU allocation page-faults on first touch (a 16 MB tensor costs milliseconds, as
much as a fused LIF step over it), and glibc returns blocks of that size to the system on free.
:func:`empty` hands out tensors over numpy arrays kept in a small pool; ``torch.from_numpy`` makes
the tensor's storage hold a reference to its array, so an array whose only references are the
pool's is free: no tensor or view of it is alive. At most ``LIMIT`` arrays are kept (memory the
process holds on to, as a caching allocator does); past that, allocation is plain.
"""

from __future__ import annotations

import functools
import itertools
import math
import sys

import numpy as np
import torch

LIMIT = 8
_POOL: list[np.ndarray] = []
_USED: list[int] = []  # when each pooled array was last handed out
_TICK = itertools.count()


@functools.cache
def _numpy_dtype(dtype: torch.dtype) -> np.dtype:
    return torch.empty(0, dtype=dtype).numpy().dtype


def empty(shape, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """An uninitialised CPU tensor of `shape` and `dtype`, on pooled memory when possible. A new
    array joins the pool while it has room; a full pool gives up its free array unused the longest
    (replacing a free array of another size while there is room would make callers that take turns
    with different sizes allocate afresh on every call)."""
    size, kind = math.prod(shape), _numpy_dtype(dtype)
    free = [i for i in range(len(_POOL)) if sys.getrefcount(_POOL[i]) == 2]  # the pool's and the call's
    for i in free:
        if _POOL[i].size == size and _POOL[i].dtype == kind:
            _USED[i] = next(_TICK)
            return torch.from_numpy(_POOL[i]).view(shape)
    array = np.empty(size, dtype=kind)
    if len(_POOL) < LIMIT:
        _POOL.append(array)
        _USED.append(next(_TICK))
    elif free:
        i = min(free, key=_USED.__getitem__)
        _POOL[i], _USED[i] = array, next(_TICK)
    return torch.from_numpy(array).view(shape)
