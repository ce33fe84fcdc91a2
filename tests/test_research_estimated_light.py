"""Photometric round 12: the estimated light divided out of a suite folder's copies."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from fsad.data import read_image
from research.estimated_light_round import copy_category, copy_estimated, main


def _scene(seed: int, size: int = 96) -> np.ndarray:
    """A textured grey scene in [40, 200]: smooth blobs plus fine noise, ``(size, size)``."""
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.uniform(0, 1, (size, size)).astype(np.float32), (0, 0), 6)
    base = (base - base.min()) / np.ptp(base)
    return 40 + 160 * base + rng.normal(0, 2, (size, size)).astype(np.float32)


def _write(path: Path, grey: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.clip(np.rint(grey), 0, 255).astype(np.uint8))


@pytest.fixture()
def suite(tmp_path: Path) -> Path:
    """``all/part``: six normals at gains 0.6-1.4 of the same kind of scene, two defects."""
    root = tmp_path / "all"
    for i, gain in enumerate((0.6, 0.8, 1.0, 1.0, 1.2, 1.4)):
        _write(root / "part" / "good" / f"{i:03d}.jpg", gain * _scene(i))
    for i, gain in enumerate((0.6, 1.4)):
        _write(root / "part" / "cut" / f"{i:03d}.jpg", gain * _scene(10 + i))
    return root


def test_copies_keep_every_name_grey_and_level_the_gain(suite: Path, tmp_path: Path) -> None:
    out = tmp_path / "copies"
    assert copy_estimated(suite, out) == 8
    src = sorted(p.relative_to(suite) for p in suite.glob("*/*/*.jpg"))
    assert sorted(p.relative_to(out) for p in out.glob("*/*/*.jpg")) == src
    assert json.loads((out / "part" / "light_estimated.json").read_text())["estimator"] == (
        "plane_gradient"
    )
    before = [read_image(suite / p)[..., 0].mean() for p in src]
    after = [read_image(out / p) for p in src]
    assert all(np.ptp(im.astype(int), axis=2).max() == 0 for im in after)  # grey stays grey
    after_means = [im[..., 0].mean() for im in after]
    # the gains 0.6-1.4 spread the images' means; the copies' spread is much smaller
    assert np.std(after_means) < 0.5 * np.std(before)


def test_copy_needs_normal_images(tmp_path: Path) -> None:
    _write(tmp_path / "part" / "cut" / "000.jpg", _scene(0))
    with pytest.raises(SystemExit, match="good: no normal images"):
        copy_category(tmp_path / "part", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_copy_refuses_a_colour_image(tmp_path: Path) -> None:
    _write(tmp_path / "part" / "good" / "000.jpg", _scene(0))
    colour = np.zeros((32, 32, 3), np.uint8)
    colour[..., 2] = 200
    cv2.imwrite(str(tmp_path / "part" / "good" / "001.jpg"), colour)
    with pytest.raises(SystemExit, match="001.jpg: not a grey image"):
        copy_category(tmp_path / "part", tmp_path / "out")


def test_command_line_names_its_usage() -> None:
    with pytest.raises(SystemExit, match="usage: --copy SUITE_ALL OUT"):
        main(["--copy", "only-one"])
