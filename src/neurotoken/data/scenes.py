"""Generated segmentation scenes: shapes of several classes on textured, noisy backgrounds.

Each image has a low-saturation background (a base colour plus a sinusoidal grating of random
orientation and frequency) and one to ``max_shapes`` shapes, each of a random class, position,
size and rotation, painted in order (later shapes cover earlier ones). A shape's colour is drawn
independently of its class, so colour tells foreground from background but not which class;
Gaussian pixel noise covers everything. The mask labels each pixel with the class of the shape
on top (0 = background). Segmentations of them are scored by mean IoU, eq. (92).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from .. import _checks

CLASSES = ("background", "disc", "square", "triangle", "cross")


class Scenes(NamedTuple):
    images: torch.Tensor  # [N, H, W, 3] float32 in [0, 1]
    masks: torch.Tensor   # [N, H, W] int64: index into CLASSES


def shape_mask(kind: str, size: int, centre: tuple[float, float], radius: float, angle: float = 0.0) -> np.ndarray:
    """Boolean ``[size, size]`` mask of one shape of circumradius ``radius`` (pixels) centred at
    (row, col), rotated by ``angle`` radians; pixels are tested at their centres."""
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    dy, dx = rows - centre[0], cols - centre[1]
    u, v = math.cos(angle) * dx + math.sin(angle) * dy, -math.sin(angle) * dx + math.cos(angle) * dy
    if kind == "disc":
        return u * u + v * v <= radius * radius
    if kind == "square":  # corners on the circumcircle
        return np.maximum(np.abs(u), np.abs(v)) <= radius / math.sqrt(2)
    if kind == "triangle":  # equilateral: three half-planes at distance radius / 2 from the centre
        normals = [(math.cos(a), math.sin(a)) for a in (math.pi / 2, math.pi / 2 + 2 * math.pi / 3,
                                                         math.pi / 2 + 4 * math.pi / 3)]
        return np.logical_and.reduce([nu * u + nv * v <= radius / 2 for nu, nv in normals])
    if kind == "cross":  # two bars of half-width radius / 3
        half = radius / math.sqrt(1 + 1 / 9)
        return ((np.abs(u) <= half) & (np.abs(v) <= half / 3)) | ((np.abs(v) <= half) & (np.abs(u) <= half / 3))
    raise ValueError(f"kind must be one of {', '.join(map(repr, CLASSES[1:]))}; got {kind!r}")


def _scene(rng: np.random.Generator, size: int, max_shapes: int, noise: float) -> tuple[np.ndarray, np.ndarray]:
    grey = rng.uniform(0.3, 0.7)
    base = grey + rng.uniform(-0.05, 0.05, 3)
    rows, cols = np.mgrid[0:size, 0:size] / size
    theta, freq, phase = rng.uniform(0, math.pi), rng.uniform(2, 6), rng.uniform(0, 2 * math.pi)
    grating = 0.12 * np.sin(2 * math.pi * freq * (math.cos(theta) * cols + math.sin(theta) * rows) + phase)
    image = base + grating[..., None]
    mask = np.zeros((size, size), dtype=np.int64)
    for _ in range(int(rng.integers(1, max_shapes + 1))):
        label = int(rng.integers(1, len(CLASSES)))
        radius = rng.uniform(size / 8, size / 4)
        centre = tuple(rng.uniform(radius * 0.5, size - radius * 0.5, 2))
        inside = shape_mask(CLASSES[label], size, centre, radius, rng.uniform(0, 2 * math.pi))
        colour = rng.uniform(0, 1, 3)
        while np.abs(colour - grey).max() < 0.3:  # visible against the background
            colour = rng.uniform(0, 1, 3)
        image[inside] = colour
        mask[inside] = label
    image += noise * rng.standard_normal(image.shape)
    return np.clip(image, 0, 1).astype(np.float32), mask


def scenes(n: int, size: int = 32, seed: int = 0, *, max_shapes: int = 3, noise: float = 0.05) -> Scenes:
    """``n`` scenes ``[n, size, size, 3]`` with masks ``[n, size, size]``, deterministic in ``seed``."""
    n = _checks.positive_int("n", n)
    size = _checks.positive_int("size", size, low=16)
    max_shapes = _checks.positive_int("max_shapes", max_shapes)
    noise = _checks.number("noise", noise, low=0)
    rng = np.random.default_rng(_checks.positive_int("seed", seed, low=0))
    images, masks = zip(*(_scene(rng, size, max_shapes, noise) for _ in range(n)))
    return Scenes(torch.from_numpy(np.stack(images)), torch.from_numpy(np.stack(masks)))


__all__ = ["CLASSES", "Scenes", "scenes", "shape_mask"]
