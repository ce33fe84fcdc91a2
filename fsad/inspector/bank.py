"""The normal side of the inspector: residual engines on the normal images (at fit time) and
the engines of a saved model (at classify time).

At fit time the normal images and the support images form a ``folder`` category (normals =
``train``, support = ``test``), so :class:`fsad.engine.ResidualEngine` builds and caches
the features and coreset banks, and the support rows come from the grid's own code
(:func:`fsad.recipe.sample_rows`). A saved model keeps each engine's bank;
:class:`ModelEngine` is what :class:`fsad.blocks.Inputs` needs of an engine to describe new
images against it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from fsad.data import CategoryData, Sample
from fsad.engine import EngineConfig, ResidualEngine
from fsad.errors import DataError
from fsad.features import PatchFeatureExtractor
from fsad.inspector.inputs import Skipped, readable
from fsad.memory import MemoryBank, residuals


def _engine(
    normal: list[Path],
    support: list[Sample],
    config: EngineConfig,
    seed: int,
    cache: Any,
    extractor: PatchFeatureExtractor | None = None,
) -> ResidualEngine:
    """A residual engine whose train images are ``normal`` and test images ``support``.

    Raises:
        DataError: fewer than 2 normal images.
    """
    root = normal[0].parent if normal else Path(".")
    if len(normal) < 2:
        raise DataError(f"need at least 2 readable normal images, got {len(normal)}: {root}")
    train = [Sample(p, "normal", "train", "good") for p in normal]
    category = CategoryData("normal", "folder", root, train, list(support))
    return ResidualEngine(category, config, seed, cache, extractor=extractor)


def normal_engine(
    files: list[Path],
    support: list[Sample],
    config: EngineConfig,
    seed: int,
    cache: Any,
    skipped: list[Skipped],
) -> tuple[ResidualEngine, torch.Tensor]:
    """The residual engine of the normal images and their features f ``(N, D, h, w)``.

    Unreadable normal files are dropped (and added to ``skipped``) only when the engine hits
    one, so the common case decodes every image once (or never, on a cache hit).

    Raises:
        DataError: fewer than 2 readable normal images.
    """
    engine = _engine(files, support, config, seed, cache)
    try:
        return engine, engine.features(engine.category.train)
    except DataError:  # a corrupt file: check them all, keep the readable ones
        kept = readable(files, skipped)
        engine = _engine(kept, support, config, seed, cache, extractor=engine.extractor)
        return engine, engine.features(engine.category.train)


class ModelEngine:
    """A fitted engine: its settings, its stored coreset bank and the backbone.

    Has what :class:`fsad.blocks.Inputs` reads of an engine for in-memory images
    (``config``, ``device``, :meth:`features_of_images`, :meth:`residuals_of`).

    Args:
        config: the engine's settings.
        bank: its normal coreset memory bank ``(M, D)``.
        extractor: an already loaded backbone to share (None: loaded on first use).
    """

    def __init__(
        self, config: EngineConfig, bank: MemoryBank, extractor: PatchFeatureExtractor | None = None
    ) -> None:
        self.config = config
        self.bank = bank
        self.device = None
        self._extractor = extractor

    @property
    def extractor(self) -> PatchFeatureExtractor:
        """The backbone + patch feature module (built on first use)."""
        if self._extractor is None:
            self._extractor = PatchFeatureExtractor(self.config.features)
        return self._extractor

    def features_of_images(self, images: list[Any]) -> torch.Tensor:
        """Patch features f ``(N, D, h, w)`` of RGB images."""
        return self.extractor.embed_images(images, batch_size=max(1, len(images)))

    def residuals_of(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """r = f - m* (Eq. 2) against the bank and the map ||r||, ``(N, D, h, w)``, ``(N, h, w)``."""
        return residuals(features, self.bank)


def heatmap_floor(f: torch.Tensor, bank: MemoryBank, n: int = 8) -> float:
    """Median patch distance of up to ``n`` normal images ``f`` ``(N, D, h, w)`` to the
    bank: the cold end of the heat-map colours (the threshold is the hot end)."""
    idx = torch.linspace(0, len(f) - 1, min(n, len(f))).long()
    _, amap = residuals(f[idx], bank)
    return float(amap.median())
