"""Patch sets: an image as the set of its most anomalous patches, not their mean.

The anomaly-guided descriptors (:mod:`fsad.descriptors`) average the residuals r = f - m*
(Eq. 2) of an image's top-q patches into one vector. A defect type whose images differ among
themselves (a scratch here straight, there curved; a bent lead left or right) then has
support means that lie apart, and a single odd support image pulls its class's whole region
towards other types. A patch set keeps the ``k = q * h * w`` most anomalous patches one by
one (each L2-normalised, in decreasing anomaly order), so a head can compare images patch
to patch: :func:`fsad.heads.image_to_class` scores a query against the pool of all patches
of a class's support images (the image-to-class measure of DN4, Li et al., CVPR 2019), so
each query patch finds its nearest counterpart wherever it lies in the class.

Two kinds of patch vectors:

- ``"residual"``: r, what differs from the nearest normal patch;
- ``"feature"``: f minus the image's mean feature (as the centred feature block of
  :data:`fsad.methods.anomaly_guided.ANOMALY_BLOCKS`), what the defect looks like.

Rows are the ``k`` vectors flattened, ``(k * D,)``; tables of a category's whole test set are
cached per (engine settings, seed, patch-set settings).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from fsad.descriptors import n_top
from fsad.errors import ConfigError

if TYPE_CHECKING:
    from fsad.cache import DiskCache
    from fsad.data import Sample
    from fsad.engine import ResidualEngine

# bump when patch-set rows are computed differently: cached ones then miss
PATCHSETS_VERSION = 1
KINDS = ("residual", "feature")


@dataclass(frozen=True)
class PatchSetConfig:
    """Which patches make an image's patch set.

    Attributes:
        kind: ``"residual"`` (r = f - m*) or ``"feature"`` (f minus the image's mean f).
        frac: share q of the patch grid kept, the most anomalous first (k = q * h * w, at
            least 1; 16 patches of a 28 x 28 grid at q = 0.02, 63 of a 56 x 56 one).
    """

    kind: str = "residual"
    frac: float = 0.02

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"unknown patch-set kind '{self.kind}' (choose from {KINDS})")
        if not 0.0 < float(self.frac) <= 1.0:
            raise ConfigError(f"patch-set frac must lie in (0, 1], got {self.frac}")

    def cache_key(self) -> dict[str, Any]:
        """JSON-able key of these settings."""
        return asdict(self)


def patch_set(x: torch.Tensor, amap: torch.Tensor, frac: float) -> torch.Tensor:
    """The ``k`` most anomalous patch vectors of each image, L2-normalised.

    Args:
        x: ``(N, D, h, w)`` patch vectors.
        amap: ``(N, h, w)`` anomaly map on the same grid.
        frac: share of the ``h * w`` patches kept (k = :func:`fsad.descriptors.n_top`).

    Returns:
        ``(N, k, D)``, patches in decreasing anomaly order.
    """
    n, d = x.shape[:2]
    flat = x.reshape(n, d, -1)
    idx = amap.reshape(n, -1).topk(n_top(flat.shape[2], frac), dim=1).indices  # (N, k)
    picked = torch.gather(flat, 2, idx[:, None, :].expand(n, d, idx.shape[1]))  # (N, D, k)
    return F.normalize(picked.transpose(1, 2).float(), dim=2)


def patch_rows(
    residuals: torch.Tensor,
    features: torch.Tensor,
    amap: torch.Tensor,
    config: PatchSetConfig,
) -> torch.Tensor:
    """Flattened patch sets ``(N, k * D)`` float32 of residuals r or centred features f.

    Args:
        residuals: r ``(N, D, h, w)``; features f ``(N, D, h, w)``; amap ``(N, h, w)``.
    """
    if config.kind == "residual":
        x = residuals
    else:
        x = features - features.flatten(2).mean(2)[:, :, None, None]
    return patch_set(x, amap, config.frac).flatten(1)


def _engine_rows(engine: ResidualEngine, samples: Sequence[Sample], config: PatchSetConfig):
    """:func:`patch_rows` of samples through the engine's cached residuals and maps."""
    feats = engine.features(samples) if config.kind == "feature" else torch.zeros(0)
    return patch_rows(engine.residuals(samples), feats, engine.anomaly_maps(samples), config)


def patchset_table(
    engine: ResidualEngine, config: PatchSetConfig, cache: DiskCache | None = None
) -> dict[str, np.ndarray]:
    """Patch-set rows of every test image of the engine's category (cached).

    Key: the engine's residual settings and seed (:func:`fsad.descriptors.engine_key`), the
    test files' fingerprint, the patch-set settings and :data:`PATCHSETS_VERSION`.

    Returns:
        ``{path: (k * D,) float32}`` for every test image.
    """
    from fsad.descriptors import category_table, engine_key

    key = {
        "engine": engine_key(engine),
        "patchset": config.cache_key(),
        "version": PATCHSETS_VERSION,
    }
    return category_table(
        engine, "patchsets", key, lambda s: _engine_rows(engine, s, config), cache
    )


def patchset_of(
    table: dict[str, np.ndarray],
    samples: Sequence[Sample],
    engine: ResidualEngine,
    config: PatchSetConfig,
) -> np.ndarray:
    """Rows of ``table`` (from :func:`patchset_table`) for samples, ``(N, k * D)``; samples
    outside the category's test set are described through ``engine``."""
    from fsad.descriptors import table_rows

    return table_rows(table, samples, lambda s: _engine_rows(engine, s, config))
