"""Geometry of the anomaly map: how large, how long, how scattered and where a defect is.

The anomaly-guided descriptors (:mod:`fsad.descriptors`) average the residuals r = f - m*
(Eq. 2) of the most anomalous patches, and the zoom views (:mod:`fsad.zoom`) re-encode a
window around the peak. Both describe what the defect *looks like*; neither says how much of
the product it covers. Yet some defect types differ mostly there: bottle's ``broken_large``
and ``broken_small``, a thin ``scratch`` against a round ``contamination`` blob, a tire's
``cut`` against a ``hole``, a bottle's rim against its bottom.

Each map ``a`` (``(h, w)``, the engine's ||r|| per patch) is divided by its maximum,
``m = a / max a``, so the block is invariant to the anomaly score's scale, and summarised by
values in [0, 1]:

- extent: ``sqrt`` of the fraction of patches with ``m >= beta`` for each level ``beta``;
- radial profile: the largest ``m`` in each of ``rings`` concentric rings around the map's
  centre (rim or centre; invariant to rotations about the centre);
- shape of the region ``m >= shape_level`` (weights ``m``): roundness ``sqrt(l2 / l1)`` and
  length ``sqrt(l1)`` over the half side, from the eigenvalues ``l1 >= l2`` of its weighted
  covariance; ``1 / n`` for its ``n`` connected components;
- background: the median of ``m`` (low for one sharp defect, high for diffuse ones).

The block of each map is L2-normalised, like every descriptor block. Tables of a category's
whole test set are cached per (engine settings, seed, geometry settings).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from fsad.errors import ConfigError

if TYPE_CHECKING:
    from fsad.cache import DiskCache
    from fsad.data import Sample
    from fsad.engine import ResidualEngine

# bump when geometry rows are computed differently: cached ones then miss
GEOMETRY_VERSION = 1


@dataclass(frozen=True)
class GeometryConfig:
    """Settings of the anomaly-map geometry block.

    Attributes:
        levels: relative levels ``beta`` in (0, 1) of the extent curve.
        rings: concentric rings of the radial profile.
        shape_level: relative level of the region whose shape and components are measured.
    """

    levels: tuple[float, ...] = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    rings: int = 6
    shape_level: float = 0.5

    def __post_init__(self) -> None:
        levels = tuple(float(b) for b in self.levels)
        if not levels or any(not 0.0 < b < 1.0 for b in levels):
            raise ConfigError(f"geometry levels must be non-empty and in (0, 1), got {levels}")
        object.__setattr__(self, "levels", levels)
        if self.rings < 1:
            raise ConfigError(f"geometry needs at least one ring, got {self.rings}")
        if not 0.0 < self.shape_level < 1.0:
            raise ConfigError(f"geometry shape_level must be in (0, 1), got {self.shape_level}")

    @property
    def dim(self) -> int:
        """Length of one map's block: extent, rings, roundness, length, components, median."""
        return len(self.levels) + self.rings + 4

    def cache_key(self) -> dict[str, Any]:
        """JSON-able key of these settings."""
        return {**asdict(self), "levels": list(self.levels)}


def ring_index(shape: tuple[int, int], rings: int) -> np.ndarray:
    """``(h, w)`` ring of each cell: its centre's distance from the grid centre, divided by
    the largest such distance, cut into ``rings`` equal bands (0 = centre)."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    d = np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2)
    d = d / max(d.max(), 1e-12)
    return np.minimum((d * rings).astype(np.int64), rings - 1)


def region_shape(m: np.ndarray, level: float) -> tuple[float, float, float]:
    """Roundness, length and ``1 / components`` of the region ``m >= level`` of one map.

    Args:
        m: ``(h, w)`` map scaled to a maximum of 1 (so the region is never empty).

    Returns:
        ``sqrt(l2 / l1)`` (1 = round or a single cell), ``min(1, sqrt(l1) / (max(h, w) / 2))``
        and ``1 / n_components`` (8-connected).
    """
    mask = m >= level
    w = np.where(mask, m, 0.0)
    yy, xx = np.nonzero(mask)
    wt = w[yy, xx] / w[yy, xx].sum()
    pts = np.stack([yy, xx], axis=1).astype(np.float64)
    centred = pts - (wt[:, None] * pts).sum(0)
    cov = (wt[:, None, None] * centred[:, :, None] * centred[:, None, :]).sum(0)
    l2, l1 = np.clip(np.linalg.eigvalsh(cov), 0.0, None)  # ascending
    roundness = 1.0 if l1 <= 1e-12 else float(np.sqrt(l2 / l1))
    length = float(min(1.0, np.sqrt(l1) / (max(m.shape) / 2)))
    n_components = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)[0] - 1
    return roundness, length, 1.0 / max(n_components, 1)


def map_geometry(amap: torch.Tensor, config: GeometryConfig = GeometryConfig()) -> torch.Tensor:
    """Geometry blocks of anomaly maps.

    Args:
        amap: ``(N, h, w)`` non-negative anomaly maps ||r|| (Eq. 2).

    Returns:
        ``(N, config.dim)`` float32, each row L2-normalised.

    Raises:
        ConfigError: a map is not 3-D or has no positive value.
    """
    if amap.ndim != 3:
        raise ConfigError(f"anomaly maps must be (N, h, w), got shape {tuple(amap.shape)}")
    a = amap.detach().double().cpu().numpy()
    peak = a.reshape(len(a), -1).max(1)
    if (peak <= 0).any():
        raise ConfigError(f"anomaly map {int(np.argmin(peak))} has no positive value")
    rings = ring_index(a.shape[1:], config.rings)
    rows = []
    for m in a / peak[:, None, None]:
        extent = [np.sqrt((m >= b).mean()) for b in config.levels]
        radial = [m[rings == k].max() if (rings == k).any() else 0.0 for k in range(config.rings)]
        shape = region_shape(m, config.shape_level)
        rows.append([*extent, *radial, *shape, float(np.median(m))])
    return F.normalize(torch.tensor(rows, dtype=torch.float32), dim=1)


def geometry_table(
    engine: ResidualEngine, config: GeometryConfig, cache: DiskCache | None = None
) -> dict[str, np.ndarray]:
    """Geometry rows of every test image of the engine's category (cached).

    Key: the engine's residual settings and seed (:func:`fsad.descriptors.engine_key`), the
    test files' fingerprint, the geometry settings and :data:`GEOMETRY_VERSION`.

    Returns:
        ``{path: (config.dim,) float32}`` for every test image.
    """
    from fsad.descriptors import category_table, engine_key

    key = {
        "engine": engine_key(engine),
        "geometry": config.cache_key(),
        "version": GEOMETRY_VERSION,
    }
    return category_table(
        engine, "geometry", key, lambda s: map_geometry(engine.anomaly_maps(s), config), cache
    )


def geometry_of(
    table: dict[str, np.ndarray],
    samples: Sequence[Sample],
    engine: ResidualEngine,
    config: GeometryConfig,
) -> np.ndarray:
    """Rows of ``table`` (from :func:`geometry_table`) for samples, ``(N, config.dim)``;
    samples outside the category's test set are described through ``engine``."""
    from fsad.descriptors import table_rows

    return table_rows(table, samples, lambda s: map_geometry(engine.anomaly_maps(s), config))
