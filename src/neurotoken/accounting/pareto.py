"""The Pareto front of models priced on two axes: cost (energy) and quality."""

from __future__ import annotations

from collections.abc import Sequence


def pareto_front(energy: Sequence[float], quality: Sequence[float]) -> list[bool]:
    """Points no other point beats on both axes (lower energy and higher quality, one strictly)."""
    if len(energy) != len(quality):
        raise ValueError(f"energy and quality must have one length, got {len(energy)} and {len(quality)}")
    pts = list(zip(energy, quality))
    return [not any(e2 <= e and q2 >= q and (e2, q2) != (e, q) for e2, q2 in pts) for e, q in pts]


__all__ = ["pareto_front"]
