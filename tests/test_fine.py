"""Fine views: PatchCore at the zoom window's scale, on a tiny real engine."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from fsad.cache import DiskCache
from fsad.data import load_category
from fsad.engine import EngineConfig, ResidualEngine
from fsad.errors import ConfigError
from fsad.features import FeatureConfig
from fsad.fine import (
    FineConfig,
    fine_bank,
    fine_residuals,
    fine_table,
    grid_centres,
    normal_windows,
    peak_windows,
)

SMALL = EngineConfig(features=FeatureConfig(resize=72, crop=64, dim=32), coreset_ratio=0.25)
FINE = FineConfig(window=0.5, normals=3, grid=2, bank_size=100)


@pytest.fixture(scope="module")
def widget(tmp_path_factory: pytest.TempPathFactory):
    """4 normal and 3 defective (bright square at a random place) 96 x 128 images."""
    import cv2

    root = tmp_path_factory.mktemp("fine")
    rng = np.random.default_rng(0)
    base = rng.integers(80, 120, size=(96, 128, 3), dtype=np.uint8)

    def write(rel: str, img: np.ndarray) -> None:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / rel), img)

    for i in range(4):
        write(f"widget/train/good/{i:03d}.png", base + rng.integers(0, 6, base.shape, np.uint8))
    write("widget/test/good/000.png", base)
    for i, (y, x) in enumerate([(30, 40), (50, 70), (40, 60)]):
        img = base.copy()
        img[y : y + 10, x : x + 10] = 250
        write(f"widget/test/spot/{i:03d}.png", img)
    return load_category(root, "mvtec_ad", "widget")


def test_grid_centres_reach_every_edge() -> None:
    cs = grid_centres((100, 200), 0.5, 3)
    assert len(cs) == 9
    assert {y for y, _ in cs} == {25.0, 50.0, 75.0} and {x for _, x in cs} == {25.0, 100.0, 175.0}
    assert grid_centres((100, 200), 0.5, 1) == [(50.0, 100.0)]


@pytest.mark.parametrize(
    "bad", [{"window": 0.0}, {"window": 1.5}, {"grid": 0}, {"normals": 0}, {"bank_size": 0}]
)
def test_bad_settings_are_refused_naming_the_value(bad: dict) -> None:
    with pytest.raises(ConfigError, match="fine"):
        FineConfig(**bad)


def test_normal_windows_and_bank_size(widget, tmp_path: Path) -> None:
    eng = ResidualEngine(widget, SMALL, seed=1, cache=DiskCache(tmp_path))
    crops = normal_windows(eng, FINE)
    assert len(crops) == 3 * 2 * 2 and all(c.shape == (48, 48, 3) for c in crops)
    bank = fine_bank(eng, FINE)
    assert len(crops) * (64 // 8) ** 2 > 100  # each crop: 64 px crop, stride-8 grid
    assert len(bank) == FINE.bank_size
    np.testing.assert_array_equal(bank.features, fine_bank(eng, FINE).features)  # seeded
    other = ResidualEngine(widget, SMALL, seed=2, cache=DiskCache(tmp_path))
    assert not np.array_equal(bank.features, fine_bank(other, FINE).features)


def test_fine_residual_peak_lies_on_the_defect(widget, tmp_path: Path) -> None:
    """The window around the engine's peak holds the square; its residuals peak there."""
    eng = ResidualEngine(widget, SMALL, seed=1, cache=DiskCache(tmp_path))
    spots = [s for s in widget.test if s.label == "spot"]
    crops = peak_windows(eng, spots, FINE)
    r, f, amap = fine_residuals(eng, crops, fine_bank(eng, FINE))
    assert r.shape == f.shape and amap.shape == (3, 8, 8)
    for crop, m in zip(crops, amap, strict=True):
        bright = crop.max(axis=2) > 200  # the square inside the window
        assert bright.any()
        y, x = np.unravel_index(int(m.argmax()), m.shape)  # cell of the 64 px crop of 72
        cy, cx = ((y + 0.5) * 8 + 4) * 48 / 72, ((x + 0.5) * 8 + 4) * 48 / 72
        ys, xs = np.nonzero(bright)
        assert np.hypot(ys - cy, xs - cx).min() < 10  # within about a cell of the square


def test_table_is_cached_per_seed_and_deterministic(widget, tmp_path: Path) -> None:
    cache = DiskCache(tmp_path)
    eng = ResidualEngine(widget, SMALL, seed=1, cache=cache)
    t1 = fine_table(eng, FINE)
    assert set(t1) == {str(s.path) for s in widget.test}
    assert len(list((tmp_path / "fine").glob("*.pt"))) == 1
    again = fine_table(ResidualEngine(widget, SMALL, seed=1, cache=DiskCache(tmp_path / "b")), FINE)
    for k, v in t1.items():
        np.testing.assert_allclose(again[k], v, atol=1e-5)
    fine_table(ResidualEngine(widget, SMALL, seed=2, cache=cache), FINE)
    fine_table(eng, replace(FINE, grid=3))
    assert len(list((tmp_path / "fine").glob("*.pt"))) == 3  # other seed, other settings
