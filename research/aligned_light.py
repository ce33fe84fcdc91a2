"""Each image's light read against the product's normals *aligned to it* (a candidate
estimate of the light; label-free: it reads the images and the bank's normals, never a
defect type or the generator's draws).

The library's estimate (:mod:`fsad.light_estimate`) fits each image's gamma ``g`` and log
gain ``k`` by matching its log-luminance quantiles to the mean quantiles of the product's
normals. A quantile matches a quantile only when the two images hold the same content in
the same proportions, and the suite's pose, window and border steps change how much of the
frame the part fills. Undoing the drawn gamma and gain after the library's plane leaves
0.03-0.08 of light in the pixels by category, the library's own fit 0.08-0.23: most of what
the estimate misses is ``(g, k)``, not the plane.

This estimate compares pixels with pixels instead. In the log domain, after the library's
plane is removed (:func:`fsad.light_estimate.flattened`), an image ``I`` and a normal ``N``
showing the same part point for point obey ``log I = a log N + k_IN`` with
``a = g_I / g_N`` and ``k_IN = k_I - a k_N``:

1. **Align** (:func:`align`): ORB keypoints (light-robust: binary tests of grey-level order)
   on both, matched with a ratio test, a similarity transform by RANSAC
   (:func:`cv2.estimateAffinePartial2D`); the normal is warped onto the image.
2. **Relative light** (:func:`relative_light`): a Huber regression of the image's smoothed
   log luminance on the warped normal's over pixels inside both frames and neither crushed
   nor clipped in either (:data:`fsad.light_estimate.VALID`).
3. **The bank's own lights** (:func:`bank_lights`): every normal aligned with up to
   :data:`KEEP` others of :data:`CANDIDATES`; ``log g`` by least squares over the pairs'
   ``log a`` (their mean fixed at 0), then ``k`` over ``k_IN`` (mean 0): the normals' mean
   light is the common frame, as the library's mean reference is.
4. **An image's light** (:func:`image_light`): the median over its aligned normals of
   ``g = a g_N`` and ``k = k_IN + a k_N``; undone as the library undoes it,
   ``y -> (y - k) / g`` on the flattened image. An image that no normal aligns with (or a
   normal in no aligned pair) keeps the library's quantile fit.

Every constant below was fixed before any estimate was looked at.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import cv2
import numpy as np
from sklearn.linear_model import HuberRegressor

from fsad import light_estimate as le

#: the long side (pixels) images are aligned and compared at
SIDE = 256
#: ORB keypoints per image
FEATURES = 1500
#: Lowe's ratio test on the two nearest descriptors
RATIO = 0.8
#: RANSAC reprojection threshold (pixels at :data:`SIDE`)
REPROJ = 3.0
#: inliers a similarity must have to count as an alignment
MIN_INLIERS = 20
#: the similarity's scale must lie in this range
SCALES = (0.5, 2.0)
#: normals tried per image (spread evenly over the bank in its order)
CANDIDATES = 24
#: aligned normals kept per image (the most inliers)
KEEP = 5
#: Gaussian smoothing (pixels at :data:`SIDE`) before the pixels are compared
SIGMA = 1.5
#: the overlap mask's erosion (pixels at :data:`SIDE`)
ERODE = 3
#: pixels sampled per pair for the regression, and the seed that samples them
SAMPLES, SAMPLE_SEED = 4000, 0
#: Huber's epsilon
EPSILON = 1.35


@dataclasses.dataclass
class Prepared:
    """One image at :data:`SIDE`: its flattened log luminance ``(h, w)`` float32, a mask
    ``(h, w)`` bool of pixels neither crushed nor clipped, ORB keypoints and descriptors."""

    log: np.ndarray
    valid: np.ndarray
    points: np.ndarray
    descriptors: np.ndarray | None


def prepare(image: np.ndarray, orb: cv2.ORB) -> Prepared:
    """``(H, W, C) uint8`` -> :class:`Prepared` (the library's plane removed first)."""
    grey = le.luminance(le.flattened(image))
    f = SIDE / max(grey.shape)
    size = (max(8, round(grey.shape[1] * f)), max(8, round(grey.shape[0] * f)))
    small = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    u8 = np.clip(np.rint(small), 0, 255).astype(np.uint8)
    keypoints, descriptors = orb.detectAndCompute(u8, None)
    points = np.float32([k.pt for k in keypoints]).reshape(-1, 2)
    log = cv2.GaussianBlur(le.log_domain(small), (0, 0), SIGMA)
    valid = (small >= le.VALID[0]) & (small <= le.VALID[1])
    return Prepared(log, valid, points, descriptors)


def align(image: Prepared, normal: Prepared) -> tuple[np.ndarray, int] | None:
    """The similarity ``(2, 3)`` that maps the normal's pixels onto the image's, and its
    inlier count; None when fewer than :data:`MIN_INLIERS` agree or the scale is out of
    :data:`SCALES`."""
    if image.descriptors is None or normal.descriptors is None or len(normal.points) < 2:
        return None
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    pairs = matcher.knnMatch(normal.descriptors, image.descriptors, k=2)
    good = [p[0] for p in pairs if len(p) == 2 and p[0].distance < RATIO * p[1].distance]
    if len(good) < MIN_INLIERS:
        return None
    src = normal.points[[m.queryIdx for m in good]]
    dst = image.points[[m.trainIdx for m in good]]
    m, inliers = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC,
                                             ransacReprojThreshold=REPROJ)  # fmt: skip
    if m is None or int(inliers.sum()) < MIN_INLIERS:
        return None
    if not SCALES[0] <= float(np.hypot(m[0, 0], m[1, 0])) <= SCALES[1]:
        return None
    return m, int(inliers.sum())


def relative_light(image: Prepared, normal: Prepared, m: np.ndarray) -> tuple[float, float] | None:
    """``(a, k_IN)`` of ``log I = a log N + k_IN`` over the overlap (Huber regression on
    :data:`SAMPLES` pixels); None when fewer than 200 pixels overlap."""
    h, w = image.log.shape
    warped = cv2.warpAffine(normal.log, m, (w, h), flags=cv2.INTER_LINEAR)
    inside = cv2.warpAffine(normal.valid.astype(np.uint8), m, (w, h), flags=cv2.INTER_NEAREST)
    keep = cv2.erode(inside, np.ones((2 * ERODE + 1,) * 2, np.uint8)) > 0
    keep &= cv2.erode(image.valid.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    idx = np.flatnonzero(keep)
    if idx.size < 200:
        return None
    if idx.size > SAMPLES:
        idx = np.random.default_rng(SAMPLE_SEED).choice(idx, SAMPLES, replace=False)
    x, y = warped.ravel()[idx].astype(np.float64), image.log.ravel()[idx].astype(np.float64)
    fit = HuberRegressor(epsilon=EPSILON, alpha=0.0).fit(x[:, None], y)
    return float(fit.coef_[0]), float(fit.intercept_)


def candidates(n_bank: int, exclude: int | None = None) -> list[int]:
    """Up to :data:`CANDIDATES` bank indices spread evenly over ``range(n_bank)``, without
    ``exclude``."""
    pool = [i for i in range(n_bank) if i != exclude]
    if len(pool) <= CANDIDATES:
        return pool
    return [pool[i] for i in np.linspace(0, len(pool) - 1, CANDIDATES).round().astype(int)]


def pairs_with(image: Prepared, bank: Sequence[Prepared], pool: Sequence[int]
               ) -> list[tuple[int, float, float]]:  # fmt: skip
    """``(j, a, k_IN)`` for the :data:`KEEP` bank normals of ``pool`` that align with the
    image with the most inliers."""
    aligned = []
    for j in pool:
        found = align(image, bank[j])
        if found is not None:
            aligned.append((found[1], j, found[0]))
    out = []
    for _, j, m in sorted(aligned, key=lambda t: -t[0])[:KEEP]:
        rel = relative_light(image, bank[j], m)
        if rel is not None and rel[0] > 0:
            out.append((j, *rel))
    return out


def bank_lights(bank: Sequence[Prepared]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every normal's ``(g, k)`` in the bank's common frame (mean ``log g`` and mean ``k``
    zero over the solved normals).

    Returns:
        ``g (n,)``, ``k (n,)`` and ``solved (n,)`` bool (False: in no aligned pair).
    """
    n = len(bank)
    edges = [(i, j, a, k) for i in range(n) for j, a, k in pairs_with(bank[i], bank,
                                                                       candidates(n, i))]
    solved = np.zeros(n, bool)
    for i, j, _, _ in edges:
        solved[[i, j]] = True
    if not edges:
        return np.ones(n), np.zeros(n), solved
    rows = np.zeros((len(edges) + 1, n))
    for e, (i, j, _, _) in enumerate(edges):
        rows[e, i], rows[e, j] = 1.0, -1.0
    rows[-1, solved] = 1.0  # gauge: mean log g over the solved normals is 0
    log_g = np.linalg.lstsq(rows, np.r_[[np.log(a) for _, _, a, _ in edges], 0.0],
                            rcond=None)[0]  # fmt: skip
    g = np.exp(log_g)
    rows_k = np.zeros((len(edges) + 1, n))
    for e, (i, j, a, _) in enumerate(edges):
        rows_k[e, i], rows_k[e, j] = 1.0, -a
    rows_k[-1, solved] = 1.0
    k = np.linalg.lstsq(rows_k, np.r_[[k for *_, k in edges], 0.0], rcond=None)[0]
    g[~solved], k[~solved] = 1.0, 0.0
    return g, k, solved


def image_light(pairs: Sequence[tuple[int, float, float]], g_bank: np.ndarray,
                k_bank: np.ndarray) -> tuple[float, float] | None:  # fmt: skip
    """``(g, k)`` of an image from its aligned pairs (median over them), clipped to the
    library's ranges; None without a pair."""
    if not pairs:
        return None
    g = np.median([a * g_bank[j] for j, a, _ in pairs])
    k = np.median([kin + a * k_bank[j] for j, a, kin in pairs])
    return float(np.clip(g, *le.GAMMA_RANGE)), float(np.clip(k, *le.LOG_GAIN_RANGE))


def undo(image: np.ndarray, g: float, k: float) -> np.ndarray:
    """``(H, W, C) uint8``: the library's plane removed, then ``y -> (y - k) / g``."""
    flat = le.flattened(image)
    x = 256.0 * np.exp((le.log_domain(flat) - k) / g) - 0.5
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def undone_images(normals: Sequence[np.ndarray], others: Sequence[np.ndarray]
                  ) -> tuple[list[np.ndarray], list[np.ndarray], dict[str, int]]:  # fmt: skip
    """The bank's normals and other images with their light undone by this estimate (the
    library's quantile fit where no normal aligns).

    Returns:
        the normals undone, the others undone, and counts: ``bank_solved``,
        ``others_aligned``.
    """
    orb = cv2.ORB_create(nfeatures=FEATURES)
    bank = [prepare(im, orb) for im in normals]
    g_bank, k_bank, solved = bank_lights(bank)
    reference = le.reference_levels(normals)

    def fallback(im: np.ndarray) -> np.ndarray:
        return le.undo_light(im, reference)

    bank_out = [undo(im, g, k) if ok else fallback(im)
                for im, g, k, ok in zip(normals, g_bank, k_bank, solved, strict=True)]  # fmt: skip
    pool = [j for j in candidates(len(bank)) if solved[j]]
    others_out, aligned = [], 0
    for im in others:
        light = image_light(pairs_with(prepare(im, orb), bank, pool), g_bank, k_bank)
        aligned += light is not None
        others_out.append(undo(im, *light) if light is not None else fallback(im))
    return bank_out, others_out, {"bank_solved": int(solved.sum()), "others_aligned": aligned}
