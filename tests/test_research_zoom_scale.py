"""Robustness round 15's candidate (research.zoom_scale_round): zoom windows sized by the
product's side. Where every image has that side (the MVTec protocol) the windows, and so the
blocks, are the default's; elsewhere a window keeps its pixel size up to the image's
shorter side; the candidate's recipe differs from the default's in the zoom block alone."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from fsad.blocks import Inputs, block_from_json, block_to_json
from fsad.cache import DiskCache
from fsad.data import load_category, read_image
from fsad.engine import ResidualEngine
from fsad.methods.anomaly_guided import RECIPES
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
