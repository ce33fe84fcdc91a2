"""Anomaly-guided image descriptors for few-shot defect-type classification.

A defective image is summarised where its anomaly map is high: the residuals r = f - m*
(Eq. 2) and raw patch features f of its most anomalous patches are averaged (top-k
pooling). Each block is L2-normalised and the blocks are concatenated, so every block weighs
the same in a cosine or linear head (:mod:`fsad.heads`).

:class:`DescriptorConfig` is a block kind of :mod:`fsad.blocks`: its rows of a category's
whole test set are computed once per (engine settings, seed) and cached.
:class:`RandomBankResiduals` is the residual source of the training-free reference as it
was first measured (``residual_proto_rb``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from fsad.blocks import Inputs, engine_key, register_block, require_files
from fsad.cache import DiskCache, files_fingerprint
from fsad.data import CategoryData, Sample, read_image
from fsad.engine import ResidualEngine
from fsad.errors import ConfigError
from fsad.features import FeatureConfig, load_backbone, preprocess
from fsad.memory import SEARCH_VERSION, MemoryBank, residuals

# bump when the way descriptors are computed changes: cached descriptors then miss
DESCRIPTORS_VERSION = 1
SOURCES = ("engine", "random_bank")


@register_block
@dataclass(frozen=True)
class DescriptorConfig:
    """Which blocks make an image descriptor.

    Attributes:
        residual_fracs: for each fraction q, the mean residual of the ``q * h * w`` most
            anomalous patches (one block per fraction).
        feature_fracs: same pooling of the raw patch features f.
        feature_centred: subtract the image's mean feature from each f block (keeps what
            is peculiar to the anomalous region, drops the product's global look).
        source: where f, r and the anomaly map come from: ``"engine"`` (the task's
            PatchCore engine: coreset bank, centre crop, pooled features) or
            ``"random_bank"`` (:class:`RandomBankResiduals`: whole image, both layers'
            3 x 3-averaged maps concatenated, a seeded random subset of normal patches).
    """

    residual_fracs: tuple[float, ...] = (0.02,)
    feature_fracs: tuple[float, ...] = ()
    feature_centred: bool = False
    source: str = "engine"

    def __post_init__(self) -> None:
        for name in ("residual_fracs", "feature_fracs"):
            fracs = tuple(float(q) for q in getattr(self, name))
            if any(not 0.0 < q <= 1.0 for q in fracs):
                raise ConfigError(f"{name} must lie in (0, 1], got {fracs}")
            object.__setattr__(self, name, fracs)
        if not (self.residual_fracs or self.feature_fracs):
            raise ConfigError("a descriptor needs at least one block")
        if self.source not in SOURCES:
            raise ConfigError(f"unknown descriptor source '{self.source}' (choose from {SOURCES})")

    #: the block protocol (:class:`fsad.blocks.Block`): cache namespace and batch size
    namespace: ClassVar[str] = "descriptors"
    batch: ClassVar[int] = 32

    def cache_key(self) -> dict[str, Any]:
        """JSON-able settings."""
        key = asdict(self)
        key.update(residual_fracs=list(self.residual_fracs), feature_fracs=list(self.feature_fracs))
        key["profile"] = 0  # a block kind since removed; kept so existing cache entries match
        return key

    def origin(self, engine: ResidualEngine) -> Any:
        """Where f, r and the map come from: the engine, or its random-bank counterpart."""
        if self.source == "random_bank":
            return RandomBankResiduals(engine.category, engine.seed, engine.cache)
        return engine

    def table_key(self, engine: ResidualEngine) -> dict[str, Any]:
        """The engine's (or random bank's) key, these settings and the code version."""
        src = self.origin(engine)
        return {
            "engine": engine_key(engine) if src is engine else src.key(),
            "descriptor": self.cache_key(),
            "version": DESCRIPTORS_VERSION,
        }

    def describe(self, inputs: Inputs) -> torch.Tensor:
        """Blocks ``(N, D')`` of ``inputs`` (see :func:`describe`)."""
        src = self.origin(inputs.engine)
        if src is not inputs.engine:
            require_files(inputs, "random-bank descriptors")
            inputs = inputs.on(src)
        feats = inputs.features() if self.feature_fracs else torch.zeros(0)
        return describe(inputs.residuals(), feats, inputs.anomaly_maps(), self)


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
    return torch.cat([F.normalize(b.float(), dim=1) for b in blocks], dim=1)


@dataclass(frozen=True)
class RandomBankConfig:
    """Settings of :class:`RandomBankResiduals` (the reference residuals as first measured).

    Attributes:
        backbone: timm name (packaged weights for Lite0/1/2).
        layers: feature indices; (2, 3) = stride 8 and 16.
        size: the whole image is resized so its shorter side is ``size`` (then centre-cropped
            to a square; square images are kept whole).
        bank_images: at most this many normal images (evenly spaced) feed the bank.
        bank_patches: size of the seeded random subset of their patches.
    """

    backbone: str = "tf_efficientnet_lite0"
    layers: tuple[int, ...] = (2, 3)
    size: int = 224
    bank_images: int = 200
    bank_patches: int = 60000


class RandomBankResiduals:
    """f, r = f - m* (Eq. 2) and ||r|| against a random bank, the engine's interface.

    Patch features are the backbone maps of ``layers``, each averaged over 3 x 3
    neighbourhoods, the deeper upsampled (bilinear) to the shallower grid and concatenated
    (no channel pooling). Features are cached per image set (seed-free); the bank is a
    subset of ``bank_patches`` normal patches drawn with the seed.

    Args:
        category: its ``train`` images feed the bank.
        seed: draws the bank subset.
        cache: disk cache for the features.
        config: settings.
    """

    def __init__(
        self,
        category: CategoryData,
        seed: int,
        cache: DiskCache,
        config: RandomBankConfig = RandomBankConfig(),
    ) -> None:
        self.category, self.seed, self.cache, self.config = category, int(seed), cache, config
        self._model: Any = None
        self._bank: Any = None
        self._memo: dict[str, dict[str, torch.Tensor]] = {}

    def key(self) -> dict[str, Any]:
        """What determines the residuals: settings, weights, bank files, seed, search version."""
        feat = FeatureConfig(self.config.backbone, self.config.layers, self.config.size,
                             self.config.size, 1).cache_key()  # fmt: skip
        return {"random_bank": asdict(self.config), "weights": feat["weights_file"],
                "bank_files": _files_key(self._bank_samples()), "seed": self.seed,
                "search_version": SEARCH_VERSION}  # fmt: skip

    def _bank_samples(self) -> list[Sample]:
        train = list(self.category.train)
        n = min(self.config.bank_images, len(train))
        return [train[int(i)] for i in np.linspace(0, len(train) - 1, n).round()]

    def _embed(self, samples: Sequence[Sample]) -> torch.Tensor:
        """Cached patch features ``(N, D, h, w)`` float16 of samples."""

        def compute() -> dict[str, Any]:
            if self._model is None:
                self._model = load_backbone(self.config.backbone, out_indices=self.config.layers)
            cfg = FeatureConfig(self.config.backbone, self.config.layers, self.config.size,
                                self.config.size, 1)  # fmt: skip
            out = []
            for start in range(0, len(samples), 16):
                imgs = [read_image(s.path) for s in samples[start : start + 16]]
                with torch.inference_mode():
                    out.append(_concat_maps(self._model(preprocess(imgs, cfg))).half())
            return {"f": torch.cat(out)}

        key = {"random_bank_features": asdict(self.config), "files": _files_key(samples),
               "version": DESCRIPTORS_VERSION}  # fmt: skip
        key["random_bank_features"].pop("bank_patches")
        key["random_bank_features"].pop("bank_images")
        return self.cache.load_or_compute("random_bank_features", key, compute)["f"]

    def _get_bank(self) -> Any:
        if self._bank is None:
            f = self._embed(self._bank_samples())
            patches = f.permute(0, 2, 3, 1).reshape(-1, f.shape[1])
            rng = np.random.default_rng(self.seed)
            n = min(self.config.bank_patches, len(patches))
            idx = np.sort(rng.choice(len(patches), n, replace=False))
            self._bank = MemoryBank(patches[torch.from_numpy(idx)].float())
        return self._bank

    def _group(self, samples: Sequence[Sample]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Residuals of the whole test set (or of ``samples`` if not all in it), indices."""
        test = list(self.category.test)
        pos = {str(s.path): i for i, s in enumerate(test)}
        if all(str(s.path) in pos for s in samples):
            group, idx = test, torch.tensor([pos[str(s.path)] for s in samples])
        else:
            group, idx = list(samples), torch.arange(len(samples))
        key = _files_key(group)
        if key not in self._memo:
            f = self._embed(group).float()
            r, amap = residuals(f, self._get_bank())
            self._memo = {key: {"f": f, "r": r, "amap": amap}}
        return self._memo[key], idx

    def features(self, samples: Sequence[Sample]) -> torch.Tensor:
        """f ``(N, D, h, w)``."""
        group, idx = self._group(samples)
        return group["f"][idx]

    def residuals(self, samples: Sequence[Sample]) -> torch.Tensor:
        """r = f - m* ``(N, D, h, w)``."""
        group, idx = self._group(samples)
        return group["r"][idx]

    def anomaly_maps(self, samples: Sequence[Sample]) -> torch.Tensor:
        """||r|| ``(N, h, w)``."""
        group, idx = self._group(samples)
        return group["amap"][idx]


def _concat_maps(maps: Sequence[torch.Tensor]) -> torch.Tensor:
    """3 x 3-averaged maps, upsampled to the first grid and concatenated, ``(B, sum C, h, w)``."""
    size = maps[0].shape[-2:]
    out = []
    for m in maps:
        m = F.avg_pool2d(m.float(), 3, stride=1, padding=1)
        if m.shape[-2:] != size:
            m = F.interpolate(m, size=size, mode="bilinear", align_corners=False)
        out.append(m)
    return torch.cat(out, dim=1)


def _files_key(samples: Sequence[Sample]) -> str:
    return files_fingerprint([s.path for s in samples])
