"""Defect-shape masks of the synthetic classes (paper section 3.5 and Appendix C).

- :func:`perlin_mask`: thresholded Perlin noise (scales ``2**0 .. 2**5`` per axis, threshold
  0.35), redrawn until its area lies in ``area`` (fraction of the image), then intersected
  with the foreground mask (the paper's ``M_a``).
- :func:`polygon_mask`: a regular 3-, 4- or 5-gon of diameter ``min(H, W) / 5`` at a random
  position (centre on the foreground) and rotation (Appendix C).
- :func:`stroke_mask` and :func:`spot_mask` (not in the paper): a thin bent stroke (a scratch
  or cut) and a small ellipse (a spot or hole), for synthetic classes that differ in shape
  and extent as real defect types do (:class:`fsad.synth.PseudoClassDataset`'s ``"shapes"``).

All functions take an explicit ``numpy.random.Generator``: the same generator state gives the
same mask.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

PERLIN_MAX_LOG2_SCALE = 5  # scales 2**0 .. 2**5 per axis
PERLIN_THRESHOLD = 0.35
DEFAULT_AREA = (0.1, 0.4)
MIN_FOREGROUND_OVERLAP = 0.05
POLYGON_SIDES = (3, 4, 5)
POLYGON_MIN_AREA = 0.01
MAX_TRIES = 200
#: stroke length and thickness ranges, fractions of the shorter side; segments per stroke
STROKE_LENGTH = (0.2, 0.5)
STROKE_WIDTH = (0.008, 0.02)
STROKE_SEGMENTS = 4
#: spot diameter range, fraction of the shorter side, and its smallest minor/major axis ratio
SPOT_DIAMETER = (0.04, 0.1)
SPOT_MIN_ASPECT = 0.6
#: the smallest accepted part of a stroke or spot on the foreground, fraction of the image
SMALL_MIN_AREA = 0.001


def _fade(t: np.ndarray) -> np.ndarray:
    """Perlin's quintic interpolant 6t^5 - 15t^4 + 10t^3 (dtype kept)."""
    return t * t * t * (t * (t * 6 - 15) + 10)


def perlin_noise(
    shape: tuple[int, int], res: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    """Gradient (Perlin) noise of ``res`` lattice cells per axis.

    Args:
        shape: output ``(H, W)``; any size (the lattice is laid over it exactly).
        res: number of lattice cells along ``(H, W)`` (the "scale" of the noise).
        rng: random generator for the lattice gradients.

    Returns:
        ``(H, W) float32`` noise, scaled by sqrt(2) so it spans about ``[-1, 1]``.
    """
    h, w = shape
    ry, rx = res
    angles = 2.0 * np.pi * rng.random((ry + 1, rx + 1))
    gy, gx = np.sin(angles).astype(np.float32), np.cos(angles).astype(np.float32)
    y = (np.arange(h, dtype=np.float32) + 0.5) * np.float32(ry / h)  # lattice coordinates
    x = (np.arange(w, dtype=np.float32) + 0.5) * np.float32(rx / w)
    iy, ix = y.astype(np.int64), x.astype(np.int64)
    fy, fx = y - iy.astype(np.float32), x - ix.astype(np.float32)

    def corner(dy: int, dx: int) -> np.ndarray:
        r, c = iy + dy, ix + dx  # gradient of the (dy, dx) lattice corner of each pixel
        return gy[r][:, c] * (fy - dy)[:, None] + gx[r][:, c] * (fx - dx)[None, :]

    uy, ux = _fade(fy)[:, None], _fade(fx)[None, :]
    c00, c10 = corner(0, 0), corner(1, 0)
    top = c00 + ux * (corner(0, 1) - c00)
    bottom = c10 + ux * (corner(1, 1) - c10)
    return np.float32(math.sqrt(2.0)) * (top + uy * (bottom - top))


def _check_area(area: tuple[float, float]) -> tuple[float, float]:
    lo, hi = float(area[0]), float(area[1])
    if not 0.0 <= lo < hi <= 1.0:
        raise ValueError(f"area range must satisfy 0 <= low < high <= 1, got {area!r}")
    return lo, hi


def perlin_mask(
    shape: tuple[int, int],
    rng: np.random.Generator,
    fg: np.ndarray | None = None,
    area: tuple[float, float] = DEFAULT_AREA,
    threshold: float = PERLIN_THRESHOLD,
    min_fg_overlap: float = MIN_FOREGROUND_OVERLAP,
    max_tries: int = MAX_TRIES,
) -> tuple[np.ndarray, np.ndarray]:
    """A Perlin-noise defect mask on the foreground (the paper's ``M_a``).

    Each try draws scales ``(2**a, 2**b)``, ``a, b ~ U{0..5}``, thresholds the noise at
    ``threshold`` and accepts the mask when its area (fraction of the image) lies in
    ``area`` and, when ``fg`` is given, its part on the foreground covers at least
    ``min_fg_overlap`` of the foreground (so a small product such as a screw never gets
    an empty defect; the authors' code could). After ``max_tries`` the try closest to the
    range is kept.

    Args:
        shape: ``(H, W)``.
        rng: random generator.
        fg: foreground ``(H, W) bool``; None means the whole image.
        area: accepted area range of the raw mask, fraction of the image.
        threshold: noise threshold.
        min_fg_overlap: minimum fraction of the foreground the final mask covers.
        max_tries: redraw limit.

    Returns:
        ``(raw, mask)``: the thresholded noise ``(H, W) bool`` and ``raw & fg``.
    """
    lo, hi = _check_area(area)
    h, w = shape
    fg_pixels = int(fg.sum()) if fg is not None else h * w
    best, best_gap = None, math.inf
    for _ in range(max_tries):
        sy, sx = (2 ** int(v) for v in rng.integers(0, PERLIN_MAX_LOG2_SCALE + 1, size=2))
        raw = perlin_noise(shape, (sy, sx), rng) > threshold
        frac = float(raw.mean())
        mask = raw & fg if fg is not None else raw
        overlap = mask.sum() / max(fg_pixels, 1)
        gap = max(lo - frac, frac - hi, 0.0) + max(min_fg_overlap - overlap, 0.0)
        if gap == 0.0:
            return raw, mask
        if gap < best_gap:
            best, best_gap = (raw, mask), gap
    assert best is not None
    return best


def _foreground_point(
    rng: np.random.Generator, shape: tuple[int, int], fg: np.ndarray | None
) -> tuple[float, float]:
    """A random ``(x, y)`` on the foreground (anywhere when ``fg`` is None or empty)."""
    if fg is None or not fg.any():
        return rng.uniform(0, shape[1]), rng.uniform(0, shape[0])
    ys, xs = np.nonzero(fg)
    k = int(rng.integers(len(ys)))
    return xs[k] + rng.uniform(-0.5, 0.5), ys[k] + rng.uniform(-0.5, 0.5)


def _redraw(
    draw: Callable[[np.ndarray, np.random.Generator], None],
    shape: tuple[int, int],
    rng: np.random.Generator,
    fg: np.ndarray | None,
    min_area: float,
    max_tries: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Redraw ``draw(canvas, rng)`` (paints 1 on a ``(H, W) uint8`` canvas) until its part on
    the foreground covers at least ``min_area`` of the image; else keep the largest try.

    Returns:
        ``(raw, mask)``: the drawn shape ``(H, W) bool`` and ``raw & fg``.
    """
    h, w = shape
    empty = np.zeros(shape, dtype=bool)
    best, best_area = (empty, empty), -1
    for _ in range(max_tries):
        canvas = np.zeros(shape, dtype=np.uint8)
        draw(canvas, rng)
        raw = canvas.astype(bool)
        mask = raw & fg if fg is not None else raw
        n = int(mask.sum())
        if n >= min_area * h * w:
            return raw, mask
        if n > best_area:
            best, best_area = (raw, mask), n
    return best


def regular_polygon(
    center: tuple[float, float], diameter: float, n_sides: int, angle: float
) -> np.ndarray:
    """Vertices ``(n_sides, 2)`` as ``(x, y)`` of a regular polygon inscribed in a circle."""
    t = angle + 2.0 * np.pi * np.arange(n_sides) / n_sides
    r = diameter / 2.0
    return np.stack([center[0] + r * np.cos(t), center[1] + r * np.sin(t)], axis=1)


def polygon_mask(
    shape: tuple[int, int],
    rng: np.random.Generator,
    n_sides: int,
    fg: np.ndarray | None = None,
    diameter: float | None = None,
    min_area: float = POLYGON_MIN_AREA,
    max_tries: int = MAX_TRIES,
) -> tuple[np.ndarray, np.ndarray]:
    """A regular ``n_sides``-gon defect mask (Appendix C), intersected with the foreground.

    The centre is drawn among foreground pixels, the rotation uniformly; a try is accepted
    when the polygon's part on the foreground covers at least ``min_area`` of the image
    (the paper: "area > 1 %"), else the largest try is kept.

    Args:
        shape: ``(H, W)``.
        rng: random generator.
        n_sides: 3, 4 or 5 in the paper (any value >= 3 works).
        fg: foreground ``(H, W) bool``; None means the whole image.
        diameter: circumscribed diameter in pixels; default ``min(H, W) / 5``.
        min_area: minimum area on the foreground, fraction of the image.
        max_tries: redraw limit.

    Returns:
        ``(raw, mask)``: the polygon ``(H, W) bool`` and ``raw & fg``.
    """
    import cv2

    if n_sides < 3:
        raise ValueError(f"a polygon needs at least 3 sides, got {n_sides}")
    diameter = diameter if diameter is not None else min(shape) / 5.0

    def draw(canvas: np.ndarray, rng: np.random.Generator) -> None:
        centre = _foreground_point(rng, shape, fg)
        pts = regular_polygon(centre, diameter, n_sides, rng.uniform(0, 2 * np.pi))
        cv2.fillPoly(canvas, [np.round(pts * 16).astype(np.int32)], 1, cv2.LINE_8, shift=4)

    return _redraw(draw, shape, rng, fg, min_area, max_tries)


def stroke_mask(
    shape: tuple[int, int],
    rng: np.random.Generator,
    fg: np.ndarray | None = None,
    max_tries: int = MAX_TRIES,
) -> tuple[np.ndarray, np.ndarray]:
    """A thin bent stroke (scratch- or cut-like), intersected with the foreground.

    It starts on the foreground and runs :data:`STROKE_SEGMENTS` straight segments of equal
    length, each turning by up to 45 degrees; total length and thickness are drawn from
    :data:`STROKE_LENGTH` and :data:`STROKE_WIDTH` (fractions of the shorter side).

    Returns:
        ``(raw, mask)``: the stroke ``(H, W) bool`` and ``raw & fg``.
    """
    import cv2

    side = min(shape)

    def draw(canvas: np.ndarray, rng: np.random.Generator) -> None:
        x, y = _foreground_point(rng, shape, fg)
        step = rng.uniform(*STROKE_LENGTH) * side / STROKE_SEGMENTS
        width = max(1, int(round(rng.uniform(*STROKE_WIDTH) * side)))
        angle, pts = rng.uniform(0, 2 * np.pi), [(x, y)]
        for _ in range(STROKE_SEGMENTS):
            angle += rng.uniform(-np.pi / 4, np.pi / 4)
            x, y = x + step * np.cos(angle), y + step * np.sin(angle)
            pts.append((x, y))
        poly = np.round(np.asarray(pts) * 16).astype(np.int32)
        cv2.polylines(canvas, [poly], False, 1, width, cv2.LINE_8, shift=4)

    return _redraw(draw, shape, rng, fg, SMALL_MIN_AREA, max_tries)


def spot_mask(
    shape: tuple[int, int],
    rng: np.random.Generator,
    fg: np.ndarray | None = None,
    max_tries: int = MAX_TRIES,
) -> tuple[np.ndarray, np.ndarray]:
    """A small filled ellipse (spot- or hole-like) centred on the foreground.

    Its major axis is drawn from :data:`SPOT_DIAMETER` (fraction of the shorter side), its
    minor/major ratio from ``[SPOT_MIN_ASPECT, 1]``, its rotation uniformly.

    Returns:
        ``(raw, mask)``: the ellipse ``(H, W) bool`` and ``raw & fg``.
    """
    import cv2

    side = min(shape)

    def draw(canvas: np.ndarray, rng: np.random.Generator) -> None:
        x, y = _foreground_point(rng, shape, fg)
        major = rng.uniform(*SPOT_DIAMETER) * side
        minor = major * rng.uniform(SPOT_MIN_ASPECT, 1.0)
        axes = (max(1, int(round(major / 2))), max(1, int(round(minor / 2))))
        centre = (int(round(x)), int(round(y)))
        cv2.ellipse(canvas, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)

    return _redraw(draw, shape, rng, fg, SMALL_MIN_AREA, max_tries)
