"""Each image's own light, estimated from its pixels and undone (photometric round 12's
estimate, in the library since robustness round 17).

A product shot under a light that changes from image to image (a lamp that ages, daylight,
a part closer to the lamp) shows the memory bank normals that differ from a query by their
light as much as by a defect. In the log domain such a light is affine,
``log y = g log x + k + b u + c v`` (gamma ``g``, log gain ``k``, a plane ``b u + c v`` over
the frame's coordinates ``u, v`` in ``[-0.5, 0.5]``), and this module undoes it image by
image, reading nothing but the image and the product's normal images:

1. the plane's slope ``(b, c)`` is the median gradient of the smoothed log luminance
   (:func:`gradient_slope`): the content's edges are few and its flat regions many, so the
   median follows the light's trend rather than the content's; the plane is removed;
2. ``(g, k)`` is the least-squares fit of the flattened image's log-luminance quantiles at
   :data:`LEVELS` on the product's *reference*, the mean of the same quantiles over its
   normal images flattened alike (:func:`reference_levels`), and is undone:
   ``y -> (y - k) / g``.

The light estimate study (book appendix, ``results/explore/light_estimate.csv``) ranked this
estimator first in every category against the light the generalisation suite drew; every
constant is that study's, fixed before it ran. Every channel gets the same change, so a
grey image stays grey.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from fsad.errors import ConfigError

#: the quantile levels of the luminance fitted against the product's reference
LEVELS = np.linspace(0.05, 0.95, 19)
#: the clip of the fitted gamma ``g`` and of the log gain ``k``
GAMMA_RANGE = (0.5, 2.0)
LOG_GAIN_RANGE = (-1.0, 1.0)
#: the long side (pixels) the plane's gradient is read at
GRADIENT_SIDE = 128
#: the Gaussian smoothing (pixels at :data:`GRADIENT_SIDE`) before the gradient
GRADIENT_SIGMA = 2.0
#: grey levels a pixel must lie within to count in the gradient (not crushed, not clipped)
VALID = (12, 250)
#: bump when the estimate changes in a way the constants above do not show
ESTIMATE_VERSION = 1


def estimate_key() -> dict[str, object]:
    """What determines the estimate (in the cache keys of images with their light undone)."""
    return {"version": ESTIMATE_VERSION, "levels": LEVELS.round(4).tolist(),
            "gamma": GAMMA_RANGE, "gain": LOG_GAIN_RANGE, "side": GRADIENT_SIDE,
            "sigma": GRADIENT_SIGMA, "valid": VALID}  # fmt: skip


def log_domain(x: np.ndarray) -> np.ndarray:
    """Grey levels (``uint8`` or float) -> float32 of the same shape: ``log((x + 0.5) / 256)``."""
    return np.log((np.asarray(x, np.float32) + 0.5) / 256.0)


def luminance(image: np.ndarray) -> np.ndarray:
    """``(H, W, C) uint8 -> (H, W) float32``: the channels' mean grey level."""
    return image.astype(np.float32).mean(axis=2)


def frame_coordinates(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """``(H, W)`` float32 ``u`` (left to right) and ``v`` (top to bottom), each in
    ``[-0.5, 0.5]``."""
    u = np.linspace(-0.5, 0.5, w, dtype=np.float32) if w > 1 else np.zeros(1, np.float32)
    v = np.linspace(-0.5, 0.5, h, dtype=np.float32) if h > 1 else np.zeros(1, np.float32)
    return np.broadcast_to(u, (h, w)), np.broadcast_to(v[:, None], (h, w))


def gradient_slope(image: np.ndarray) -> tuple[float, float]:
    """The log-domain plane's slope ``(b, c)`` (log units across the frame, along ``u`` and
    ``v``): the median central difference of the log luminance, resized to
    :data:`GRADIENT_SIDE` on its long side and smoothed by :data:`GRADIENT_SIGMA`, over
    pixels whose 5 x 5 neighbourhood stays within :data:`VALID`.

    Args:
        image: ``(H, W, C)`` uint8.

    Returns:
        ``(b, c)``; ``(0, 0)`` when fewer than 100 pixels are valid.
    """
    grey = luminance(image)
    f = GRADIENT_SIDE / max(grey.shape)
    size = (max(3, round(grey.shape[1] * f)), max(3, round(grey.shape[0] * f)))
    small = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    log = cv2.GaussianBlur(np.log((small + 0.5) / 256.0), (0, 0), GRADIENT_SIGMA)
    ok = (small >= VALID[0]) & (small <= VALID[1])
    ok = cv2.erode(ok.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    dx = (log[1:-1, 2:] - log[1:-1, :-2]) / 2
    dy = (log[2:, 1:-1] - log[:-2, 1:-1]) / 2
    inner = ok[1:-1, 1:-1]
    if inner.sum() < 100:
        return 0.0, 0.0
    # one pixel of the small image is 1 / (side - 1) of the frame's coordinate range
    return (float(np.median(dx[inner])) * (size[0] - 1),
            float(np.median(dy[inner])) * (size[1] - 1))  # fmt: skip


def remove_plane(image: np.ndarray, slope: tuple[float, float]) -> np.ndarray:
    """``(H, W, C) uint8 -> uint8``: every channel loses the log-domain plane ``b u + c v``."""
    u, v = frame_coordinates(*image.shape[:2])
    y = log_domain(image) - (slope[0] * u + slope[1] * v)[..., None]
    return np.clip(np.rint(256.0 * np.exp(y) - 0.5), 0, 255).astype(np.uint8)


def flattened(image: np.ndarray) -> np.ndarray:
    """``(H, W, C) uint8``: the image without its plane (:func:`gradient_slope`)."""
    return remove_plane(image, gradient_slope(image))


def log_quantiles(image: np.ndarray) -> np.ndarray:
    """``(H, W, C) uint8 -> (19,)``: the log luminance at :data:`LEVELS`."""
    return log_domain(np.quantile(luminance(image), LEVELS))


def reference_levels(normals: Sequence[np.ndarray]) -> np.ndarray:
    """The product's reference ``(19,)``: the mean of :func:`log_quantiles` over its normal
    images, each flattened (:func:`flattened`).

    Raises:
        ConfigError: no normal image is given.
    """
    if not len(normals):
        raise ConfigError("the light's reference needs the product's normal images: none given")
    return np.mean([log_quantiles(flattened(im)) for im in normals], axis=0)


def fit_light(q: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """``(g, k)`` of ``q ~ g * reference + k`` (least squares over the ``(19,)`` log
    quantiles), clipped to :data:`GAMMA_RANGE` and :data:`LOG_GAIN_RANGE`."""
    design = np.stack([reference, np.ones_like(reference)], axis=1)
    g, k = np.linalg.lstsq(design, q, rcond=None)[0]
    return float(np.clip(g, *GAMMA_RANGE)), float(np.clip(k, *LOG_GAIN_RANGE))


def undo_light(image: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The image with its own light undone against the product's reference.

    Args:
        image: ``(H, W, C)`` uint8.
        reference: ``(19,)`` from :func:`reference_levels`.

    Returns:
        ``(H, W, C)`` uint8: the plane removed, then every channel ``y -> (y - k) / g`` in
        the log domain.

    Raises:
        ConfigError: ``reference`` is not ``(19,)`` or ``image`` is not ``(H, W, C)``.
    """
    reference = np.asarray(reference, np.float64)
    if reference.shape != LEVELS.shape or np.ndim(image) != 3:
        raise ConfigError(
            f"undo_light needs an (H, W, C) image and a {LEVELS.shape} reference, got "
            f"{np.shape(image)} and {reference.shape}"
        )
    flat = flattened(image)
    g, k = fit_light(log_quantiles(flat), reference)
    x = 256.0 * np.exp((log_domain(flat) - k) / g) - 0.5
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)
