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

from collections.abc import Callable, Sequence
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
SOURCES = ("engine", "random_bank")


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
        source: where f, r and the anomaly map come from: ``"engine"`` (the task's
            PatchCore engine: coreset bank, centre crop, pooled features) or
            ``"random_bank"`` (:class:`RandomBankResiduals`: whole image, both layers'
            3 x 3-averaged maps concatenated, a seeded random subset of normal patches).
    """

    residual_fracs: tuple[float, ...] = (0.02,)
    feature_fracs: tuple[float, ...] = ()
    feature_centred: bool = False
    profile: int = 0
    source: str = "engine"

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
        if self.source not in SOURCES:
            raise ConfigError(f"unknown descriptor source '{self.source}' (choose from {SOURCES})")

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
    from fsad.engine import ENGINE_VERSION
    from fsad.memory import SEARCH_VERSION

    cfg = engine.config
    return {
        "engine_version": ENGINE_VERSION,
        "search_version": SEARCH_VERSION,
        "features": cfg.features.cache_key(),
        "bank": cfg.bank_key(),
        "exact": cfg.exact_search,
        "half": cfg.half_residuals,
        "seed": int(engine.seed),
        "bank_files": files_fingerprint([s.path for s in engine.category.train]),
    }


def category_table(
    engine: ResidualEngine,
    namespace: str,
    key: dict[str, Any],
    compute: Callable[[list[Sample]], torch.Tensor],
    cache: DiskCache | None = None,
) -> dict[str, np.ndarray]:
    """``compute(samples)`` ``(N, D')`` for every test image of the engine's category, cached.

    The shared mechanism of the descriptor, zoom and fine tables: ``key`` (everything else
    that determines the rows) gains the test files' fingerprint.

    Returns:
        ``{path: (D',) float32}`` for every test image.
    """
    from fsad.cache import files_fingerprint

    samples = list(engine.category.test)
    cache = cache if cache is not None else engine.cache
    key = {**key, "samples": files_fingerprint([s.path for s in samples])}
    x = cache.load_or_compute(namespace, key, lambda: {"x": compute(samples)})["x"].numpy()
    return {str(s.path): x[i] for i, s in enumerate(samples)}


def table_rows(
    table: dict[str, np.ndarray],
    samples: Sequence[Sample],
    describe_missing: Callable[[list[Sample]], torch.Tensor],
) -> np.ndarray:
    """Rows of a :func:`category_table` for ``samples``, ``(N, D')``; samples missing from it
    (images outside the category's test set) go through ``describe_missing``."""
    missing = [s for s in samples if str(s.path) not in table]
    if missing:
        extra = describe_missing(missing).numpy()
        table = {**table, **{str(s.path): extra[i] for i, s in enumerate(missing)}}
    return np.stack([table[str(s.path)] for s in samples])


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
    cache = cache if cache is not None else engine.cache
    source: Any = engine
    if config.source == "random_bank":
        source = RandomBankResiduals(engine.category, engine.seed, cache)
    key = {
        "engine": engine_key(engine) if source is engine else source.key(),
        "descriptor": config.cache_key(),
        "version": DESCRIPTORS_VERSION,
    }
    return category_table(
        engine,
        "descriptors",
        key,
        lambda samples: describe_samples(source, samples, config, batch),
        cache,
    )


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

    def describe_missing(missing: list[Sample]) -> torch.Tensor:
        if engine is None:
            raise ConfigError(f"no descriptor for {missing[0].path} (not a test image)")
        source: Any = engine
        if config.source == "random_bank":
            source = RandomBankResiduals(engine.category, engine.seed, engine.cache)
        return describe_samples(source, missing, config)

    return table_rows(table, samples, describe_missing)


@dataclass(frozen=True)
class RandomBankConfig:
    """Settings of :class:`RandomBankResiduals` (the issue's reference residuals).

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
        category: Any,
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
        from fsad.features import FeatureConfig

        feat = FeatureConfig(self.config.backbone, self.config.layers, self.config.size,
                             self.config.size, 1).cache_key()  # fmt: skip
        from fsad.memory import SEARCH_VERSION

        return {"random_bank": asdict(self.config), "weights": feat["weights_file"],
                "bank_files": _files_key(self._bank_samples()), "seed": self.seed,
                "search_version": SEARCH_VERSION}  # fmt: skip

    def _bank_samples(self) -> list[Sample]:
        train = list(self.category.train)
        n = min(self.config.bank_images, len(train))
        return [train[int(i)] for i in np.linspace(0, len(train) - 1, n).round()]

    def _embed(self, samples: Sequence[Sample]) -> torch.Tensor:
        """Cached patch features ``(N, D, h, w)`` float16 of samples."""
        from fsad.features import FeatureConfig, load_backbone, preprocess

        def compute() -> dict[str, Any]:
            from fsad.data import read_image

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
            from fsad.memory import MemoryBank

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
            from fsad.memory import residuals

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
    from fsad.cache import files_fingerprint

    return files_fingerprint([s.path for s in samples])
