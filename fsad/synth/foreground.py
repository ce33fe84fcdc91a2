"""Foreground masks of normal images, so synthetic defects land on the product (section 3.5).

Methods (the authors' per-category choice, see ``shared/notes/official-implementation.md``):

- ``"grabcut"``: OpenCV GrabCut initialised with a rectangle one pixel inside the image
  border, 10 iterations; foreground = "probable foreground" pixels.
- ``"floodfill"``: flood fill (4-connected, fixed range, loDiff 80, upDiff 50) from the
  top-left and bottom-right corners; foreground = everything not reached.
- ``"floodfill_center"``: ``"floodfill"`` plus a fill from the image centre (upDiff 30),
  for products with a hole in the middle (metal_nut).
- ``"none"``: the whole image (texture categories, and the 3D-AD rope and tire for which
  the authors made no mask).
- ``"auto"`` (unknown categories, e.g. a user's own product): flood fill when the image
  border is uniform (at least 95 % of the pixels of a border ring of width 2 % of the image
  lie within 30 grey levels, per channel, of the ring's median colour) *and* the fill
  leaves a foreground of 5-95 % of the image; otherwise the whole image.

Masks are computed on the image the caller passes (``PseudoClassDataset`` passes the
256 x 256 resized normal image) and cached on disk by :func:`cached_foreground_mask`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fsad.cache import DiskCache, files_fingerprint
from fsad.errors import ConfigError

METHODS = ("grabcut", "floodfill", "floodfill_center", "none", "auto")

_MVTEC_AD = {
    **dict.fromkeys(("cable", "hazelnut"), "grabcut"),
    **dict.fromkeys(
        ("bottle", "capsule", "pill", "screw", "toothbrush", "zipper", "transistor"), "floodfill"
    ),
    "metal_nut": "floodfill_center",
    **dict.fromkeys(("carpet", "grid", "leather", "tile", "wood"), "none"),
}
_MVTEC_3D = {
    "foam": "grabcut",
    **dict.fromkeys(
        ("bagel", "cable_gland", "carrot", "cookie", "dowel", "peach", "potato"), "floodfill"
    ),
    **dict.fromkeys(("rope", "tire"), "none"),
}
CATEGORY_METHODS: dict[str, dict[str, str]] = {"mvtec_ad": _MVTEC_AD, "mvtec_3d": _MVTEC_3D}

# Flood-fill parameters of the authors' code (per channel, fixed range, 4-connected).
FLOOD_LO_DIFF = 80
FLOOD_UP_DIFF = 50
FLOOD_CENTER_UP_DIFF = 30
GRABCUT_ITERATIONS = 10
GRABCUT_MARGIN = 1
# The "auto" rule.
AUTO_RING = 0.02
AUTO_TOLERANCE = 30
AUTO_UNIFORM_FRACTION = 0.95
AUTO_FG_RANGE = (0.05, 0.95)


def method_for(category: str | None, dataset: str = "mvtec_ad") -> str:
    """The foreground method of a category: the authors' choice, else ``"auto"``."""
    if category is None:
        return "auto"
    return CATEGORY_METHODS.get(dataset, {}).get(category, "auto")


def foreground_mask(
    image: np.ndarray,
    category: str | None = None,
    dataset: str = "mvtec_ad",
    method: str | None = None,
) -> np.ndarray:
    """Foreground of a normal image.

    Args:
        image: ``(H, W, 3) uint8`` RGB or ``(H, W) uint8`` grey.
        category: product name; picks the authors' method (see :func:`method_for`).
        dataset: ``"mvtec_ad"``, ``"mvtec_3d"`` or ``"folder"``.
        method: one of :data:`METHODS`, overriding the category's choice.

    Returns:
        ``(H, W) bool``, True on the product.

    Raises:
        ConfigError: unknown ``method``.
    """
    method = method or method_for(category, dataset)
    if method not in METHODS:
        raise ConfigError(
            f"unknown foreground method '{method}' (choose from {', '.join(METHODS)})"
        )
    img = _as_rgb(image)
    if method == "none":
        return np.ones(img.shape[:2], dtype=bool)
    if method == "grabcut":
        return grabcut_foreground(img)
    if method == "floodfill":
        return floodfill_foreground(img)
    if method == "floodfill_center":
        return floodfill_foreground(img, center=True)
    return auto_foreground(img)


def _as_rgb(image: np.ndarray) -> np.ndarray:
    img = np.ascontiguousarray(image)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ValueError(
            f"expected an (H, W, 3) or (H, W) uint8 image, got {img.shape} {img.dtype}"
        )
    return img


def _flood(img: np.ndarray, seed: tuple[int, int], lo: int, up: int) -> np.ndarray:
    """Pixels reached from ``seed`` = (x, y): ``(H, W) bool``."""
    import cv2

    h, w = img.shape[:2]
    mask = np.zeros((h + 2, w + 2), dtype=np.uint8)
    flags = 4 | cv2.FLOODFILL_FIXED_RANGE | cv2.FLOODFILL_MASK_ONLY | (255 << 8)
    cv2.floodFill(img.copy(), mask, seed, (0, 0, 0), (lo,) * 3, (up,) * 3, flags)
    return mask[1:-1, 1:-1] > 0


def floodfill_foreground(img: np.ndarray, center: bool = False) -> np.ndarray:
    """Foreground = not reached by flood fills from two opposite corners (and the centre)."""
    h, w = img.shape[:2]
    background = _flood(img, (0, 0), FLOOD_LO_DIFF, FLOOD_UP_DIFF)
    background |= _flood(img, (w - 1, h - 1), FLOOD_LO_DIFF, FLOOD_UP_DIFF)
    if center:
        background |= _flood(img, ((w - 1) // 2, (h - 1) // 2), FLOOD_LO_DIFF, FLOOD_CENTER_UP_DIFF)
    return ~background


def grabcut_foreground(img: np.ndarray) -> np.ndarray:
    """GrabCut from a rectangle just inside the border; foreground = probable foreground."""
    import cv2

    h, w = img.shape[:2]
    m = GRABCUT_MARGIN
    if h <= 2 * m + 2 or w <= 2 * m + 2:
        return np.ones((h, w), dtype=bool)
    mask = np.zeros((h, w), dtype=np.uint8)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    rect = (m, m, w - 2 * m, h - 2 * m)
    bgr = cv2.cvtColor(img, cv2.COLOR_RGB2BGR)
    try:
        cv2.grabCut(bgr, mask, rect, bgd, fgd, GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_RECT)
    except cv2.error:  # degenerate image (e.g. constant): no model can be fitted
        return np.ones((h, w), dtype=bool)
    return (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)


def border_is_uniform(img: np.ndarray) -> bool:
    """The ``"auto"`` rule's first test: is the border ring nearly one colour?"""
    h, w = img.shape[:2]
    r = max(1, round(AUTO_RING * min(h, w)))
    ring = np.concatenate(
        [
            img[:r].reshape(-1, 3),
            img[-r:].reshape(-1, 3),
            img[r:-r, :r].reshape(-1, 3),
            img[r:-r, -r:].reshape(-1, 3),
        ]
    ).astype(np.int16)
    median = np.median(ring, axis=0)
    close = (np.abs(ring - median) <= AUTO_TOLERANCE).all(axis=1)
    return bool(close.mean() >= AUTO_UNIFORM_FRACTION)


def auto_foreground(img: np.ndarray) -> np.ndarray:
    """Flood fill on a uniform border when it leaves a plausible object, else whole image."""
    whole = np.ones(img.shape[:2], dtype=bool)
    if not border_is_uniform(img):
        return whole
    fg = floodfill_foreground(img)
    lo, hi = AUTO_FG_RANGE
    return fg if lo <= fg.mean() <= hi else whole


def cached_foreground_mask(
    path: str | Path,
    image: np.ndarray,
    category: str | None,
    dataset: str = "mvtec_ad",
    method: str | None = None,
    cache: DiskCache | None = None,
) -> np.ndarray:
    """:func:`foreground_mask` of ``image`` (decoded and resized from ``path``), cached.

    The cache key holds the file's content fingerprint, the method, its
    parameters and the image size, so a changed file or rule never returns a stale mask.

    Returns:
        ``(H, W) bool``.
    """
    method = method or method_for(category, dataset)
    if cache is None or method == "none":
        return foreground_mask(image, category, dataset, method)
    key = {
        "file": files_fingerprint([path]),
        "method": method,
        "params": _params(method),
        "shape": list(image.shape[:2]),
    }
    value = cache.load_or_compute(
        "synth_foreground",
        key,
        lambda: {"mask": np.packbits(foreground_mask(image, category, dataset, method))},
    )
    n = image.shape[0] * image.shape[1]
    return np.unpackbits(value["mask"], count=n).reshape(image.shape[:2]).astype(bool)


def _params(method: str) -> dict[str, object]:
    flood = {"lo": FLOOD_LO_DIFF, "up": FLOOD_UP_DIFF, "connectivity": 4}
    if method == "grabcut":
        return {"iterations": GRABCUT_ITERATIONS, "margin": GRABCUT_MARGIN}
    if method == "floodfill":
        return flood
    if method == "floodfill_center":
        return {**flood, "center_up": FLOOD_CENTER_UP_DIFF}
    if method == "auto":
        return {
            **flood,
            "ring": AUTO_RING,
            "tol": AUTO_TOLERANCE,
            "uniform": AUTO_UNIFORM_FRACTION,
            "fg_range": list(AUTO_FG_RANGE),
        }
    return {}
