"""Defect transplants: a real defect cut from a support image, pasted into normal images.

One labelled support image becomes many labelled images of the same defect on other
backgrounds of the same product (issue #23, item 1):

1. **Map to pixels** (:func:`map_to_image`): the engine's anomaly map ``(h, w)``, computed on
   the backbone's ``crop x crop`` input, placed back on the original image with the
   engine's :func:`fsad.features.placement` (centre crop or letterbox); pixels the backbone
   never saw get 0.
2. **Threshold** (:func:`cut_threshold`): ``t = max(rel * peak, normal level)``, the normal
   level a high quantile of normal images' scores (:func:`normal_level`), fixed in advance;
   only the connected regions reaching ``(t + peak) / 2`` are kept.
3. **Refine** (:func:`cut_mask`): OpenCV GrabCut initialised from the thresholded map
   (strong part = sure foreground, the rest of the region = probable foreground, a ring of
   one map cell around it = probable background, everything else = background), optionally
   restricted to the product's foreground mask. Ground-truth masks are never read.
4. **Paste** (:func:`transplant`): the cut-out (:class:`Cutout`), scaled, rotated and
   brightened by seeded draws, placed at a point of the normal image's foreground where
   (nearly) all of it lies on the product (by default, of several such points, the one whose
   surroundings look most like the defect's surroundings in the support image), and blended by Poisson editing
   (``cv2.seamlessClone``) or a feathered alpha mask. The result carries the support's
   label and the pasted mask (:class:`Transplant`).

Every function takes explicit seeds or generators: the same inputs give the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from fsad.errors import ConfigError
from fsad.features import FeatureConfig, placement

BLENDS = ("poisson", "alpha")
PLACES = ("context", "random")
#: default relative threshold: the cut keeps the map above half the support image's peak
REL_THRESHOLD = 0.5
#: default quantile of the normal images' scores that the threshold never goes below
NORMAL_QUANTILE = 0.99
GRABCUT_ITERATIONS = 5
#: pixels the Poisson clone region reaches past the defect mask
POISSON_MARGIN = 4


@dataclass(frozen=True)
class Cutout:
    """A defect cut from a support image.

    Attributes:
        patch: ``(h, w, 3) uint8`` RGB: the defect's bounding box plus a margin.
        mask: ``(h, w) bool``: the defect inside ``patch``.
        label: the support image's defect type.
        box: ``(top, left, bottom, right)`` of ``patch`` in the support image (pixels).
    """

    patch: np.ndarray
    mask: np.ndarray
    label: str
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class Transplant:
    """A normal image with a transplanted defect.

    Attributes:
        image: ``(H, W, 3) uint8`` RGB.
        mask: ``(H, W) bool``: where the defect was pasted.
        label: the defect type (the support image's label).
        params: the drawn ``scale``, ``angle`` (degrees), ``gain`` (brightness factor),
            ``centre`` ``(y, x)`` and ``on_foreground`` (fraction of the mask on the product).
    """

    image: np.ndarray
    mask: np.ndarray
    label: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TransplantConfig:
    """How cut-outs are pasted (ranges are drawn uniformly).

    Attributes:
        scale: size factor range of the pasted defect.
        rotation: rotation range in degrees.
        brightness: gain range applied to the defect's pixels.
        blend: ``"poisson"`` (``cv2.seamlessClone``, gradients kept, colours matched at the
            border) or ``"alpha"`` (the pixels kept, the border feathered).
        feather: Gaussian sigma (px) of the alpha blend's border.
        min_on_foreground: fraction of the pasted mask that must lie on the product; the
            place is redrawn up to ``max_tries`` times, then the best try is kept.
        max_tries: placement draws per transplant.
        place: ``"random"`` (the first draw that lies on the product) or ``"context"``
            (of ``candidates`` draws that lie on the product, the one whose surroundings
            look most like the defect's surroundings in the support image: mean absolute
            difference over the cut-out's margin, so a defect on a rim lands on a rim).
        candidates: places compared by ``"context"``.
    """

    scale: tuple[float, float] = (0.8, 1.25)
    rotation: tuple[float, float] = (-30.0, 30.0)
    brightness: tuple[float, float] = (0.9, 1.1)
    blend: str = "poisson"
    feather: float = 1.5
    min_on_foreground: float = 0.95
    max_tries: int = 50
    place: str = "context"
    candidates: int = 16

    def __post_init__(self) -> None:
        if self.blend not in BLENDS:
            raise ConfigError(f"unknown blend '{self.blend}' (choose from {', '.join(BLENDS)})")
        if self.place not in PLACES:
            raise ConfigError(f"unknown place '{self.place}' (choose from {', '.join(PLACES)})")
        for name in ("scale", "rotation", "brightness"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ConfigError(f"{name} range must be (low, high), got {(lo, hi)}")
        if self.scale[0] <= 0 or self.brightness[0] <= 0:
            raise ConfigError(
                f"scale and brightness must be positive, got {self.scale}, {self.brightness}"
            )
        if self.max_tries < 1:
            raise ConfigError(f"max_tries must be at least 1, got {self.max_tries}")


# ----------------------------------------------------------------------------- the cut
def map_to_image(
    amap: np.ndarray | torch.Tensor, shape: tuple[int, int], features: FeatureConfig
) -> np.ndarray:
    """An anomaly map on the engine's patch grid, in original-image pixels.

    The ``(h, w)`` map covers the backbone's ``crop x crop`` input; it is resized to that
    square (bilinear) and mapped back through :func:`fsad.features.placement` (the inverse
    of :func:`fsad.features.preprocess`, framing-aware). Image pixels outside the input
    (cut off by the centre crop) get 0.

    Args:
        amap: ``(h, w)`` anomaly map.
        shape: the original image's ``(H, W)``.
        features: the engine's feature settings (``crop``, ``resize``, ``framing``).

    Returns:
        ``(H, W) float32``.
    """
    import cv2

    grid = np.asarray(amap, dtype=np.float32)
    if grid.ndim != 2:
        raise ConfigError(f"expected an (h, w) anomaly map, got shape {grid.shape}")
    crop = features.crop
    square = cv2.resize(grid, (crop, crop), interpolation=cv2.INTER_LINEAR)
    p = placement(tuple(shape), features)
    # input pixel = scale * image pixel + (dy, dx): the inverse map of warpAffine
    to_input = np.array([[p.scale, 0.0, p.dx], [0.0, p.scale, p.dy]], dtype=np.float64)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    return cv2.warpAffine(
        square, to_input, (shape[1], shape[0]), flags=flags, borderMode=cv2.BORDER_CONSTANT
    )


def normal_level(maps: np.ndarray | torch.Tensor, quantile: float = NORMAL_QUANTILE) -> float:
    """A high quantile of normal images' anomaly scores (the maximum of each map).

    Args:
        maps: ``(N, h, w)`` anomaly maps of normal images.
        quantile: in ``[0, 1]``.
    """
    m = np.asarray(maps, dtype=np.float32)
    if m.ndim != 3 or len(m) == 0:
        raise ConfigError(f"expected (N, h, w) maps of normal images, got shape {m.shape}")
    if not 0.0 <= quantile <= 1.0:
        raise ConfigError(f"quantile must lie in [0, 1], got {quantile}")
    return float(np.quantile(m.reshape(len(m), -1).max(1), quantile))


def cut_threshold(peak: float, normal: float, rel: float = REL_THRESHOLD) -> float:
    """``max(rel * peak, normal)``; ``rel * peak`` alone when the peak is not above
    ``normal`` (a faint defect still gets a cut)."""
    if not 0.0 < rel < 1.0:
        raise ConfigError(f"rel must lie in (0, 1), got {rel}")
    return float(max(rel * peak, normal) if peak > normal else rel * peak)


def cut_mask(
    image: np.ndarray,
    pixel_map: np.ndarray,
    threshold: float,
    foreground: np.ndarray | None = None,
    cell: int = 8,
    grabcut: bool = True,
) -> np.ndarray:
    """The defect mask of a support image from its anomaly map (no ground truth).

    Args:
        image: ``(H, W, 3) uint8`` RGB support image.
        pixel_map: ``(H, W)`` anomaly map in image pixels (:func:`map_to_image`).
        threshold: map level of the defect (:func:`cut_threshold`).
        foreground: optional ``(H, W) bool`` product mask; the probable defect is kept on it.
        cell: size of one map cell in image pixels (the GrabCut ring's width).
        grabcut: refine the thresholded region with GrabCut (else return it as is).

    Returns:
        ``(H, W) bool``; never empty (the map's peak pixel at least).
    """
    import cv2

    img = _rgb(image, "image")
    amap = np.asarray(pixel_map, dtype=np.float32)
    if amap.shape != img.shape[:2]:
        raise ConfigError(f"map shape {amap.shape} does not match image shape {img.shape[:2]}")
    if foreground is not None and foreground.shape != img.shape[:2]:
        raise ConfigError(
            f"foreground shape {foreground.shape} does not match image shape {img.shape[:2]}"
        )
    peak = float(amap.max())
    region = amap >= min(threshold, peak)
    strong = amap >= (min(threshold, peak) + peak) / 2
    # keep the connected regions that reach the strong level (the peak's at least)
    n, labels = cv2.connectedComponents(region.astype(np.uint8), connectivity=8)
    keep = np.zeros(n, dtype=bool)
    keep[np.unique(labels[strong])] = True
    keep[0] = False
    region = keep[labels]
    if not grabcut:
        return region
    # GrabCut labels: sure defect, probable defect, a probable-normal ring, sure normal
    r = max(1, int(cell))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    ring = cv2.dilate(region.astype(np.uint8), kernel).astype(bool)
    gc = np.full(img.shape[:2], cv2.GC_BGD, dtype=np.uint8)
    gc[ring] = cv2.GC_PR_BGD
    gc[region] = cv2.GC_PR_FGD
    if foreground is not None:
        gc[region & ~foreground] = cv2.GC_PR_BGD
    core = cv2.erode((strong & region).astype(np.uint8), kernel).astype(bool)
    gc[core] = cv2.GC_FGD
    # run on the ring's bounding box plus a margin (GrabCut is slow on whole images)
    top, left, bottom, right = _box(ring, 2 * r, img.shape[:2])
    sub = np.ascontiguousarray(gc[top:bottom, left:right])
    bgr = cv2.cvtColor(np.ascontiguousarray(img[top:bottom, left:right]), cv2.COLOR_RGB2BGR)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    try:
        cv2.grabCut(bgr, sub, None, bgd, fgd, GRABCUT_ITERATIONS, cv2.GC_INIT_WITH_MASK)
    except cv2.error:  # too few pixels of one kind to fit a colour model: keep the threshold
        return region
    refined = np.zeros(img.shape[:2], dtype=bool)
    refined[top:bottom, left:right] = (sub == cv2.GC_FGD) | (sub == cv2.GC_PR_FGD)
    # drop GrabCut islands that do not touch the thresholded region
    n, labels = cv2.connectedComponents(refined.astype(np.uint8), connectivity=8)
    keep = np.zeros(n, dtype=bool)
    keep[np.unique(labels[refined & region])] = True
    keep[0] = False
    refined = keep[labels]
    return refined if refined.any() else region


def cut_out(image: np.ndarray, mask: np.ndarray, label: str, margin: int = 8) -> Cutout:
    """The defect's bounding box plus ``margin`` pixels, as a :class:`Cutout`.

    Args:
        image: ``(H, W, 3) uint8`` RGB support image.
        mask: ``(H, W) bool`` defect mask (:func:`cut_mask`).
        label: the support image's defect type.
        margin: context kept around the mask (Poisson blending and feathering use it).
    """
    img = _rgb(image, "image")
    m = np.asarray(mask, dtype=bool)
    if m.shape != img.shape[:2]:
        raise ConfigError(f"mask shape {m.shape} does not match image shape {img.shape[:2]}")
    if not m.any():
        raise ConfigError(f"empty defect mask for a '{label}' support image")
    top, left, bottom, right = _box(m, margin, img.shape[:2])
    return Cutout(
        img[top:bottom, left:right].copy(),
        m[top:bottom, left:right].copy(),
        str(label),
        (top, left, bottom, right),
    )


def cut_support(
    image: np.ndarray,
    amap: np.ndarray | torch.Tensor,
    label: str,
    features: FeatureConfig,
    normal: float,
    foreground: np.ndarray | None = None,
    rel: float = REL_THRESHOLD,
) -> Cutout:
    """The whole cut of one support image: map to pixels, threshold, GrabCut, cut out.

    Args:
        image: ``(H, W, 3) uint8`` RGB support image.
        amap: its ``(h, w)`` anomaly map from the category's engine.
        label: its defect type.
        features: the engine's feature settings (for the placement).
        normal: the normal images' score level (:func:`normal_level`).
        foreground: optional ``(H, W) bool`` product mask of the support image.
        rel: relative threshold (:func:`cut_threshold`).
    """
    img = _rgb(image, "image")
    pixel_map = map_to_image(amap, img.shape[:2], features)
    grid = np.asarray(amap).shape
    cell = round(features.crop / grid[0] / placement(img.shape[:2], features).scale)
    t = cut_threshold(float(pixel_map.max()), normal, rel)
    return cut_out(img, cut_mask(img, pixel_map, t, foreground, cell), label, margin=cell)


# ----------------------------------------------------------------------------- the paste
def transplant(
    cutout: Cutout,
    normal: np.ndarray,
    seed: int | Sequence[int] | np.random.Generator,
    foreground: np.ndarray | None = None,
    config: TransplantConfig = TransplantConfig(),
) -> Transplant:
    """Paste a cut-out defect into a normal image.

    Args:
        cutout: from :func:`cut_out` / :func:`cut_support`.
        normal: ``(H, W, 3) uint8`` RGB normal image of the same product.
        seed: seed (or generator) of the scale, rotation, brightness and place draws.
        foreground: ``(H, W) bool`` product mask of ``normal``; None = the whole image.
        config: ranges and blend.

    Returns:
        a :class:`Transplant`: image ``(H, W, 3) uint8``, mask ``(H, W) bool``, the label.

    Raises:
        ConfigError: a bad image, a foreground of another shape or an empty one.
    """
    import cv2

    img = _rgb(normal, "normal image")
    h, w = img.shape[:2]
    fg = np.ones((h, w), dtype=bool) if foreground is None else np.asarray(foreground, bool)
    if fg.shape != (h, w):
        raise ConfigError(f"foreground shape {fg.shape} does not match image shape {(h, w)}")
    if not fg.any():
        raise ConfigError("the normal image's foreground is empty: nowhere to paste")
    if cutout.mask.shape != cutout.patch.shape[:2] or not cutout.mask.any():
        raise ConfigError(f"cut-out of '{cutout.label}' has an empty or mismatched mask")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    scale = float(rng.uniform(*config.scale))
    angle = float(rng.uniform(*config.rotation))
    gain = float(rng.uniform(*config.brightness))
    on, affine, centre = _place(cutout, img, fg, scale, angle, rng, config)
    mask = _warp(cutout.mask.astype(np.float32), affine, (h, w)) > 0.5
    mask[[0, -1], :] = mask[:, [0, -1]] = False
    # the defect's pixels (with their margin), brightened, on an image-sized canvas
    patch = np.clip(cutout.patch.astype(np.float32) * gain, 0, 255).astype(np.uint8)
    canvas = _warp(patch, affine, (h, w))
    if config.blend == "poisson":
        # Poisson editing: the defect's gradients inside, the normal image's colours at the border
        # (the clone region reaches a few pixels past the defect, so its edges are inside)
        inside = _warp(np.ones(cutout.mask.shape, np.uint8), affine, (h, w))
        inside = cv2.erode(inside, np.ones((3, 3), np.uint8))
        grow = 2 * POISSON_MARGIN + 1
        m = cv2.dilate(mask.astype(np.uint8), np.ones((grow, grow), np.uint8)) * inside * 255
        m[[0, -1], :] = m[:, [0, -1]] = 0
        x, y, bw, bh = cv2.boundingRect(m)
        out = cv2.seamlessClone(canvas, img, m, (x + bw // 2, y + bh // 2), cv2.NORMAL_CLONE)
    else:
        # alpha blending with a feathered border; the margin supplies the pixels just outside
        inside = _warp(np.ones(cutout.mask.shape, np.float32), affine, (h, w))
        alpha = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), config.feather) * inside
        alpha = alpha[..., None]
        mixed = img.astype(np.float32) * (1 - alpha) + canvas.astype(np.float32) * alpha
        out = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    params = {"scale": scale, "angle": angle, "gain": gain, "centre": centre, "on_foreground": on}
    return Transplant(out, mask, cutout.label, params)


def _place(
    cutout: Cutout,
    img: np.ndarray,
    fg: np.ndarray,
    scale: float,
    angle: float,
    rng: np.random.Generator,
    config: TransplantConfig,
) -> tuple[float, np.ndarray, tuple[int, int]]:
    """Where the cut-out goes: ``(fraction on the product, (2, 3) affine, centre (y, x))``.

    Centres are foreground pixels drawn from ``rng``; a draw counts when at least
    ``min_on_foreground`` of the pasted mask lies on the product. ``"random"`` keeps the first
    such draw, ``"context"`` the one of ``candidates`` such draws whose pixels under the
    cut-out's margin (around the defect) differ least from the support's; without any, the
    draw with the most on the product.

    Raises:
        ConfigError: every draw fell off the image (a cut-out larger than the image).
    """
    h, w = fg.shape
    ys, xs = np.nonzero(fg)
    wanted = 1 if config.place == "random" else config.candidates
    inside = np.ones(cutout.mask.shape, np.float32)
    margin = ~cutout.mask
    patch = cutout.patch.astype(np.float32)
    best_on: tuple[float, np.ndarray, tuple[int, int]] | None = None
    best_fit: tuple[float, float, np.ndarray, tuple[int, int]] | None = None
    found = 0
    for _ in range(config.max_tries):  # the place: a foreground pixel, redrawn until it fits
        k = int(rng.integers(len(ys)))
        centre = (int(ys[k]), int(xs[k]))
        affine = _affine(cutout.mask.shape, centre, scale, angle)
        pasted = _warp(cutout.mask.astype(np.float32), affine, (h, w)) > 0.5
        pasted[[0, -1], :] = pasted[:, [0, -1]] = False  # seamlessClone needs a free border
        if not pasted.any():
            continue
        on = float((pasted & fg).sum() / pasted.sum())
        if best_on is None or on > best_on[0]:
            best_on = (on, affine, centre)
        if on < config.min_on_foreground:
            continue
        found += 1
        if config.place == "context":
            # the support's pixels around the defect vs the normal image's pixels there
            ring = (_warp(inside, affine, (h, w)) > 0.99) & ~pasted
            ring &= _warp(margin.astype(np.float32), affine, (h, w)) > 0.99
            if not ring.any():
                continue
            there = _warp(patch, affine, (h, w))[ring]
            cost = float(np.abs(there - img[ring].astype(np.float32)).mean())
        else:
            cost = 0.0
        if best_fit is None or cost < best_fit[0]:
            best_fit = (cost, on, affine, centre)
        if found >= wanted:
            break
    if best_fit is not None:
        return best_fit[1], best_fit[2], best_fit[3]
    if best_on is None:
        raise ConfigError(f"the '{cutout.label}' cut-out does not fit in a {h}x{w} image")
    return best_on


def transplants(
    cutouts: Sequence[Cutout],
    normals: Sequence[np.ndarray],
    per_cutout: int,
    seed: int,
    foregrounds: Sequence[np.ndarray] | None = None,
    config: TransplantConfig = TransplantConfig(),
) -> list[Transplant]:
    """``per_cutout`` transplants of each cut-out, into normal images drawn by seed.

    Transplant ``j`` of cut-out ``i`` goes into a normal image drawn (without replacement
    while there are enough) with generator ``[seed, i]`` and is pasted with ``[seed, i, j]``,
    so adding cut-outs never changes the others' transplants.

    Args:
        cutouts: the support images' cut-outs.
        normals: ``[(H, W, 3) uint8]`` normal images of the same product.
        per_cutout: transplants per cut-out.
        seed: the run's seed.
        foregrounds: ``[(H, W) bool]`` their product masks (None: whole images).
        config: ranges and blend.

    Returns:
        ``len(cutouts) * per_cutout`` transplants, cut-out by cut-out.
    """
    if not normals:
        raise ConfigError("no normal images to paste into")
    if foregrounds is not None and len(foregrounds) != len(normals):
        raise ConfigError(f"{len(foregrounds)} foreground masks for {len(normals)} normal images")
    if per_cutout < 1:
        raise ConfigError(f"per_cutout must be at least 1, got {per_cutout}")
    out = []
    for i, cut in enumerate(cutouts):
        rng = np.random.default_rng([seed, i])
        picks = rng.choice(len(normals), size=per_cutout, replace=per_cutout > len(normals))
        for j, k in enumerate(picks):
            fg = None if foregrounds is None else foregrounds[k]
            out.append(transplant(cut, normals[k], [seed, i, j], fg, config))
    return out


# ----------------------------------------------------------------------------- helpers
def _rgb(image: np.ndarray, what: str) -> np.ndarray:
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
        raise ConfigError(f"{what}: expected (H, W, 3) uint8 RGB, got {img.shape} {img.dtype}")
    return np.ascontiguousarray(img)


def _box(mask: np.ndarray, margin: int, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(top, left, bottom, right)`` of ``mask``'s pixels, grown by ``margin``, in the image."""
    ys, xs = np.nonzero(mask)
    return (
        max(0, int(ys.min()) - margin),
        max(0, int(xs.min()) - margin),
        min(shape[0], int(ys.max()) + 1 + margin),
        min(shape[1], int(xs.max()) + 1 + margin),
    )


def _affine(
    shape: tuple[int, int], centre: tuple[int, int], scale: float, angle: float
) -> np.ndarray:
    """``(2, 3)`` map of cut-out pixels to image pixels: rotate and scale about the
    cut-out's centre, then move that centre to ``centre = (y, x)``."""
    import cv2

    c = ((shape[1] - 1) / 2, (shape[0] - 1) / 2)
    affine = cv2.getRotationMatrix2D(c, angle, scale)
    affine[:, 2] += (centre[1] - c[0], centre[0] - c[1])
    return affine


def _warp(x: np.ndarray, affine: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    import cv2

    return cv2.warpAffine(
        x, affine, (shape[1], shape[0]), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
