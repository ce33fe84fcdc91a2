"""The embedded procedural dataset: small, deterministic, in the MVTec AD layout.

It is the default data of the quick start and of the fast tests, so fsad runs end to end
without downloading anything. :func:`generate` writes, deterministically by seed::

    <out>/<category>/train/good/000.png
    <out>/<category>/test/<label>/000.png            (label = "good" or a defect type)
    <out>/<category>/ground_truth/<defect>/000_mask.png   (0/255)
    <out>/fsad_embedded.json                         (marker: version, seed, counts)

Normal images vary like real captures (small shift and rotation, lighting gain and
gradient, sensor noise, texture phase); defects of one type vary in size, position and
orientation, and the types look different from each other (see :data:`CATEGORIES`).
Every image is drawn from its own generator seeded by ``(seed, category, label, index)``,
so :func:`render_sample` reproduces any single file (the tests use this).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fsad.cache import default_cache_dir
from fsad.data import encode_image
from fsad.errors import DataError
from fsad.utils import atomic_folder

VERSION = 1
MARKER = "fsad_embedded.json"
GOOD = "good"

#: category -> kind ("object" or "texture"), defect types and what each looks like.
CATEGORIES: dict[str, dict[str, object]] = {
    "washer": {
        "kind": "object",
        "description": "hex nut / washer: metal ring on a plain background",
        "defects": {
            "scratch": "thin bright curved line on the metal",
            "hole": "dark irregular disc punched into the metal",
            "stain": "soft rust-orange blob",
            "missing_part": "chunk of the rim replaced by background",
        },
    },
    "pill": {
        "kind": "object",
        "description": "white capsule with red speckles on a dark background",
        "defects": {
            "crack": "jagged dark polyline, sometimes branched",
            "stain": "soft yellow-brown blob",
            "missing_part": "chip of the edge replaced by background",
        },
    },
    "fabric": {
        "kind": "texture",
        "description": "woven beige fabric (texture phase and angle vary)",
        "defects": {
            "hole": "dark irregular disc",
            "scratch": "thin bright pulled thread",
            "stain": "soft wine-red blob",
        },
    },
    "tiles": {
        "kind": "texture",
        "description": "ceramic tiles with grout lines (grid phase and tile shade vary)",
        "defects": {
            "crack": "jagged dark polyline across a tile",
            "stain": "soft blue-green blob",
            "missing_part": "chipped region showing grey substrate",
        },
    },
}


@dataclass
class Scene:
    """A rendered normal image and what defect painters need to know about it.

    Attributes:
        image: RGB ``(H, W, 3) float32`` in [0, 255], before lighting and noise.
        background: what lies behind the object ``(H, W, 3) float32`` (the substrate for
            textures); ``missing_part`` reveals it.
        obj: where defects may appear ``(H, W) bool``.
    """

    image: np.ndarray
    background: np.ndarray
    obj: np.ndarray


# ----------------------------------------------------------------------------- helpers


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates ``(yy, xx)``, each ``(size, size) float32``."""
    ax = np.arange(size, dtype=np.float32)
    return np.meshgrid(ax, ax, indexing="ij")


def _smooth_noise(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    """Zero-mean unit-std Gaussian-blurred noise ``(size, size) float32``."""
    import cv2

    n = rng.standard_normal((size, size), dtype=np.float32)
    n = cv2.GaussianBlur(n, (0, 0), sigma)
    return n / max(float(n.std()), 1e-6)


def _irregular_disc(
    rng: np.random.Generator, size: int, centre: tuple[float, float], radius: float, rough: float
) -> np.ndarray:
    """Filled polygon with radially jittered vertices ``(size, size) uint8`` (0/255)."""
    import cv2

    k = 20
    ang = np.linspace(0, 2 * np.pi, k, endpoint=False) + rng.uniform(0, 2 * np.pi)
    rad = radius * np.clip(1 + rough * rng.standard_normal(k), 0.5, 1.5)
    pts = np.stack([centre[0] + rad * np.cos(ang), centre[1] + rad * np.sin(ang)], 1)
    layer = np.zeros((size, size), np.uint8)
    cv2.fillPoly(layer, [np.round(pts * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    return layer


def _pick_point(
    rng: np.random.Generator, region: np.ndarray, margin: float = 0
) -> tuple[float, float]:
    """A random ``(x, y)`` inside a boolean region ``(H, W)``, ``margin`` px from the border."""
    m = int(np.ceil(margin))
    inner = np.zeros_like(region)
    inner[m : region.shape[0] - m, m : region.shape[1] - m] = True
    ys, xs = np.nonzero(region & inner)
    if len(ys) == 0:  # tiny images: relax the margin, then the region
        ys, xs = np.nonzero(region)
    if len(ys) == 0:
        return region.shape[1] / 2, region.shape[0] / 2
    i = int(rng.integers(len(ys)))
    return float(xs[i]), float(ys[i])


def _erode(mask: np.ndarray, px: int) -> np.ndarray:
    import cv2

    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.erode(mask.astype(np.uint8), k) > 0


def _dilate(mask: np.ndarray, px: int) -> np.ndarray:
    import cv2

    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.dilate(mask.astype(np.uint8), k) > 0


def _blend(img: np.ndarray, colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``img * (1 - alpha) + colour * alpha`` with alpha ``(H, W)`` in [0, 1]."""
    a = alpha[..., None]
    return img * (1 - a) + np.asarray(colour, np.float32) * a


# ----------------------------------------------------------------------------- normals


def _washer(rng: np.random.Generator, size: int) -> Scene:
    """Hex nut with a round bore, brushed-metal shading, on a grey-blue background."""
    import cv2

    yy, xx = _grid(size)
    s = size / 256
    cx, cy = size / 2 + rng.uniform(-8, 8) * s, size / 2 + rng.uniform(-8, 8) * s
    rot = rng.uniform(0, np.pi / 3)  # a hexagon is periodic in 60 degrees
    outer, inner = rng.uniform(84, 90) * s, rng.uniform(38, 42) * s
    ang = rot + np.arange(6) * np.pi / 3
    hexa = np.stack([cx + outer * np.cos(ang), cy + outer * np.sin(ang)], 1)
    layer = np.zeros((size, size), np.uint8)
    cv2.fillPoly(layer, [np.round(hexa * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    r = np.hypot(xx - cx, yy - cy)
    cover = layer.astype(np.float32) / 255 * np.clip(r - inner + 0.5, 0, 1)
    theta = np.arctan2(yy - cy, xx - cx)
    light = rng.uniform(0, np.pi)
    shade = 165 + 28 * np.cos(2 * (theta - light)) + 5 * np.sin(r * 0.9 / s)
    shade -= 35 * np.exp(-(((r - inner) / (6 * s)) ** 2))  # bevelled bore
    metal = np.stack([shade, shade * 0.99, shade * 0.96], -1)
    bg = np.empty((size, size, 3), np.float32)
    bg[:] = np.array([68, 76, 86], np.float32) + rng.uniform(-4, 4)
    bg += 6 * _smooth_noise(rng, size, 20 * s)[..., None]
    img = bg * (1 - cover[..., None]) + metal * cover[..., None]
    return Scene(img.astype(np.float32), bg, cover > 0.5)


def _pill(rng: np.random.Generator, size: int) -> Scene:
    """White capsule (ellipse) with red speckles and a soft highlight, on a dark background."""
    import cv2

    yy, xx = _grid(size)
    s = size / 256
    cx, cy = size / 2 + rng.uniform(-8, 8) * s, size / 2 + rng.uniform(-8, 8) * s
    a, b = rng.uniform(96, 104) * s, rng.uniform(46, 50) * s
    deg = rng.uniform(-8, 8)
    layer = np.zeros((size, size), np.uint8)
    box = ((cx, cy), (2 * a, 2 * b), deg)
    cv2.ellipse(layer, box, 255, -1, cv2.LINE_AA)
    t = np.deg2rad(deg)
    u = ((xx - cx) * np.cos(t) + (yy - cy) * np.sin(t)) / a
    v = (-(xx - cx) * np.sin(t) + (yy - cy) * np.cos(t)) / b
    d2 = np.clip(u**2 + v**2, 0, 1)
    shade = 236 - 40 * d2**2 + 3 * _smooth_noise(rng, size, 3 * s)
    body = np.stack([shade, shade * 0.98, shade * 0.93], -1)
    dots = np.zeros((size, size), np.uint8)
    for _ in range(int(rng.integers(30, 45))):  # speckles (nuisance, change every image)
        du, dv = rng.uniform(-0.9, 0.9), rng.uniform(-0.85, 0.85)
        if du**2 + dv**2 > 0.8:
            continue
        px = cx + du * a * np.cos(t) - dv * b * np.sin(t)
        py = cy + du * a * np.sin(t) + dv * b * np.cos(t)
        cv2.circle(dots, (int(px), int(py)), int(rng.integers(1, 3)), 255, -1, cv2.LINE_AA)
    body = _blend(body, np.array([190, 60, 50]), dots.astype(np.float32) / 255 * 0.8)
    bg = np.empty((size, size, 3), np.float32)
    bg[:] = np.array([28, 30, 34], np.float32) + rng.uniform(-3, 3)
    bg += 3 * _smooth_noise(rng, size, 15 * s)[..., None]
    cover = layer.astype(np.float32) / 255
    img = bg * (1 - cover[..., None]) + body * cover[..., None]
    return Scene(img.astype(np.float32), bg, cover > 0.5)


def _fabric(rng: np.random.Generator, size: int) -> Scene:
    """Plain weave: crossing sinusoidal threads at a random small angle and phase."""
    yy, xx = _grid(size)
    t = np.deg2rad(rng.uniform(-6, 6))
    u = xx * np.cos(t) + yy * np.sin(t)
    v = -xx * np.sin(t) + yy * np.cos(t)
    period = rng.uniform(7.5, 8.5) * size / 256
    f = 2 * np.pi / period
    pu, pv = rng.uniform(0, 2 * np.pi, 2)
    warp = np.sin(f * u + pu)
    weft = np.sin(f * v + pv)
    over = (np.sin(f * u / 2 + pu / 2) * np.sin(f * v / 2 + pv / 2)) > 0  # over/under pattern
    weave = np.where(over, warp, weft) * 0.5 + 0.5
    fibre = _smooth_noise(rng, size, 1.0)
    tone = 150 + 40 * weave + 6 * fibre + 5 * _smooth_noise(rng, size, 25)
    base = np.array([1.0, 0.93, 0.80], np.float32) * rng.uniform(0.96, 1.04)
    img = tone[..., None] * base
    bg = np.empty_like(img)
    bg[:] = 25
    return Scene(img.astype(np.float32), bg, np.ones((size, size), bool))


def _tiles(rng: np.random.Generator, size: int) -> Scene:
    """Square ceramic tiles with grout; grid phase and per-tile shade vary."""
    yy, xx = _grid(size)
    s = size / 256
    period = rng.uniform(62, 66) * s
    ox, oy = rng.uniform(0, period, 2)
    gx, gy = (xx + ox) % period, (yy + oy) % period
    half = 2.2 * s
    grout = np.minimum(np.minimum(gx, period - gx), np.minimum(gy, period - gy)) < half
    ix, iy = ((xx + ox) // period).astype(int), ((yy + oy) // period).astype(int)
    shades = rng.uniform(-8, 8, (8, 8)).astype(np.float32)
    tile = 196 + shades[iy % 8, ix % 8] + 3 * _smooth_noise(rng, size, 1.5)
    tile += 4 * _smooth_noise(rng, size, 12 * s)
    col = np.array([1.0, 0.96, 0.88], np.float32)
    img = np.where(grout[..., None], np.float32(112) * col, tile[..., None] * col)
    sub = 92 + 10 * _smooth_noise(rng, size, 1.2)  # rough grey substrate under the glaze
    bg = np.stack([sub, sub * 0.97, sub * 0.94], -1)
    return Scene(img.astype(np.float32), bg.astype(np.float32), ~_dilate(grout, 1))


# ----------------------------------------------------------------------------- defects
# Each painter takes (scene, rng) and returns (image, mask): mask (H, W) bool.


def _scratch(scene: Scene, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Thin bright slightly curved line (length and angle vary)."""
    import cv2

    size = scene.obj.shape[0]
    length = rng.uniform(35, 85) * size / 256
    x0, y0 = _pick_point(rng, _erode(scene.obj, int(6 * size / 256)), 0.5 * length)
    ang = rng.uniform(0, np.pi)
    bend = rng.uniform(-0.25, 0.25) * length
    t = np.linspace(-0.5, 0.5, 24)
    nx, ny = -np.sin(ang), np.cos(ang)
    px = x0 + t * length * np.cos(ang) + (0.25 - t**2) * bend * nx
    py = y0 + t * length * np.sin(ang) + (0.25 - t**2) * bend * ny
    layer = np.zeros((size, size), np.uint8)
    pts = np.round(np.stack([px, py], 1) * 16).astype(np.int32)
    cv2.polylines(layer, [pts], False, 255, int(rng.integers(1, 3)), cv2.LINE_AA, shift=4)
    alpha = layer.astype(np.float32) / 255 * scene.obj
    img = _blend(scene.image, np.array([252, 250, 244]), 0.9 * alpha)
    return img, _dilate(alpha > 0.15, 1) & scene.obj


def _hole(scene: Scene, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Dark irregular disc with a thin darker-than-surface rim."""
    import cv2

    size = scene.obj.shape[0]
    r = rng.uniform(6, 15) * size / 256
    centre = _pick_point(rng, _erode(scene.obj, int(1.4 * r) + 2), 1.5 * r)
    layer = _irregular_disc(rng, size, centre, r, 0.12)
    alpha = layer.astype(np.float32) / 255 * scene.obj
    rim = cv2.GaussianBlur(alpha, (0, 0), 1.5) * 0.35
    img = _blend(scene.image, np.array([40, 34, 30]), rim)
    img = _blend(img, np.array([12, 12, 14]), alpha)
    return img, alpha > 0.3


def _stain(
    colour: tuple[float, float, float],
) -> Callable[[Scene, np.random.Generator], tuple[np.ndarray, np.ndarray]]:
    """Painter of soft coloured blobs of a given colour (multiplicative, keeps texture)."""

    def paint(scene: Scene, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        size = scene.obj.shape[0]
        yy, xx = _grid(size)
        s = size / 256
        x0, y0 = _pick_point(rng, _erode(scene.obj, int(12 * s)), 20 * s)
        field = np.zeros((size, size), np.float32)
        for _ in range(int(rng.integers(3, 6))):
            cx, cy = x0 + rng.normal(0, 7 * s), y0 + rng.normal(0, 7 * s)
            sx, sy = rng.uniform(6, 15, 2) * s
            field += np.exp(-((xx - cx) ** 2 / (2 * sx**2) + (yy - cy) ** 2 / (2 * sy**2)))
        alpha = np.clip((field - 0.35) / 0.5, 0, 1) * rng.uniform(0.6, 0.8) * scene.obj
        tint = np.asarray(colour, np.float32) / 255
        stained = scene.image * tint * 1.1 + 0.15 * np.asarray(colour, np.float32)
        img = scene.image * (1 - alpha[..., None]) + stained * alpha[..., None]
        return img, alpha > 0.12

    return paint


def _crack(scene: Scene, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Jagged dark random-walk polyline, sometimes with a branch."""
    import cv2

    size = scene.obj.shape[0]
    s = size / 256
    layer = np.zeros((size, size), np.uint8)
    start = np.array(_pick_point(rng, _erode(scene.obj, int(20 * s)), 40 * s))
    walks = [(start, rng.uniform(0, 2 * np.pi), int(rng.integers(6, 11)))]
    if rng.random() < 0.6:
        walks.append((start, rng.uniform(0, 2 * np.pi), int(rng.integers(3, 6))))
    for p0, heading, steps in walks:
        pts = [p0]
        for _ in range(steps):
            heading += rng.normal(0, 0.55)
            step = rng.uniform(5, 10) * s
            pts.append(pts[-1] + step * np.array([np.cos(heading), np.sin(heading)]))
        arr = np.round(np.array(pts) * 16).astype(np.int32)
        cv2.polylines(layer, [arr], False, 255, int(rng.integers(1, 3)), cv2.LINE_AA, shift=4)
    alpha = layer.astype(np.float32) / 255 * scene.obj
    img = _blend(scene.image, np.array([30, 26, 24]), 0.92 * alpha)
    return img, _dilate(alpha > 0.15, 1) & scene.obj


def _missing_part(scene: Scene, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Irregular chunk of the object replaced by what lies behind it.

    Objects lose a piece of their outline (centred on the edge); textures lose a chip
    (glaze and grout alike) centred anywhere on a tile, showing the substrate.
    """
    size = scene.obj.shape[0]
    s = size / 256
    full = scene.obj.mean() > 0.6  # texture: the object covers most of the image
    region = scene.obj if full else scene.obj & ~_erode(scene.obj, 2)
    removed = np.zeros_like(scene.obj)
    for _ in range(20):  # resample until a sizeable piece is removed
        r = rng.uniform(12, 22) * s
        layer = _irregular_disc(rng, size, _pick_point(rng, region, 1.3 * r), r, 0.25)
        removed = (layer > 127) if full else (layer > 127) & scene.obj
        if removed.sum() > 0.4 * np.pi * r * r:
            break
    a = removed.astype(np.float32)
    img = scene.image * (1 - a[..., None]) + scene.background * a[..., None]
    return img, removed


_NORMALS: dict[str, Callable[[np.random.Generator, int], Scene]] = {
    "washer": _washer,
    "pill": _pill,
    "fabric": _fabric,
    "tiles": _tiles,
}
_PAINTERS: dict[tuple[str, str], Callable[[Scene, np.random.Generator], tuple]] = {
    ("washer", "scratch"): _scratch,
    ("washer", "hole"): _hole,
    ("washer", "stain"): _stain((200, 95, 35)),
    ("washer", "missing_part"): _missing_part,
    ("pill", "crack"): _crack,
    ("pill", "stain"): _stain((205, 160, 60)),
    ("pill", "missing_part"): _missing_part,
    ("fabric", "hole"): _hole,
    ("fabric", "scratch"): _scratch,
    ("fabric", "stain"): _stain((150, 40, 60)),
    ("tiles", "crack"): _crack,
    ("tiles", "stain"): _stain((60, 150, 160)),
    ("tiles", "missing_part"): _missing_part,
}


def defect_types(category: str) -> list[str]:
    """Defect types of an embedded category, in the order they are written."""
    return list(CATEGORIES[category]["defects"])  # type: ignore[call-overload]


# ----------------------------------------------------------------------------- samples


def _capture(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Camera nuisance: lighting gain and gradient, small colour cast, sensor noise -> uint8."""
    size = img.shape[0]
    yy, xx = _grid(size)
    ang = rng.uniform(0, 2 * np.pi)
    ramp = ((xx * np.cos(ang) + yy * np.sin(ang)) / size - 0.5) * rng.uniform(-0.12, 0.12)
    gain = rng.uniform(0.9, 1.1) * (1 + ramp)
    cast = 1 + rng.uniform(-0.02, 0.02, 3).astype(np.float32)
    noise = rng.standard_normal(img.shape, dtype=np.float32) * np.float32(2.5)
    out = img * (gain[..., None] * cast) + noise
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def render_sample(
    category: str, label: str, index: int, seed: int = 0, size: int = 256
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one image exactly as :func:`generate` writes it.

    ``label`` is ``"good"`` or a defect type; train normals use ``label="train"``.

    Returns:
        ``(image, clean, mask)``: the written RGB ``(H, W, 3) uint8``, the same capture
        without the defect ``(H, W, 3) uint8``, and the defect mask ``(H, W) bool``
        (all False for normals).
    """
    if category not in CATEGORIES:
        raise DataError(f"unknown embedded category '{category}' (choose from {list(CATEGORIES)})")
    labels = ["train", GOOD, *defect_types(category)]
    if label not in labels:
        raise DataError(f"unknown label '{label}' for embedded category '{category}'")
    img, clean, mask = _render(category, label, index, seed, size, with_clean=True)
    return img, clean, np.zeros((size, size), bool) if mask is None else mask


def _render(
    category: str, label: str, index: int, seed: int, size: int, with_clean: bool = False
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """``(image, clean twin or None, mask or None for normals)``; one generator per file."""
    labels = ["train", GOOD, *defect_types(category)]
    cat_i, lab_i = list(CATEGORIES).index(category), labels.index(label)
    rng = np.random.default_rng([seed, cat_i, lab_i, index])
    scene = _NORMALS[category](rng, size)
    if label in ("train", GOOD):
        img = _capture(scene.image, rng)
        return img, (img if with_clean else None), None
    painted, mask = _PAINTERS[(category, label)](scene, rng)
    state = rng.bit_generator.state  # the clean twin gets the same capture nuisance
    img = _capture(painted, rng)
    clean = None
    if with_clean:
        rng.bit_generator.state = state
        clean = _capture(scene.image, rng)
    return img, clean, mask


# ----------------------------------------------------------------------------- writing


def _png(path: Path, rgb_or_grey: np.ndarray) -> None:
    """Write an RGB ``(H, W, 3)`` or grey ``(H, W)`` uint8 image as a fast-compressed PNG."""
    import cv2

    path.write_bytes(encode_image(rgb_or_grey, ".png", (cv2.IMWRITE_PNG_COMPRESSION, 1)))


def _write_one(root: Path, job: tuple[str, str, int], seed: int, size: int) -> None:
    category, label, i = job
    img, _, mask = _render(category, label, i, seed, size)
    if mask is None:
        sub = "train" if label == "train" else "test"
        _png(root / category / sub / GOOD / f"{i:03d}.png", img)
    else:
        _png(root / category / "test" / label / f"{i:03d}.png", img)
        _png(
            root / category / "ground_truth" / label / f"{i:03d}_mask.png",
            mask.astype(np.uint8) * 255,
        )


def _write_all(root: Path, seed: int, counts: dict[str, int], size: int) -> None:
    """Render every file; each file has its own generator, so threads keep it deterministic."""
    from concurrent.futures import ThreadPoolExecutor

    jobs: list[tuple[str, str, int]] = []
    for category in CATEGORIES:
        cat = root / category
        (cat / "train" / GOOD).mkdir(parents=True)
        (cat / "test" / GOOD).mkdir(parents=True)
        jobs += [(category, "train", i) for i in range(counts["train"])]
        jobs += [(category, GOOD, i) for i in range(counts[GOOD])]
        for d in defect_types(category):
            (cat / "test" / d).mkdir(parents=True)
            (cat / "ground_truth" / d).mkdir(parents=True)
            jobs += [(category, d, i) for i in range(counts["defect"])]
    workers = max(1, min(4, os.cpu_count() or 1))
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda job: _write_one(root, job, seed, size), jobs))


def _marker(seed: int, counts: dict[str, int], size: int) -> dict[str, object]:
    return {
        "generator": "fsad.embedded",
        "version": VERSION,
        "seed": seed,
        "size": size,
        "counts": counts,
        "categories": {c: defect_types(c) for c in CATEGORIES},
    }


def _read_marker(out: Path) -> dict[str, object] | None:
    try:
        return json.loads((out / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def generate(
    out: str | os.PathLike,
    seed: int = 0,
    n_train: int = 60,
    n_test_per_type: int = 12,
    n_good_test: int = 8,
    size: int = 256,
) -> Path:
    """Write the embedded dataset to ``out`` (MVTec AD layout), atomically and idempotently.

    The dataset is rendered into a temporary folder next to ``out`` and renamed into place,
    so readers never see a partial dataset. When ``out`` already holds a complete dataset
    with the same generator version, seed, counts and size (its ``fsad_embedded.json``
    marker says so) nothing is written. An empty ``out`` or an older embedded dataset is
    replaced; any other non-empty folder is left alone.

    Args:
        out: dataset root to create (categories become its sub-folders).
        seed: determines every pixel; the same seed gives byte-identical PNGs.
        n_train: normal training images per category.
        n_test_per_type: test images (and masks) per defect type.
        n_good_test: normal test images per category.
        size: image side in pixels.

    Returns:
        ``out`` as a Path.

    Raises:
        DataError: ``out`` is a file or a non-empty folder that is not an embedded dataset,
            or a count/size is out of range.
    """
    out = Path(out)
    counts = {"train": int(n_train), GOOD: int(n_good_test), "defect": int(n_test_per_type)}
    if min(counts.values()) < 1 or size < 64:
        raise DataError(f"embedded dataset needs counts >= 1 and size >= 64, got {counts}, {size}")
    wanted = _marker(seed, counts, size)
    if _read_marker(out) == wanted:
        return out
    _check_replaceable(out)
    with atomic_folder(out, done=lambda: _read_marker(out) == wanted) as tmp:
        _write_all(tmp, seed, counts, size)
        (tmp / MARKER).write_text(json.dumps(wanted, indent=2) + "\n", encoding="utf-8")
        _check_replaceable(out)  # again: ``out`` may have changed while rendering
    return out


def _check_replaceable(out: Path) -> None:
    if out.is_file():
        raise DataError(f"embedded dataset target is a file: {out}")
    if out.is_dir() and any(out.iterdir()) and _read_marker(out) is None:
        raise DataError(
            f"refusing to overwrite a non-empty folder that is not an embedded dataset: {out}"
        )


def default_embedded_root(seed: int = 0) -> Path:
    """Where the quick start keeps the embedded dataset: ``<cache>/embedded-v<VERSION>-seed<seed>``."""
    return default_cache_dir() / f"embedded-v{VERSION}-seed{seed}"


def ensure_embedded(root: str | os.PathLike | None = None, seed: int = 0) -> Path:
    """Generate the embedded dataset at ``root`` (default :func:`default_embedded_root`) unless
    it is already there; return the root."""
    return generate(Path(root) if root is not None else default_embedded_root(seed), seed=seed)
