"""Photometric round 9's candidate (research.flat_light_round): a known log-brightness plane
found and removed, the slope's clip, the suite's whole light (gamma, gain, gradient) undone
on an image without a trend of its own, and the copy's layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fsad.data import read_image
from research import flat_light_round as fl
from research import log_light_round as ll


def _blob() -> np.ndarray:
    """``(49, 81, 3)`` uint8: a bright centred blob on a grey ground (grey levels 40-150, so
    the tests' lights never clip), symmetric about the centre, so its own log-brightness
    plane is flat (the sides less one are multiples of the fit's stride, so the sampled
    pixels are symmetric too)."""
    u, v = fl.frame_coordinates(49, 81)
    grey = 40 + 110 * np.exp(-(u**2 + v**2) / 0.05)
    return np.repeat(grey[..., None], 3, axis=2).round().astype(np.uint8)


def _lit(image: np.ndarray, gamma: float, gain: float, b: float, c: float) -> np.ndarray:
    """``gain * exp(b u + c v) * x ** gamma`` in the log domain's units (the suite's light,
    its gradient written as a plane in log brightness)."""
    u, v = fl.frame_coordinates(*image.shape[:2])
    x = (image.astype(np.float64) + 0.5) / 256
    x = gain * np.exp(b * u + c * v)[..., None] * x**gamma
    return np.clip(np.rint(256 * x - 0.5), 0, 255).astype(np.uint8)


def test_frame_coordinates_span_the_frame() -> None:
    u, v = fl.frame_coordinates(3, 5)
    assert u.shape == v.shape == (3, 5)
    assert np.allclose(u[0], [-0.5, -0.25, 0, 0.25, 0.5]) and np.allclose(v[:, 0], [-0.5, 0, 0.5])
    assert np.array_equal(fl.frame_coordinates(1, 1)[0], np.zeros((1, 1)))


def test_a_known_plane_is_found_and_flattened_away() -> None:
    image = _blob()
    b0, c0 = fl.fit_slope(ll.log_domain(image))
    assert abs(b0) < 1e-6 and abs(c0) < 1e-6  # symmetric: nothing to remove
    assert np.array_equal(fl.flatten(image), image)
    lit = _lit(image, 1.0, 1.0, 0.5, -0.3)
    assert 0 < lit.min() and lit.max() < 255  # no clipping: the plane is all there is
    b, c = fl.fit_slope(ll.log_domain(lit))
    assert abs(b - 0.5) < 0.01 and abs(c + 0.3) < 0.01
    flat = fl.flatten(lit)
    assert flat.shape == image.shape and flat.dtype == np.uint8
    assert np.abs(flat.astype(int) - image).max() <= 2  # quantisation only
    assert np.abs(lit.astype(int) - image).mean() > 5  # the gradient had moved it


def test_a_slope_beyond_the_clip_is_shrunk_along_its_direction() -> None:
    lit = _lit(np.full((40, 40, 3), 120, np.uint8), 1.0, 1.0, 1.2, 1.6)  # norm 2
    b, c = fl.fit_slope(ll.log_domain(lit))
    assert abs(np.hypot(b, c) - fl.MAX_SLOPE) < 1e-6
    assert abs(b / c - 1.2 / 1.6) < 0.02


def test_gamma_gain_and_gradient_are_undone_together() -> None:
    image = _blob()
    reference = ll.log_quantiles(fl.flatten(image))
    lit = _lit(image, 1.3, 0.85, -0.4, 0.25)
    back = fl.flat_relight(lit, reference)
    assert np.abs(back.astype(int) - image).mean() < 2
    assert np.abs(lit.astype(int) - image).mean() > 15
    # round 8's fit alone leaves the gradient
    assert np.abs(ll.relight(lit, ll.log_quantiles(image)).astype(int) - image).mean() > 4


def _write(path: Path, image: np.ndarray) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image)


def test_the_copy_relights_against_the_flattened_normals_and_keeps_masks(tmp_path: Path) -> None:
    src, dst, image = tmp_path / "src", tmp_path / "dst", _blob()
    _write(src / "a" / "train" / "good" / "000.png", image)
    _write(src / "a" / "test" / "crack" / "000.jpg", _lit(image, 1.2, 1.1, 0.3, 0.0))
    mask = np.zeros((49, 81), np.uint8)
    mask[:4] = 255
    _write(src / "a" / "ground_truth" / "crack" / "000_mask.png", mask)
    assert fl.copy_flat_light(src, dst) == 2  # the mask is copied, not relit
    back = read_image(dst / "a" / "test" / "crack" / "000.png")  # PNG, same stem
    assert np.abs(back.astype(int) - image).mean() < 3
    copied = read_image(dst / "a" / "ground_truth" / "crack" / "000_mask.png")[..., 0]
    assert np.array_equal(copied, mask)
    assert np.allclose(fl.flat_reference(src / "a"), ll.log_quantiles(fl.flatten(image)))
