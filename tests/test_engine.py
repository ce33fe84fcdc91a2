"""ResidualEngine: caching granularity, keys, residual invariants; bottle AUROC on real data."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from fsad.cache import DiskCache
from fsad.data import load_category
from fsad.engine import EngineConfig, ResidualEngine
from fsad.features import FeatureConfig

SMALL = EngineConfig(features=FeatureConfig(resize=72, crop=64, dim=32), coreset_ratio=0.25)


def _entries(cache: Path, ns: str) -> int:
    return len(list((cache / ns).glob("*.pt"))) if (cache / ns).is_dir() else 0


def test_shapes_subsets_and_scores(tiny_category, tmp_path: Path) -> None:
    eng = ResidualEngine(tiny_category, SMALL, seed=1, cache=DiskCache(tmp_path))
    test = tiny_category.test
    f = eng.features(test)
    assert f.shape == (5, 32, 8, 8)
    assert torch.equal(eng.features(test[1:4]), f[1:4])  # subset indexes the whole-set entry
    r, maps = eng.residuals(test), eng.anomaly_maps(test)
    assert r.shape == f.shape and maps.shape == (5, 8, 8)
    assert torch.equal(eng.residuals([test[3], test[0]]), r[[3, 0]])
    assert torch.allclose(maps, eng.residuals_of(f)[1], atol=1e-5)
    assert len(eng.bank) == int(4 * 64 * 0.25)
    scores = eng.scores(test)
    assert scores.shape == (5,) and scores[2:].min() > scores[:2].max()  # defects score higher
    assert _entries(tmp_path, "features") == 2 and _entries(tmp_path, "residuals") == 1


def test_cache_hit_is_identical_and_changed_keys_miss(tiny_category, tmp_path: Path) -> None:
    cache = DiskCache(tmp_path)
    cold = ResidualEngine(tiny_category, SMALL, seed=1, cache=cache)
    r1, b1 = cold.residuals(tiny_category.test), cold.bank.features
    warm = ResidualEngine(tiny_category, SMALL, seed=1, cache=cache)
    assert torch.equal(warm.residuals(tiny_category.test), r1)
    assert warm._extractor is None  # nothing recomputed: the backbone was never built
    assert torch.equal(warm.bank.features, b1)
    other_seed = ResidualEngine(tiny_category, SMALL, seed=2, cache=cache)
    other_seed.residuals(tiny_category.test)
    assert _entries(tmp_path, "bank") == 2 and _entries(tmp_path, "residuals") == 2
    assert _entries(tmp_path, "features") == 2  # features are shared across seeds
    other_dim = replace(SMALL, features=replace(SMALL.features, dim=16))
    f16 = ResidualEngine(tiny_category, other_dim, seed=1, cache=cache).features(tiny_category.test)
    assert f16.shape[1] == 16 and _entries(tmp_path, "features") == 3


def test_copied_dataset_hits_the_cache(tiny_category, tmp_path: Path) -> None:
    """A dataset copied afresh (new paths, new mtimes, same bytes) reuses cached residuals."""
    import shutil

    cache = DiskCache(tmp_path / "cache")
    r1 = ResidualEngine(tiny_category, SMALL, seed=1, cache=cache).residuals(tiny_category.test)
    root = tiny_category.test[0].path.parents[3]
    shutil.copytree(root, tmp_path / "copy", copy_function=shutil.copy)  # new mtimes
    copied = load_category(tmp_path / "copy", "mvtec_ad", "widget")
    warm = ResidualEngine(copied, SMALL, seed=1, cache=cache)
    assert torch.equal(warm.residuals(copied.test), r1)
    assert warm._extractor is None  # the backbone was never built


def test_bank_images_have_zero_residual(tiny_category, tmp_path: Path) -> None:
    full = replace(SMALL, coreset_ratio=1.0)
    eng = ResidualEngine(tiny_category, full, seed=1, cache=DiskCache(tmp_path))
    r = eng.residuals(tiny_category.train)
    assert torch.all(r == 0) and torch.all(eng.scores(tiny_category.train) == 0)


def test_other_lists_and_in_memory_images(tiny_category, tmp_path: Path) -> None:
    eng = ResidualEngine(tiny_category, SMALL, seed=1, cache=DiskCache(tmp_path))
    mixed = [tiny_category.train[0], tiny_category.test[4]]
    assert eng.residuals(mixed).shape == (2, 32, 8, 8)
    from fsad.data import read_image

    imgs = np.stack([read_image(s.path) for s in mixed])
    f = eng.features_of_images(imgs)
    assert torch.allclose(f, eng.features(mixed), atol=1e-4)
    r, amap = eng.residuals_of(f)
    assert torch.allclose(amap, eng.anomaly_maps(mixed), atol=1e-3)


@pytest.mark.slow
@pytest.mark.realdata
def test_bottle_detection_auroc(real_data: Path, tmp_path: Path) -> None:
    """PatchCore's detection on real images: bottle's whole test set (20 good, 63 defective)
    against a bank of every 8th training normal (27 of 209: with all 209 this test took 110 s
    of a cold run, 21 s so; 27 normals already give image AUROC 1.0, pixel 0.986)."""
    from fsad.cli.detect_cmd import evaluate

    cat = load_category(real_data / "mvtec_ad", "mvtec_ad", "bottle")
    cat = replace(cat, train=cat.train[::8])
    assert len(cat.train) == 27 and len(cat.test) == 83
    eng = ResidualEngine(cat, EngineConfig(), seed=1, cache=DiskCache())
    result = evaluate(eng)
    assert result["image_auroc"] >= 0.98
    assert result["pixel_auroc"] >= 0.95


def test_shared_extractor_is_reused_and_must_match(tiny_category, tmp_path: Path) -> None:
    from fsad.errors import ConfigError

    first = ResidualEngine(tiny_category, SMALL, seed=1, cache=DiskCache(tmp_path))
    shared = first.extractor
    second = ResidualEngine(
        tiny_category, SMALL, seed=2, cache=DiskCache(tmp_path), extractor=shared
    )
    assert second.extractor is shared
    other = replace(SMALL, features=replace(SMALL.features, dim=16))
    with pytest.raises(ConfigError, match="shared extractor"):
        ResidualEngine(tiny_category, other, seed=1, cache=DiskCache(tmp_path), extractor=shared)


def test_sibling_shares_category_seed_and_cache(tiny_category, tmp_path: Path) -> None:
    eng = ResidualEngine(tiny_category, SMALL, seed=3, cache=DiskCache(tmp_path))
    assert eng.sibling(SMALL) is eng
    other = replace(SMALL, features=replace(SMALL.features, resize=40, crop=32))
    sib = eng.sibling(other)
    assert sib is eng.sibling(other)  # memoised
    assert (sib.category, sib.seed, sib.cache, sib.config) == (tiny_category, 3, eng.cache, other)
    direct = ResidualEngine(tiny_category, other, seed=3, cache=DiskCache(tmp_path))
    assert sib.anomaly_maps(tiny_category.test).shape == (5, 4, 4)
    assert torch.equal(sib.residuals(tiny_category.test), direct.residuals(tiny_category.test))


def test_relit_bank_interleaves_each_normal_with_its_relit_copy(
    tiny_category, tmp_path: Path
) -> None:
    """A relit bank draws from every normal image followed by its relit copy, is keyed apart
    from the plain bank, and scores a normal image seen under one of its lights as normal."""
    from fsad.data import read_image
    from fsad.light import relit

    cache = DiskCache(tmp_path)
    lit_cfg = replace(SMALL, relit_bank=True, coreset_ratio=1.0)
    plain = ResidualEngine(tiny_category, replace(lit_cfg, relit_bank=False), 1, cache)
    lit = ResidualEngine(tiny_category, lit_cfg, seed=1, cache=cache)
    train = tiny_category.train
    f, fb = plain.features(train), lit.bank_features()
    assert fb.shape == (8, 32, 8, 8) and lit.bank_images_per_normal == 2
    assert torch.equal(fb[0::2], f)  # image i at 2 i
    copies = lit.features_of_images([relit(read_image(s.path), i) for i, s in enumerate(train)])
    assert torch.allclose(fb[1::2], copies, atol=1e-5)  # its relit copy at 2 i + 1
    assert len(lit.bank) == 2 * len(plain.bank)
    assert plain.config.bank_key() != lit.config.bank_key()
    darker = [relit(read_image(train[0].path), 0)]  # image 0's copy is the darker view
    seen_lit = float(lit.residuals_of(lit.features_of_images(darker))[1].max())
    seen_plain = float(plain.residuals_of(plain.features_of_images(darker))[1].max())
    assert seen_lit < 1e-4 < seen_plain  # 0 up to the batch's rounding
    warm = ResidualEngine(tiny_category, lit_cfg, seed=1, cache=cache)
    assert torch.equal(warm.bank.features, lit.bank.features) and warm._extractor is None


def test_a_subclass_s_siblings_are_of_its_own_class(tiny_category, tmp_path: Path) -> None:
    class Marked(ResidualEngine):
        """A subclass (as the research wing's light-subspace engine)."""

    engine = Marked(tiny_category, SMALL, 1, DiskCache(tmp_path))
    other = replace(SMALL, coreset_ratio=0.5)
    assert type(engine.sibling(other)) is Marked and engine.sibling(other) is engine.sibling(other)
