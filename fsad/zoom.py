"""Zoom views: the most anomalous region of an image, re-encoded at full resolution.

The residual engine sees a 224 px centre crop of a 256 px resize (paper section 3.2), so a
thin scratch on a 1024 px screw covers a patch or two. A zoom view locates the peak of the
engine's anomaly map ||r|| (Eq. 2), maps it back to the *original* image, cuts square
windows of a few sizes around it, resizes each to ``size`` px and encodes it with the whole
ImageNet backbone; the global average of each chosen layer is one L2-normalised block.

Zoom descriptors of a category's whole test set are computed once per (engine settings,
seed, zoom settings) and cached, like :func:`fsad.descriptors.category_descriptors`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from fsad.dinov2 import TIMM_NAME, check_input_size
from fsad.errors import ConfigError

if TYPE_CHECKING:
    from fsad.cache import DiskCache
    from fsad.data import Sample
    from fsad.engine import ResidualEngine
    from fsad.features import FeatureConfig

# bump when zoom descriptors are computed differently: cached ones then miss
ZOOM_VERSION = 1
#: timm name of the ViT-S/14 zoom encoder (:mod:`fsad.dinov2`)
DINO = TIMM_NAME


@dataclass(frozen=True)
class ZoomConfig:
    """Settings of the zoom views.

    Attributes:
        windows: window sides as fractions of the image's shorter side, one view each.
        size: side (px) each window is resized to before the backbone.
        backbone: timm name of the encoder (packaged weights for Lite0/1/2), or
            ``dinov2_s14`` (:mod:`fsad.dinov2`; ``size`` then a multiple of 14).
        layers: timm feature indices pooled into blocks; (2, 3, 4) = strides 8, 16, 32
            (for the ViT, 0-based block indices, e.g. (8, 11)).
        dihedral: average each block over the 8 rotations/flips of the window (a
            descriptor that ignores the defect's orientation; 8x the encoding time).
        rotations: average each block over the 4 rotations of the window only (no mirror
            images, so a part upside down, like metal_nut's ``flip``, stays distinct from
            its mirror image; 4x the encoding time). Ignored when ``dihedral`` is set.
        reference: zoom residuals: each block is the window's layer average minus that of
            the same window (same relative place) in the nearest normal training image
            (nearest by the engine's mean patch feature), the zoom-level analogue of
            r = f - m* (Eq. 2); 2x the encoding time.
    """

    windows: tuple[float, ...] = (0.25, 0.5)
    size: int = 224
    backbone: str = "tf_efficientnet_lite0"
    layers: tuple[int, ...] = (2, 3, 4)
    dihedral: bool = False
    reference: bool = False
    rotations: bool = False

    def __post_init__(self) -> None:
        windows = tuple(float(w) for w in self.windows)
        if not windows or any(not 0.0 < w <= 1.0 for w in windows):
            raise ConfigError(f"zoom windows must be fractions in (0, 1], got {self.windows}")
        if self.size < 32:
            raise ConfigError(f"zoom size must be at least 32 px, got {self.size}")
        from fsad.features import ALIASES

        object.__setattr__(self, "windows", windows)
        object.__setattr__(self, "layers", tuple(int(i) for i in self.layers))
        object.__setattr__(self, "backbone", ALIASES.get(self.backbone, self.backbone))
        if self.backbone == DINO:
            check_input_size(self.size, "zoom size")

    def cache_key(self) -> dict[str, Any]:
        """JSON-able key: the settings and the encoder's weights file fingerprint."""
        from fsad.cache import files_fingerprint
        from fsad.features import resolve_weights

        key = {**asdict(self), "windows": list(self.windows), "layers": list(self.layers)}
        if not self.rotations:  # added later: absent when off, so earlier keys stay valid
            del key["rotations"]
        key["weights_file"] = files_fingerprint([resolve_weights(self.backbone)])
        return key


def peak_cells(amap: torch.Tensor) -> torch.Tensor:
    """Grid cell ``(row, col)`` of each map's peak after 3 x 3 averaging, ``(N, 2)`` int64.

    Averaging first prefers a cluster of anomalous patches over one isolated hot patch. At
    the map's edge the average runs over the cells that exist, so a small hot spot next to
    the edge can move the peak by one cell towards it (on the shared data, 0-8 % of the
    images per category differ by a cell from zero-padded averaging), and a lone hot cell
    gives a flat 3 x 3 plateau whose first (top-left) cell wins.
    """
    smooth = F.avg_pool2d(amap[:, None].float(), 3, stride=1, padding=1, count_include_pad=False)
    n, _, h, w = smooth.shape
    flat = smooth.reshape(n, -1).argmax(dim=1)
    return torch.stack([flat // w, flat % w], dim=1)


def cell_to_image(
    cell: Sequence[int], grid: tuple[int, int], shape: tuple[int, int], features: FeatureConfig
) -> tuple[float, float]:
    """Centre ``(y, x)`` in original-image pixels of a grid cell of the engine's crop.

    Inverts :func:`fsad.features.preprocess`: shorter side resized to ``features.resize``,
    centre crop ``features.crop`` split into ``grid`` cells.

    Args:
        cell: ``(row, col)``; grid: ``(h, w)`` cells; shape: the image's ``(H, W)``.
    """
    h, w = shape
    scale = features.resize / min(h, w)
    nh, nw = max(features.resize, round(h * scale)), max(features.resize, round(w * scale))
    top, left = (nh - features.crop) // 2, (nw - features.crop) // 2
    y = top + (cell[0] + 0.5) * features.crop / grid[0]
    x = left + (cell[1] + 0.5) * features.crop / grid[1]
    return y / scale, x / scale


def window_box(
    shape: tuple[int, int], centre: tuple[float, float], frac: float
) -> tuple[int, int, int]:
    """``(top, left, side)`` of the square window of side ``frac * min(H, W)`` (at least
    16 px, at most the image) around ``centre``, moved inside an image of ``shape = (H, W)``."""
    h, w = shape
    s = min(h, w, max(16, int(round(frac * min(h, w)))))
    top = int(np.clip(round(centre[0] - s / 2), 0, h - s))
    left = int(np.clip(round(centre[1] - s / 2), 0, w - s))
    return top, left, s


def window(image: np.ndarray, centre: tuple[float, float], frac: float) -> np.ndarray:
    """The window of :func:`window_box` cut from ``image``: an ``(s, s, 3)`` view."""
    top, left, s = window_box(image.shape[:2], centre, frac)
    return image[top : top + s, left : left + s]


class ZoomEncoder:
    """Backbone that turns window crops into pooled blocks.

    Args:
        config: zoom settings.
        device: torch device (default: CUDA when available, else CPU); blocks return on CPU.
    """

    def __init__(self, config: ZoomConfig, device: Any = None) -> None:
        from fsad.features import load_backbone
        from fsad.utils import get_device

        self.config = config
        self.device = device if isinstance(device, torch.device) else get_device(device)
        model = load_backbone(config.backbone, out_indices=config.layers, img_size=config.size)
        self.model = model.to(self.device, memory_format=torch.channels_last)

    def encode(self, crops: Sequence[np.ndarray]) -> torch.Tensor:
        """Blocks of crops: per layer, the L2-normalised global average, ``(N, sum C)``."""
        return torch.cat([F.normalize(p, dim=1) for p in self.pooled(crops)], dim=1)

    def pooled(self, crops: Sequence[np.ndarray]) -> list[torch.Tensor]:
        """Per layer, the global average of the crops' map, ``[(N, C_l)]`` (not normalised)."""
        from fsad.features import FeatureConfig, preprocess

        size = self.config.size
        x = preprocess(crops, FeatureConfig(self.config.backbone, resize=size, crop=size, dim=1))
        views = [x]
        if self.config.dihedral:  # x rotated by 0/90/180/270 degrees, each also mirrored
            turns = [torch.rot90(x, k, dims=(2, 3)) for k in range(4)]
            views = turns + [t.flip(3) for t in turns]
        elif self.config.rotations:  # 0/90/180/270 degrees only
            views = [torch.rot90(x, k, dims=(2, 3)) for k in range(4)]
        pooled = None
        with torch.inference_mode():
            for v in views:
                maps = self.model(v.to(self.device).contiguous(memory_format=torch.channels_last))
                gap = [m.float().mean(dim=(2, 3)).cpu() for m in maps]
                pooled = (
                    gap if pooled is None else [p + g for p, g in zip(pooled, gap, strict=True)]
                )
        return [p / len(views) for p in pooled]


def zoom_describe(
    engine: ResidualEngine,
    samples: Sequence[Sample],
    config: ZoomConfig,
    encoder: ZoomEncoder | None = None,
    batch: int = 16,
) -> torch.Tensor:
    """Zoom descriptors ``(N, len(windows) * sum C)`` of samples (not cached here).

    Each block is unit-norm, in the order window 1 (layers...), window 2 (layers...), ...
    """
    from fsad.data import read_image

    encoder = encoder or ZoomEncoder(config, getattr(engine, "device", None))
    amaps = engine.anomaly_maps(samples)  # (N, h, w)
    cells = peak_cells(amaps)
    grid = tuple(amaps.shape[1:])
    nearest = nearest_normal(engine, samples) if config.reference else None
    out = []
    for start in range(0, len(samples), batch):
        part = samples[start : start + batch]
        images = [read_image(s.path) for s in part]
        centres = [
            cell_to_image(cells[start + i].tolist(), grid, img.shape[:2], engine.config.features)
            for i, img in enumerate(images)
        ]
        if config.reference:
            normals = [
                read_image(engine.category.train[int(j)].path)
                for j in nearest[start : start + batch]
            ]
            views = [
                _residual_blocks(encoder, images, normals, centres, frac) for frac in config.windows
            ]
            out.append(torch.cat(views, dim=1))
        else:
            out.append(zoom_images(encoder, images, centres, config))
    return torch.cat(out)


def zoom_images(
    encoder: ZoomEncoder,
    images: Sequence[np.ndarray],
    centres: Sequence[tuple[float, float]],
    config: ZoomConfig,
) -> torch.Tensor:
    """Zoom blocks ``(N, len(windows) * sum C)`` of in-memory images around given centres.

    Args:
        encoder: the zoom backbone.
        images: ``(H, W, 3) uint8`` RGB images at their original resolution.
        centres: ``(y, x)`` pixel centre of each image's windows (the anomaly peak).
        config: the windows (``config.reference`` is not supported here).
    """
    if config.reference:
        raise ConfigError("zoom residuals (reference=True) need the samples' files")
    return torch.cat(
        [
            encoder.encode([window(img, c, frac) for img, c in zip(images, centres, strict=True)])
            for frac in config.windows
        ],
        dim=1,
    )


def nearest_normal(engine: ResidualEngine, samples: Sequence[Sample]) -> torch.Tensor:
    """Index ``(N,)`` of the training image whose mean patch feature is nearest each sample's."""
    g_train = engine.features(engine.category.train).mean(dim=(2, 3))  # (T, D)
    g = engine.features(samples).mean(dim=(2, 3))  # (N, D)
    return torch.cdist(g, g_train).argmin(dim=1)


def _residual_blocks(
    encoder: ZoomEncoder,
    images: Sequence[np.ndarray],
    normals: Sequence[np.ndarray],
    centres: Sequence[tuple[float, float]],
    frac: float,
) -> torch.Tensor:
    """Per layer, normalise(window average - same window of the normal image), ``(N, sum C)``."""
    crops, refs = [], []
    for img, ref, (y, x) in zip(images, normals, centres, strict=True):
        crops.append(window(img, (y, x), frac))
        sy, sx = ref.shape[0] / img.shape[0], ref.shape[1] / img.shape[1]
        refs.append(window(ref, (y * sy, x * sx), frac))
    q, n = encoder.pooled(crops), encoder.pooled(refs)
    return torch.cat([F.normalize(a - b, dim=1) for a, b in zip(q, n, strict=True)], dim=1)


def zoom_table(
    engine: ResidualEngine, config: ZoomConfig, cache: DiskCache | None = None
) -> dict[str, np.ndarray]:
    """Zoom descriptors of every test image of the engine's category (cached).

    Key: the engine's residual settings and seed (:func:`fsad.descriptors.engine_key`, the
    peak depends on them), the test files' fingerprint, the zoom settings and
    :data:`ZOOM_VERSION`.

    Returns:
        ``{path: (D',) float32}`` for every test image.
    """
    from fsad.descriptors import category_table, engine_key

    key = {"engine": engine_key(engine), "zoom": config.cache_key(), "version": ZOOM_VERSION}
    return category_table(engine, "zoom", key, lambda s: zoom_describe(engine, s, config), cache)


def zoom_of(
    table: dict[str, np.ndarray],
    samples: Sequence[Sample],
    engine: ResidualEngine,
    config: ZoomConfig,
) -> np.ndarray:
    """Rows of ``table`` (from :func:`zoom_table`) for samples, ``(N, D')``.

    Samples outside the category's test set (e.g. a folder dataset's extra images) are
    encoded directly through ``engine``.
    """
    from fsad.descriptors import table_rows

    return table_rows(table, samples, lambda missing: zoom_describe(engine, missing, config))
