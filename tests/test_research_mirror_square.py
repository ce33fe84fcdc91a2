"""Robustness round 14's candidate (research.mirror_square_round): squares by mirroring, on
tiny images with known pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fsad.data import read_image
from research import mirror_square_round as ms


def test_a_wide_image_is_mirrored_above_and_below_and_keeps_its_pixels() -> None:
    image = np.arange(2 * 6 * 3, dtype=np.uint8).reshape(2, 6, 3)
    out = ms.mirror_square(image)
    assert out.shape == (6, 6, 3) and out.dtype == np.uint8
    assert np.array_equal(out[2:4], image)  # the image in the middle, unchanged
    assert np.array_equal(out[1], image[0]) and np.array_equal(out[0], image[1])  # mirrored
    assert np.array_equal(out[4], image[1]) and np.array_equal(out[5], image[0])


def test_odd_padding_puts_the_extra_pixel_after_and_tall_images_pad_sideways() -> None:
    image = np.arange(5 * 2, dtype=np.uint8).reshape(5, 2, 1).repeat(3, axis=2)
    out = ms.mirror_square(image)
    assert out.shape == (5, 5, 3)
    assert np.array_equal(out[:, 1:3], image)  # one column before, two after
    assert np.array_equal(out[:, 0], image[:, 0]) and np.array_equal(out[:, 3], image[:, 1])


def test_a_square_image_is_left_as_it_is() -> None:
    image = np.random.default_rng(0).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    assert ms.mirror_square(image) is image


def test_the_copy_writes_squares_under_the_same_stems(tmp_path: Path) -> None:
    import cv2

    src = tmp_path / "src" / "widget"
    for folder, shape in (("good", (4, 10, 3)), ("crack", (10, 4, 3))):
        (src / folder).mkdir(parents=True)
        cv2.imwrite(str(src / folder / "000.jpg"), np.full(shape, 90, np.uint8))
    assert ms.copy_mirrored(tmp_path / "src", tmp_path / "dst") == 2
    for folder in ("good", "crack"):
        assert read_image(tmp_path / "dst" / "widget" / folder / "000.png").shape == (10, 10, 3)
