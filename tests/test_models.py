"""Tests of the few-shot heads and their losses (tiny D, 4 x 4 grids)."""

from __future__ import annotations

import math

import pytest
import torch

from fsad.models import (
    TEMPERATURE,
    ContrastiveEncoder,
    RelationNet,
    contrastive_logits,
    info_nce_loss,
    scramble_layout,
    weighted_bce,
)

D, H, W = 6, 4, 4


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_encoder_shapes_and_unit_norm() -> None:
    torch.manual_seed(0)
    enc = ContrastiveEncoder(D, (H, W), hidden=8, channels=5, embed_dim=7).eval()
    z = enc(torch.randn(3, D, H, W))
    assert z.shape == (3, 7)
    norms = z.norm(dim=1)
    assert torch.all((norms - 1).abs() < 1e-5) or torch.all(norms < 1e-6)


def test_encoder_rejects_wrong_grid() -> None:
    enc = ContrastiveEncoder(D, (H, W))
    with pytest.raises(ValueError, match=r"\(N, 6, 4, 4\)"):
        enc(torch.randn(2, D, 5, 5))


def test_scramble_layout_is_the_unpermuted_reshape() -> None:
    r = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)
    s = scramble_layout(r)
    # patch-major (N, h*w, D) storage read back as (N, D, h, w)
    expected = r.permute(0, 2, 3, 1).reshape(2, -1).reshape(2, 3, 2, 2)
    assert torch.equal(s, expected)
    assert not torch.equal(s, r)
    assert s.shape == r.shape


def test_contrastive_logits_shapes_and_temperature() -> None:
    q = torch.nn.functional.normalize(torch.randn(4, 5), dim=1)
    k = torch.nn.functional.normalize(torch.randn(3, 5), dim=1)
    lg = contrastive_logits(q, k)
    assert lg.shape == (4, 3)
    assert torch.allclose(lg, q @ k.T / TEMPERATURE)
    kg = torch.stack([k, k.flip(0)])  # (G=2, C=3, E)
    lg2 = contrastive_logits(q, kg)
    assert lg2.shape == (8, 3)
    assert torch.allclose(lg2[:4], lg) and torch.allclose(lg2[4:], lg.flip(1))


def test_info_nce_perfect_embedding_is_near_minimum() -> None:
    c = 5
    eye = torch.eye(c)  # each query equals its own key, orthogonal to the others
    targets = torch.arange(c)
    perfect = info_nce_loss(contrastive_logits(eye, eye), targets)
    # bound: log(1 + (C-1) exp(-1/tau)) ~ 2.5e-6
    bound = math.log1p((c - 1) * math.exp(-1 / TEMPERATURE))
    assert perfect.item() == pytest.approx(bound, rel=0.05)  # float32 rounding
    assert perfect.item() < 1e-4
    torch.manual_seed(0)
    rnd = torch.nn.functional.normalize(torch.randn(c, 8), dim=1)
    keys = torch.nn.functional.normalize(torch.randn(c, 8), dim=1)
    assert info_nce_loss(contrastive_logits(rnd, keys), targets).item() > 100 * perfect.item()
    # the worst case (positive orthogonal, a negative identical) is far above chance log C
    worst = info_nce_loss(contrastive_logits(eye, eye.roll(1, 0)), targets)
    assert worst.item() > math.log(c)


def test_relationnet_pairs_equal_concatenated_conv() -> None:
    torch.manual_seed(0)
    net = RelationNet(D, (H, W), hidden=8, channels=4, embed_dim=6).eval()
    s, q = torch.randn(3, D, H, W), torch.randn(2, D, H, W)
    pairs = torch.tensor([[0, 0], [2, 1], [1, 1]])
    out = net(s, q, pairs)
    assert out.shape == (3,)
    # the split first conv equals one conv on the channel concatenation [s; q]
    w = torch.cat([net.conv_support.weight, net.conv_query.weight], dim=1)
    x = torch.cat([s[pairs[:, 0]], q[pairs[:, 1]]], dim=1)
    first = torch.nn.functional.conv2d(x, w, net.conv_support.bias)
    ref = net.head(net.body(first).flatten(1)).squeeze(1)
    assert torch.allclose(out, ref, atol=1e-5)
    assert torch.allclose(net(s[:2], q), net(s, q, torch.tensor([[0, 0], [1, 1]])), atol=1e-6)


def test_weighted_bce_weights_positives_c_minus_1() -> None:
    logits = torch.tensor([0.3, -1.2, 2.0, 0.1])
    targets = torch.tensor([1.0, 0.0, 0.0, 0.0])
    c = 4
    per = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    expected = (per[0] * (c - 1) + per[1:].sum()) / 4
    assert weighted_bce(logits, targets, c).item() == pytest.approx(expected.item(), rel=1e-6)
    # with C = 2 the weights are all 1: plain BCE
    plain = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)
    assert weighted_bce(logits, targets, 2).item() == pytest.approx(plain.item(), rel=1e-6)


def test_inplace_head_gradient_equals_autograd() -> None:
    torch.manual_seed(0)
    enc = ContrastiveEncoder(D, (H, W), hidden=8, channels=5, embed_dim=7)
    x, k = torch.randn(2, D, H, W), torch.nn.functional.normalize(torch.randn(3, 7), dim=1)
    grads = []
    for inplace in (False, True):
        enc.zero_grad(set_to_none=True)
        enc.inplace_head_grad = inplace
        for _ in range(2):  # gradients accumulate over two backward passes
            info_nce_loss(contrastive_logits(enc(x), k), torch.tensor([0, 2])).backward()
        grads.append([p.grad.clone() for p in enc.parameters()])
    for a, b in zip(*grads, strict=True):
        assert torch.allclose(a, b, atol=1e-6)
