"""Robustness round 3's pose test (``research/pose_gate.py``) on two drawn products."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from fsad.data import load_category
from fsad.engine import EngineConfig
from research.pose_gate import pose_test


def _product(root: Path, name: str, draw) -> Path:
    """An MVTec-layout category ``name`` of 12 normal images drawn by ``draw(rng)``."""
    rng = np.random.default_rng(0)
    for i in range(12):
        path = root / name / "train/good" / f"{i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), draw(rng))
    path = root / name / "test/dent/000.png"
    path.parent.mkdir(parents=True)
    cv2.imwrite(str(path), draw(rng))
    return root


def _upright(rng: np.random.Generator) -> np.ndarray:
    """A part lit from the top: bright upper third, a dark bar across the bottom."""
    img = np.full((96, 96, 3), 60, np.uint8)
    img[:32] = 220
    img[80:88, 8:88] = 10
    return cv2.add(img, rng.integers(0, 12, img.shape, dtype=np.uint8))


def _round(rng: np.random.Generator) -> np.ndarray:
    """A part the same in every pose: concentric rings around the centre (97 px, so that a
    quarter turn maps the centre pixel onto itself)."""
    img = np.full((97, 97, 3), 60, np.uint8)
    for r, v in ((40, 200), (28, 90), (14, 230)):
        cv2.circle(img, (48, 48), r + int(rng.integers(-2, 3)), (v, v, v), -1)
    return cv2.add(img, rng.integers(0, 12, img.shape, dtype=np.uint8))


@pytest.mark.usefixtures("tmp_cache")
def test_turned_normals_of_an_upright_part_look_anomalous_and_a_round_part_poses_freely(
    tmp_path: Path,
) -> None:
    rows = {}
    for name, draw in (("upright", _upright), ("round", _round)):
        category = load_category(_product(tmp_path, name, draw), "mvtec_ad", name)
        rows[name] = pose_test(category, EngineConfig())
    assert rows["upright"]["n_held_out"] == 3 and rows["upright"]["n_bank_images"] == 9
    assert rows["upright"]["turned_anomalous"] > 0.5 and not rows["upright"]["poses_freely"]
    assert rows["round"]["turned_anomalous"] <= 0.5 and rows["round"]["poses_freely"]
    assert pose_test(load_category(tmp_path, "mvtec_ad", "round"), EngineConfig()) == {
        **rows["round"],
        "seconds": pytest.approx(rows["round"]["seconds"], abs=60),
    }
