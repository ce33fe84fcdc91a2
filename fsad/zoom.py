"""Zoom views: the most anomalous region of an image, re-encoded at full resolution.

The residual engine sees a 224 px centre crop of a 256 px resize (paper section 3.2), so a
thin scratch on a 1024 px screw covers a patch or two. A zoom view locates the peak of the
engine's anomaly map ||r|| (Eq. 2), maps it back to the *original* image, cuts square
windows of a few sizes around it, resizes each to ``size`` px and encodes it with the whole
ImageNet backbone; the global average of each chosen layer is one L2-normalised block.

Zoom descriptors of a category's whole test set are computed once per (engine settings,
seed, zoom settings) and cached (:func:`fsad.blocks.block_table`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from fsad.blocks import Inputs, engine_key, register_block
from fsad.cache import files_fingerprint
from fsad.engine import ResidualEngine
from fsad.errors import ConfigError
from fsad.features import (
    ALIASES,
    FeatureConfig,
    load_backbone,
    placement,
    preprocess,
    resolve_weights,
)
from fsad.utils import get_device

# bump when zoom descriptors are computed differently: cached ones then miss
ZOOM_VERSION = 1


@register_block
@dataclass(frozen=True)
class ZoomConfig:
    """Settings of the zoom views.

    Attributes:
        windows: window sides as fractions of the image's shorter side, one view each.
        size: side (px) each window is resized to before the backbone.
        backbone: timm name of the encoder (packaged weights for Lite0/1/2).
        layers: timm feature indices pooled into blocks; (2, 3, 4) = strides 8, 16, 32.
        rotations: average each block over the 4 rotations of the window (no mirror
            images, so a part upside down, like metal_nut's ``flip``, stays distinct from
            its mirror image; 4x the encoding time).
    """

    windows: tuple[float, ...] = (0.25, 0.5)
    size: int = 224
    backbone: str = "tf_efficientnet_lite0"
    layers: tuple[int, ...] = (2, 3, 4)
    rotations: bool = False

    #: the block protocol (:class:`fsad.blocks.Block`): cache namespace and batch size
    namespace: ClassVar[str] = "zoom"
    batch: ClassVar[int] = 16

    def __post_init__(self) -> None:
        windows = tuple(float(w) for w in self.windows)
        if not windows or any(not 0.0 < w <= 1.0 for w in windows):
            raise ConfigError(f"zoom windows must be fractions in (0, 1], got {self.windows}")
        if self.size < 32:
            raise ConfigError(f"zoom size must be at least 32 px, got {self.size}")
        object.__setattr__(self, "windows", windows)
        object.__setattr__(self, "layers", tuple(int(i) for i in self.layers))
        object.__setattr__(self, "backbone", ALIASES.get(self.backbone, self.backbone))

    def cache_key(self) -> dict[str, Any]:
        """JSON-able key: the settings and the encoder's weights file fingerprint."""
        key = {**asdict(self), "windows": list(self.windows), "layers": list(self.layers)}
        if not self.rotations:  # added later: absent when off, so earlier keys stay valid
            del key["rotations"]
        key.update(dihedral=False, reference=False)  # options since removed: entries still match
        key["weights_file"] = files_fingerprint([resolve_weights(self.backbone)])
        return key

    def table_key(self, engine: ResidualEngine) -> dict[str, Any]:
        """The engine's key (the peak depends on it), these settings and the code version."""
        return {"engine": engine_key(engine), "zoom": self.cache_key(), "version": ZOOM_VERSION}

    def describe(self, inputs: Inputs) -> torch.Tensor:
        """Zoom blocks ``(N, len(windows) * sum C)`` around each image's anomaly peak.

        Each block is unit-norm, in the order window 1 (layers...), window 2 (layers...), ...
        """
        images = inputs.images()
        centres = peak_centres(inputs.anomaly_maps(), images, inputs.engine.config.features)
        encoder = zoom_encoder(self, getattr(inputs.engine, "device", None))
        return zoom_images(encoder, images, centres, self)


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
    """Centre ``(y, x)`` in original-image pixels of a grid cell of the engine's input.

    Inverts :func:`fsad.features.preprocess` (:func:`fsad.features.placement`: a centre crop,
    or the whole image letterboxed, whose padding maps to the nearest image border, so a zoom
    window never centres on it). The ``crop`` square is split into ``grid`` cells.

    Args:
        cell: ``(row, col)``; grid: ``(h, w)`` cells; shape: the image's ``(H, W)``.
    """
    y = (cell[0] + 0.5) * features.crop / grid[0]
    x = (cell[1] + 0.5) * features.crop / grid[1]
    return placement(shape, features).to_image(y, x, shape)


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
        self.config = config
        self.device = device if isinstance(device, torch.device) else get_device(device)
        model = load_backbone(config.backbone, out_indices=config.layers)
        self.model = model.to(self.device, memory_format=torch.channels_last)

    def encode(self, crops: Sequence[np.ndarray]) -> torch.Tensor:
        """Blocks of crops: per layer, the L2-normalised global average, ``(N, sum C)``."""
        return torch.cat([F.normalize(p, dim=1) for p in self.pooled(crops)], dim=1)

    def pooled(self, crops: Sequence[np.ndarray]) -> list[torch.Tensor]:
        """Per layer, the global average of the crops' map, ``[(N, C_l)]`` (not normalised)."""
        size = self.config.size
        x = preprocess(crops, FeatureConfig(self.config.backbone, resize=size, crop=size, dim=1))
        views = [x]
        if self.config.rotations:  # 0/90/180/270 degrees
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


@functools.lru_cache(maxsize=4)
def zoom_encoder(config: ZoomConfig, device: Any = None) -> ZoomEncoder:
    """The zoom backbone of ``config``, loaded once per process and device."""
    return ZoomEncoder(config, device)


def peak_centres(
    amap: torch.Tensor, images: Sequence[np.ndarray], features: FeatureConfig
) -> list[tuple[float, float]]:
    """Pixel centre ``(y, x)`` of each image's anomaly peak.

    Args:
        amap: ``(N, h, w)`` anomaly maps of the engine whose crop is ``features``.
        images: the original images, ``(H, W, 3)``.
        features: the engine's feature settings (resize and crop to invert).
    """
    cells, grid = peak_cells(amap), tuple(amap.shape[1:])
    return [
        cell_to_image(cells[i].tolist(), grid, img.shape[:2], features)
        for i, img in enumerate(images)
    ]


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
        config: the windows.
    """
    return torch.cat(
        [
            encoder.encode([window(img, c, frac) for img, c in zip(images, centres, strict=True)])
            for frac in config.windows
        ],
        dim=1,
    )
