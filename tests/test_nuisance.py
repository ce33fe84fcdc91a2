"""Normal-image transforms (fsad.nuisance): known values, invariants, errors, cached rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fsad.errors import ConfigError
from fsad.nuisance import (
    NuisanceConfig,
    apply_transform,
    fit_transform,
    normal_samples,
)


def test_centre_subtracts_the_normal_mean() -> None:
    normal = np.array([[1.0, 2.0], [3.0, 4.0]])
    mu, w = fit_transform(normal, "centre")
    assert w is None
    np.testing.assert_allclose(apply_transform(np.array([[2.0, 3.0], [0.0, 0.0]]), mu, w),
                               [[0.0, 0.0], [-2.0, -3.0]])  # fmt: skip


def test_whiten_is_the_shrunk_inverse_square_root_of_the_covariance() -> None:
    rng = np.random.default_rng(0)
    normal = rng.normal(size=(40, 6)) * np.array([8.0, 1, 1, 1, 1, 0.5])
    mu, w = fit_transform(normal, "whiten")
    sigma = np.cov(normal.T)
    lam = np.trace(sigma) / 6
    vals, vecs = np.linalg.eigh(sigma + lam * np.eye(6))
    np.testing.assert_allclose(w, vecs @ np.diag(vals**-0.5) @ vecs.T, atol=1e-12)
    np.testing.assert_allclose(mu, normal.mean(0))


def test_whiten_shrinks_the_direction_normals_vary_along() -> None:
    """Normal rows vary along e0 only: after whitening, a step along e0 is shorter than the
    same step along e1, and directions normals never take keep their relative lengths."""
    rng = np.random.default_rng(1)
    normal = np.zeros((30, 4))
    normal[:, 0] = rng.normal(scale=5.0, size=30)
    mu, w = fit_transform(normal, "whiten")
    step = apply_transform(mu + np.eye(4), mu, w)  # the unit steps, row by row
    lengths = np.linalg.norm(step, axis=1)
    assert lengths[0] < 0.5 * lengths[1]
    np.testing.assert_allclose(lengths[1:], lengths[1])


def test_whiten_works_with_fewer_normals_than_dimensions() -> None:
    normal = np.random.default_rng(2).normal(size=(5, 50))
    mu, w = fit_transform(normal, "whiten")
    assert w.shape == (50, 50) and np.all(np.isfinite(w))
    np.testing.assert_allclose(w, w.T, atol=1e-12)
    assert np.linalg.eigvalsh(w).min() > 0  # invertible: no direction is dropped


def test_errors_name_the_value() -> None:
    with pytest.raises(ConfigError, match="'pca'"):
        NuisanceConfig(kind="pca")
    with pytest.raises(ConfigError, match="'pca'"):
        fit_transform(np.ones((3, 2)), "pca")
    with pytest.raises(ConfigError, match=r"\(1, 3\)"):
        fit_transform(np.ones((1, 3)), "whiten")
    with pytest.raises(ConfigError, match="do not vary"):
        fit_transform(np.ones((4, 3)), "whiten")
    with pytest.raises(ConfigError, match="n_normals must be >= 2, got 1"):
        NuisanceConfig(n_normals=1)


def test_normal_samples_are_evenly_spaced_in_file_order() -> None:
    files = [Path(f"{i:03d}.png") for i in range(10)]
    assert normal_samples(files, 4) == [files[0], files[3], files[6], files[9]]
    assert normal_samples(files, 20) == files
