"""The residual engine: cached patch features, coreset bank and residuals of one category.

``ResidualEngine(category, config, seed)`` is the single entry point the rest of fsad uses
for PatchCore quantities (paper sections 3.2 and 3.4):

- ``features(samples)``   f, ``(N, D, h, w)``
- ``bank``                coreset memory bank of the category's normal images (per seed)
- ``residuals(samples)``  r = f - m* (Eq. 2), ``(N, D, h, w)``
- ``anomaly_maps``        ||r|| per patch, ``(N, h, w)``; ``scores`` = max of the map, ``(N,)``

Caching: a category's whole test set and whole train set are each one cache entry (features,
and residuals per seed); any subset of them indexes into that entry, so another shot count
never recomputes anything. Any other list of samples gets its own entry. Every key holds the
files' content fingerprint, the feature configuration (backbone, weights file,
layers, resolution, dim), the coreset settings (ratio, projection, starts, seed) and
:data:`ENGINE_VERSION`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from fsad.cache import DiskCache, files_fingerprint
from fsad.data import CategoryData, Sample, read_image
from fsad.errors import ConfigError
from fsad.features import FeatureConfig, PatchFeatureExtractor, product_side
from fsad.light import light_key, relit
from fsad.memory import CORESET_VERSION, SEARCH_VERSION, MemoryBank, build_bank, residuals

# bump when the way features, banks or residuals are computed changes: old entries then miss
ENGINE_VERSION = 2  # 2: channels-last backbone, pooling as a matrix product


@dataclass(frozen=True)
class EngineConfig:
    """Settings of the residual engine.

    Attributes:
        features: backbone, layers, resolution and dimension of the patch features.
        coreset_ratio: fraction of normal patches kept in the bank (PatchCore: 0.1).
        exact_search: exact search (True) or faiss HNSW (approximate).
        half_residuals: store residuals as float16 on disk (returned as float32; the
            anomaly map is computed before rounding).
        relit_bank: the bank is built from every normal image followed by one relit copy of
            it (:func:`fsad.light.relit`, the three lights taking turns), so the coreset
            also covers the normals under other light (photometric round 4).
    """

    features: FeatureConfig = FeatureConfig()
    coreset_ratio: float = 0.1
    exact_search: bool = True
    half_residuals: bool = True
    relit_bank: bool = False

    def bank_key(self) -> dict[str, Any]:
        key = {
            "ratio": float(self.coreset_ratio),
            # the removed settings proj_dim and n_starts keep their (only) values in the key
            "proj_dim": 128,
            "n_starts": 10,
            "coreset_version": CORESET_VERSION,
        }
        if self.relit_bank:  # added later: absent when off, so earlier keys stay valid
            key["relit"] = light_key()
        return key


def resolve_side(config: EngineConfig, category: CategoryData) -> EngineConfig:
    """``config`` with the fixed framing's side resolved from the category's normal images
    (:func:`fsad.features.product_side`); any other framing, or a side already set, as is."""
    features = config.features
    if features.framing != "fixed" or features.side:
        return config
    return replace(config, features=replace(features, side=product_side(category.train)))


class ResidualEngine:
    """Features, memory bank and residuals of one category, cached on disk.

    Args:
        category: the category's samples (``train`` feeds the bank).
        config: engine settings.
        seed: coreset seed (the paper averages seeds 1-5).
        cache: disk cache; None uses ``DiskCache()`` (``$FSAD_CACHE`` or ``~/.cache/fsad``);
            pass ``DiskCache(enabled=False)`` to disable.
        device: torch device for the backbone (default: CUDA when available, else CPU).
        extractor: an already loaded backbone to share (its feature settings must be
            ``config.features``); None loads one on first use.

    Raises:
        ConfigError: no normal images, or an extractor built for other feature settings.
    """

    def __init__(
        self,
        category: CategoryData,
        config: EngineConfig = EngineConfig(),
        seed: int = 1,
        cache: DiskCache | None = None,
        device: Any = None,
        extractor: PatchFeatureExtractor | None = None,
    ) -> None:
        if not category.train:
            raise ConfigError(f"category '{category.name}' has no normal images for the bank")
        config = resolve_side(config, category)
        if extractor is not None and extractor.config != config.features:
            raise ConfigError(
                f"the shared extractor computes {extractor.config}, not {config.features}"
            )
        self.category = category
        self.config = config
        self.seed = int(seed)
        self.cache = cache if cache is not None else DiskCache()
        self.device = device
        self._extractor: PatchFeatureExtractor | None = extractor
        self._bank: MemoryBank | None = None
        self._bank_indices = torch.empty(0, dtype=torch.long)
        self._memo: dict[str, dict[str, torch.Tensor]] = {}
        self._groups = {"test": list(category.test), "train": list(category.train)}
        self._siblings: dict[EngineConfig, ResidualEngine] = {}

    def sibling(self, config: EngineConfig) -> ResidualEngine:
        """An engine of the same category, seed, cache and device with other settings.

        Memoised per ``config``, so every task of this (category, seed) shares one (and its
        in-memory features and residuals); ``config`` equal to this engine's returns self.
        A fixed framing without its side gets this engine's (the same product's).
        """
        if config.features.framing == "fixed" and not config.features.side:
            side = self.config.features.side
            if side:
                config = replace(config, features=replace(config.features, side=side))
        if config == self.config:
            return self
        if config not in self._siblings:
            self._siblings[config] = type(self)(  # a subclass's siblings are its own kind
                self.category, config, self.seed, self.cache, self.device
            )
        return self._siblings[config]

    def on_category(self, category: CategoryData) -> ResidualEngine:
        """An engine of the same settings, seed, cache and device on another category (e.g.
        its images with their light undone, :mod:`fsad.light_test`), sharing the backbone
        when it is loaded; not memoised."""
        return type(self)(category, self.config, self.seed, self.cache, self.device,
                          extractor=self._extractor)  # fmt: skip

    # ----------------------------------------------------------------- lazy parts
    @property
    def extractor(self) -> PatchFeatureExtractor:
        """The backbone + patch feature module (built on first use)."""
        if self._extractor is None:
            self._extractor = PatchFeatureExtractor(self.config.features, self.device)
        return self._extractor

    def _features_key(self, samples: Sequence[Sample]) -> dict[str, Any]:
        return {
            "files": files_fingerprint([s.path for s in samples]),
            "features": self.config.features.cache_key(),
            "version": ENGINE_VERSION,
        }

    def _bank_key(self) -> dict[str, Any]:
        key = self._features_key(self._groups["train"])
        key.update(self.config.bank_key(), seed=self.seed, kind="bank")
        return key

    @property
    def bank(self) -> MemoryBank:
        """Coreset memory bank of the category's normal images for this seed (cached)."""
        if self._bank is None:

            def compute() -> dict[str, Any]:
                cfg = self.config
                bank, idx = build_bank(
                    self.bank_features(),
                    cfg.coreset_ratio,
                    self.seed,
                    exact=cfg.exact_search,
                )
                return {**bank.to_dict(), "indices": idx}

            blob = self.cache.load_or_compute("bank", self._bank_key(), compute)
            self._bank = MemoryBank(blob["features"], exact=self.config.exact_search)
            self._bank_indices = blob["indices"].long()
        return self._bank

    @property
    def bank_indices(self) -> torch.Tensor:
        """``(M,)`` index of each bank member among the flattened patches of
        :meth:`bank_features`."""
        self.bank  # noqa: B018  (loads or builds the bank)
        return self._bank_indices

    @property
    def bank_images_per_normal(self) -> int:
        """How many of :meth:`bank_features`' images each normal image gives (2 when the
        bank is relit: the image, then its relit copy)."""
        return 2 if self.config.relit_bank else 1

    def bank_features(self) -> torch.Tensor:
        """The features the coreset is drawn from, ``(N * k, D, h, w)`` with ``k`` =
        :attr:`bank_images_per_normal`: the normal images' f, each followed by its relit
        copy's when ``config.relit_bank`` (image ``i`` at ``k * i``, its copy at ``k * i + 1``)."""
        train = self._groups["train"]
        f = self.features(train)
        if not self.config.relit_bank:
            return f
        key = self._features_key(train)
        key.update(relit=light_key(), kind="relit")
        lit = self.cache.load_or_compute("features", key, lambda: {"f": self._relit_features()})
        return torch.stack([f, lit["f"]], dim=1).flatten(0, 1)

    def _relit_features(self, batch: int = 16) -> torch.Tensor:
        """f of each normal image's relit copy (:func:`fsad.light.relit`), ``(N, D, h, w)``."""
        train = self._groups["train"]
        out = []
        for start in range(0, len(train), batch):
            chunk = train[start : start + batch]
            images = [relit(read_image(s.path), start + i) for i, s in enumerate(chunk)]
            out.append(self.extractor.embed_images(images))
        return torch.cat(out)

    # ----------------------------------------------------------------- grouping
    def _locate(self, samples: Sequence[Sample]) -> tuple[str, list[Sample], torch.Tensor]:
        """(group name, whole group, indices of ``samples`` in it) for caching."""
        samples = list(samples)
        if not samples:
            raise ConfigError("no samples given")
        for name, group in self._groups.items():
            pos = {os.fspath(s.path): i for i, s in enumerate(group)}
            idx = [pos.get(os.fspath(s.path)) for s in samples]
            if all(i is not None for i in idx):
                return name, group, torch.tensor(idx, dtype=torch.long)
        fp = files_fingerprint([s.path for s in samples])
        return f"list:{fp}", samples, torch.arange(len(samples))

    def _group_features(self, name: str, group: list[Sample]) -> torch.Tensor:
        memo_key = f"features:{name}"
        if memo_key not in self._memo:
            desc = f"{self.category.name} {name.split(':')[0]} features"
            self._memo[memo_key] = self.cache.load_or_compute(
                "features",
                self._features_key(group),
                lambda: {"f": self.extractor.embed_samples(group, desc=desc)},
            )
        return self._memo[memo_key]["f"]

    def _group_residuals(self, name: str, group: list[Sample]) -> dict[str, torch.Tensor]:
        memo_key = f"residuals:{name}"
        if memo_key not in self._memo:
            key = self._features_key(group)
            key.update(bank=self._bank_key(), exact=self.config.exact_search, kind="residuals")
            key["search_version"] = SEARCH_VERSION
            key["half"] = self.config.half_residuals

            def compute() -> dict[str, Any]:
                r, amap = self.residuals_of(self._group_features(name, group))
                return {"r": r.half() if self.config.half_residuals else r, "amap": amap}

            self._memo[memo_key] = self.cache.load_or_compute("residuals", key, compute)
        return self._memo[memo_key]

    # ----------------------------------------------------------------- public API
    def features(self, samples: Sequence[Sample]) -> torch.Tensor:
        """Patch features f of samples, ``(N, D, h, w)`` float32 (cached on disk)."""
        name, group, idx = self._locate(samples)
        return self._group_features(name, group)[idx]

    def features_of_images(self, images: np.ndarray | Sequence[np.ndarray]) -> torch.Tensor:
        """Patch features of in-memory RGB images ``(N, H, W, 3)`` uint8 (not cached)."""
        return self.extractor.embed_images(images)

    def residuals_of(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """r = f - m* (Eq. 2) against this engine's bank and the map ||r||.

        Args:
            features: ``(N, D, h, w)``.

        Returns:
            ``(r (N, D, h, w), amap (N, h, w))`` float32.
        """
        return residuals(features, self.bank)

    def residuals(self, samples: Sequence[Sample]) -> torch.Tensor:
        """Residuals r of samples, ``(N, D, h, w)`` float32 (cached per seed)."""
        name, group, idx = self._locate(samples)
        return self._group_residuals(name, group)["r"][idx].float()

    def anomaly_maps(self, samples: Sequence[Sample]) -> torch.Tensor:
        """Anomaly maps ||r|| on the patch grid, ``(N, h, w)`` (cached per seed)."""
        name, group, idx = self._locate(samples)
        return self._group_residuals(name, group)["amap"][idx]

    def scores(self, samples: Sequence[Sample]) -> torch.Tensor:
        """Image anomaly scores: the largest patch distance of each map, ``(N,)``."""
        return self.anomaly_maps(samples).flatten(1).max(dim=1).values
