"""A bank of procedural textures: the stand-in for DTD when no texture folder is given.

Each *family* is a visually distinct pattern (stripes, checks, dots, cells, cracks, weave,
marble, wood, ...); colours, frequency and orientation are drawn from a seeded generator,
so a texture is a pure function of ``(family, seed, size)``. Names echo the DTD classes they
imitate. Everything is vectorised NumPy (a 256 x 256 texture takes a few milliseconds).
"""

from __future__ import annotations

import colorsys
from collections.abc import Callable

import numpy as np

from fsad.synth.masks import perlin_noise

Field = Callable[[np.random.Generator, int], np.ndarray]


# ---------------------------------------------------------------- helpers
def _grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates ``(y, x)``, each ``(n, n) float32``."""
    a = np.arange(n, dtype=np.float32)
    return np.meshgrid(a, a, indexing="ij")


def _rotated(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates rotated by a random angle about the centre: ``(u, v)``."""
    y, x = _grid(n)
    t = rng.uniform(0, np.pi)
    y, x = y - n / 2, x - n / 2
    return x * np.cos(t) + y * np.sin(t), -x * np.sin(t) + y * np.cos(t)


def _smooth_step(d: np.ndarray, width: float = 1.0) -> np.ndarray:
    """Anti-aliased 0/1 edge: 0 for ``d < -width``, 1 for ``d > width``."""
    return np.clip(0.5 + d / (2 * width), 0.0, 1.0)


def _fbm(rng: np.random.Generator, n: int, base: int = 4, octaves: int = 4) -> np.ndarray:
    """Fractal Perlin noise in about ``[-1, 1]``."""
    out = np.zeros((n, n), np.float32)
    amp, total = 1.0, 0.0
    for o in range(octaves):
        res = base * 2**o
        out += amp * perlin_noise((n, n), (res, res), rng)
        total += amp
        amp *= 0.5
    return out / total


def _palette(rng: np.random.Generator, k: int = 2) -> np.ndarray:
    """``k`` colours ``(k, 3)`` in 0..255 with distinct hues and spread brightness."""
    hue = rng.uniform(0, 1)
    values = np.linspace(rng.uniform(0.1, 0.35), rng.uniform(0.75, 1.0), k)
    rng.shuffle(values)
    cols = []
    for i in range(k):
        h = (hue + i / k + rng.uniform(-0.08, 0.08)) % 1.0
        cols.append(colorsys.hsv_to_rgb(h, rng.uniform(0.35, 0.95), values[i]))
    return np.asarray(cols, np.float32) * 255.0


def _colorize(t: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """Map a field ``t`` in ``[0, 1]`` through colour stops ``(k, 3)``: ``(n, n, 3) float``."""
    t = np.clip(t, 0.0, 1.0) * (len(colors) - 1)
    i = np.minimum(t.astype(np.int64), len(colors) - 2)
    f = (t - i)[..., None]
    return colors[i] * (1 - f) + colors[i + 1] * f


def _nearest_points(rng: np.random.Generator, n: int, count: int) -> tuple[np.ndarray, ...]:
    """Voronoi helpers: distances to the two nearest random seeds and the nearest's index."""
    from scipy.spatial import cKDTree

    pts = rng.uniform(0, n, size=(count, 2))
    # replicate the seeds around the square so cells continue across the border
    offs = np.array([(dy, dx) for dy in (-n, 0, n) for dx in (-n, 0, n)], np.float64)
    allp = (pts[None] + offs[:, None]).reshape(-1, 2)
    y, x = _grid(n)
    d, idx = cKDTree(allp).query(np.stack([y.ravel(), x.ravel()], 1), k=2)
    return d[:, 0].reshape(n, n), d[:, 1].reshape(n, n), (idx[:, 0] % count).reshape(n, n)


# ---------------------------------------------------------------- families (scalar fields)
def striped(rng: np.random.Generator, n: int) -> np.ndarray:
    u, _ = _rotated(rng, n)
    period = rng.uniform(10, 40)
    return _smooth_step(np.sin(2 * np.pi * u / period) * period / 6)


def banded(rng: np.random.Generator, n: int) -> np.ndarray:
    u, _ = _rotated(rng, n)
    widths = rng.uniform(8, 50, size=64)
    edges = np.cumsum(widths) - widths.sum() / 2
    levels = rng.uniform(0, 1, size=65)
    return levels[np.searchsorted(edges, u)]


def chequered(rng: np.random.Generator, n: int) -> np.ndarray:
    u, v = _rotated(rng, n)
    s = rng.uniform(16, 48)
    return _smooth_step(np.sin(np.pi * u / s) * np.sin(np.pi * v / s) * s / 3)


def polka_dotted(rng: np.random.Generator, n: int) -> np.ndarray:
    u, v = _rotated(rng, n)
    s = rng.uniform(18, 40)
    r = s * rng.uniform(0.2, 0.38)
    du, dv = (u % s) - s / 2, (v % s) - s / 2
    return _smooth_step(r - np.hypot(du, dv))


def _line_distance(u: np.ndarray, period: float) -> np.ndarray:
    """Distance from ``u`` to the nearest multiple of ``period``."""
    return np.abs(((u + period / 2) % period) - period / 2)


def grid(rng: np.random.Generator, n: int) -> np.ndarray:
    u, v = _rotated(rng, n)
    s, w = rng.uniform(14, 36), rng.uniform(1.5, 4)
    return _smooth_step(w - np.minimum(_line_distance(u, s), _line_distance(v, s)))


def crosshatched(rng: np.random.Generator, n: int) -> np.ndarray:
    u, v = _rotated(rng, n)
    s, w = rng.uniform(6, 12), rng.uniform(0.8, 1.6)
    jitter = 0.8 * _fbm(rng, n, base=8, octaves=2)
    a = _line_distance((u + v) / np.sqrt(2) + jitter, s)
    b = _line_distance((u - v) / np.sqrt(2) - jitter, s * rng.uniform(0.8, 1.25))
    return _smooth_step(w - np.minimum(a, b))


def concentric(rng: np.random.Generator, n: int) -> np.ndarray:
    y, x = _grid(n)
    cy, cx = rng.uniform(0.2, 0.8, 2) * n
    period = rng.uniform(10, 28)
    return 0.5 + 0.5 * np.sin(2 * np.pi * np.hypot(y - cy, x - cx) / period)


def spiralled(rng: np.random.Generator, n: int) -> np.ndarray:
    y, x = _grid(n)
    cy, cx = rng.uniform(0.35, 0.65, 2) * n
    r, th = np.hypot(y - cy, x - cx), np.arctan2(y - cy, x - cx)
    arms = int(rng.integers(2, 6))
    return _smooth_step(np.sin(arms * th + r / rng.uniform(5, 12)) * 4)


def wavy(rng: np.random.Generator, n: int) -> np.ndarray:
    u, v = _rotated(rng, n)
    amp, wl, period = rng.uniform(6, 18), rng.uniform(40, 90), rng.uniform(12, 26)
    w = u + amp * np.sin(2 * np.pi * v / wl)
    return _smooth_step(np.sin(2 * np.pi * w / period) * period / 6)


def zigzagged(rng: np.random.Generator, n: int) -> np.ndarray:
    u, v = _rotated(rng, n)
    amp, wl, period = rng.uniform(8, 20), rng.uniform(20, 50), rng.uniform(14, 30)
    tri = np.abs((v / wl) % 1.0 - 0.5) * 4 - 1  # triangle wave in [-1, 1]
    w = u + amp * tri
    return _smooth_step(np.sin(2 * np.pi * w / period) * period / 6)


def blotchy(rng: np.random.Generator, n: int) -> np.ndarray:
    noise = _fbm(rng, n, base=int(rng.integers(2, 5)), octaves=5)
    return _smooth_step(noise * 20)


def marbled(rng: np.random.Generator, n: int) -> np.ndarray:
    u, _ = _rotated(rng, n)
    turb = _fbm(rng, n, base=2, octaves=5)
    veins = np.abs(np.sin(u / rng.uniform(15, 35) + 7 * turb))
    return veins ** rng.uniform(0.15, 0.35)


def grained(rng: np.random.Generator, n: int) -> np.ndarray:
    u, v = _rotated(rng, n)
    turb = _fbm(rng, n, base=4, octaves=4)
    rings = np.hypot(u * 0.15, v + rng.uniform(n, 3 * n)) / rng.uniform(8, 14) + 2 * turb
    return (rings % 1.0) ** 2


def crystalline(rng: np.random.Generator, n: int) -> np.ndarray:
    count = int(rng.integers(25, 70))
    d1, _, idx = _nearest_points(rng, n, count)
    shade = rng.uniform(0, 1, size=count)
    return 0.8 * shade[idx] + 0.2 * (1 - np.clip(d1 / 40, 0, 1))


def cracked(rng: np.random.Generator, n: int) -> np.ndarray:
    count = int(rng.integers(20, 60))
    d1, d2, _ = _nearest_points(rng, n, count)
    jitter = 1.5 * _fbm(rng, n, base=8, octaves=3)
    return _smooth_step((d2 - d1) - 2.0 + jitter)


def honeycombed(rng: np.random.Generator, n: int) -> np.ndarray:
    u, v = _rotated(rng, n)
    s = rng.uniform(10, 22)  # hexagon radius
    # hexagonal lattice: nearest centre among two offset rectangular lattices
    w, h = np.sqrt(3) * s, 3 * s
    best = np.full(u.shape, np.inf, np.float32)
    second = np.full(u.shape, np.inf, np.float32)
    for oy, ox in ((0, 0), (h / 2, w / 2)):
        for ky in (-1, 0, 1):
            for kx in (-1, 0, 1):
                cy = (np.floor((v - oy) / h) + ky) * h + oy
                cx = (np.floor((u - ox) / w) + kx) * w + ox
                d = np.hypot(v - cy, u - cx)
                second = np.where(d < best, best, np.minimum(second, d))
                best = np.minimum(best, d)
    return _smooth_step((second - best) - 2.5)


def bricked(rng: np.random.Generator, n: int) -> np.ndarray:
    y, x = _grid(n)
    bh, bw, mortar = rng.uniform(12, 24), rng.uniform(30, 60), rng.uniform(1.5, 3.5)
    row = np.floor(y / bh)
    xs = x + (row % 2) * bw / 2
    d = np.minimum(np.abs((y % bh) - bh / 2) - bh / 2, np.abs((xs % bw) - bw / 2) - bw / 2)
    tone = rng.uniform(0.55, 1.0, size=4096)[(row * 97 + np.floor(xs / bw)).astype(int) % 4096]
    return np.where(-d > mortar, tone, 0.0)


def woven(rng: np.random.Generator, n: int) -> np.ndarray:
    y, x = _grid(n)
    s = rng.uniform(10, 22)
    cy, cx = np.floor(y / s), np.floor(x / s)
    horizontal = (cy + cx) % 2 == 0
    fy, fx = (y % s) / s, (x % s) / s
    across = np.where(horizontal, fy, fx)  # position across the strand
    along = np.where(horizontal, fx, fy)
    shade = np.sin(np.pi * across) * (0.75 + 0.25 * np.sin(np.pi * along))
    return np.where(horizontal, 0.15 + 0.45 * shade, 0.45 + 0.55 * shade)


def sprinkled(rng: np.random.Generator, n: int) -> np.ndarray:
    out = np.full((n, n), 0.5, np.float32)
    count = int(rng.integers(300, 900))
    ys, xs = rng.integers(0, n, count), rng.integers(0, n, count)
    r = rng.integers(1, 3, count)
    vals = rng.choice([0.0, 0.25, 1.0], size=count)
    for dy in (-2, -1, 0, 1, 2):
        for dx in (-2, -1, 0, 1, 2):
            keep = dy * dy + dx * dx <= r * r
            out[(ys[keep] + dy) % n, (xs[keep] + dx) % n] = vals[keep]
    return out


def bubbly(rng: np.random.Generator, n: int) -> np.ndarray:
    import cv2

    canvas = np.zeros((n, n), np.uint8)
    for _ in range(int(rng.integers(25, 60))):
        c = (int(rng.integers(0, n)), int(rng.integers(0, n)))
        cv2.circle(canvas, c, int(rng.integers(5, 30)), 255, int(rng.integers(1, 4)), cv2.LINE_AA)
    return canvas.astype(np.float32) / 255.0


def fibrous(rng: np.random.Generator, n: int) -> np.ndarray:
    import cv2

    noise = rng.random((n, n)).astype(np.float32)
    k = int(rng.integers(25, 60))
    kernel = np.zeros((k, k), np.float32)
    kernel[k // 2, :] = 1.0 / k
    rot = cv2.getRotationMatrix2D((k / 2 - 0.5, k / 2 - 0.5), rng.uniform(0, 180), 1.0)
    kernel = cv2.warpAffine(kernel, rot, (k, k))
    streaks = cv2.filter2D(noise, -1, kernel / max(kernel.sum(), 1e-6), borderType=cv2.BORDER_WRAP)
    z = (streaks - streaks.mean()) / (streaks.std() + 1e-6)
    return np.clip(0.5 + 0.25 * z, 0, 1)


def rayed(rng: np.random.Generator, n: int) -> np.ndarray:
    y, x = _grid(n)
    cy, cx = rng.uniform(0.2, 0.8, 2) * n
    rays = int(rng.integers(8, 24))
    return _smooth_step(np.sin(rays * np.arctan2(y - cy, x - cx)) * 3)


def scaly(rng: np.random.Generator, n: int) -> np.ndarray:
    import cv2

    s = rng.uniform(14, 28)
    canvas = np.zeros((n, n), np.float32)
    r = s * 0.62
    rows = int(np.ceil(n / (s / 2))) + 2
    for row in range(-1, rows):  # later (lower) rows overlap earlier ones, like fish scales
        cy = row * s / 2
        shift = (row % 2) * s / 2
        for col in range(-1, int(np.ceil(n / s)) + 2):
            c = (int(round(col * s + shift)), int(round(cy)))
            cv2.circle(canvas, c, int(round(r)), 1.0, -1, cv2.LINE_AA)
            cv2.circle(canvas, c, int(round(r * 0.7)), 0.55, -1, cv2.LINE_AA)
            cv2.circle(canvas, c, int(round(r)), 0.0, 2, cv2.LINE_AA)
    return canvas


def argyle(rng: np.random.Generator, n: int) -> np.ndarray:
    u, v = _rotated(rng, n)
    s = rng.uniform(20, 45)
    du, dv = np.abs((u % s) - s / 2), np.abs((v % (1.6 * s)) - 0.8 * s) / 1.6
    diamond = _smooth_step(s / 2 - (du + dv) - 1)
    lines = _smooth_step(
        1.2 - np.minimum(np.abs(((u + v) % s) - s / 2), np.abs(((u - v) % s) - s / 2))
    )
    return np.maximum(0.7 * diamond, lines)


FAMILIES: dict[str, Field] = {
    f.__name__: f
    for f in (
        striped, banded, chequered, polka_dotted, grid, crosshatched, concentric, spiralled,
        wavy, zigzagged, blotchy, marbled, grained, crystalline, cracked, honeycombed,
        bricked, woven, sprinkled, bubbly, fibrous, rayed, scaly, argyle,
    )
}  # fmt: skip


def procedural_texture(family: str, seed: int = 0, size: int = 256) -> np.ndarray:
    """One texture of ``family``: ``(size, size, 3) uint8`` RGB, a pure function of its args.

    Raises:
        KeyError: unknown family (see :data:`FAMILIES`).
    """
    if family not in FAMILIES:
        raise KeyError(f"unknown texture family '{family}' (choose from {', '.join(FAMILIES)})")
    index = list(FAMILIES).index(family)
    rng = np.random.default_rng([int(seed), index])
    field = FAMILIES[family](rng, size).astype(np.float32)
    colors = _palette(rng, 3 if family in ("banded", "crystalline", "bricked") else 2)
    rgb = _colorize(field, colors)
    grain = rng.normal(0, 4, size=rgb.shape[:2])[..., None]  # a little sensor-like grain
    return np.clip(np.rint(rgb + grain), 0, 255).astype(np.uint8)
