"""Photometric round 1: equalisation undoes monotonic changes, copies keep names and masks,
and the baseline rows are speed round 1's of the shipped recipe."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fsad.data import encode_image, read_image
from research import ROUND_BASELINE
from research.photometric_round import SPEED_BASELINE, baseline_from, copy_equalized, equalize


def test_equalize_maps_a_monotonic_change_of_each_channel_to_the_same_image() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 128, size=(32, 48, 3), dtype=np.uint8)
    brighter = image * 2 + np.array([1, 0, 1], dtype=np.uint8)  # injective, at most 255
    out = equalize(image)
    assert out.shape == image.shape and out.dtype == np.uint8
    np.testing.assert_array_equal(out, equalize(brighter))
    assert not np.array_equal(out, image)


def test_copy_equalizes_images_as_png_under_their_stems_and_keeps_masks(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    image = np.random.default_rng(1).integers(0, 200, size=(16, 16, 3), dtype=np.uint8)
    mask = np.zeros((16, 16), np.uint8)
    mask[4:8, 4:8] = 255
    for rel, data in {
        "bottle/train/good/000.jpg": encode_image(image, ".jpg"),
        "bottle/ground_truth/crack/000_mask.png": encode_image(mask),
        "bottle/manifest.json": b"{}",
    }.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    assert copy_equalized(src, dst) == 1
    copied = read_image(dst / "bottle/train/good/000.png")
    np.testing.assert_array_equal(copied, equalize(read_image(src / "bottle/train/good/000.jpg")))
    assert not (dst / "bottle/train/good/000.jpg").exists()
    assert (dst / "bottle/ground_truth/crack/000_mask.png").read_bytes() == (
        src / "bottle/ground_truth/crack/000_mask.png"
    ).read_bytes()
    assert (dst / "bottle/manifest.json").read_bytes() == b"{}"


def test_baseline_rows_are_the_speed_rounds_pick_at_five_shots(tmp_path: Path) -> None:
    speed = tmp_path / "speed_loo.csv"
    cell = {"shots": 5, "support_loo": 0.8, "protocol": "mvtec", "category": "bottle"}
    pd.DataFrame([
        {**cell, "candidate": "default", "groups": "A0+A1+Z0+Z2", "seed": 1},
        {**cell, "candidate": SPEED_BASELINE, "groups": "A0+A1+Z0", "seed": 1,
         "git_commit": "abc1234"},
        {**cell, "candidate": SPEED_BASELINE, "groups": "A0+A1+Z0", "seed": 2},
    ]).to_csv(speed, index=False)  # fmt: skip
    out = tmp_path / "photometric.csv"
    assert baseline_from(speed, out) == 2
    rows = pd.read_csv(out, dtype={"git_commit": str})
    assert set(rows["variant"]) == {"baseline"} and set(rows["method"]) == {ROUND_BASELINE}
    assert sorted(rows["seed"]) == [1, 2] and rows["git_commit"].iloc[0] == "abc1234"
    assert "candidate" not in rows and set(rows["source"]) == {f"speed_loo.csv:{SPEED_BASELINE}"}


def test_baseline_from_a_record_without_the_pick_names_the_file(tmp_path: Path) -> None:
    speed = tmp_path / "speed_loo.csv"
    pd.DataFrame([{"candidate": "default", "groups": "A0", "shots": 5}]).to_csv(speed)
    with pytest.raises(SystemExit, match="speed_loo.csv holds no drop_lite2 rows"):
        baseline_from(speed, tmp_path / "out.csv")
