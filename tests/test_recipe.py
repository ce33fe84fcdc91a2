"""Recipes on a real tiny engine: in-memory images get the rows their files get."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from fsad.blocks import Inputs
from fsad.cache import DiskCache
from fsad.data import read_image
from fsad.descriptors import DescriptorConfig
from fsad.engine import EngineConfig, ResidualEngine
from fsad.errors import ConfigError
from fsad.features import FeatureConfig
from fsad.recipe import Group, Recipe, image_rows, recipe_engines, recipe_key, sample_rows
from fsad.zoom import ZoomConfig

SMALL = EngineConfig(features=FeatureConfig(resize=72, crop=64, dim=32), coreset_ratio=0.25)
OTHER = replace(SMALL, features=replace(SMALL.features, resize=40, crop=32))
BLOCKS = DescriptorConfig(residual_fracs=(0.25,), feature_fracs=(0.5,), feature_centred=True)
ZOOM = ZoomConfig(windows=(0.5,), size=64)
#: both block kinds, on two engines, one group weighted
RECIPE = Recipe(
    (Group(BLOCKS), Group(BLOCKS, engine=1), Group(ZOOM, weight=2.0), Group(ZOOM, engine=1)),
    engines=(OTHER,),
)


def test_image_rows_equal_the_sample_rows_of_the_same_files(tiny_category, tmp_path: Path) -> None:
    """One describe per block kind: files (cached tables) and in-memory images agree."""
    eng = ResidualEngine(tiny_category, SMALL, seed=1, cache=DiskCache(tmp_path))
    test = list(tiny_category.test)
    expected = sample_rows(eng, RECIPE, test)
    got = image_rows(eng, RECIPE, [read_image(s.path) for s in test])
    assert [g.shape for g in got] == [e.shape for e in expected]
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g, e, atol=1e-4)
    # the zoom group around the second engine's own peak differs from the first's
    assert not np.allclose(expected[2] / 2, expected[3], atol=1e-3)


def test_every_engine_of_a_recipe_frames_the_images_as_the_tasks_engine(
    tiny_category, tmp_path: Path
) -> None:
    """A second engine on folder data sees the whole image too (not a centre crop of it)."""
    recipe = Recipe(
        (Group(DescriptorConfig()), Group(DescriptorConfig(), engine=1)), engines=(OTHER,)
    )
    for framing in ("letterbox", "crop"):
        config = replace(SMALL, features=replace(SMALL.features, framing=framing))
        eng = ResidualEngine(tiny_category, config, seed=1, cache=DiskCache(tmp_path))
        second = recipe_engines(eng, recipe)[1]
        assert second.config.features.framing == framing
        assert second.config.features.crop == OTHER.features.crop  # its own resolution
    assert OTHER.features.framing == "crop"  # the recipe's own setting is overridden


def test_a_relit_recipe_relights_every_engines_bank(tiny_category, tmp_path: Path) -> None:
    """``relit_bank`` gives the task's engine (as a sibling) and every further engine a relit
    bank; their rows and keys differ from the plain recipe's; the setting survives JSON."""
    from fsad.recipe import recipe_from_json, recipe_to_json

    eng = ResidualEngine(tiny_category, SMALL, seed=1, cache=DiskCache(tmp_path))
    lit = replace(RECIPE, relit_bank=True)
    engines = recipe_engines(eng, lit)
    assert [e.config.relit_bank for e in engines] == [True, True]
    assert engines[0] is not eng and engines[0] is eng.sibling(engines[0].config)  # memoised
    assert recipe_engines(eng, RECIPE)[0] is eng  # the plain recipe keeps the task's engine
    lit_eng = eng.sibling(replace(SMALL, relit_bank=True))
    kept = recipe_engines(lit_eng, RECIPE)  # a relit task engine is never made plain
    assert kept[0] is lit_eng and kept[1].config.relit_bank
    assert recipe_key(eng, lit) != recipe_key(eng, RECIPE)
    test = list(tiny_category.test)
    plain_rows, lit_rows = sample_rows(eng, RECIPE, test), sample_rows(eng, lit, test)
    assert not np.allclose(plain_rows[0], lit_rows[0])
    assert recipe_from_json(recipe_to_json(lit)) == lit
    old = {k: v for k, v in recipe_to_json(RECIPE).items() if k != "relit_bank"}
    assert recipe_from_json(old).relit_bank is False  # a model saved before the setting


def test_recipe_key_changes_with_any_group_setting(tiny_category, tmp_path: Path) -> None:
    eng = ResidualEngine(tiny_category, SMALL, seed=1, cache=DiskCache(tmp_path))
    key = recipe_key(eng, RECIPE)
    assert recipe_key(eng, RECIPE) == key
    for other in (
        replace(RECIPE, groups=RECIPE.groups[:3]),
        replace(RECIPE, groups=(*RECIPE.groups[:2], Group(ZOOM), RECIPE.groups[3])),
        replace(RECIPE, engines=(SMALL,)),
    ):
        assert recipe_key(eng, other) != key
    assert recipe_key(ResidualEngine(tiny_category, SMALL, seed=2, cache=eng.cache), RECIPE) != key


def test_random_bank_blocks_need_files(tiny_category, tmp_path: Path) -> None:
    eng = ResidualEngine(tiny_category, SMALL, seed=1, cache=DiskCache(tmp_path))
    blocks = DescriptorConfig(source="random_bank")
    image = read_image(tiny_category.test[0].path)
    with pytest.raises(ConfigError, match="random-bank descriptors need the images' files"):
        blocks.describe(Inputs(eng, images=[image]))


def test_inputs_take_samples_or_images_not_both(tiny_category) -> None:
    with pytest.raises(ValueError, match="either samples or images"):
        Inputs(None)
    with pytest.raises(ValueError, match="either samples or images"):
        Inputs(None, samples=tiny_category.test, images=[])
