"""Backbone loading (offline weights only) and PatchCore patch features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fsad.errors import ConfigError, FsadError
from fsad.features import (
    FeatureConfig,
    PatchFeatureExtractor,
    load_backbone,
    preprocess,
    resolve_weights,
)

SMALL = FeatureConfig(resize=72, crop=64, dim=32)


def test_unknown_backbone_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="unknown backbone 'no_such_net'"):
        load_backbone("no_such_net")


def test_backbone_without_weights_never_downloads() -> None:
    with pytest.raises(FsadError, match="'resnet18' has no packaged weights"):
        load_backbone("resnet18")
    with pytest.raises(ConfigError, match="not found: .*missing.pth"):
        resolve_weights("resnet18", "/nonexistent/missing.pth")


def test_local_weights_file_is_loaded(tmp_path: Path) -> None:
    import timm

    src = timm.create_model("resnet18", pretrained=False)
    path = tmp_path / "r18.pth"
    torch.save({"state_dict": src.state_dict()}, path)
    model = load_backbone("resnet18", path, out_indices=(2, 3))
    assert torch.equal(model.state_dict()["conv1.weight"], src.state_dict()["conv1.weight"])
    out = model(torch.zeros(1, 3, 64, 64))
    assert [o.shape[1] for o in out] == [128, 256]
    bad = tmp_path / "bad.pth"
    torch.save({"x": torch.zeros(3)}, bad)
    with pytest.raises(ConfigError, match="does not match backbone 'resnet18'"):
        load_backbone("resnet18", bad)


def test_packaged_lite0_weights_load_with_expected_channels() -> None:
    model = load_backbone("lite0")  # alias of tf_efficientnet_lite0
    maps = model(torch.zeros(1, 3, 64, 64))
    assert [tuple(m.shape[1:]) for m in maps] == [(40, 8, 8), (112, 4, 4)]
    # trained BatchNorm statistics, not the init values
    assert not torch.all(model.state_dict()["bn1.running_var"] == 1)


def test_config_validation_and_alias() -> None:
    assert FeatureConfig(backbone="lite1").backbone == "tf_efficientnet_lite1"
    with pytest.raises(ConfigError, match="crop"):
        FeatureConfig(resize=100, crop=200)
    key = FeatureConfig().cache_key()
    assert key["dim"] == 384 and key["weights_file"]


def test_preprocess_resizes_crops_and_normalises() -> None:
    img = np.full((90, 120, 3), 255, dtype=np.uint8)
    x = preprocess([img, img], SMALL)
    assert x.shape == (2, 3, 64, 64) and x.dtype == torch.float32
    expected = (1 - 0.485) / 0.229
    assert torch.allclose(x[0, 0], torch.full((64, 64), expected), atol=1e-5)
    with pytest.raises(ConfigError, match="RGB"):
        preprocess([np.zeros((10, 10), dtype=np.uint8)], SMALL)


def test_patch_features_shape_locality_and_determinism() -> None:
    ex = PatchFeatureExtractor(SMALL, device="cpu")
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 255, size=(3, 72, 72, 3), dtype=np.uint8)
    f = ex.embed_images(imgs, batch_size=2)
    assert f.shape == (3, 32, 8, 8) and f.dtype == torch.float32
    assert torch.equal(f, ex.embed_images(imgs, batch_size=2))  # same input, same numbers
    # per-image features do not depend on the batch they were computed in
    assert torch.allclose(f[2:], ex.embed_images(imgs[2:]), atol=1e-5)
    assert not torch.allclose(f[0], f[1])


@pytest.mark.parametrize(("n_in", "n_out"), [(360, 384), (1008, 384), (768, 384), (7, 3)])
def test_pool_matrix_is_adaptive_average_pooling(n_in: int, n_out: int) -> None:
    from fsad.features import pool_matrix

    x = torch.randn(5, n_in, generator=torch.Generator().manual_seed(0))
    want = torch.nn.functional.adaptive_avg_pool1d(x[:, None], n_out)[:, 0]
    torch.testing.assert_close(x @ pool_matrix(n_in, n_out), want, atol=1e-5, rtol=1e-5)
