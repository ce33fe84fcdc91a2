"""Heat-map overlays: an anomaly map drawn over the image it was computed from.

The anomaly map covers the centre crop the backbone saw (``crop`` px of the image resized
so that its shorter side is ``resize`` px). :func:`overlay_heatmap` maps it back onto the
original image: inside the crop it is colour-coded (JET, ``vmin`` transparent-ish blue to
``vmax`` red), outside the crop the image is dimmed, so a user sees what was inspected.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fsad.data import encode_image
from fsad.features import FeatureConfig, placement
from fsad.utils import atomic_write_bytes


def crop_box(
    height: int, width: int, resize: int, crop: int, framing: str = "crop"
) -> tuple[int, int, int, int]:
    """The part of the image the backbone saw, ``(top, left, bottom, right)`` in
    original-image pixels: the centre crop, or the whole image (``framing="letterbox"``).

    Matches :func:`fsad.features.preprocess` (:func:`fsad.features.placement`).
    """
    p = placement((height, width), FeatureConfig(resize=resize, crop=crop, framing=framing))
    top, left, bottom, right = p.visible()
    sy, sx = height / p.nh, width / p.nw
    return (
        int(round((top - p.dy) * sy)),
        int(round((left - p.dx) * sx)),
        int(round((bottom - p.dy) * sy)),
        int(round((right - p.dx) * sx)),
    )


def top_patch_mask(anomaly_map: np.ndarray, frac: float, shape: tuple[int, int]) -> np.ndarray:
    """The ``frac`` most anomalous patches of ``anomaly_map`` as a pixel mask over the crop.

    The patches are those the anomaly-guided descriptor pools (:func:`fsad.descriptors.n_top`
    of them: at least one). Each patch covers ``crop // h`` pixels a side, from the top-left
    corner; pixels past the last whole patch stay False.

    Args:
        anomaly_map: ``(h, w)`` patch scores on the crop grid.
        frac: the fraction of patches kept, e.g. 0.02.
        shape: ``(H, W)`` of the crop the map covers.

    Returns:
        ``(H, W)`` bool.
    """
    amap = np.asarray(anomaly_map)
    k = max(1, int(round(frac * amap.size)))
    thr = np.sort(amap.ravel())[-k]
    cell = shape[0] // amap.shape[0]
    big = np.kron(amap >= thr, np.ones((cell, cell), bool))
    out = np.zeros(shape, bool)
    h, w = min(big.shape[0], shape[0]), min(big.shape[1], shape[1])
    out[:h, :w] = big[:h, :w]
    return out


def overlay_heatmap(
    image: np.ndarray,
    anomaly_map: np.ndarray,
    vmin: float,
    vmax: float,
    resize: int,
    crop: int,
    alpha: float = 0.45,
    caption: str = "",
    framing: str = "crop",
) -> np.ndarray:
    """Colour-code ``anomaly_map`` over ``image``.

    Args:
        image: ``(H, W, 3)`` uint8 RGB original image.
        anomaly_map: ``(h, w)`` patch distances on the crop grid.
        vmin, vmax: map values drawn as the coldest / hottest colour (e.g. the median
            normal patch distance and twice the image threshold), so colours mean the same
            thing in every image of a batch.
        resize, crop, framing: the feature resolution and placement (see :func:`crop_box`); with
            ``framing="letterbox"`` the map's padding is cut away and the rest covers the image.
        alpha: weight of the heat map inside the crop.
        caption: text written in the top-left corner (e.g. the predicted class).

    Returns:
        ``(H, W, 3)`` uint8 RGB.
    """
    import cv2

    img = np.ascontiguousarray(image, dtype=np.uint8)
    h, w = img.shape[:2]
    top, left, bottom, right = crop_box(h, w, resize, crop, framing)
    amap = np.asarray(anomaly_map, dtype=np.float32)
    norm = np.clip((amap - vmin) / max(vmax - vmin, 1e-12), 0.0, 1.0)
    if framing != "crop":  # the map covers the padded square: keep the image's part of it
        p = placement((h, w), FeatureConfig(resize=resize, crop=crop, framing=framing))
        norm = cv2.resize(norm, (crop, crop), interpolation=cv2.INTER_LINEAR)
        y0, x0, y1, x1 = p.visible()
        norm = norm[y0:y1, x0:x1]
    size = (max(right - left, 1), max(bottom - top, 1))
    norm = cv2.resize(norm, size, interpolation=cv2.INTER_LINEAR)
    heat = cv2.applyColorMap((norm * 255).astype(np.uint8), cv2.COLORMAP_JET)
    heat = cv2.cvtColor(heat, cv2.COLOR_BGR2RGB)
    out = (img.astype(np.float32) * 0.5).astype(np.uint8)  # dim what was not inspected
    region = img[top:bottom, left:right].astype(np.float32)
    out[top:bottom, left:right] = (region * (1 - alpha) + heat * alpha).astype(np.uint8)
    if caption:
        _caption(out, caption)
    return out


def _caption(img: np.ndarray, text: str) -> None:
    import cv2

    scale = max(img.shape[1] / 700.0, 0.4)
    thick = max(int(round(scale * 2)), 1)
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    cv2.rectangle(img, (0, 0), (tw + 8, th + base + 8), (0, 0, 0), -1)
    cv2.putText(
        img, text, (4, th + 4), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick, cv2.LINE_AA
    )


def save_png(path: str | os.PathLike, rgb: np.ndarray) -> Path:
    """Write an RGB ``(H, W, 3)`` uint8 image as PNG, atomically."""
    return atomic_write_bytes(path, encode_image(rgb))
