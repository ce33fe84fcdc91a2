"""Coreset, memory bank and residuals on tiny synthetic tensors."""

from __future__ import annotations

import pytest
import torch

from fsad.errors import ConfigError
from fsad.memory import (
    ExactSearch,
    MemoryBank,
    build_bank,
    greedy_coreset,
    greedy_coreset_reference,
    n_coreset,
    residuals,
)


def _clusters(k: int = 6, per: int = 200, dim: int = 32, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(k, dim, generator=gen) * 50
    pts = centres.repeat_interleave(per, 0) + torch.randn(k * per, dim, generator=gen)
    return pts


def test_coreset_covers_every_cluster() -> None:
    x = _clusters(k=6, per=200)
    idx = greedy_coreset(x, ratio=6 / 1200, seed=3, proj_dim=16)
    assert len(idx) == 6
    assert sorted((idx // 200).tolist()) == list(range(6))  # one pick per obvious cluster


@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize("proj_dim", [8, 128])
def test_fast_coreset_equals_reference(seed: int, proj_dim: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    x = torch.cat([_clusters(k=8, per=150, dim=24, seed=seed), torch.randn(600, 24, generator=gen)])
    fast = greedy_coreset(x, ratio=0.1, seed=seed, proj_dim=proj_dim)
    ref = greedy_coreset_reference(x, ratio=0.1, seed=seed, proj_dim=proj_dim)
    assert torch.equal(fast, ref)


def test_fast_coreset_equals_reference_with_duplicates() -> None:
    x = torch.randn(50, 4).repeat(6, 1)  # exact ties everywhere: first index must win
    fast = greedy_coreset(x, ratio=0.3, seed=1, proj_dim=128)
    ref = greedy_coreset_reference(x, ratio=0.3, seed=1, proj_dim=128)
    assert torch.equal(fast, ref)


def test_coreset_same_seed_same_bank_other_seed_differs() -> None:
    x = torch.randn(2000, 16)
    a = greedy_coreset(x, 0.05, seed=1)
    assert torch.equal(a, greedy_coreset(x, 0.05, seed=1))
    assert not torch.equal(a, greedy_coreset(x, 0.05, seed=2))
    assert len(set(a.tolist())) == len(a) == n_coreset(2000, 0.05) == 100


def test_coreset_ratio_validated() -> None:
    with pytest.raises(ConfigError, match="ratio"):
        n_coreset(10, 0.0)


def test_residual_of_bank_feature_is_zero() -> None:
    f = torch.randn(3, 8, 4, 5)  # (N, D, h, w)
    bank, idx = build_bank(f, ratio=0.5, seed=1)
    assert len(bank) == 30 and len(idx) == 30
    r, amap = residuals(f, bank)
    assert r.shape == f.shape and amap.shape == (3, 4, 5)
    flat = r.permute(0, 2, 3, 1).reshape(-1, 8)
    assert torch.all(flat[idx] == 0)  # r = f - m* = 0 for patches in the bank
    assert torch.all(amap.flatten()[idx] == 0)
    assert torch.allclose(amap, r.norm(dim=1))
    others = torch.ones(60, dtype=torch.bool)
    others[idx] = False
    assert torch.all(amap.flatten()[others] > 0)


def test_search_is_exact_nearest_neighbour() -> None:
    gen = torch.Generator().manual_seed(0)
    bank_f, q = torch.randn(500, 16, generator=gen), torch.randn(300, 16, generator=gen)
    bank = MemoryBank(bank_f)
    d, i = bank.search(q)
    assert d.shape == i.shape == (300, 1)
    brute = torch.cdist(q.double(), bank_f.double()).float()
    assert torch.equal(i[:, 0], brute.argmin(1))
    assert torch.allclose(d[:, 0], brute.min(1).values, atol=1e-4)
    assert torch.equal(bank.nearest(q), bank_f[brute.argmin(1)])
    with pytest.raises(ConfigError, match="NaN"):
        bank.search(torch.full((2, 16), float("nan")))


def test_exact_nearest_matches_float64_brute_force_across_chunks() -> None:
    gen = torch.Generator().manual_seed(1)
    bank = torch.randn(400, 32, generator=gen) * 3 + 50  # large norms: cancellation-prone
    q = torch.cat([bank[[5, 9]], bank[:50] + 1e-3 * torch.randn(50, 32, generator=gen),
                   torch.randn(100, 32, generator=gen) * 3 + 50])  # fmt: skip
    ref = torch.cdist(q.double(), bank.double())
    for low in (False, True):  # float32 or bfloat16 first pass: the same exact answer
        d, i = ExactSearch(bank, low_precision=low)(q, chunk=7)
        assert torch.equal(i, ref.argmin(1))  # near-duplicates resolved by the direct distance
        assert torch.allclose(d.double(), ref.min(1).values, atol=1e-3)
        assert i[0] == 5 and i[1] == 9 and d[0] == 0 and d[1] == 0


def test_exact_nearest_breaks_exact_ties_by_lowest_index() -> None:
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    _, i = ExactSearch(bank)(torch.tensor([[2.0, 0.0], [0.0, 3.0]]))
    assert i.tolist() == [0, 1]


def test_bank_checks_shapes() -> None:
    bank = MemoryBank(torch.randn(20, 4))
    with pytest.raises(ConfigError, match=r"\(P, 4\)"):
        bank.search(torch.randn(3, 5))
    with pytest.raises(ConfigError):
        MemoryBank(torch.randn(0, 4))


@pytest.mark.parametrize("low", [False, True])
def test_search_error_bound_holds_for_every_row(low: bool) -> None:
    gen = torch.Generator().manual_seed(3)
    bank = torch.randn(700, 384, generator=gen).abs() * 3  # post-ReLU-like, large mean
    bank[:50] *= 20  # a few rows far out: they set max||m||
    q = torch.cat([bank[:40] * 1.5, torch.randn(60, 384, generator=gen).abs() * 3])
    s = ExactSearch(bank, low_precision=low)
    qc = q - s.centre
    approx = torch.addmm(s.sq, qc.to(s.dtype), s.lhs, alpha=-2.0).float()[:, : len(bank)]
    mc = (bank - s.centre).double()
    exact = (mc * mc).sum(1)[None] - 2 * qc.double() @ mc.T
    qn, mx = qc.norm(dim=1).double()[:, None], s.max_norm
    bound = 2 * s.eps_dot * qn * mx + s.eps_out * (2 * mx * mx + 2 * qn * mx)
    assert ((approx.double() - exact).abs() <= bound).all()
