"""Which per-image estimate of the light follows the light the suite drew? (label-free: it
reads the generator's own light draws for the product's normal images, never a defect type;
a study that ranks estimators before any round runs one)

The oracle study (:mod:`research.light_oracle`) found that dividing the exact drawn light
out of the suite ``all``'s images brings the default within about 4-7 points of the
untransformed images, while photometric rounds 8-10, which estimated the light image by
image, moved the suite's query record by 0.4-2.5 points. Round 8's fit followed the drawn
gamma fairly closely and the gain less (:mod:`research.light_fit_study`); round 9's plane
was never set beside the drawn gradient. This study sets several estimators beside all three
parts of the drawn light, on the bank's normal images of ``all`` (whose light is replayed
through each file's own generator, :func:`research.light_fit_study.drawn_light`).

In the log domain the suite's light is affine (:func:`fsad.suite.illumination`):
``log y = gamma log x + log gain + log ramp``, ``ramp`` equal to 1 at the frame's centre, so
``log gain`` is the level at the centre and ``log ramp`` is close to a plane
``b u + c v`` over the frame's coordinates ``u, v`` in ``[-0.5, 0.5]``. The colour
temperature, on a grey part, is a gain of ``1 + 0.185 t`` after the grey step (folded into
the drawn gain here).

**Estimators** (each gives ``g``, ``k`` and a slope ``(b, c)``; the constants of the first
five fixed before any estimate was looked at; ``spread_median`` added after the first
run had been read, to set photometric round 11's reading beside them, its constants the
round's, fixed before that round):

- ``none``: the image as it is (``g = 1``, ``k = 0``, no plane).
- ``quantiles`` (round 8, :mod:`research.log_light_round`): ``(g, k)`` by least squares of
  the image's log-luminance quantiles on the product's mean quantiles; no plane.
- ``plane_lsq`` (round 9, :mod:`research.flat_light_round`): a least-squares plane over the
  frame removed, then ``quantiles`` against the flattened normals' mean.
- ``plane_gradient``: the plane's slope as the median of the smoothed log image's gradient
  over pixels that are neither crushed nor clipped (:func:`gradient_slope`): edges of the
  content are few, flat regions many, so the median reads the light's trend rather than the
  content's; then ``quantiles`` against the normals flattened alike.
- ``plane_gradient_bright``: as ``plane_gradient``, the quantile fit over the upper half
  of the levels only (:data:`BRIGHT`), where grey levels are many and noise is small.
- ``spread_median``: photometric round 11's whole-image reading (:mod:`research.zoom_light_round`):
  ``g`` the image's log spread over the product's, ``k`` the image's median log luminance
  less ``g`` times the product's; no plane.

**Measures** (:func:`fsad.report.light_estimate_summary`), per category and estimator:
Spearman's rho of ``g`` with the drawn gamma and of ``k`` with the drawn log gain, and for
each part the share of the drawn spread left after the correction: ``std(estimate - drawn) /
std(drawn)`` (a constant offset, the reference's own light, is harmless; 1 means the
correction leaves as much light variation as there was, 0 means none), for ``log g``, ``k``
and the slope vector (its root mean square about its mean); and ``light_left``
(:func:`light_left`, on images resized to :data:`GRADIENT_SIDE` px).

**What it found** (``results/explore/light_estimate.csv``, 682 normal images of ``all``:
bottle 209, transistor 213, screw 250, metal_nut 10; first at 95fd601, regenerated at
3882fc0 with :func:`light_left`'s fit in float64, which moved the ``light_left`` column only
and none of the figures here; about a minute): the best
estimate leaves 0.31-0.47 of the uncorrected images' light in the pixels (by category). No
estimate of the gain leaves less than the drawn spread on bottle, transistor or metal_nut
(shares 1.3-3.9; ``k`` is extrapolated to white, so a gamma error moves it too); round 9's
least-squares plane leaves 2.5-2.7 times the drawn slope's spread (screw 1.1); the
median-gradient plane 0.43 on screw, 0.84 on metal_nut, 1.11 and 1.25 on bottle and
transistor. ``spread_median``'s gamma: rank correlation 0.61-1.00, and on screw more of the
gamma's spread left than without correction (1.08); its whole-image level leaves more light
on metal_nut than none (0.42 against 0.41).

Usage::

    python -m research.light_estimate_study --data "$FSAD_DATA" --suite "$SUITE/all" \\
        --out results/explore/light_estimate.csv
    python -m research.light_estimate_study --out results/explore/light_estimate.csv --report
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from fsad import suite as fs
from fsad.data import GOOD, read_image
from fsad.light_estimate import (  # the estimate this study ranked first, now the library's
    GRADIENT_SIDE,
    VALID,
    gradient_slope,
    remove_plane,
)
from fsad.report import light_estimate_summary
from research import flat_light_round as fl
from research import log_light_round as ll
from research import zoom_light_round as zl
from research.light_fit_study import default_folder, drawn_light, study_main
from research.light_oracle import LUMA
from research.light_oracle import undo_light as undo_drawn

#: the quantile levels of the bright variant: the upper half of round 8's
BRIGHT = ll.LEVELS[ll.LEVELS >= 0.5]
#: a tint ``t`` is a gain ``1 + TINT t`` on a grey part (the grey step's red minus blue weight)
TINT = LUMA[0] - LUMA[2]


def luminance(image: np.ndarray) -> np.ndarray:
    """``(H, W, C) uint8 -> (H, W) float32``: the channels' mean grey level."""
    return image.astype(np.float32).mean(axis=2)


def shrink(grey: np.ndarray) -> np.ndarray:
    """``(H, W) -> (h, w)`` float32, resized (area) to :data:`GRADIENT_SIDE` px on its long
    side, at least 3 px on the other."""
    h, w = grey.shape
    f = GRADIENT_SIDE / max(h, w)
    size = (max(3, round(w * f)), max(3, round(h * f)))
    return cv2.resize(grey.astype(np.float32), size, interpolation=cv2.INTER_AREA)


def level_fit(image: np.ndarray, reference: np.ndarray, levels: np.ndarray) -> tuple[float, float]:
    """Round 8's ``(g, k)`` (:func:`research.log_light_round.fit_light`) over the quantile
    ``levels`` only; ``reference`` holds the product's mean at those levels."""
    return ll.fit_light(ll.log_domain(np.quantile(luminance(image), levels)), reference)


@dataclasses.dataclass(frozen=True)
class Estimator:
    """A per-image light estimate: a slope (``None``: no plane) then a quantile fit over
    ``levels`` against the product's normals flattened by the same slope."""

    slope: Callable[[np.ndarray], tuple[float, float]] | None
    levels: np.ndarray
    #: instead of the quantile fit, photometric round 11's reading
    #: (:mod:`research.zoom_light_round`): ``g`` the image's log spread over the product's,
    #: ``k`` the image's median log luminance less ``g`` times the product's
    spread: bool = False


def lsq_slope(image: np.ndarray) -> tuple[float, float]:
    """Round 9's least-squares plane (:func:`research.flat_light_round.fit_slope`)."""
    return fl.fit_slope(ll.log_domain(image))


ESTIMATORS = {
    "none": Estimator(None, np.array([])),
    "quantiles": Estimator(None, ll.LEVELS),
    "plane_lsq": Estimator(lsq_slope, ll.LEVELS),
    "plane_gradient": Estimator(gradient_slope, ll.LEVELS),
    "plane_gradient_bright": Estimator(gradient_slope, BRIGHT),
    "spread_median": Estimator(None, np.array([0.5]), spread=True),
}


def flattened(image: np.ndarray, estimator: Estimator) -> tuple[np.ndarray, tuple[float, float]]:
    """The image without the estimator's plane, and that plane's slope."""
    if estimator.slope is None:
        return image, (0.0, 0.0)
    slope = estimator.slope(image)
    return remove_plane(image, slope), slope


def reference_levels(images: Sequence[np.ndarray], estimator: Estimator) -> np.ndarray:
    """The product's mean log quantiles at the estimator's levels, over its normal images
    flattened by the estimator."""
    if estimator.spread:  # (median, spread) of the product's normals
        return np.mean([spread_median(im) for im in images], axis=0)
    qs = [np.quantile(luminance(flattened(im, estimator)[0]), estimator.levels) for im in images]
    return np.mean([ll.log_domain(q) for q in qs], axis=0)


def spread_median(image: np.ndarray) -> np.ndarray:
    """``(2,)``: the image's median log luminance and its spread
    (:func:`research.zoom_light_round.spread`)."""
    return np.array([np.median(zl.log_luminance(image)), zl.spread(image)])


def corrected(image: np.ndarray, estimator: Estimator, reference: np.ndarray) -> dict:
    """The estimator's light and the image with it undone.

    Args:
        image: ``(H, W, C)`` uint8.
        reference: the product's reference (:func:`reference_levels`).

    Returns:
        ``{"g", "k", "b", "c"}`` (floats: gamma, log level of white, the plane's slope) and
        ``"image"``, ``(H, W, C)`` uint8 with the light undone (``none``: as it is).
    """
    if not estimator.levels.size:
        return {"g": 1.0, "k": 0.0, "b": 0.0, "c": 0.0, "image": image}
    if estimator.spread:
        (m, sp), (m0, sp0) = spread_median(image), reference
        g = float(np.clip(sp / sp0, *ll.GAMMA_RANGE))
        k = float(m - g * m0)
        return {"g": g, "k": k, "b": 0.0, "c": 0.0, "image": ll.undo_light(image, g, k)}
    flat, (b, c) = flattened(image, estimator)
    g, k = level_fit(flat, reference, estimator.levels)
    return {"g": g, "k": k, "b": b, "c": c, "image": ll.undo_light(flat, g, k)}


def small_log(grey: np.ndarray) -> np.ndarray:
    """``(H, W) uint8 -> float32`` log domain at :data:`GRADIENT_SIDE` on the long side."""
    return np.log((shrink(grey) + 0.5) / 256.0)


def light_left(fixed: Sequence[np.ndarray], truth: Sequence[np.ndarray]) -> np.ndarray:
    """Per image, the light a correction left: the root mean square of
    ``d = log fixed - log truth`` over the pixels where both are neither crushed nor clipped
    (:data:`VALID`), after removing the part of ``d`` common to the product's images (one
    affine map of ``log truth`` fitted to all of them: the reference's own light).

    Args:
        fixed, truth: per image, ``(H, W)`` uint8 grey images (corrected; the oracle's).

    Returns:
        ``(n,)`` float.
    """
    lo, hi = np.log((np.array(VALID) + 0.5) / 256.0)
    pairs = [(small_log(f), small_log(t)) for f, t in zip(fixed, truth, strict=True)]
    keep = [((f >= lo) & (f <= hi) & (t >= lo) & (t <= hi)) for f, t in pairs]
    # float64: a least-squares line through millions of float32 points is ill-conditioned
    # (numpy's polyfit warns and misses it; light_by_type.csv and light_estimate.csv were
    # regenerated with this cast on 2026-12-07)
    d = np.concatenate([(f - t)[k] for (f, t), k in zip(pairs, keep, strict=True)])
    x = np.concatenate([t[k] for (_, t), k in zip(pairs, keep, strict=True)])
    d, x = d.astype(np.float64), x.astype(np.float64)
    a, b = np.polyfit(x, d, 1) if d.size > 1 else (0.0, 0.0)
    return np.array([
        float(np.sqrt(np.mean((f - t - (a * t + b))[k] ** 2))) if k.any() else np.nan
        for (f, t), k in zip(pairs, keep, strict=True)
    ])  # fmt: skip


def drawn_slope(light: dict[str, float], h: int, w: int) -> tuple[float, float]:
    """The least-squares plane ``(b, c)`` of the drawn ``log ramp`` over an ``(h, w)``
    frame (:func:`fsad.suite.illumination`'s ramp)."""
    u, v = fl.frame_coordinates(h, w)
    r = u * np.cos(light["angle"]) + v * np.sin(light["angle"])
    ramp = 1 + light["gradient"] * r / max(float(np.abs(r).max()), 1e-6)
    design = np.stack([np.ones(u.size), u.ravel(), v.ravel()], axis=1)
    _, b, c = np.linalg.lstsq(design, np.log(ramp).ravel(), rcond=None)[0]
    return float(b), float(c)


def category_rows(data: Path, suite: Path, category: str) -> list[dict]:
    """One row per normal image of ``category`` and estimator: the drawn light and the
    estimate."""
    source = fs.find_category(data, category)
    folder = default_folder(suite, category)
    names = [fs.out_name(s, "all") for s in source.train]
    images = [read_image(folder / GOOD / n) for n in names]
    drawn = [drawn_light(read_image(s.path), category, n) for s, n in zip(source.train, names,
                                                                          strict=True)]  # fmt: skip
    truth = [undo_drawn(im[..., 0], light) for im, light in zip(images, drawn, strict=True)]
    rows = []
    for est_name, est in ESTIMATORS.items():
        ref = reference_levels(images, est) if est.levels.size else est.levels
        fits = [corrected(im, est, ref) for im in images]
        left = light_left([f.pop("image")[..., 0] for f in fits], truth)
        for name, image, light, fit, e in zip(names, images, drawn, fits, left, strict=True):
            db, dc = drawn_slope(light, *image.shape[:2])
            rows.append({"category": category, "estimator": est_name, "image": Path(name).stem,
                         **fit, "light_left": e, "drawn_b": db, "drawn_c": dc,
                         "gain_eff": light["gain"] * (1 + TINT * light["temperature"]),
                         **light})  # fmt: skip
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    """The study's command line (:func:`research.light_fit_study.study_main`)."""
    study_main(argv, __doc__, category_rows, light_estimate_summary)


if __name__ == "__main__":
    main()
