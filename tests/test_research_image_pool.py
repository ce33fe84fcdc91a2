"""Robustness round 9's candidate (``research.image_pool_round``): anomaly blocks counted and
centred on the image's own patches under the letterbox; the very rows of the default under
the centre crop; the suite-only rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fsad.blocks import Inputs
from fsad.descriptors import DescriptorConfig, describe, topk_pool
from fsad.engine import EngineConfig
from fsad.errors import ConfigError
from fsad.features import FeatureConfig
from fsad.methods.anomaly_guided import ANOMALY_BLOCKS, RECIPES
from research import ROUND_BASELINE
from research.image_pool_round import (
    CANDIDATE,
    POOLING_VERSION,
    ImagePooled,
    describe_image_pooled,
    grid,
    image_cells,
    masked_topk_pool,
    verdict,
)

LETTERBOX = FeatureConfig(framing="letterbox")  # crop 224


def test_every_cell_is_the_image_s_under_the_centre_crop() -> None:
    for shape in [(100, 250), (700, 700), (300, 120)]:
        assert bool(image_cells(shape, (28, 28), FeatureConfig()).all())


def test_a_wide_image_leaves_the_canvas_rows_out_under_the_letterbox() -> None:
    # 100 x 250 -> 90 x 224 px placed at rows 67..157 of 224: cell centres 8 px apart
    cells = image_cells((100, 250), (28, 28), LETTERBOX)
    rows = cells.any(1).nonzero().flatten().tolist()
    assert bool(cells[rows].all())  # full width
    assert rows == list(range(8, 20))  # centres 68..156 of 224
    tall = image_cells((250, 100), (28, 28), LETTERBOX)
    assert torch.equal(tall, cells.T)
    assert bool(image_cells((224, 224), (28, 28), LETTERBOX).all())


def _maps(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 3, 4, 4, generator=g),
            torch.rand(2, 4, 4, generator=g))  # fmt: skip


def test_masked_pool_equals_the_library_pool_on_a_full_mask() -> None:
    x, _, amap = _maps()
    full = torch.ones(2, 4, 4, dtype=torch.bool)
    for q in (0.01, 0.1, 0.5, 1.0):
        torch.testing.assert_close(masked_topk_pool(x, amap, full, q), topk_pool(x, amap, q))


def test_masked_pool_counts_and_picks_on_the_image_only() -> None:
    x = torch.arange(4.0).reshape(1, 1, 2, 2)  # patch values 0, 1, 2, 3
    amap = torch.tensor([[[0.9, 0.8], [0.1, 0.2]]])  # the canvas row is the most anomalous
    mask = torch.tensor([[[False, False], [True, True]]])
    # k = round(0.5 * 2) = 1 of the image's 2 cells: the value 3 (map 0.2), not 0 (map 0.9)
    assert masked_topk_pool(x, amap, mask, 0.5).item() == 3.0
    assert masked_topk_pool(x, amap, mask, 1.0).item() == 2.5
    # per image: a second image with a full mask keeps the frame's count (k = 2 of 4)
    x2, a2 = torch.cat([x, x]), torch.cat([amap, amap])
    m2 = torch.cat([mask, torch.ones_like(mask)])
    np.testing.assert_allclose(masked_topk_pool(x2, a2, m2, 0.5).flatten().numpy(), [3.0, 0.5])


def test_the_descriptor_is_the_library_s_on_a_full_mask_bit_for_bit() -> None:
    r, f, amap = _maps(1)
    full = torch.ones(2, 4, 4, dtype=torch.bool)
    assert torch.equal(describe_image_pooled(r, f, amap, full, ANOMALY_BLOCKS),
                       describe(r, f, amap, ANOMALY_BLOCKS))  # fmt: skip


def test_the_feature_block_is_centred_on_the_image_s_mean() -> None:
    f = torch.tensor([[[[100.0, 100.0], [1.0, 3.0]], [[-50.0, -50.0], [2.0, 6.0]]]])
    amap = torch.tensor([[[0.0, 0.0], [0.1, 0.2]]])
    mask = torch.tensor([[[False, False], [True, True]]])
    cfg = DescriptorConfig(residual_fracs=(), feature_fracs=(0.5,), feature_centred=True)
    out = describe_image_pooled(f, f, amap, mask, cfg)
    expected = np.array([3.0 - 2.0, 6.0 - 4.0])  # top cell minus the image's mean, canvas out
    np.testing.assert_allclose(out.flatten().numpy(), expected / np.linalg.norm(expected),
                               rtol=1e-6)  # fmt: skip


def test_an_image_on_no_cell_falls_back_to_the_frame() -> None:
    r, f, amap = _maps(2)
    sliver = torch.zeros(2, 4, 4, dtype=torch.bool)
    sliver[1] = True
    out = describe_image_pooled(r, f, amap, sliver, ANOMALY_BLOCKS)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, describe(r, f, amap, ANOMALY_BLOCKS))


def test_the_candidate_swaps_both_anomaly_groups_and_keys_its_own_cache() -> None:
    default = RECIPES[ROUND_BASELINE]
    swapped = [type(g.block) is ImagePooled for g in CANDIDATE.groups]
    assert swapped == [g.block == ANOMALY_BLOCKS for g in default.groups] == [True, True, False]
    block = CANDIDATE.groups[0].block
    assert block.residual_fracs == ANOMALY_BLOCKS.residual_fracs
    assert block.feature_fracs == ANOMALY_BLOCKS.feature_fracs and block.feature_centred
    pooled = {**ANOMALY_BLOCKS.cache_key(), "pooling": "image", "pooling_version": POOLING_VERSION}
    assert block.cache_key() == pooled
    assert CANDIDATE.groups[2] == default.groups[2] and CANDIDATE.engines == default.engines
    assert CANDIDATE.support_poses == default.support_poses


class _StubEngine:
    """An engine's interface for in-memory images: seeded features on a 28 x 28 grid, the
    residuals equal to them and the map their norm."""

    def __init__(self, framing: str) -> None:
        self.config = EngineConfig(features=FeatureConfig(framing=framing), half_residuals=False)

    def features_of_images(self, images: list[np.ndarray]) -> torch.Tensor:
        g = torch.Generator().manual_seed(int(sum(img.shape[0] for img in images)))
        return torch.randn(len(images), 6, 28, 28, generator=g)

    def residuals_of(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return f, f.norm(dim=1)


def test_the_block_masks_each_image_by_its_own_shape() -> None:
    wide, tall = np.zeros((100, 250, 3), np.uint8), np.zeros((250, 100, 3), np.uint8)
    block = CANDIDATE.groups[0].block
    inputs = Inputs(_StubEngine("letterbox"), images=[wide, tall])
    out = block.describe(inputs)
    f, amap = inputs.features(), inputs.anomaly_maps()
    mask = torch.zeros(2, 28, 28, dtype=torch.bool)
    mask[0, 8:20, :] = True  # the wide image's rows (see the letterbox test above)
    mask[1, :, 8:20] = True  # the tall one's columns
    torch.testing.assert_close(out, describe_image_pooled(f, f, amap, mask, block))
    assert not torch.allclose(out, describe(f, f, amap, ANOMALY_BLOCKS))
    # under the centre crop the same images are the default's rows exactly
    crop = Inputs(_StubEngine("crop"), images=[wide, tall])
    assert torch.equal(block.describe(crop), describe(f, f, amap, ANOMALY_BLOCKS))


def test_the_block_refuses_another_source() -> None:
    with pytest.raises(ConfigError, match="image pooling reads the engine's grid"):
        ImagePooled(source="random_bank")


def _record(suite: dict[str, list[float]]) -> pd.DataFrame:
    rows = [{"protocol": "suite_all", "variant": v, "category": c, "seed": s,
             "support_loo": loo, "query_acc": 0.5, "shots": 5}
            for v, per_seed in suite.items() for s, loo in enumerate(per_seed, start=1)
            for c in ("a", "b")]  # fmt: skip
    mvtec = [{**r, "protocol": "mvtec", "support_loo": 0.9} for r in rows]  # never read
    return pd.DataFrame(rows + mvtec)


def test_the_rule_needs_two_points_on_the_suite() -> None:
    base = [0.50, 0.52, 0.54]
    win = verdict(_record({"baseline": base, "image_pooled": [0.52, 0.54, 0.56]}))[1]
    assert win["gain"].iloc[0] == 2.0 and win["adopted"].iloc[0]
    short = verdict(_record({"baseline": base, "image_pooled": [0.515, 0.535, 0.555]}))[1]
    assert short["gain"].iloc[0] == 1.5 and not short["adopted"].iloc[0]


def test_the_verdict_reads_the_round_s_seeds_and_the_grid_all_of_them() -> None:
    record = _record({"baseline": [0.50, 0.52, 0.54, 0.50, 0.52],
                      "image_pooled": [0.52, 0.54, 0.56, 0.30, 0.30]})  # fmt: skip
    assert verdict(record)[1]["adopted"].iloc[0]  # seeds 1-3 only
    record["query_acc"] = record["support_loo"]  # the grid reads query accuracy
    out = grid(record)
    assert out["seeds"] == 5 and out["baseline"].startswith("51.60 ± ")
    assert out["image_pooled"].startswith("44.40 ± ")
    assert out["change"] == -7.2 and out["below_guard"]
    assert not grid(record[record["seed"] <= 3])["below_guard"]  # +2 points
