"""Photometric round 11's crop relighting (research wing): the light undone, the rest kept."""

import numpy as np
import pytest

from research import zoom_light_round as zl


def _crop(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.uniform(40, 200, size=(24, 24, 1)) * np.array([1.0, 0.9, 0.8])
    return np.clip(np.rint(base), 0, 255).astype(np.uint8)


def test_a_gain_and_gamma_are_undone_when_the_scale_reads_the_gamma() -> None:
    crop = _crop()
    gamma, gain = 1.4, 0.8
    lit = np.clip(np.rint(255 * gain * (crop / 255.0) ** gamma), 0, 255).astype(np.uint8)
    level = np.log(0.4)
    plain = zl.relight_crop(crop, 1.0, level).astype(int)
    undone = zl.relight_crop(lit, 1 / gamma, level).astype(int)
    assert np.abs(plain - undone).max() <= 3  # rounding of the lit uint8 only
    assert np.abs(crop.astype(int) - lit.astype(int)).mean() > 20  # the light was large


def test_every_crop_lands_at_the_products_level() -> None:
    for seed in range(3):
        out = zl.relight_crop(_crop(seed), 1.0, np.log(0.25))
        median = np.median(out.astype(np.float32).mean(axis=2))
        assert median == pytest.approx(0.25 * 256 - 0.5, abs=2)


def test_the_contrast_scale_is_clipped() -> None:
    light = zl.ProductLight(level=-1.0, spread=1.0)
    flat = np.full((8, 8, 3), 100, np.uint8)
    assert zl.contrast_scale(flat, light) == zl.SCALE_RANGE[1]


def test_the_candidate_replaces_only_the_zoom_group() -> None:
    from fsad.methods.anomaly_guided import RECIPES
    from research import light_subspace_round as ls
    from research.zoom_scale_round import ZOOM_GROUP

    base, cand = RECIPES[ls.BASELINE], zl.candidate_recipe()
    assert isinstance(cand.groups[ZOOM_GROUP].block, zl.LitZoomConfig)
    assert [g for i, g in enumerate(cand.groups) if i != ZOOM_GROUP] == [
        g for i, g in enumerate(base.groups) if i != ZOOM_GROUP
    ]
    assert cand.groups[ZOOM_GROUP].block.cache_key() != base.groups[ZOOM_GROUP].block.cache_key()
