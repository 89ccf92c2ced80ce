"""Optional fast paths. Each kernel has a reference twin (the readable dense computation) and an
equivalence test; compiled dependencies (numba, Triton) are imported lazily, inside the kernel."""


def numba_threads(limit: int) -> int:
    """Set numba's thread count to torch's (OMP_NUM_THREADS / torch.set_num_threads), so one setting
    governs both (numba's own default of every core oversubscribes a busy machine), at most `limit`
    and at least 1; returns it. Picks numba's plain workqueue threading layer unless one was chosen:
    the OpenMP layer's spin-waiting made a 2-thread kernel 4x slower on a loaded 2-core machine."""
    import numba
    import torch

    if numba.config.THREADING_LAYER == "default":
        numba.config.THREADING_LAYER = "workqueue"
    threads = max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS, limit))
    numba.set_num_threads(threads)
    return threads
