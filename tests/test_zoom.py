"""Zoom views: peak location, mapping back to the original image, windows, caching."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fsad.cache import DiskCache
from fsad.errors import ConfigError
from fsad.features import FeatureConfig
from fsad.zoom import ZoomConfig, cell_to_image, peak_cells, window, zoom_table

F224 = FeatureConfig(resize=256, crop=224)


def test_cell_to_image_inverts_resize_and_centre_crop() -> None:
    # square 64 px: x4 to 256, crop offset 16, cells of 56 px on a 4 x 4 grid
    assert cell_to_image((1, 2), (4, 4), (64, 64), F224) == (25.0, 39.0)
    # 100 x 200: x2.56 to 256 x 512, crop offsets (16, 144), cells of 8 px on 28 x 28
    y, x = cell_to_image((0, 0), (28, 28), (100, 200), F224)
    assert y == pytest.approx(20 / 2.56) and x == pytest.approx(148 / 2.56)


def test_window_is_square_and_moved_inside_the_image() -> None:
    img = np.arange(64 * 80 * 3, dtype=np.int64).reshape(64, 80, 3)
    w = window(img, (0.0, 0.0), 0.5)  # side 32 px, pushed to the top-left corner
    assert w.shape == (32, 32, 3) and np.array_equal(w, img[:32, :32])
    w = window(img, (63.0, 79.0), 0.25)  # side 16 px, pushed to the bottom-right corner
    assert np.array_equal(w, img[48:, 64:])
    assert window(img, (30.0, 40.0), 1.0).shape == (64, 64, 3)


def test_peak_prefers_a_cluster_to_an_isolated_hot_patch() -> None:
    amap = torch.zeros(1, 8, 8)
    amap[0, 1, 1] = 1.0  # one hot patch
    amap[0, 4:7, 4:7] = 0.8  # a 3 x 3 cluster, centre (5, 5)
    assert peak_cells(amap).tolist() == [[5, 5]]


@pytest.mark.parametrize("bad", [{"windows": ()}, {"windows": (0.0,)}, {"windows": (1.5,)},
                                 {"size": 16}])  # fmt: skip
def test_zoom_config_rejects_bad_values(bad: dict) -> None:
    with pytest.raises(ConfigError, match="zoom"):
        ZoomConfig(**bad)


def test_zoom_table_is_cached_per_seed(tmp_path: Path) -> None:
    from tests.test_methods_best import FakeEngine, make_category

    cat = make_category(tmp_path, per_class=2)
    cache = DiskCache(tmp_path / "cache")
    cfg = ZoomConfig(windows=(0.25, 0.5), size=64)
    table = zoom_table(FakeEngine(cat, cache), cfg)
    assert set(table) == {str(s.path) for s in cat.test}
    # 2 windows x Lite0 layers 2-4 (40 + 112 + 320 channels), each block unit-norm
    row = next(iter(table.values()))
    assert row.shape == (2 * 472,)
    assert np.allclose(
        [np.linalg.norm(b) for b in np.split(row, np.cumsum([40, 112, 320, 40, 112]))], 1, atol=1e-5
    )
    again = zoom_table(FakeEngine(cat, cache), cfg)
    assert all(np.array_equal(table[k], again[k]) for k in table)
    assert len(list((tmp_path / "cache" / "zoom").glob("*.pt"))) == 1
    zoom_table(FakeEngine(cat, cache, seed=2), cfg)  # another bank: another entry
    assert len(list((tmp_path / "cache" / "zoom").glob("*.pt"))) == 2
