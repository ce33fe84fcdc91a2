"""Signal round 4: synthetic classes that differ by the factor on their blob's pixels."""

from __future__ import annotations

import numpy as np
import pytest

from fsad.errors import ConfigError
from fsad.synth import PseudoClassDataset, TextureSource
from research.intensity_synth_signal import (
    FACTORS,
    intensity_image,
    scaled_region,
    whole_frame_image,
)
from tests.test_research_lit_synth import lit_category  # noqa: F401  (the fixture)


def test_scaled_region_scales_only_the_mask_and_clips() -> None:
    image = np.full((2, 2, 3), 100, np.uint8)
    mask = np.array([[True, False], [False, True]])
    out = scaled_region(image, mask, 0.5)
    assert out[..., 0].tolist() == [[50, 100], [100, 50]]
    assert scaled_region(image, mask, 3.0)[0, 0].tolist() == [255, 255, 255]
    soft = scaled_region(image, np.full((2, 2), 0.5), 2.0)  # half the way to the factor
    assert (soft == 150).all()


def test_intensity_items_differ_by_their_classes_factor(lit_category) -> None:  # noqa: F811
    data = PseudoClassDataset(
        lit_category, TextureSource.procedural(n_classes=8, size=48), generator="shapes",
        seed=2, size=48, n_per_class=3,
    )  # fmt: skip
    for i in range(len(data)):
        source = data.source_image(data.source_of(i)).astype(float)
        out = intensity_image(data, i).astype(float)
        changed = out != source
        assert changed.any()
        ratio = (
            out[changed & (source > 20) & (out < 255)]
            / source[changed & (source > 20) & (out < 255)]
        )
        np.testing.assert_allclose(ratio, FACTORS[i // data.n_sources], atol=0.04)
    again = intensity_image(data, 5)
    np.testing.assert_array_equal(again, intensity_image(data, 5))  # seeded per item


def test_intensity_needs_one_class_per_factor(lit_category) -> None:  # noqa: F811
    data = PseudoClassDataset(
        lit_category, TextureSource.procedural(n_classes=4, size=48), seed=2, size=48,
        n_per_class=3,
    )  # fmt: skip
    with pytest.raises(ConfigError, match="8 intensity classes, the dataset has 4"):
        intensity_image(data, 0)


def test_whole_frame_blobs_ignore_the_foreground(lit_category) -> None:  # noqa: F811
    """A foreground of one corner: round 4's blobs stay inside it, round 5's need not, and
    round 5's blob is the same whatever the foreground."""
    data = PseudoClassDataset(
        lit_category, TextureSource.procedural(n_classes=8, size=48), seed=2, size=48,
        n_per_class=3,
    )  # fmt: skip
    corner = np.zeros((48, 48), bool)
    corner[:24, :24] = True
    data._fg = {j: corner for j in range(data.n_sources)}  # the foreground of every source
    outside = []
    for i in range(len(data)):
        source = data.source_image(data.source_of(i))
        inside = (intensity_image(data, i) != source).any(axis=2)
        assert not (inside & ~corner).any()
        framed = whole_frame_image(data, i)
        outside.append(((framed != source).any(axis=2) & ~corner).any())
        data._fg = {}  # the sources' own foregrounds: round 5's blob does not move
        np.testing.assert_array_equal(whole_frame_image(data, i), framed)
        data._fg = {j: corner for j in range(data.n_sources)}
    assert any(outside)
