"""Photometric round 3: the lit views of a support image change its brightness only, by the
fixed amounts the round's rule names, and keep a grey image grey."""

from __future__ import annotations

import numpy as np

from research.lit_support_round import GAMMA, RAMP, lit_views


def test_three_views_of_the_same_shape_and_dtype() -> None:
    image = np.random.default_rng(0).integers(0, 256, size=(5, 9, 3), dtype=np.uint8)
    views = lit_views(image)
    assert len(views) == 3
    assert all(v.shape == image.shape and v.dtype == np.uint8 for v in views)
    assert not any(np.array_equal(v, image) for v in views)


def test_known_values_on_a_flat_image() -> None:
    image = np.full((3, 5, 3), 128, dtype=np.uint8)
    dark, bright, ramp = lit_views(image)
    assert dark[0, 0, 0] == round(255 * (128 / 255) ** GAMMA)  # 97
    assert bright[0, 0, 0] == round(255 * (128 / 255) ** (1 / GAMMA))  # 156
    assert ramp[0, 0, 0] == round(128 * (1 - RAMP))  # top-left: darkest
    assert ramp[-1, -1, 0] == round(128 * (1 + RAMP))  # bottom-right: brightest
    assert ramp[0, -1, 0] == 128  # the other diagonal is left as it is


def test_a_grey_image_stays_grey_and_black_stays_black() -> None:
    rng = np.random.default_rng(1)
    grey = np.repeat(rng.integers(0, 256, size=(6, 4, 1), dtype=np.uint8), 3, axis=2)
    grey[0, 0] = 0
    for view in lit_views(grey):
        np.testing.assert_array_equal(view[..., 0], view[..., 1])
        np.testing.assert_array_equal(view[..., 0], view[..., 2])
        assert view[0, 0, 0] == 0
