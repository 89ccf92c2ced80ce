"""Optional fast paths. Each kernel has a reference twin (the readable dense computation) and an
equivalence test; compiled dependencies (numba, Triton) are imported lazily, inside the kernel."""


def numba_threads(limit: int) -> int:
    """Set numba's thread count to torch's (OMP_NUM_THREADS / torch.set_num_threads), so one setting
    governs both (numba's own default of every core oversubscribes a busy machine), at most `limit`
    and at least 1; returns it. numba keeps its own threading-layer choice (TBB, else OpenMP, else
    workqueue; NUMBA_THREADING_LAYER overrides): OpenMP ran the fused LIF faster than workqueue (see
    ``neurotoken bench``). OpenMP threads spin while waiting, so on a busy machine give torch (hence
    numba) one thread."""
    import numba
    import torch

    wanted = torch.get_num_threads()
    threads = max(1, min(wanted, numba.config.NUMBA_NUM_THREADS, limit))
    # get_num_threads starts numba's OpenMP pool on first use, and that start resets torch's thread
    # count (numba's pool runs on the system libgomp, torch on its own copy), so torch gets its count
    # back; counts already right are left alone
    if numba.get_num_threads() != threads:
        numba.set_num_threads(threads)
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
    return threads
