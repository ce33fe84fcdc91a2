"""The light estimate study's pieces (research wing): a plane read from gradients, the light
left after a correction, the drawn plane."""

import numpy as np
import pytest

from research import light_estimate_study as le
from research.flat_light_round import frame_coordinates


def _lit_plane(b: float, c: float, h: int = 96, w: int = 160) -> np.ndarray:
    u, v = frame_coordinates(h, w)
    rng = np.random.default_rng(0)
    texture = rng.uniform(0.9, 1.1, size=(h, w))
    x = 120 * texture * np.exp(b * u + c * v)
    return np.repeat(np.clip(np.rint(x), 0, 255).astype(np.uint8)[..., None], 3, axis=2)


def test_the_gradient_reads_a_plane_through_texture() -> None:
    b, c = le.gradient_slope(_lit_plane(0.5, -0.3))
    assert b == pytest.approx(0.5, abs=0.05) and c == pytest.approx(-0.3, abs=0.05)
    flat = le.gradient_slope(_lit_plane(0.0, 0.0))
    assert np.hypot(*flat) < 0.05


def test_a_crushed_image_gives_no_plane() -> None:
    assert le.gradient_slope(np.zeros((64, 64, 3), np.uint8)) == (0.0, 0.0)


def test_removing_the_read_plane_flattens_the_image() -> None:
    image = _lit_plane(0.6, 0.2)
    flat = le.remove_plane(image, le.gradient_slope(image)).astype(float)
    left, right = flat[:, :20].mean(), flat[:, -20:].mean()
    assert abs(left - right) < 0.05 * flat.mean()


def test_no_light_is_left_when_the_correction_equals_the_truth() -> None:
    images = [_lit_plane(0.1 * i, 0.0)[..., 0] for i in range(3)]
    assert np.allclose(le.light_left(images, images), 0, atol=1e-6)
    # one image brighter than its truth by a factor the others do not share: light left
    brighter = [images[0], np.clip(images[1] * 1.3, 0, 255).astype(np.uint8), images[2]]
    left = le.light_left(brighter, images)
    assert left[1] > left[0] and left[1] > 0.1


def test_the_drawn_plane_follows_the_angle() -> None:
    light = {"angle": 0.0, "gradient": 0.3}
    b, c = le.drawn_slope(light, 64, 64)
    assert b > 0.4 and abs(c) < 1e-6  # log(1.3 / 0.7) = 0.62 across the frame, bent by the log
    b2, c2 = le.drawn_slope({"angle": np.pi / 2, "gradient": 0.3}, 64, 64)
    assert abs(b2) < 1e-6 and c2 == pytest.approx(b, rel=1e-4)


def test_a_light_every_image_shares_leaves_none_among_millions_of_pixels() -> None:
    # 1.6 million pixels in a narrow band of grey levels: a float32 least-squares line
    # through them is ill-conditioned (numpy's polyfit drops a singular value and misses the
    # shared gamma, leaving 0.03 log units); the fit in float64 leaves the rounding only
    rng = np.random.default_rng(0)
    truth = [rng.integers(120, 200, size=(128, 128)).astype(np.uint8) for _ in range(100)]
    fixed = [np.clip(np.rint(255 * (t / 255.0) ** 0.6), 0, 255).astype(np.uint8) for t in truth]
    assert le.light_left(fixed, truth).max() < 0.005
