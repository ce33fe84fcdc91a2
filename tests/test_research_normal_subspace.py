"""Robustness round 13 (research.normal_subspace_round): the basis is learned from the
normal images' variation at each place of the frame, as shot (no lit view), every patch
feature the engine hands out loses it, and its caches never mix with the plain engine's or
with photometric round 7's."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from fsad.blocks import engine_key
from fsad.cache import DiskCache
from fsad.data import read_image
from fsad.engine import ResidualEngine
from fsad.errors import ConfigError
from research import light_subspace_round as ls
from research import normal_subspace_round as ns
from research.light_projection_round import ENERGY
from tests.test_research_light_subspace import (
    SMALL,
    assert_basis_is_read_from_the_cache,
    assert_every_feature_loses,
)


def test_centred_patches_keep_only_the_variation_at_each_position() -> None:
    f = torch.zeros(2, 3, 1, 2)
    f[0, 0, 0, 0], f[1, 0, 0, 0] = 1.0, 3.0  # position (0, 0) varies along channel 0
    f[:, 2, 0, 1] = 5.0  # position (0, 1) is the same in both images: no variation
    centred = ns.centred_patches(f)
    assert torch.equal(centred[:, 0, 0, 0], torch.tensor([-1.0, 1.0]))
    assert torch.equal(centred[:, :, 0, 1], torch.zeros(2, 3))
    moment = ls.second_moment(centred)
    assert torch.equal(moment, torch.diag(torch.tensor([2.0, 0.0, 0.0], dtype=torch.float64)))
    assert torch.allclose(ls.leading_basis(moment, 0.8).abs(), torch.eye(3)[:, :1])


def test_one_normal_image_has_no_variation_and_is_refused() -> None:
    moment = ls.second_moment(ns.centred_patches(torch.randn(1, 4, 2, 2)))
    with pytest.raises(ConfigError, match="no differences"):
        ls.leading_basis(moment, 0.8)


def test_settings_convert_between_kinds_without_losing_the_share() -> None:
    light = ls.subspace_config(SMALL, 0.6)
    normal = ls.subspace_config(light, 0.9, ns.NormalSubspaceConfig)
    assert type(normal) is ns.NormalSubspaceConfig and normal.energy == 0.9
    assert ls.subspace_config(normal, 0.5, ns.NormalSubspaceConfig) is normal
    assert "normal_subspace" in normal.bank_key() and "light_subspace" not in normal.bank_key()
    assert normal.bank_key() != light.bank_key() != SMALL.bank_key()
    with pytest.raises(ConfigError, match="energy must lie in"):
        ns.NormalSubspaceConfig(energy=0.0)


def test_the_basis_comes_from_the_normals_as_shot_and_every_feature_loses_it(
    tiny_category, tmp_path: Path, one_torch_thread
) -> None:
    cache = DiskCache(tmp_path)
    plain = ResidualEngine(tiny_category, SMALL, seed=1, cache=cache)
    light = ls.SubspaceEngine(tiny_category, SMALL, 1, cache)
    sub = ns.NormalSubspaceEngine(tiny_category, SMALL, 1, cache)
    assert type(sub.config) is ns.NormalSubspaceConfig
    keys = [engine_key(e) for e in (plain, light, sub)]
    assert keys[2] != keys[0] and keys[2] != keys[1]  # caches apart
    train = tiny_category.train
    normals = plain.extractor.embed_images([read_image(s.path) for s in train])  # all 4
    expected = ls.leading_basis(ls.second_moment(normals - normals.mean(0)), ENERGY)
    basis = sub.basis()
    assert basis.shape == expected.shape and 1 <= basis.shape[1] < 32
    assert torch.allclose((basis.T @ expected).abs(), torch.eye(basis.shape[1]), atol=1e-3)
    assert not torch.allclose(light.basis()[:, :1].abs(), basis[:, :1].abs(), atol=1e-2)
    assert_every_feature_loses(sub, plain, list(tiny_category.test))
    assert_basis_is_read_from_the_cache(
        ns.NormalSubspaceEngine(tiny_category, SMALL, 1, cache), basis
    )


def test_siblings_are_normal_subspace_engines_with_their_own_basis(
    tiny_category, tmp_path: Path, one_torch_thread
) -> None:
    sub = ns.NormalSubspaceEngine(tiny_category, SMALL, 1, DiskCache(tmp_path))
    wider = replace(SMALL, features=replace(SMALL.features, resize=88, crop=80))
    sibling = sub.sibling(wider)
    assert isinstance(sibling, ns.NormalSubspaceEngine)
    assert sibling.config == ls.subspace_config(wider, kind=ns.NormalSubspaceConfig)
    own = ns.NormalSubspaceEngine(tiny_category, wider, 1, DiskCache(tmp_path / "b")).basis()
    assert torch.allclose(sibling.basis(), own, atol=1e-5)


def test_one_normal_image_is_refused_by_the_engine_naming_the_count(
    tiny_category, tmp_path: Path
) -> None:
    sub = ns.NormalSubspaceEngine(tiny_category, SMALL, 1, DiskCache(tmp_path))
    with pytest.raises(ConfigError, match="at least 2 normal images, got 1"):
        sub.moment(tiny_category.train[:1])
