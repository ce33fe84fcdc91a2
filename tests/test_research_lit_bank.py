"""Photometric round 4's candidate (research.lit_bank_round): the bank folders' relit copies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fsad.data import load_category, read_image
from fsad.light import lit_views
from research.lit_bank_round import bank_folder, copy_with_lit_bank


def _write(path: Path, value: int) -> None:
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((6, 6, 3), value, np.uint8))


def test_bank_folder_follows_the_loaders_order(tmp_path: Path) -> None:
    for rel in ("s/good", "m/train/good", "m/test/good", "n/test/good"):
        (tmp_path / rel).mkdir(parents=True)
    assert bank_folder(tmp_path / "s") == tmp_path / "s" / "good"
    assert bank_folder(tmp_path / "m") == tmp_path / "m" / "train" / "good"
    assert bank_folder(tmp_path / "n") == tmp_path / "n" / "test" / "good"  # metal_nut
    with pytest.raises(SystemExit, match="no good/"):
        bank_folder(tmp_path / "s" / "good")


def test_copy_relights_only_the_bank_one_view_per_image_cycling(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    for i in range(4):
        _write(src / "a" / "train" / "good" / f"{i:03d}.png", 100)
    _write(src / "a" / "test" / "good" / "000.png", 100)  # queries' normals: untouched
    _write(src / "a" / "test" / "crack" / "000.png", 50)
    _write(src / "a" / "ground_truth" / "crack" / "000_mask.png", 255)
    assert copy_with_lit_bank(src, dst) == 4
    bank = sorted(p.name for p in (dst / "a" / "train" / "good").iterdir())
    assert bank == ["000.png", "000_lit0.png", "001.png", "001_lit1.png", "002.png",
                    "002_lit2.png", "003.png", "003_lit0.png"]  # fmt: skip
    views = lit_views(read_image(src / "a" / "train" / "good" / "001.png"))
    assert (read_image(dst / "a" / "train" / "good" / "001_lit1.png") == views[1]).all()
    assert not np.array_equal(views[0], views[1])  # the cycle picks different lights
    assert sorted(p.name for p in (dst / "a" / "test").rglob("*.png")) == ["000.png", "000.png"]
    data = load_category(dst, "mvtec_ad", "a")
    assert len(data.train) == 8 and len(data.test) == 2  # the bank doubles, the queries stay
    assert copy_with_lit_bank(src, dst) == 4  # a second copy overwrites, adds nothing
    assert len(list((dst / "a" / "train" / "good").iterdir())) == 8


def test_copy_refuses_a_folder_without_categories(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="not a folder of categories"):
        copy_with_lit_bank(tmp_path / "missing", tmp_path / "dst")
