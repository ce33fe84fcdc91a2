"""Photometric round 7 (research.light_subspace_round): the basis holds the asked share of
the light differences' second moment, every patch feature an engine hands out has lost its
directions, the engine's caches never mix with the plain engine's, and its siblings are
light-subspace engines with bases of their own."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from fsad.blocks import engine_key
from fsad.cache import DiskCache
from fsad.data import read_image
from fsad.engine import EngineConfig, ResidualEngine
from fsad.errors import ConfigError
from fsad.features import FeatureConfig
from fsad.light import light_key
from research import light_subspace_round as ls
from research import normal_subspace_round as ns

SMALL = EngineConfig(features=FeatureConfig(resize=72, crop=64, dim=32), coreset_ratio=0.25)


def test_the_basis_holds_the_asked_share_of_the_second_moment() -> None:
    moment = torch.diag(torch.tensor([1.0, 64.0, 9.0, 25.0, 1.0], dtype=torch.float64))
    basis = ls.leading_basis(moment, 0.6)  # shares 0.64, 0.89, 0.98, 0.99, 1
    assert basis.shape == (5, 1) and torch.allclose(basis[:, 0].abs(), torch.eye(5)[1])
    assert [ls.leading_basis(moment, e).shape[1] for e in (0.64, 0.7, 0.95, 0.985)] == [1, 2, 3, 4]
    diffs = torch.zeros(2, 5, 1, 1)
    diffs[0, 1], diffs[1, 3] = 8.0, 5.0
    assert torch.allclose(ls.second_moment(diffs), torch.diag(torch.tensor(
        [0.0, 64.0, 0.0, 25.0, 0.0], dtype=torch.float64)))  # fmt: skip


def test_projection_removes_the_basis_patch_by_patch() -> None:
    f = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)
    basis = torch.tensor([[1.0], [0.0], [0.0]])
    out = ls.project(f, basis)
    assert torch.equal(out[:, 0], torch.zeros(2, 2, 2)) and torch.equal(out[:, 1:], f[:, 1:])


def test_bad_settings_are_refused_by_value() -> None:
    with pytest.raises(ConfigError, match="energy must lie in"):
        ls.SubspaceConfig(energy=1.0)
    with pytest.raises(ConfigError, match="relit bank"):
        ls.SubspaceConfig(relit_bank=True)


def test_every_feature_loses_the_light_directions_and_caches_never_mix(
    tiny_category, tmp_path: Path, one_torch_thread
) -> None:
    cache = DiskCache(tmp_path)
    plain = ResidualEngine(tiny_category, SMALL, seed=1, cache=cache)
    sub = ls.SubspaceEngine(tiny_category, SMALL, 1, cache)
    assert sub.config == ls.subspace_config(SMALL) and sub.config != plain.config
    assert engine_key(sub) != engine_key(plain)  # block tables and posed rows apart
    basis = sub.basis()
    assert basis.shape[0] == 32 and 1 <= basis.shape[1] < 32
    assert torch.allclose(basis.T @ basis, torch.eye(basis.shape[1]), atol=1e-5)
    test = list(tiny_category.test)
    images = [read_image(s.path) for s in test]
    assert_every_feature_loses(sub, plain, test)
    assert torch.allclose(sub.features(test), sub.features_of_images(images), atol=1e-4)
    assert not torch.allclose(sub.anomaly_maps(test), plain.anomaly_maps(test))
    assert_basis_is_read_from_the_cache(ls.SubspaceEngine(tiny_category, SMALL, 1, cache), basis)


def test_siblings_are_light_subspace_engines_with_their_own_basis(
    tiny_category, tmp_path: Path, one_torch_thread
) -> None:
    cache = DiskCache(tmp_path)
    sub = ls.SubspaceEngine(tiny_category, SMALL, 1, cache)
    wider = replace(SMALL, features=replace(SMALL.features, resize=88, crop=80))
    sibling = sub.sibling(wider)
    assert isinstance(sibling, ls.SubspaceEngine) and sibling is sub.sibling(wider)
    assert sibling.config == ls.subspace_config(wider) and sub.sibling(sub.config) is sub
    own = ls.SubspaceEngine(tiny_category, wider, 1, DiskCache(tmp_path / "fresh")).basis()
    assert torch.allclose(sibling.basis(), own, atol=1e-5)  # learned at its own resolution
    assert sibling.basis().shape != sub.basis().shape or not torch.allclose(
        sibling.basis(), sub.basis(), atol=1e-3
    )
    features = sibling.features(list(tiny_category.test))
    assert features.shape[2:] == (10, 10)
    assert float((torch.einsum("ndhw,dk->nkhw", features, own)).abs().max()) < 1e-3 * float(
        features.abs().max()
    )


def test_no_light_difference_is_refused_rather_than_removing_everything() -> None:
    with pytest.raises(ConfigError, match="no differences"):
        ls.leading_basis(torch.zeros(4, 4, dtype=torch.float64), 0.8)


@pytest.mark.parametrize(
    ("score", "kind", "candidate"),
    [
        (ls.score_cell, "SubspaceEngine", "light_subspace"),
        (ns.score_normal_cell, "NormalSubspaceEngine", "normal_subspace"),  # robustness round 13
    ],
)
def test_each_cell_scores_the_pinned_baseline_on_the_plain_and_the_candidate_engine(
    score, kind: str, candidate: str, tiny_category, tmp_path: Path, monkeypatch
) -> None:
    seen = []

    def fake_scores(engine: ResidualEngine, variants: dict) -> list[dict]:
        seen.append((type(engine).__name__, dict(variants)))
        return [{"variant": next(iter(variants))}]

    monkeypatch.setattr(ls.recipe_round, "score_variants", fake_scores)
    monkeypatch.setattr(ls, "removed_directions", lambda engine, recipe: "224 px: 3")
    rows = score(ResidualEngine(tiny_category, SMALL, seed=1, cache=DiskCache(tmp_path)))
    assert ls.BASELINE == "hires_lite0_poe_proto_rot4_fixed"  # pinned, not fsad fit's default
    assert seen == [("ResidualEngine", {"baseline": ls.BASELINE}), (kind, {candidate: ls.BASELINE})]
    assert [r["removed_directions"] for r in rows] == ["", "224 px: 3"]


def assert_every_feature_loses(sub: ls.SubspaceEngine, plain: ResidualEngine, test: list) -> None:
    """Every patch feature ``sub`` hands out (a group's, in-memory images', the bank's) is
    orthogonal to its basis, and a group's equals the plain engine's projected."""
    basis = sub.basis()
    images = [read_image(s.path) for s in test]
    for f in (sub.features(test), sub.features_of_images(images), sub.bank.features):
        flat = f if f.dim() == 2 else f.permute(0, 2, 3, 1).reshape(-1, f.shape[1])
        assert float((flat @ basis).abs().max()) < 1e-3 * float(flat.abs().max())
    assert torch.allclose(sub.features(test), ls.project(plain.features(test), basis))


def assert_basis_is_read_from_the_cache(again: ls.SubspaceEngine, basis: torch.Tensor) -> None:
    """A fresh engine on the same cache reads ``basis`` without computing anything."""
    again.extractor.embed_images = _refuse
    assert torch.equal(again.basis(), basis)


def _refuse(*args, **kwargs):
    raise AssertionError("the basis was recomputed instead of read from the cache")


def test_round_7s_cache_keys_stay_as_its_record_computed_them() -> None:
    config = ls.subspace_config(SMALL)
    assert ls.SubspaceConfig.KIND == "light_subspace"  # the bases' cache namespace
    light = {"energy": 0.8, "normals": 40, "light": light_key(), "v": 1}
    assert config.subspace_key() == light
    assert config.bank_key() == {**SMALL.bank_key(), "light_subspace": light}
