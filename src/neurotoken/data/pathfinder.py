"""Pathfinder (Long Range Arena's 32x32 task, after Linsley et al. 2018), generated the way LRA's is.

Each image holds two long contours and short distractor contours, each a chain of dashed
segments (``DASH`` drawn steps, then one blank step) whose heading turns by at most
``MAX_TURN`` per segment; contours keep at least ``SEPARATION`` pixels apart (Chebyshev), so
they never touch or cross. Two dots (3x3 squares) mark contour ends: both ends of the first
long contour (label 1, connected) or one end of each long contour (label 0). A negative's
dots are as far apart as its first contour's two ends (within ``SPAN_TOLERANCE``), so the dot
distance, which in a positive is a contour's end-to-end distance, says nothing about the label.
Dots and contours that are not connected stay at least three pixels apart. Difficulty sets the long
contours' segment count as LRA's three sets do (6, 9, 14). Images are flattened to a sequence
of ``size * size`` one-channel tokens, row by row.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from .. import _checks

DIFFICULTIES = {"easy": 6, "intermediate": 9, "hard": 14}  # segments per long contour
DASH = 2             # drawn unit steps per segment; one blank step follows each
MAX_TURN = math.pi / 5  # largest heading change between two segments (radians)
SEPARATION = 4       # least Chebyshev distance between pixels of different contours
DISTRACTORS = 2      # short contours per image
DISTRACTOR_SEGMENTS = 3
MAX_TRIES = 10       # attempts to place a long contour before the image is redrawn
PARTNER_TRIES = 20   # second long contours drawn for a negative before the image is redrawn
SPAN_TOLERANCE = 0.5  # a negative's dot distance is within this of the first contour's end-to-end distance
DISTRACTOR_TRIES = 3  # attempts to place a distractor before it is left out
SEGMENT_TRIES = 6    # headings tried for one segment before the segment before it is taken back
CONTOUR_STEPS = 400  # heading draws for one contour before it is abandoned


class Pathfinder(NamedTuple):
    x: torch.Tensor  # [N, size * size, 1] float32 in {0, 1}: pixels row by row
    y: torch.Tensor  # [N] int64: 1 when the dots lie on one contour


def _segment(row: float, col: float, heading: float) -> tuple[list[tuple[int, int]], float, float]:
    """The DASH drawn pixels of one segment from (row, col) along ``heading``, and the next start."""
    dr, dc = math.sin(heading), math.cos(heading)
    drawn = [(math.floor(row + k * dr + 0.5), math.floor(col + k * dc + 0.5)) for k in range(1, DASH + 1)]
    return drawn, row + (DASH + 1) * dr, col + (DASH + 1) * dc


def _contour(rng: np.random.Generator, segments: int, blocked: np.ndarray) -> np.ndarray | None:
    """Pixels [n, 2] (row, col) of one dashed contour from a random free pixel, grown segment by
    segment through free pixels (a one-pixel margin stays free for the dots): a segment that finds
    no free heading in SEGMENT_TRIES draws takes back the one before it; None when the first
    segment finds none or the budget of CONTOUR_STEPS draws runs out."""
    size = len(blocked)
    free = ~blocked
    free[[0, -1]] = free[:, [0, -1]] = False
    starts = np.flatnonzero(free)
    if not len(starts):
        return None
    row, col = divmod(int(starts[rng.integers(len(starts))]), size)
    grown = [([(row, col)], float(row), float(col), 0.0)]  # (pixels, next row, next col, heading) per segment
    fails = [0] * (segments + 1)
    for u in rng.random(CONTOUR_STEPS):
        s = len(grown)
        if s > segments:
            return np.asarray([p for pixels, *_ in grown for p in pixels], dtype=np.int64)
        _, row, col, heading = grown[-1]
        turn = heading + (2 * u - 1) * MAX_TURN if s > 1 else 2 * math.pi * u
        drawn, nrow, ncol = _segment(row, col, turn)
        if all(0 <= r < size and 0 <= c < size and free[r, c] for r, c in drawn):
            grown.append((drawn, nrow, ncol, turn))
            fails[s] = 0
            continue
        fails[s] += 1
        if fails[s] >= SEGMENT_TRIES:
            if s == 1:
                return None
            fails[s] = 0
            grown.pop()
    return None


def _place(rng: np.random.Generator, segments: int, blocked: np.ndarray, tries: int) -> np.ndarray | None:
    """A contour placed at least SEPARATION from the pixels behind ``blocked`` (which it then extends)
    in ``tries`` attempts, or None."""
    for _ in range(tries):
        pixels = _contour(rng, segments, blocked)
        if pixels is not None:
            mark = np.zeros_like(blocked)
            mark[pixels[:, 0], pixels[:, 1]] = True
            r, size = SEPARATION - 1, len(blocked)
            padded = np.pad(mark, r)
            for dr in range(2 * r + 1):
                for dc in range(2 * r + 1):
                    blocked |= padded[dr: dr + size, dc: dc + size]
            return pixels
    return None


def _ends(a: np.ndarray, b: np.ndarray, span: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """Pairs of an end of ``a`` and an end of ``b`` more than SEPARATION apart (Chebyshev) whose
    Euclidean distance is within SPAN_TOLERANCE of ``span``."""
    return [(p, q) for p in (a[0], a[-1]) for q in (b[0], b[-1])
            if np.abs(p - q).max() > SEPARATION and abs(math.dist(p, q) - span) <= SPAN_TOLERANCE]


def _image(rng: np.random.Generator, size: int, segments: int, connected: bool) -> np.ndarray:
    """One ``[size, size]`` image: two long contours, distractors, and the two dots. A positive's dots
    are the ends of the first long contour; a negative's are an end of each long contour, at least
    SEPARATION + 1 apart (so no dot comes within two blank pixels of another contour's pixels) and as
    far apart as the first contour's own ends (within SPAN_TOLERANCE), so the dot distance follows
    the positives' distribution: the second contour is redrawn up to PARTNER_TRIES times until it
    has such an end, then the image is."""
    pairs: list = []
    while not pairs:
        blocked = np.zeros((size, size), dtype=bool)
        a = _place(rng, segments, blocked, MAX_TRIES)
        if a is None:
            continue
        for _ in range(1 if connected else PARTNER_TRIES):
            rest = blocked.copy()
            b = _place(rng, segments, rest, MAX_TRIES)
            pairs = [] if b is None else [(a[0], a[-1])] if connected else _ends(a, b, math.dist(a[0], a[-1]))
            if pairs:
                blocked = rest
                break
    image = np.zeros((size, size), dtype=np.float32)
    for c in (a, b, *(_place(rng, DISTRACTOR_SEGMENTS, blocked, DISTRACTOR_TRIES) for _ in range(DISTRACTORS))):
        if c is not None:
            image[c[:, 0], c[:, 1]] = 1.0
    for row, col in pairs[int(rng.integers(len(pairs)))]:
        image[row - 1: row + 2, col - 1: col + 2] = 1.0
    return image


def dot_centres(image: np.ndarray) -> list[tuple[int, int]]:
    """Centres (row, col) of the 3x3 dots of a ``[size, size]`` image: pixels whose 3x3 block is all lit."""
    lit = image > 0
    full = lit[:-2, :-2] & lit[:-2, 1:-1] & lit[:-2, 2:] & lit[1:-1, :-2] & lit[1:-1, 1:-1] & lit[1:-1, 2:] \
        & lit[2:, :-2] & lit[2:, 1:-1] & lit[2:, 2:]
    return [(int(r) + 1, int(c) + 1) for r, c in zip(*np.nonzero(full))]


def dot_gaps(x: torch.Tensor) -> torch.Tensor:
    """``[N, 2]`` float32 on ``x``'s device: the Euclidean distance between the two dot centres of
    each image of ``x`` ``[N, size * size, 1]`` (square images flattened row by row) and the gap
    between their token indices, the features of a shortcut that ignores the contours."""
    x = _checks.tensor("x", x, min_dim=3, max_dim=3)
    size = math.isqrt(x.shape[1])
    if x.shape[2] != 1 or size * size != x.shape[1] or size < 3:
        raise ValueError(f"x must be [N, size * size, 1] flattened square images, got shape {tuple(x.shape)}")
    unlit = (x.reshape(-1, 1, size, size) <= 0).float()
    image, _, row, col = torch.nonzero(F.max_pool2d(unlit, 3, stride=1) == 0, as_tuple=True)  # all-lit 3x3 blocks
    if not torch.equal(torch.bincount(image, minlength=len(x)), image.new_full((len(x),), 2)):
        raise ValueError("x must hold exactly two 3x3 dots per image")
    step = torch.stack([row, col], -1).reshape(len(x), 2, 2).diff(dim=1)[:, 0]
    return torch.stack([step.float().norm(dim=-1), (step[:, 0] * size + step[:, 1]).abs().float()], -1)


def pathfinder(n: int, size: int = 32, difficulty: str = "easy", seed: int = 0) -> Pathfinder:
    """``n`` images (labels balanced: ``n // 2`` connected, shuffled), flattened to ``[n, size * size, 1]``."""
    n = _checks.positive_int("n", n)
    size = _checks.positive_int("size", size, low=16)
    segments = DIFFICULTIES[_checks.choice("difficulty", difficulty, DIFFICULTIES)]
    rng = np.random.default_rng(_checks.positive_int("seed", seed, low=0))
    labels = rng.permutation(np.arange(n) % 2)
    images = np.stack([_image(rng, size, segments, bool(label)) for label in labels])
    return Pathfinder(torch.from_numpy(images).reshape(n, size * size, 1), torch.from_numpy(labels).long())


__all__ = ["DIFFICULTIES", "Pathfinder", "pathfinder", "dot_centres", "dot_gaps"]
