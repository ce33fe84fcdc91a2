"""Anomaly-guided descriptors: known values on tiny tensors, shapes, config checks, caching."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fsad.descriptors import (
    DescriptorConfig,
    describe,
    n_top,
    topk_pool,
)
from fsad.errors import ConfigError


def _tiny() -> tuple[torch.Tensor, torch.Tensor]:
    """One image, 2 channels on a 2 x 2 grid; patch values 1..4 (channel 0), 10..40 (1)."""
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]], [[10.0, 20.0], [30.0, 40.0]]]])
    amap = torch.tensor([[[0.1, 0.9], [0.5, 0.2]]])  # ranks: (0,1) > (1,0) > (1,1) > (0,0)
    return x, amap


def test_n_top_rounds_and_keeps_one() -> None:
    assert n_top(784, 0.02) == 16
    assert n_top(10, 0.01) == 1
    assert n_top(4, 1.0) == 4


def test_topk_pool_picks_the_most_anomalous_patches() -> None:
    x, amap = _tiny()
    np.testing.assert_allclose(topk_pool(x, amap, 0.25).numpy(), [[2.0, 20.0]])
    np.testing.assert_allclose(topk_pool(x, amap, 0.5).numpy(), [[2.5, 25.0]])
    np.testing.assert_allclose(topk_pool(x, amap, 1.0).numpy(), [[2.5, 25.0]])


def test_topk_pool_is_per_image() -> None:
    x, amap = _tiny()
    x2 = torch.cat([x, x])
    amap2 = torch.cat([amap, torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])])
    out = topk_pool(x2, amap2, 0.25)
    np.testing.assert_allclose(out.numpy(), [[2.0, 20.0], [1.0, 10.0]])


def test_describe_shapes_and_unit_blocks() -> None:
    g = torch.Generator().manual_seed(0)
    r, f = torch.randn(3, 8, 5, 5, generator=g), torch.randn(3, 8, 5, 5, generator=g)
    amap = torch.rand(3, 5, 5, generator=g)
    cfg = DescriptorConfig(residual_fracs=(0.1, 0.5), feature_fracs=(0.1,))
    out = describe(r, f, amap, cfg)
    assert out.shape == (3, 8 + 8 + 8)
    norms = [out[:, a:b].norm(dim=1) for a, b in ((0, 8), (8, 16), (16, 24))]
    for n in norms:
        np.testing.assert_allclose(n.numpy(), 1.0, rtol=1e-5)
    # deterministic
    torch.testing.assert_close(out, describe(r, f, amap, cfg))


def test_describe_reference_equals_normalised_topk_mean() -> None:
    x, amap = _tiny()
    out = describe(x, torch.zeros(0), amap, DescriptorConfig(residual_fracs=(0.25,)))
    expected = np.array([[2.0, 20.0]]) / np.hypot(2.0, 20.0)
    np.testing.assert_allclose(out.numpy(), expected, rtol=1e-6)


def test_feature_centring_subtracts_image_mean() -> None:
    x, amap = _tiny()
    cfg = DescriptorConfig(residual_fracs=(), feature_fracs=(0.25,), feature_centred=True)
    out = describe(x, x, amap, cfg)
    expected = np.array([[2.0 - 2.5, 20.0 - 25.0]])
    np.testing.assert_allclose(out.numpy(), expected / np.linalg.norm(expected), rtol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"residual_fracs": (0.0,)}, "residual_fracs"),
        ({"feature_fracs": (1.5,)}, "feature_fracs"),
        ({"residual_fracs": ()}, "at least one block"),
        ({"source": "cloud"}, "unknown descriptor source 'cloud'"),
    ],
)
def test_config_rejects_bad_values(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        DescriptorConfig(**kwargs)


def test_random_bank_residuals_zero_on_bank_images(tmp_path) -> None:
    """A bank made of every patch of the normal images gives r = 0 on those images."""
    import cv2

    from fsad.cache import DiskCache
    from fsad.data import CategoryData, Sample
    from fsad.descriptors import RandomBankConfig, RandomBankResiduals

    rng = np.random.default_rng(0)
    samples = []
    for i in range(2):
        p = tmp_path / f"n{i}.png"
        cv2.imwrite(str(p), rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
        samples.append(Sample(p, "toy", "train", "good"))
    cat = CategoryData("toy", "folder", tmp_path, samples, list(samples))
    cfg = RandomBankConfig(size=64, bank_patches=10**6)
    src = RandomBankResiduals(cat, seed=1, cache=DiskCache(tmp_path / "cache"), config=cfg)
    r, amap, f = src.residuals(samples[:1]), src.anomaly_maps(samples[:1]), src.features(samples)
    assert f.shape == (2, 40 + 112, 8, 8)  # Lite0 stride-8 and stride-16 maps concatenated
    assert r.shape == (1, 152, 8, 8) and amap.shape == (1, 8, 8)
    assert float(amap.max()) < 1e-3
