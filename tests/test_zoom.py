"""Zoom views: peak location, mapping back to the original image, windows, caching."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fsad.blocks import Inputs, block_rows, block_table, describe_all
from fsad.cache import DiskCache
from fsad.errors import ConfigError
from fsad.features import FeatureConfig
from fsad.zoom import ZoomConfig, cell_to_image, peak_cells, window

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


def test_zoom_block_table_is_cached_per_seed(tmp_path: Path) -> None:
    from tests.test_methods_anomaly_guided import FakeEngine, make_category

    cat = make_category(tmp_path, per_class=2)
    cache = DiskCache(tmp_path / "cache")
    cfg = ZoomConfig(windows=(0.25, 0.5), size=64)
    table = block_table(cfg, FakeEngine(cat, cache))
    assert set(table) == {str(s.path) for s in cat.test}
    # 2 windows x Lite0 layers 2-4 (40 + 112 + 320 channels), each block unit-norm
    row = next(iter(table.values()))
    assert row.shape == (2 * 472,)
    assert np.allclose(
        [np.linalg.norm(b) for b in np.split(row, np.cumsum([40, 112, 320, 40, 112]))], 1, atol=1e-5
    )
    again = block_table(cfg, FakeEngine(cat, cache))
    assert all(np.array_equal(table[k], again[k]) for k in table)
    assert len(list((tmp_path / "cache" / "zoom").glob("*.pt"))) == 1
    block_table(cfg, FakeEngine(cat, cache, seed=2))  # another bank: another entry
    assert len(list((tmp_path / "cache" / "zoom").glob("*.pt"))) == 2


def test_cell_to_image_round_trips_through_preprocess() -> None:
    """A dot drawn where cell_to_image points lands in that cell of the engine's crop."""
    from fsad.features import preprocess

    for shape, cell in [((300, 500), (3, 21)), ((512, 512), (27, 0)), ((450, 300), (14, 9))]:
        img = np.zeros((*shape, 3), dtype=np.uint8)
        y, x = cell_to_image(cell, (28, 28), shape, F224)
        img[int(y) - 1 : int(y) + 2, int(x) - 1 : int(x) + 2] = 255
        bright = preprocess([img], F224)[0, 0] > 0  # (224, 224)
        ys, xs = np.nonzero(bright.numpy())
        assert (int(ys.mean()) // 8, int(xs.mean()) // 8) == cell


def test_window_on_an_image_smaller_than_the_minimum_side() -> None:
    img = np.zeros((10, 12, 3), dtype=np.uint8)
    assert window(img, (5.0, 6.0), 0.25).shape == (10, 10, 3)


class _BumpAt:
    """Wraps a fake engine: its anomaly maps become an 8 x 8 Gaussian bump at ``cell``."""

    def __init__(self, engine, cell: tuple[int, int]) -> None:  # noqa: ANN001
        self.engine, self.cell = engine, cell

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self.engine, name)

    def anomaly_maps(self, samples):  # noqa: ANN001, ANN201
        r, c = torch.meshgrid(torch.arange(8.0), torch.arange(8.0), indexing="ij")
        bump = torch.exp(-((r - self.cell[0]) ** 2 + (c - self.cell[1]) ** 2) / 2)
        return bump.expand(len(samples), 8, 8)


def test_zoom_views_look_at_the_anomaly_peak(tmp_path: Path) -> None:
    from tests.test_methods_anomaly_guided import FakeEngine, make_category

    # class-coloured blobs at pixel (25, 39) of 64 px images: cell (3, 5) of an 8 x 8 map
    cat = make_category(tmp_path, per_class=3)
    engine = FakeEngine(cat, DiskCache(tmp_path / "cache"))
    assert peak_cells(_BumpAt(engine, (3, 5)).anomaly_maps(cat.test[:1])).tolist() == [[3, 5]]
    cfg = ZoomConfig(windows=(0.25,), size=64)
    labels = np.array([s.label for s in cat.test])
    same = labels[:, None] == labels[None, :]

    def gap(rows: torch.Tensor) -> float:
        """Mean cosine similarity within classes minus between classes."""
        x = torch.nn.functional.normalize(rows, dim=1)
        sim = (x @ x.T).numpy()
        return float(sim[same & ~np.eye(len(x), dtype=bool)].mean() - sim[~same].mean())

    on_blob = gap(describe_all(cfg, Inputs(_BumpAt(engine, (3, 5)), samples=cat.test)))
    off_blob = gap(describe_all(cfg, Inputs(_BumpAt(engine, (6, 1)), samples=cat.test)))
    assert on_blob > 0.05 and on_blob > 5 * abs(off_blob)


def test_block_rows_encode_images_outside_the_table(tmp_path: Path) -> None:
    from fsad.data import Sample, read_image
    from tests.test_methods_anomaly_guided import FakeEngine, _image, make_category

    cat = make_category(tmp_path, per_class=2)
    engine = FakeEngine(cat, DiskCache(tmp_path / "cache"))
    cfg = ZoomConfig(windows=(0.5,), size=64)
    table = block_table(cfg, engine)
    extra = tmp_path / "cls1_new.png"
    _image(extra, (40, 200, 60), seed=77)
    sample = Sample(extra, "fake", "test", "?")
    rows = block_rows(cfg, engine, [cat.test[0], sample])
    assert rows.shape == (2, 472)
    np.testing.assert_array_equal(rows[0], table[str(cat.test[0].path)])
    direct = cfg.describe(Inputs(engine, samples=[sample]))[0].numpy()
    np.testing.assert_allclose(rows[1], direct, atol=1e-6)
    # the same image in memory: the same row (one describe for files and new images)
    in_memory = cfg.describe(_InMemory(engine, [sample]).inputs([read_image(extra)]))
    np.testing.assert_allclose(in_memory[0].numpy(), direct, atol=1e-6)


def test_rotation_views_ignore_a_quarter_turn_but_not_a_mirror_image() -> None:
    from fsad.zoom import ZoomEncoder

    rng = np.random.default_rng(0)
    crop = (rng.random((64, 64, 3)) * 255).astype(np.uint8)  # no symmetry at all
    turned, mirrored = np.ascontiguousarray(np.rot90(crop)), np.ascontiguousarray(crop[:, ::-1])

    def blocks(cfg: ZoomConfig) -> torch.Tensor:
        return ZoomEncoder(cfg, "cpu").encode([crop, turned, mirrored])

    plain = blocks(ZoomConfig(size=64))
    assert not torch.allclose(plain[0], plain[1], atol=1e-3)  # the encoder sees orientation
    c4 = blocks(ZoomConfig(size=64, rotations=True))
    assert torch.allclose(c4[0], c4[1], atol=1e-4)  # same 4 views, averaged
    assert not torch.allclose(c4[0], c4[2], atol=1e-3)  # a mirror image stays distinct


def test_rotations_enter_the_cache_key_only_when_on() -> None:
    assert "rotations" not in ZoomConfig().cache_key()  # keys of earlier settings unchanged
    assert ZoomConfig(rotations=True).cache_key()["rotations"] is True
    # options since removed stay in the key at their old defaults: old entries still match
    assert ZoomConfig().cache_key()["dihedral"] is False
    assert ZoomConfig().cache_key()["reference"] is False


class _InMemory:
    """A fake engine's in-memory path: maps of ``samples`` for images given in memory."""

    def __init__(self, engine, samples) -> None:
        self.engine, self.samples = engine, samples
        self.config = engine.config

    def features_of_images(self, images):
        return self.engine.features(self.samples)

    def residuals_of(self, f):
        r = self.engine.residuals(self.samples)
        return r, self.engine.anomaly_maps(self.samples)

    def inputs(self, images) -> Inputs:
        return Inputs(self, images=images)
