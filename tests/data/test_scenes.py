import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from neurotoken.data import scenes
from neurotoken.data.scenes import CLASSES, shape_mask

AREA = {"disc": math.pi, "square": 2.0, "triangle": 3 * math.sqrt(3) / 4, "cross": 4 * 2 * (3 / 10) - 4 / 10}


@settings(max_examples=20, deadline=None)
@given(kind=st.sampled_from(CLASSES[1:]), radius=st.floats(8, 14), angle=st.floats(0, 2 * math.pi),
       row=st.floats(30, 34), col=st.floats(30, 34))
def test_shape_mask_has_the_shape_area_and_stays_in_its_circumcircle(kind, radius, angle, row, col):
    mask = shape_mask(kind, 64, (row, col), radius, angle)
    # pixelisation: a boundary pixel row can fall in or out (a 12 x 12 block for an 11.3-pixel square)
    assert abs(mask.sum() / (AREA[kind] * radius ** 2) - 1) < 2.0 / radius
    rows, cols = np.nonzero(mask)
    assert ((rows - row) ** 2 + (cols - col) ** 2).max() <= radius ** 2 + 1e-9


def test_same_seed_same_scenes_and_shapes_dtypes_ranges():
    a, b = scenes(5, size=40, seed=2), scenes(5, size=40, seed=2)
    assert torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)
    assert not torch.equal(a.images, scenes(5, size=40, seed=3).images)
    assert a.images.shape == (5, 40, 40, 3) and a.images.dtype == torch.float32
    assert a.masks.shape == (5, 40, 40) and a.masks.dtype == torch.int64
    assert 0 <= a.images.min() and a.images.max() <= 1
    assert 0 <= a.masks.min() and a.masks.max() < len(CLASSES)


def test_masks_match_the_drawn_shapes_without_noise():
    s = scenes(20, seed=0, noise=0.0, max_shapes=1)
    for image, mask in zip(s.images, s.masks):
        fg = mask > 0
        colours = image[fg].unique(dim=0)
        assert len(colours) == 1  # one flat shape colour exactly where the mask says
        assert (image[~fg] - colours[0]).abs().amax(-1).min() > 0.05


def test_every_class_appears_and_colour_does_not_identify_it():
    s = scenes(300, seed=0)
    means = torch.stack([s.images[s.masks == k].mean(0) for k in range(1, len(CLASSES))])
    assert (s.masks.flatten().bincount(minlength=len(CLASSES)) > 0).all()
    assert (means - means.mean(0)).abs().max() < 0.08  # every class has about the same mean colour


@pytest.mark.parametrize("kwargs, err, name", [({"n": 0}, ValueError, "n"), ({"n": 2, "size": 4}, ValueError, "size"),
                                                ({"n": 2, "noise": -1.0}, ValueError, "noise"),
                                                ({"n": 2, "max_shapes": 0}, ValueError, "max_shapes"),
                                                ({"n": 2.0}, TypeError, "n")])
def test_bad_arguments_are_named(kwargs, err, name):
    with pytest.raises(err, match=name):
        scenes(**kwargs)


def test_shape_mask_refuses_an_unknown_kind():
    with pytest.raises(ValueError, match="kind"):
        shape_mask("star", 16, (8, 8), 4)
