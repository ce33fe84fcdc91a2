"""Photometric round 6 (research.light_projection_round): the nuisance bases hold the asked
share of the light differences' energy, the projection removes exactly their directions and
keeps every block unit-norm, the candidate differs from the baseline in its zoom group only,
and a test image's projected row is the same from its file and in memory."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from fsad.blocks import Inputs
from fsad.cache import DiskCache
from fsad.data import read_image
from fsad.engine import EngineConfig, ResidualEngine
from fsad.errors import ConfigError
from fsad.features import FeatureConfig
from fsad.methods.anomaly_guided import ANOMALY_BLOCKS, RECIPES
from fsad.recipe import Group, Recipe
from fsad.zoom import ZoomConfig, zoom_encoder
from research import light_projection_round as lp

SMALL = EngineConfig(features=FeatureConfig(resize=72, crop=64, dim=32), coreset_ratio=0.25)


def _diffs(singular: list[float], d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Differences ``(M, d)`` with the given singular values along random orthonormal
    directions (returned as ``(d, k)``)."""
    rng = np.random.default_rng(seed)
    v, _ = np.linalg.qr(rng.normal(size=(d, len(singular))))
    u, _ = np.linalg.qr(rng.normal(size=(30, len(singular))))
    return u @ np.diag(singular) @ v.T, v


def test_bases_hold_the_asked_share_of_the_energy() -> None:
    # energy shares 0.64, 0.25, 0.09, 0.02 in block 1 (4 columns of 6); rank one in block 2
    a, va = _diffs([8.0, 5.0, 3.0, np.sqrt(2.0)], 6)
    b, vb = _diffs([2.0], 3, seed=1)
    bases = lp.nuisance_bases(np.concatenate([a, b], axis=1), [6, 3], 0.8)
    assert [x.shape for x in bases] == [(6, 2), (3, 1)]  # 0.64 < 0.8 <= 0.89; one direction
    # the leading directions, up to sign
    assert np.allclose(np.abs(bases[0].T @ va[:, :2]), np.eye(2), atol=1e-5)
    assert np.allclose(np.abs(bases[1].T @ vb), 1.0, atol=1e-5)
    both = np.concatenate([a, b], axis=1)
    assert [lp.nuisance_bases(both, [6, 3], e)[0].shape[1] for e in (0.6, 0.95, 0.99)] == [1, 3, 4]


def test_bad_energy_and_sizes_are_refused_by_value() -> None:
    a, _ = _diffs([1.0], 4)
    with pytest.raises(ConfigError, match="energy must lie in"):
        lp.nuisance_bases(a, [4], 1.0)
    with pytest.raises(ConfigError, match="blocks of 5 columns, differences of 4"):
        lp.nuisance_bases(a, [2, 3], 0.8)
    with pytest.raises(ConfigError, match="bases cover 4 columns, the rows have 5"):
        lp.project(torch.ones(2, 5), [np.eye(4, 1, dtype=np.float32)])


def test_projection_removes_the_basis_and_keeps_each_block_unit_norm() -> None:
    e0 = np.eye(3, 1, dtype=np.float32)  # block 1's nuisance: its first axis
    e1 = np.eye(2, 1, k=-1, dtype=np.float32)  # block 2's: its second axis
    rows = torch.tensor([[3.0, 4.0, 0.0, 1.0, 1.0], [1.0, 0.0, 2.0, 0.0, 5.0]])
    out = lp.project(rows, [e0, e1])
    expected = torch.tensor([[0.0, 1.0, 0.0, 1.0, 0.0], [0.0, 0.0, 1.0, 0.0, 0.0]])
    assert torch.allclose(out[:, :3], expected[:, :3])
    assert torch.allclose(out[0, 3:], expected[0, 3:])
    assert torch.allclose(out[1, 3:], torch.zeros(2))  # all nuisance: nothing left, no NaN
    assert not torch.isnan(out).any()


def test_the_candidate_differs_from_the_baseline_in_its_zoom_group_only() -> None:
    base = RECIPES[lp.BASELINE]
    cand = lp.candidate_recipe(base)
    assert replace(cand, groups=base.groups) == base
    changed = [(b, c) for b, c in zip(base.groups, cand.groups, strict=True) if b != c]
    assert len(changed) == 1
    (b, c) = changed[0]
    assert c.block == lp.ProjectedZoom(b.block) and (c.engine, c.weight) == (b.engine, 2.0)
    with pytest.raises(ConfigError, match="no zoom group"):
        lp.candidate_recipe(Recipe((Group(ANOMALY_BLOCKS),)))


def test_a_test_image_s_projected_row_is_the_same_from_its_file_and_in_memory(
    tiny_category, tmp_path: Path, one_torch_thread, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = ResidualEngine(tiny_category, SMALL, seed=1, cache=DiskCache(tmp_path))
    block = lp.ProjectedZoom(ZoomConfig(windows=(0.5,), size=64), normals=3)
    bases = block.bases(engine)
    monkeypatch.setattr(lp, "light_differences", _refuse)  # from now on, from the cache
    sizes = [u.shape[0] for u in bases]
    assert sizes == lp.block_sizes(zoom_encoder(block.zoom), block.zoom) == [40, 112, 320]
    assert all(1 <= u.shape[1] <= u.shape[0] for u in bases)
    again = ResidualEngine(tiny_category, SMALL, seed=1, cache=DiskCache(tmp_path))
    assert block.bases(again)[0].tobytes() == bases[0].tobytes()  # read back, not recomputed
    samples = list(tiny_category.test)[2:4]
    from_files = block.describe(Inputs(engine, samples=samples))
    in_memory = block.describe(Inputs(engine, images=[read_image(s.path) for s in samples]))
    assert from_files.shape == (2, sum(sizes))
    assert torch.allclose(from_files, in_memory, atol=1e-4)
    start = 0
    for u in bases:  # every block unit-norm and orthogonal to its nuisance directions
        x = from_files[:, start : start + u.shape[0]]
        assert torch.allclose(x.norm(dim=1), torch.ones(2), atol=1e-5)
        assert float((x @ torch.as_tensor(u)).abs().max()) < 1e-5
        start += u.shape[0]
    assert block.table_key(engine) != block.zoom.table_key(engine)
    assert lp.ProjectedZoom(block.zoom, energy=0.5).table_key(engine) != block.table_key(engine)


def _refuse(*args, **kwargs):
    raise AssertionError("the bases were recomputed instead of read from the cache")


def test_no_light_difference_is_refused_rather_than_removing_everything() -> None:
    with pytest.raises(ConfigError, match="no light differences"):
        lp.nuisance_bases(np.zeros((6, 4)), [4], 0.8)


def test_each_cell_scores_the_pinned_baseline_and_the_candidate_on_one_engine(
    tiny_category, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = []

    def fake_scores(engine: ResidualEngine, variants: dict) -> list[dict]:
        seen.append(dict(variants))
        return [{"variant": v, "method": v} for v in variants]

    monkeypatch.setattr(lp.recipe_round, "score_variants", fake_scores)
    monkeypatch.setattr(lp.ProjectedZoom, "bases", lambda self, engine: [np.ones((4, 3))] * 2)
    engine = ResidualEngine(tiny_category, SMALL, seed=1, cache=DiskCache(tmp_path))
    rows = lp.score_cell(engine)
    assert lp.BASELINE == "hires_lite0_poe_proto_rot4_fixed"  # pinned, not fsad fit's default
    assert seen[0]["baseline"] == lp.BASELINE
    assert seen[0]["light_projection"] == lp.candidate_recipe(RECIPES[lp.BASELINE])
    assert [(r["variant"], r["method"], r["removed_directions"]) for r in rows] == [
        ("baseline", lp.BASELINE, 6),
        ("light_projection", lp.BASELINE, 6),
    ]


def test_the_normal_picks_are_all_images_when_fewer_and_a_fixed_sorted_draw_otherwise() -> None:
    assert lp.normal_picks(10, 40) == list(range(10))  # metal_nut's 10 normals: every one
    picks = lp.normal_picks(209, 40)
    assert len(set(picks)) == 40 and picks == sorted(picks) and 0 <= picks[0] < picks[-1] < 209
    assert picks == lp.normal_picks(209, 40)  # seed 0 every time, rounds 6 and 7 alike
