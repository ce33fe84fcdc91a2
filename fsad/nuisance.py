"""Normal-image statistics of the descriptors: what varies when there is no defect.

A descriptor block of a defective image mixes the defect's signal with nuisance: how the
product's top-q residuals r = f - m* (Eq. 2) and the zoom windows around its anomaly peak
vary from image to image anyway (lighting, pose, texture of the part, the coreset's coverage).
A factory has many normal images, so that nuisance can be measured without any defect
label: the same descriptors of normal training images (described exactly as the real test
images, :func:`fsad.synthtask.image_rows`) give a mean ``mu`` and a covariance ``Sigma``
per block group. Two label-free transforms of a group's rows ``x`` follow:

- ``"centre"``: ``x - mu``, what differs from a normal image's descriptor;
- ``"whiten"``: ``(x - mu) (Sigma + lambda I)^(-1/2)`` with ``lambda`` the mean eigenvalue
  of ``Sigma`` (shrinkage, so a hundred normal images, or ten, suffice in any dimension):
  directions along which normal images vary much are scaled down.

The normal images are ``n_normals`` training images evenly spaced in file order (all of
them when there are fewer: metal_nut's bank, and so its "training" set, is its 10 good test
images, :attr:`fsad.data.CategoryData.train`). They fed
the coreset bank, so their residuals are those of bank members against the coreset (10 %
of the patches at 224 px): smaller than a new normal image's, but along the same directions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fsad.errors import ConfigError

if TYPE_CHECKING:
    from fsad.data import Sample
    from fsad.engine import ResidualEngine
    from fsad.methods.anomaly_guided import Recipe

# bump when normal rows are computed differently: cached ones then miss
NUISANCE_VERSION = 1
KINDS = ("centre", "whiten")


@dataclass(frozen=True)
class NuisanceConfig:
    """Settings of the normal-image transform.

    Attributes:
        kind: ``"centre"`` or ``"whiten"`` (see the module docstring).
        n_normals: normal training images described (evenly spaced in file order).
    """

    kind: str = "whiten"
    n_normals: int = 100

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"unknown nuisance transform '{self.kind}' (choose from {KINDS})")
        if self.n_normals < 2:
            raise ConfigError(f"n_normals must be >= 2, got {self.n_normals}")

    def cache_key(self) -> dict[str, Any]:
        """JSON-able key of the normal rows (the kind does not change them)."""
        return {"n_normals": self.n_normals}


def normal_samples(train: Sequence[Sample], n: int) -> list[Sample]:
    """``n`` training samples evenly spaced in file order (all of them when fewer)."""
    if len(train) <= n:
        return list(train)
    idx = np.linspace(0, len(train) - 1, n).round().astype(int)
    return [train[i] for i in idx]


def normal_rows(
    engine: ResidualEngine, recipe: Recipe, config: NuisanceConfig = NuisanceConfig()
) -> np.ndarray:
    """Descriptors ``(n, D')`` of the category's normal images, block for block as
    :func:`fsad.methods.anomaly_guided.task_descriptors` builds them (cached).

    Key: :func:`fsad.synthtask.recipe_key`, the chosen files' fingerprint, ``n_normals`` and
    :data:`NUISANCE_VERSION`.
    """
    from fsad.cache import files_fingerprint
    from fsad.data import read_image
    from fsad.synthtask import image_rows, recipe_key

    samples = normal_samples(engine.category.train, config.n_normals)
    key = {
        "recipe": recipe_key(engine, recipe),
        "normals": files_fingerprint([s.path for s in samples]),
        "nuisance": config.cache_key(),
        "version": NUISANCE_VERSION,
    }

    def compute(batch: int = 16) -> dict[str, Any]:
        rows = []
        for start in range(0, len(samples), batch):
            images = [read_image(s.path) for s in samples[start : start + batch]]
            rows.append(image_rows(engine, recipe, images))
        return {"x": torch.from_numpy(np.concatenate(rows))}

    return engine.cache.load_or_compute("normalrows", key, compute)["x"].numpy()


def fit_transform(normal: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Mean ``(D,)`` and, for ``"whiten"``, the matrix ``(D, D)`` of the transform.

    Args:
        normal: ``(N, D)`` rows of one block group of normal images, N >= 2.
        kind: ``"centre"`` or ``"whiten"``.

    Returns:
        ``(mu, W)``; ``W`` is ``None`` for ``"centre"``. Rows map to ``(x - mu) @ W``.
    """
    if kind not in KINDS:
        raise ConfigError(f"unknown nuisance transform '{kind}' (choose from {KINDS})")
    normal = np.asarray(normal, dtype=np.float64)
    if normal.ndim != 2 or len(normal) < 2:
        raise ConfigError(f"need (N >= 2, D) normal rows, got shape {normal.shape}")
    mu = normal.mean(0)
    if kind == "centre":
        return mu, None
    centred = normal - mu
    # eigenvectors of Sigma from the thin SVD: Sigma = V diag(s^2 / (N - 1)) V^T
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    eig = s**2 / (len(normal) - 1)
    lam = eig.sum() / normal.shape[1]  # the mean eigenvalue of Sigma (trace / D)
    if lam <= 0:
        raise ConfigError("the normal rows do not vary: nothing to whiten")
    # (Sigma + lam I)^(-1/2) = V diag((eig + lam)^(-1/2)) V^T + (I - V V^T) lam^(-1/2)
    w = np.eye(normal.shape[1]) / np.sqrt(lam)
    w += vt.T @ np.diag(1.0 / np.sqrt(eig + lam) - 1.0 / np.sqrt(lam)) @ vt
    return mu, w


def apply_transform(x: np.ndarray, mu: np.ndarray, w: np.ndarray | None) -> np.ndarray:
    """``(x - mu) @ W`` for rows ``x`` ``(N, D)`` (``W`` = identity when ``None``)."""
    out = np.asarray(x, dtype=np.float64) - mu
    return out if w is None else out @ w
