"""The synthetic residual pool r = f(synthetic) - f(source normal) (pretraining residuals)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from fsad.cache import DiskCache
from fsad.data import load_category
from fsad.synth import PseudoClassDataset, TextureSource
from fsad.synth.pool import pool_key, synthetic_residual_pool


class FakeEngine:
    """Stands in for ResidualEngine: features = 8 x 8 average-pooled RGB, ``(N, 3, 8, 8)``."""

    def __init__(self) -> None:
        self.calls = 0
        self.config = SimpleNamespace(features=SimpleNamespace(cache_key=lambda: {"fake": 1}))

    def features_of_images(self, images: np.ndarray) -> torch.Tensor:
        self.calls += 1
        x = torch.as_tensor(np.array(images), dtype=torch.float32).permute(0, 3, 1, 2)
        return torch.nn.functional.adaptive_avg_pool2d(x / 255.0, 8)


@pytest.fixture(scope="module")
def tiny_category(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("pool_data")
    rng = np.random.default_rng(0)
    for split, label, n in (("train", "good", 4), ("test", "good", 1), ("test", "dent", 2)):
        for i in range(n):
            img = np.full((64, 64, 3), 15, np.uint8)
            cv2.circle(img, (32 + int(rng.integers(-4, 5)), 32), 20, (90, 160, 220), -1)
            folder = root / "bottle" / split / label
            folder.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(folder / f"{i:03d}.png"), img)
    return root


def _dataset(root: Path, seed: int = 0) -> PseudoClassDataset:
    data = load_category(root, "mvtec_ad", "bottle")
    return PseudoClassDataset(data, TextureSource.procedural(n_classes=3), seed=seed, size=64,
                              n_per_class=2)  # fmt: skip


def test_pool_is_feature_difference_to_the_source(tiny_category: Path, tmp_path: Path) -> None:
    ds, engine = _dataset(tiny_category), FakeEngine()
    pool = synthetic_residual_pool(engine, ds, batch_size=4)
    r = pool["residuals"]
    assert r.shape == (6, 3, 8, 8) and r.dtype == torch.float32
    assert pool["labels"].tolist() == [0, 0, 1, 1, 2, 2]
    assert pool["classes"] == ds.classes and pool["source_index"].tolist() == [0, 1] * 3
    for i in range(len(ds)):
        s = ds[i]
        f_syn = engine.features_of_images(s.image[None])
        f_src = engine.features_of_images(ds.source_image(s.source_index)[None])
        torch.testing.assert_close(r[i : i + 1], f_syn - f_src, atol=2e-3, rtol=0)
        assert r[i].abs().sum() > 0  # the defect changes the features


def test_pool_is_cached_and_keyed(tiny_category: Path, tmp_path: Path) -> None:
    cache = DiskCache(tmp_path / "cache")
    engine = FakeEngine()
    first = synthetic_residual_pool(engine, _dataset(tiny_category), cache)
    calls = engine.calls
    again = synthetic_residual_pool(engine, _dataset(tiny_category), cache)
    assert engine.calls == calls  # served from the cache
    assert torch.equal(first["residuals"], again["residuals"])
    assert pool_key(engine, _dataset(tiny_category)) != pool_key(engine, _dataset(tiny_category, 1))
    half = synthetic_residual_pool(engine, _dataset(tiny_category), cache, dtype=torch.float16)
    assert half["residuals"].dtype == torch.float16
    raw = synthetic_residual_pool(engine, _dataset(tiny_category), cache, raw=True)
    ds = _dataset(tiny_category)
    expected = engine.features_of_images(np.stack([ds[i].image for i in range(len(ds))]))
    torch.testing.assert_close(raw["residuals"], expected, atol=2e-3, rtol=0)  # f(synthetic)


def test_pool_with_the_real_engine(tiny_category: Path, tmp_path: Path) -> None:
    from fsad.engine import EngineConfig, ResidualEngine
    from fsad.features import FeatureConfig

    ds = _dataset(tiny_category)
    config = EngineConfig(features=FeatureConfig(resize=64, crop=64, dim=16))
    engine = ResidualEngine(ds.data, config, seed=1, cache=DiskCache(tmp_path / "c"))
    pool = synthetic_residual_pool(engine, ds, DiskCache(tmp_path / "c"))
    assert pool["residuals"].shape == (6, 16, 8, 8)
    assert torch.isfinite(pool["residuals"]).all() and pool["residuals"].abs().sum() > 0
