"""Support views (photometric round 3, robustness round 5): the lit views change brightness
only, by the fixed amounts the round names, and keep a grey image grey; the shrunk views keep
the frame and fill it with the border colour; a view's rows leave a fold with their image."""

from __future__ import annotations

import numpy as np

from fsad.light import GAMMA, RAMP, lit_views
from fsad.methods.anomaly_guided import RECIPES
from fsad.recipe import leave_one_out
from research import ROUND_BASELINE
from research.support_views_round import SHRINK, shrink_views, with_views


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


def test_shrunk_views_keep_the_frame_and_fill_with_the_border_colour() -> None:
    image = np.full((40, 100, 3), (10, 20, 30), dtype=np.uint8)
    image[5:35, 10:90] = (200, 100, 50)  # a part inside a plain border
    views = shrink_views(image)
    assert len(views) == len(SHRINK)
    for f, view in zip(SHRINK, views, strict=True):
        assert view.shape == image.shape and view.dtype == np.uint8
        part = np.all(view == (200, 100, 50), axis=2)
        rows, cols = np.flatnonzero(part.any(axis=1)), np.flatnonzero(part.any(axis=0))
        assert abs(len(cols) - 80 * f) <= 2 and abs(len(rows) - 30 * f) <= 2  # shrunk by f
        assert abs((cols[0] + cols[-1]) / 2 - 49.5) <= 1.5  # still centred
        np.testing.assert_array_equal(view[0, 0], (10, 20, 30))  # the border colour around it


def test_a_view_leaves_its_fold_with_its_image() -> None:
    rng = np.random.default_rng(2)
    recipe = RECIPES[ROUND_BASELINE]
    labels = np.repeat(np.arange(3), 4)
    rows = [rng.normal(size=(12, 16)) for _ in recipe.groups]  # rows that say nothing of labels
    views = [np.repeat(x, 2, axis=0) for x in rows]  # two views per image, equal to it
    x, source = with_views(rows, np.arange(12), views, 12)
    assert [len(r) for r in x] == [36] * len(recipe.groups)
    np.testing.assert_array_equal(source[12:], np.repeat(np.arange(12), 2))
    index, scores = leave_one_out(recipe, x, labels[source], 3, source)
    np.testing.assert_array_equal(index, np.arange(12))
    assert (scores.argmax(1) == labels).mean() < 0.7  # nothing of the image stayed behind
    leaky = np.concatenate([np.arange(12), np.zeros(24, dtype=int)])  # views kept in the fold
    _, leaked = leave_one_out(recipe, x, labels[source], 3, leaky)
    assert (leaked[1:].argmax(1) == labels[1:]).mean() == 1.0  # its copies would give it away
