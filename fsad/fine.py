"""Fine views: PatchCore again, at the scale of a zoom window.

The residual engine sees the whole product at 224 px, so on a tire (512 x 683 px) a cut of
20 px covers about one 16 px patch and the anomaly peak lands inside the defect for a third
of the images. A fine view repeats the engine's steps on the zoom window around that peak:

1. normal windows: ``grid x grid`` windows of the same size tiling each of ``normals``
   training images (picked by the seed), embedded by the engine's own patch extractor;
2. a bank of their patches (the normal appearance at the window's scale): a seeded random
   subset, as in the issue's reference (the greedy coreset of 200k window patches took
   170 s on tire against 12 s for the engine's 163k bottle patches);
3. for each test image, its window around the engine's peak (:func:`fsad.zoom.window`),
   its patch residuals r = f - m* (Eq. 2) against that bank, and the anomaly-guided
   descriptor of :func:`fsad.descriptors.describe` on them.

The defect then covers tens of patches, and the descriptor pools those wherever in the
window they are, so an imprecise peak should cost less. Round 5 of
``scripts/explore_zoom.py`` added fine views to ``best``; the label-free selection rule did
not pick them (``results/explore/zoom.csv``), so no registered method uses them yet. A
:class:`fsad.methods.anomaly_guided.Recipe` takes them through ``fines``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fsad.descriptors import DescriptorConfig, describe
from fsad.errors import ConfigError

if TYPE_CHECKING:
    from fsad.cache import DiskCache
    from fsad.data import Sample
    from fsad.engine import ResidualEngine
    from fsad.memory import MemoryBank

# bump when fine descriptors are computed differently: cached ones then miss
FINE_VERSION = 1


@dataclass(frozen=True)
class FineConfig:
    """Settings of the fine views.

    Attributes:
        window: window side as a fraction of the image's shorter side.
        normals: training images whose windows make the fine bank.
        grid: windows per side tiling each normal image (``grid ** 2`` per image).
        bank_size: normal-window patches kept (at random, seeded) in the fine bank.
        descriptor: the blocks pooled from each test window's residuals.
    """

    window: float = 0.25
    normals: int = 16
    grid: int = 4
    bank_size: int = 20_000
    descriptor: DescriptorConfig = field(
        default_factory=lambda: DescriptorConfig(
            residual_fracs=(0.01, 0.02, 0.05, 0.1), feature_fracs=(0.02,), feature_centred=True
        )
    )

    def __post_init__(self) -> None:
        if not 0.0 < self.window <= 1.0:
            raise ConfigError(f"fine window must be a fraction in (0, 1], got {self.window}")
        if self.normals < 1 or self.grid < 1:
            raise ConfigError(
                f"fine views need normals >= 1 and grid >= 1, got {self.normals}, {self.grid}"
            )
        if self.bank_size < 1:
            raise ConfigError(f"fine bank_size must be at least 1, got {self.bank_size}")

    def cache_key(self) -> dict[str, Any]:
        """JSON-able key of these settings."""
        return {**asdict(self), "descriptor": self.descriptor.cache_key()}


def grid_centres(shape: tuple[int, int], frac: float, grid: int) -> list[tuple[float, float]]:
    """``grid x grid`` window centres ``(y, x)`` spread evenly so that windows of side
    ``frac * min(H, W)`` reach every edge of an image of ``shape = (H, W)``."""
    h, w = shape
    s = frac * min(h, w)
    ys = np.linspace(s / 2, h - s / 2, grid) if grid > 1 else np.array([h / 2])
    xs = np.linspace(s / 2, w - s / 2, grid) if grid > 1 else np.array([w / 2])
    return [(float(y), float(x)) for y in ys for x in xs]


def normal_windows(engine: ResidualEngine, config: FineConfig) -> list[np.ndarray]:
    """The windows of the fine bank: ``grid ** 2`` per picked normal training image."""
    from fsad.data import read_image
    from fsad.zoom import window

    train = list(engine.category.train)
    rng = np.random.default_rng(engine.seed)
    picks = sorted(rng.choice(len(train), size=min(config.normals, len(train)), replace=False))
    crops = []
    for i in picks:
        img = read_image(train[int(i)].path)
        for c in grid_centres(img.shape[:2], config.window, config.grid):
            crops.append(np.ascontiguousarray(window(img, c, config.window)))
    return crops


def fine_bank(engine: ResidualEngine, config: FineConfig) -> MemoryBank:
    """Bank of ``bank_size`` normal-window patch features picked at random, ``(M, D)``."""
    from fsad.memory import MemoryBank, flatten_patches

    f = engine.extractor.embed_images(normal_windows(engine, config), desc="fine bank")
    patches = flatten_patches(f)
    g = torch.Generator().manual_seed(int(engine.seed))
    idx = torch.randperm(len(patches), generator=g)[: config.bank_size].sort().values
    return MemoryBank(patches[idx], exact=engine.config.exact_search)


def peak_windows(
    engine: ResidualEngine, samples: Sequence[Sample], config: FineConfig
) -> list[np.ndarray]:
    """Each sample's window of side ``config.window`` around the engine's anomaly peak (as
    the zoom views cut it), ``[(s, s, 3) uint8]``."""
    from fsad.data import read_image
    from fsad.zoom import cell_to_image, peak_cells, window

    amaps = engine.anomaly_maps(samples)  # (N, h, w)
    cells, grid = peak_cells(amaps), tuple(amaps.shape[1:])
    crops = []
    for s, cell in zip(samples, cells.tolist(), strict=True):
        img = read_image(s.path)
        centre = cell_to_image(cell, grid, img.shape[:2], engine.config.features)
        crops.append(np.ascontiguousarray(window(img, centre, config.window)))
    return crops


def fine_residuals(
    engine: ResidualEngine, crops: Sequence[np.ndarray], bank: MemoryBank
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Residuals r = f - m* (Eq. 2) of window crops against the fine bank.

    Returns:
        ``(r (N, D, h, w), f (N, D, h, w), amap (N, h, w))``.
    """
    from fsad.memory import residuals

    f = engine.extractor.embed_images(crops)
    r, amap = residuals(f, bank)
    return r, f, amap


def fine_describe(
    engine: ResidualEngine,
    samples: Sequence[Sample],
    config: FineConfig,
    bank: MemoryBank | None = None,
    batch: int = 16,
) -> torch.Tensor:
    """Fine descriptors ``(N, D')`` of samples (not cached here): the
    :func:`fsad.descriptors.describe` blocks of each :func:`peak_windows` crop's residuals."""
    bank = bank if bank is not None else fine_bank(engine, config)
    out = []
    for start in range(0, len(samples), batch):
        crops = peak_windows(engine, samples[start : start + batch], config)
        r, f, amap = fine_residuals(engine, crops, bank)
        out.append(describe(r, f, amap, config.descriptor))
    return torch.cat(out)


def fine_table(
    engine: ResidualEngine, config: FineConfig, cache: DiskCache | None = None
) -> dict[str, np.ndarray]:
    """Fine descriptors of every test image of the engine's category (cached).

    Key: the engine's residual settings, seed and training files
    (:func:`fsad.descriptors.engine_key`: the peak, the extractor and the normal picks depend
    on them), the test files' fingerprint, the fine settings and :data:`FINE_VERSION`.

    Returns:
        ``{path: (D',) float32}`` for every test image.
    """
    from fsad.descriptors import category_table, engine_key

    key = {"engine": engine_key(engine), "fine": config.cache_key(), "version": FINE_VERSION}
    return category_table(engine, "fine", key, lambda s: fine_describe(engine, s, config), cache)


def fine_of(
    table: dict[str, np.ndarray],
    samples: Sequence[Sample],
    engine: ResidualEngine,
    config: FineConfig,
) -> np.ndarray:
    """Rows of ``table`` (from :func:`fine_table`) for samples, ``(N, D')``; samples outside
    the category's test set are described directly."""
    from fsad.descriptors import table_rows

    return table_rows(table, samples, lambda missing: fine_describe(engine, missing, config))
