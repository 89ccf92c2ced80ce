"""Optional fast paths. Each kernel has a reference twin (the readable dense computation) and an
equivalence test; compiled dependencies (numba, Triton) are imported lazily, inside the kernel."""
