"""Robustness round 15's candidate (research.zoom_scale_round): zoom windows sized by the
product's side. Where every image has that side (the MVTec protocol) the windows, and so the
blocks, are the default's; elsewhere a window keeps its pixel size up to the image's
shorter side; the candidate's recipe differs from the default's in the zoom block alone."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from fsad.blocks import Inputs, block_from_json, block_to_json
from fsad.cache import DiskCache
from fsad.data import load_category, read_image
from fsad.engine import ResidualEngine
from fsad.methods.anomaly_guided import RECIPES
from fsad.recipe import recipe_key
from fsad.zoom import ZoomConfig, window
from research import light_subspace_round as ls
from research import zoom_scale_round as zs
from tests.test_recipe import SMALL


def test_a_window_keeps_its_pixel_size_up_to_the_shorter_side() -> None:
    image = np.arange(200 * 600 * 3, dtype=np.int64).reshape(200, 600, 3).astype(np.uint8)
    assert zs.product_window(image, (100.0, 300.0), 0.25, 512).shape == (128, 128, 3)
    assert zs.product_window(image, (100.0, 300.0), 0.5, 512).shape == (200, 200, 3)
    square = np.zeros((512, 512, 3), np.uint8)
    square[100:110, 400:420] = 255
    for frac, centre in ((0.25, (105.0, 410.0)), (0.5, (500.0, 10.0))):
        assert np.array_equal(zs.product_window(square, centre, frac, 512),
                              window(square, centre, frac))  # fmt: skip


def test_the_candidate_changes_the_default_in_its_zoom_block_alone() -> None:
    default, candidate = RECIPES[ls.BASELINE], zs.candidate_recipe()
    zoom = candidate.groups[zs.ZOOM_GROUP]
    assert type(zoom.block) is zs.ProductZoomConfig
    assert replace(candidate, groups=default.groups) == default
    assert zoom.weight == default.groups[zs.ZOOM_GROUP].weight
    assert zoom.block.windows == default.groups[zs.ZOOM_GROUP].block.windows
    assert zoom.block.namespace != ZoomConfig.namespace  # cached apart
    assert zoom.block.cache_key()["window_scale"] == "product"
    assert block_from_json(block_to_json(zoom.block)) == zoom.block


def test_where_every_image_has_the_products_side_the_blocks_are_the_defaults(
    embedded_root: Path, tmp_path: Path, one_torch_thread
) -> None:
    category = load_category(embedded_root, "mvtec_ad", "washer")
    engine = ResidualEngine(category, SMALL, seed=1, cache=DiskCache(tmp_path))
    shapes = {read_image(s.path).shape for s in category.train + category.test}
    assert len(shapes) == 1  # as on the MVTec protocol: one size per product
    plain = ZoomConfig(windows=(0.25, 0.5), size=32)
    product = zs.ProductZoomConfig(windows=(0.25, 0.5), size=32)
    samples = category.test[:4]
    assert zs.category_side(category) == max(Inputs(engine, samples=samples).images()[0].shape[:2])
    a = plain.describe(Inputs(engine, samples=samples))
    b = product.describe(Inputs(engine, samples=samples))
    assert a.shape == b.shape and torch.equal(a, b)


def test_windows_of_other_sizes_keep_the_products_pixels_in_every_pose(
    embedded_root: Path, tmp_path: Path, one_torch_thread, monkeypatch: pytest.MonkeyPatch
) -> None:
    category = load_category(embedded_root, "mvtec_ad", "washer")
    engine = ResidualEngine(category, SMALL, seed=1, cache=DiskCache(tmp_path))
    side = zs.category_side(category)
    image = Inputs(engine, samples=category.test[:1]).images()[0]
    wide = np.ascontiguousarray(image[: side // 2])  # a window half the product's height
    seen: list[tuple[int, ...]] = []

    class Recorder:
        def encode(self, crops: list[np.ndarray]) -> torch.Tensor:
            seen.extend(c.shape for c in crops)
            return torch.zeros(len(crops), 3)

    monkeypatch.setattr(zs, "zoom_encoder", lambda config, device=None: Recorder())
    product = zs.ProductZoomConfig(windows=(0.25, 0.75), size=32)
    product.describe(Inputs(engine, images=[wide, np.ascontiguousarray(np.rot90(wide))]))
    quarter, short = round(0.25 * side), side // 2
    assert seen == [(quarter, quarter, 3)] * 2 + [(short, short, 3)] * 2


def test_the_candidates_rows_are_cached_apart_from_the_defaults(
    embedded_root: Path, tmp_path: Path
) -> None:
    category = load_category(embedded_root, "mvtec_ad", "washer")
    engine = ResidualEngine(category, SMALL, seed=1, cache=DiskCache(tmp_path))
    default, candidate = RECIPES[ls.BASELINE], zs.candidate_recipe()
    assert recipe_key(engine, candidate) != recipe_key(engine, default)
    zoom = candidate.groups[zs.ZOOM_GROUP].block
    assert zoom.table_key(engine) != default.groups[zs.ZOOM_GROUP].block.table_key(engine)
    assert zoom.cache_key()["version"] == zs.VERSION
