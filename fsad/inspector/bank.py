"""The normal side of the inspector: PatchCore features of the normal images and their
coreset memory bank, both from :class:`fsad.engine.ResidualEngine` (so they are cached).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from fsad.data import CategoryData, Sample
from fsad.engine import EngineConfig, ResidualEngine
from fsad.errors import DataError
from fsad.features import PatchFeatureExtractor
from fsad.inspector.config import InspectorConfig
from fsad.inspector.inputs import Skipped, readable
from fsad.memory import MemoryBank, residuals


def _engine(
    paths: list[Path],
    root: Path,
    config: InspectorConfig,
    weights: str | None,
    cache: Any,
    extractor: PatchFeatureExtractor | None = None,
) -> ResidualEngine:
    """A residual engine whose train images are ``paths`` (a ``folder`` category at ``root``).

    Raises:
        DataError: fewer than 2 paths.
    """
    if len(paths) < 2:
        raise DataError(f"need at least 2 readable normal images, got {len(paths)}: {root}")
    samples = [Sample(p, "normal", "train", "good") for p in paths]
    category = CategoryData("normal", "folder", root, samples, [])
    ecfg = EngineConfig(features=config.feature_config(weights), coreset_ratio=config.coreset_ratio)
    return ResidualEngine(category, ecfg, config.seed, cache, extractor=extractor)


def normal_features(
    files: list[Path],
    config: InspectorConfig,
    weights: str | None,
    cache: Any,
    skipped: list[Skipped],
) -> tuple[ResidualEngine, torch.Tensor, list[Path]]:
    """A residual engine on the normal images, their features and the files used.

    Unreadable files are dropped (and added to ``skipped``) only when the engine hits one,
    so the common case decodes every image once (or never, on a cache hit).

    Args:
        files: normal image files.
        config: feature, coreset and seed settings.
        weights: local backbone weights file (None: packaged).
        cache: :class:`fsad.cache.DiskCache` or None (the default cache).
        skipped: receives ``(path, reason)`` for each unreadable file.

    Returns:
        The engine, features f ``(N, D, h, w)`` and the ``N`` files used.

    Raises:
        DataError: fewer than 2 readable normal images.
    """
    root = files[0].parent
    engine = _engine(files, root, config, weights, cache)
    try:
        return engine, engine.features(engine.category.train), files
    except DataError:  # a corrupt file: check them all, keep the readable ones
        kept = readable(files, skipped)
        engine = _engine(kept, root, config, weights, cache, extractor=engine.extractor)
        return engine, engine.features(engine.category.train), kept


def heatmap_floor(f: torch.Tensor, bank: MemoryBank, n: int = 8) -> float:
    """Median patch distance of up to ``n`` normal images ``f`` ``(N, D, h, w)`` to the
    bank: the cold end of the heat-map colours (the threshold is the hot end)."""
    idx = torch.linspace(0, len(f) - 1, min(n, len(f))).long()
    _, amap = residuals(f[idx], bank)
    return float(amap.median())
