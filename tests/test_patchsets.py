"""Patch sets (fsad.patchsets) and the image-to-class head (fsad.heads): known values on
tiny inputs, invariants, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fsad.errors import ConfigError
from fsad.heads import image_to_class, multiply_proba, patch_expert
from fsad.patchsets import PatchSetConfig, patch_rows, patch_set


def test_patch_set_keeps_the_most_anomalous_patches_in_order() -> None:
    """Patch vectors are one-hot codes of their cell; the map ranks cells 5 > 2 > the rest."""
    x = torch.eye(6).reshape(6, 2, 3)[None]  # (1, D=6, 2, 3): cell i holds e_i
    amap = torch.tensor([[[0.0, 0.1, 0.7], [0.2, 0.3, 0.9]]])  # flat order 0..5
    out = patch_set(x, amap, frac=2 / 6)
    assert out.shape == (1, 2, 6)
    np.testing.assert_array_equal(out[0].argmax(1).numpy(), [5, 2])  # 0.9 first, then 0.7
    np.testing.assert_allclose(out.norm(dim=2).numpy(), 1.0, rtol=1e-6)


def test_patch_rows_flatten_and_centre_features() -> None:
    g = torch.Generator().manual_seed(0)
    r, f = torch.randn(3, 4, 5, 5, generator=g), torch.randn(3, 4, 5, 5, generator=g)
    a = torch.rand(3, 5, 5, generator=g)
    rows = patch_rows(r, f, a, PatchSetConfig("residual", frac=0.2))
    assert rows.shape == (3, 5 * 4)  # k = round(0.2 * 25) = 5 patches of D = 4
    feat = patch_rows(r, f, a, PatchSetConfig("feature", frac=0.2))
    # the centred features of the same cells: adding a constant to every f changes nothing
    shifted = patch_rows(r, f + 7.0, a, PatchSetConfig("feature", frac=0.2))
    np.testing.assert_allclose(shifted.numpy(), feat.numpy(), atol=1e-5)
    assert not np.allclose(feat.numpy(), rows.numpy())


def test_config_errors_name_the_value() -> None:
    with pytest.raises(ConfigError, match="'texture'"):
        PatchSetConfig("texture")
    with pytest.raises(ConfigError, match="1.5"):
        PatchSetConfig(frac=1.5)


def _set(*patches: list[float]) -> np.ndarray:
    return np.concatenate([np.asarray(p, dtype=float) for p in patches])


def test_image_to_class_known_values() -> None:
    """Class 0's pool holds e0 and e1, class 1's holds e2 and (e0 + e2)/sqrt 2. A query of
    patches e0, e2 scores mean(1, 0) = 0.5 for class 0 and mean(cos45, 1) for class 1."""
    support = np.stack([_set([1, 0, 0], [0, 1, 0]), _set([0, 0, 1], [1, 0, 1])])
    query = _set([1, 0, 0], [0, 0, 1])[None]
    s = image_to_class(support, np.array([0, 1]), query, 2, dim=3)
    np.testing.assert_allclose(s, [[0.5, (np.sqrt(0.5) + 1.0) / 2]])


def test_image_to_class_pools_patches_across_a_class() -> None:
    """A query made of one patch from each of two support images of class 0 matches class 0
    perfectly, although neither image alone, nor their mean, equals it."""
    rng = np.random.default_rng(0)
    a, b, c = rng.normal(size=(3, 2, 8))
    support = np.stack([a.ravel(), b.ravel(), c.ravel()])
    query = np.concatenate([a[0], b[1]])[None]
    s = image_to_class(support, np.array([0, 0, 1]), query, 2, dim=8)
    assert s[0, 0] == pytest.approx(1.0) and s[0, 1] < 1.0


def test_image_to_class_ignores_patch_scale_and_support_order() -> None:
    rng = np.random.default_rng(1)
    support, query, labels = rng.normal(size=(6, 12)), rng.normal(size=(4, 12)), np.arange(6) % 3
    s = image_to_class(support, labels, query, 3, dim=4)
    perm = rng.permutation(6)
    np.testing.assert_allclose(image_to_class(support[perm], labels[perm], query, 3, 4), s)
    np.testing.assert_allclose(image_to_class(3.0 * support, labels, 0.5 * query, 3, 4), s)
    p = patch_expert(support, labels, query, 3, dim=4, scale=20.0)
    np.testing.assert_allclose(p.sum(1), 1.0)
    np.testing.assert_array_equal(p.argmax(1), s.argmax(1))


def test_image_to_class_errors() -> None:
    with pytest.raises(ValueError, match="10 / 8 values"):
        image_to_class(np.zeros((2, 10)), np.array([0, 1]), np.zeros((1, 8)), 2, dim=4)
    with pytest.raises(ValueError, match=r"counts \[2, 0\]"):
        image_to_class(np.ones((2, 8)), np.array([0, 0]), np.ones((1, 8)), 2, dim=4)


def test_multiply_proba_is_the_renormalised_product() -> None:
    p = np.array([[0.5, 0.5], [0.9, 0.1]])
    q = np.array([[0.2, 0.8], [0.5, 0.5]])
    np.testing.assert_allclose(multiply_proba([p, q]), [[0.2, 0.8], [0.9, 0.1]], atol=1e-9)
    with pytest.raises(ValueError, match="at least one"):
        multiply_proba([])
