"""Photometric round 2's candidate (research.light_round): known values on tiny images."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fsad.data import read_image
from research.light_round import copy_to_means, normal_target, to_means


def test_to_means_scales_each_channel_to_its_target_and_clips() -> None:
    img = np.zeros((2, 2, 3), np.uint8)
    img[..., 0], img[..., 1] = 50, 100
    img[0, 0, 2], img[1, 1, 2] = 200, 100  # channel 2: mean 75
    out = to_means(img, np.array([100.0, 100.0, 150.0]))
    assert out.dtype == np.uint8 and out.shape == img.shape
    assert (out[..., 0] == 100).all() and (out[..., 1] == 100).all()  # gain 2, gain 1
    assert out[0, 0, 2] == 255 and out[1, 1, 2] == 200 and out[0, 1, 2] == 0  # 400 clipped
    dark = to_means(np.zeros((2, 2, 3), np.uint8), np.array([9.0, 9.0, 9.0]))
    assert (dark == 0).all()  # a channel of mean 0 stays as it is


def _write(path: Path, value: int) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((4, 4, 3), value, np.uint8))


def test_copy_brings_every_image_to_its_categorys_normal_means(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    _write(src / "a" / "train" / "good" / "000.png", 40)
    _write(src / "a" / "test" / "good" / "000.png", 80)  # normals of a: mean 60
    _write(src / "a" / "test" / "crack" / "000.png", 120)
    _write(src / "a" / "ground_truth" / "crack" / "000_mask.png", 255)
    _write(src / "b" / "good" / "x.jpg", 200)  # the suite's layout; b's own target
    assert np.allclose(normal_target(src / "a"), 60.0)
    assert copy_to_means(src, dst) == 4  # the mask is copied, not rescaled
    assert (read_image(dst / "a" / "test" / "crack" / "000.png") == 60).all()
    assert (read_image(dst / "a" / "ground_truth" / "crack" / "000_mask.png") == 255).all()
    assert (read_image(dst / "b" / "good" / "x.png") == 200).all()
