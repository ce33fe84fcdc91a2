"""Anomaly-guided image descriptors for few-shot defect-type classification.

A defective image is summarised where its anomaly map is high: the residuals r = f - m*
(Eq. 2) and raw patch features f of its most anomalous patches are averaged (top-k pooling),
and the shape of its anomaly-score distribution is kept as a short profile. Each block is
L2-normalised and the blocks are concatenated, so every block weighs the same in a cosine
or linear head (:mod:`fsad.heads`).

Descriptors of a category's whole defective test set are computed once per
(category, engine settings, seed) and cached, so every shot count reuses them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from fsad.errors import ConfigError

if TYPE_CHECKING:
    from fsad.cache import DiskCache
    from fsad.data import Sample
    from fsad.engine import ResidualEngine

# bump when the way descriptors are computed changes: cached descriptors then miss
DESCRIPTORS_VERSION = 1


@dataclass(frozen=True)
class DescriptorConfig:
    """Which blocks make an image descriptor.

    Attributes:
        residual_fracs: for each fraction q, the mean residual of the ``q * h * w`` most
            anomalous patches (one block per fraction).
        feature_fracs: same pooling of the raw patch features f.
        feature_centred: subtract the image's mean feature from each f block (keeps what
            is peculiar to the anomalous region, drops the product's global look).
        profile: length of the anomaly-score profile block (0 = none): the ``profile``
            largest patch scores, divided by the largest (shape of the defect's extent).
    """

    residual_fracs: tuple[float, ...] = (0.02,)
    feature_fracs: tuple[float, ...] = ()
    feature_centred: bool = False
    profile: int = 0

    def __post_init__(self) -> None:
        for name in ("residual_fracs", "feature_fracs"):
            fracs = tuple(float(q) for q in getattr(self, name))
            if any(not 0.0 < q <= 1.0 for q in fracs):
                raise ConfigError(f"{name} must lie in (0, 1], got {fracs}")
            object.__setattr__(self, name, fracs)
        if not (self.residual_fracs or self.feature_fracs or self.profile):
            raise ConfigError("a descriptor needs at least one block")
        if self.profile < 0:
            raise ConfigError(f"profile length must be >= 0, got {self.profile}")

    def cache_key(self) -> dict[str, Any]:
        key = asdict(self)
        key.update(residual_fracs=list(self.residual_fracs), feature_fracs=list(self.feature_fracs))
        return key


def n_top(n_patches: int, frac: float) -> int:
    """k = round(frac * n_patches), at least 1."""
    return max(1, int(round(frac * n_patches)))


def topk_pool(x: torch.Tensor, amap: torch.Tensor, frac: float) -> torch.Tensor:
    """Mean of ``x`` over each image's ``k`` most anomalous patches.

    Args:
        x: ``(N, D, h, w)`` patch vectors (residuals r or features f).
        amap: ``(N, h, w)`` anomaly map on the same grid.
        frac: fraction of the ``h * w`` patches kept (k = :func:`n_top`).

    Returns:
        ``(N, D)`` pooled vectors.
    """
    n, d = x.shape[:2]
    flat = x.reshape(n, d, -1)
    k = n_top(flat.shape[2], frac)
    idx = amap.reshape(n, -1).topk(k, dim=1).indices  # (N, k)
    picked = torch.gather(flat, 2, idx[:, None, :].expand(n, d, k))
    return picked.mean(2)


def weighted_pool(x: torch.Tensor, amap: torch.Tensor, power: float = 1.0) -> torch.Tensor:
    """Anomaly-weighted mean of patch vectors, weights ``amap ** power`` summing to 1.

    Args:
        x: ``(N, D, h, w)``; amap ``(N, h, w)`` non-negative.

    Returns:
        ``(N, D)``.
    """
    n, d = x.shape[:2]
    w = amap.reshape(n, 1, -1).clamp_min(0) ** power
    w = w / w.sum(2, keepdim=True).clamp_min(1e-12)
    return (x.reshape(n, d, -1) * w).sum(2)


def anomaly_profile(amap: torch.Tensor, length: int) -> torch.Tensor:
    """The ``length`` largest patch scores of each map divided by its largest, ``(N, length)``."""
    n = amap.shape[0]
    top = amap.reshape(n, -1).topk(min(length, amap[0].numel()), dim=1).values
    return top / top[:, :1].clamp_min(1e-12)


def describe(
    residuals: torch.Tensor,
    features: torch.Tensor,
    amap: torch.Tensor,
    config: DescriptorConfig = DescriptorConfig(),
) -> torch.Tensor:
    """Image descriptors from residuals, features and anomaly maps.

    Args:
        residuals: r = f - m* ``(N, D, h, w)``.
        features: f ``(N, D, h, w)`` (unused when ``config.feature_fracs`` is empty).
        amap: ``(N, h, w)``.
        config: the blocks to build.

    Returns:
        ``(N, D')`` float32: the L2-normalised blocks concatenated.
    """
    blocks = [topk_pool(residuals, amap, q) for q in config.residual_fracs]
    for q in config.feature_fracs:
        pooled = topk_pool(features, amap, q)
        if config.feature_centred:
            pooled = pooled - features.flatten(2).mean(2)
        blocks.append(pooled)
    if config.profile:
        blocks.append(anomaly_profile(amap, config.profile))
    return torch.cat([F.normalize(b.float(), dim=1) for b in blocks], dim=1)


def describe_samples(
    engine: ResidualEngine,
    samples: Sequence[Sample],
    config: DescriptorConfig = DescriptorConfig(),
    batch: int = 32,
) -> torch.Tensor:
    """Descriptors ``(N, D')`` of ``samples`` from the engine's residuals (not cached here)."""
    out = []
    for start in range(0, len(samples), batch):
        part = list(samples[start : start + batch])
        feats = engine.features(part) if config.feature_fracs else torch.zeros(0)
        out.append(describe(engine.residuals(part), feats, engine.anomaly_maps(part), config))
    return torch.cat(out)


def engine_key(engine: ResidualEngine) -> dict[str, Any]:
    """What determines an engine's residuals: feature and coreset settings, seed, bank files."""
    from fsad.cache import files_fingerprint

    cfg = engine.config
    return {
        "features": cfg.features.cache_key(),
        "bank": cfg.bank_key(),
        "exact": cfg.exact_search,
        "half": cfg.half_residuals,
        "seed": int(engine.seed),
        "bank_files": files_fingerprint([s.path for s in engine.category.train]),
    }


def category_descriptors(
    engine: ResidualEngine,
    config: DescriptorConfig = DescriptorConfig(),
    cache: DiskCache | None = None,
    batch: int = 32,
) -> dict[str, np.ndarray]:
    """Descriptors of every test image of the engine's category (cached).

    All test images are described (labels are never looked at), so any support/query split
    of them, for any shot count, indexes into one cache entry. Key: :func:`engine_key`, the
    test files' fingerprint, the descriptor settings and :data:`DESCRIPTORS_VERSION`.

    Returns:
        ``{path: (D',) float32}`` for every test image.
    """
    from fsad.cache import files_fingerprint

    samples = list(engine.category.test)
    cache = cache if cache is not None else engine.cache
    key = {
        "engine": engine_key(engine),
        "samples": files_fingerprint([s.path for s in samples]),
        "descriptor": config.cache_key(),
        "version": DESCRIPTORS_VERSION,
    }

    def compute() -> dict[str, Any]:
        return {"x": describe_samples(engine, samples, config, batch)}

    x = cache.load_or_compute("descriptors", key, compute)["x"].numpy()
    return {str(s.path): x[i] for i, s in enumerate(samples)}


def descriptors_of(
    table: dict[str, np.ndarray],
    samples: Sequence[Sample],
    engine: ResidualEngine | None = None,
    config: DescriptorConfig = DescriptorConfig(),
) -> np.ndarray:
    """Rows of ``table`` (from :func:`category_descriptors`) for ``samples``, ``(N, D')``.

    Samples missing from the table (images outside the category's test set) are described
    directly through ``engine`` when given.

    Raises:
        ConfigError: a sample is missing and no engine was given.
    """
    missing = [s for s in samples if str(s.path) not in table]
    if missing:
        if engine is None:
            raise ConfigError(f"no descriptor for {missing[0].path} (not a test image)")
        extra = describe_samples(engine, missing, config).numpy()
        table = {**table, **{str(s.path): extra[i] for i, s in enumerate(missing)}}
    return np.stack([table[str(s.path)] for s in samples])
