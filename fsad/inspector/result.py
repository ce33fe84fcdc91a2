"""The verdict for one image (:class:`Result`) and how it is shown: the explanation text
and the heat-map overlay."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fsad.data import read_image
from fsad.errors import DataError
from fsad.heads import class_means, l2_normalise
from fsad.viz.overlay import overlay_heatmap

#: the :meth:`Result.row` columns (one CSV row per image)
ROW_KEYS = (
    "path score threshold is_normal prediction defect_type probability low_confidence "
    "runner_up runner_up_probability adapted error"
).split()


@dataclass
class Result:
    """The verdict for one image.

    Attributes:
        path: the image file.
        score: anomaly score (largest patch distance to the normal bank); None on error.
        threshold: the normal-vs-defect threshold used.
        is_normal: ``score <= threshold``.
        prediction: ``"good"`` when normal, else the predicted defect type.
        defect_type / probability: the most likely defect type (given even for normal
            images, for a user who disagrees with the threshold) and its probability.
        low_confidence: a defective image whose most likely type has a probability below
            the ``min_confidence`` of the call (worth a human look).
        runner_up / runner_up_probability: the second most likely type (None with one type).
        adapted: the probabilities were adapted to the batch (transductive ``adapt``).
        probabilities: defect type -> probability (all types).
        prototype_distance: defect type -> cosine distance of the image's descriptor to
            that type's prototype (mean of its normalised support descriptors).
        nearest_support: defect type -> (support file name, cosine distance) of the closest
            support image of that type.
        anomaly_map: ``(h, w)`` patch distances on engine 0's patch grid.
        error: why the image could not be classified (then the other fields are None).
    """

    path: str
    score: float | None = None
    threshold: float | None = None
    is_normal: bool | None = None
    prediction: str | None = None
    defect_type: str | None = None
    probability: float | None = None
    low_confidence: bool | None = None
    runner_up: str | None = None
    runner_up_probability: float | None = None
    adapted: bool | None = None
    probabilities: dict[str, float] = field(default_factory=dict)
    prototype_distance: dict[str, float] = field(default_factory=dict)
    nearest_support: dict[str, tuple[str, float]] = field(default_factory=dict)
    anomaly_map: np.ndarray | None = field(default=None, repr=False)
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the image was classified (no ``error``)."""
        return self.error is None

    def row(self) -> dict[str, Any]:
        """One CSV row (no maps, no per-class details)."""
        return {k: getattr(self, k) for k in ROW_KEYS}


def verdict(
    path: str,
    amap: np.ndarray,
    probs: np.ndarray,
    classes: list[str],
    threshold: float,
    distances: tuple[dict[str, tuple[str, float]], dict[str, float]],
) -> Result:
    """The :class:`Result` of one classified image.

    Args:
        path: the image file.
        amap: ``(h, w)`` anomaly map; its maximum is the score.
        probs: ``(C,)`` class probabilities, in the order of ``classes``.
        classes: the C defect types.
        threshold: normal-vs-defect threshold on the score.
        distances: ``(nearest support, prototype distance)`` of this image
            (:func:`support_distances`).
    """
    score = float(amap.max())
    order = np.argsort(-probs, kind="stable")
    top, second = int(order[0]), (int(order[1]) if len(order) > 1 else None)
    normal = score <= threshold
    return Result(
        path=path,
        score=score,
        threshold=threshold,
        is_normal=normal,
        prediction="good" if normal else classes[top],
        defect_type=classes[top],
        probability=float(probs[top]),
        runner_up=None if second is None else classes[second],
        runner_up_probability=None if second is None else float(probs[second]),
        probabilities={c: float(probs[j]) for j, c in enumerate(classes)},
        prototype_distance=distances[1],
        nearest_support=distances[0],
        anomaly_map=amap,
    )


def support_distances(
    desc: np.ndarray,
    support: np.ndarray,
    labels: np.ndarray,
    names: list[str],
    classes: list[str],
) -> list[tuple[dict[str, tuple[str, float]], dict[str, float]]]:
    """Per query: ``{class: (closest support name, cosine distance)}`` and ``{class:
    cosine distance to the class prototype}``.

    Args:
        desc: ``(Q, D')`` query descriptors.
        support: ``(S, D')`` support descriptors.
        labels: ``(S,)`` class index of each support descriptor.
        names: ``(S,)`` support file names.
        classes: the C defect types.
    """
    q, sup = l2_normalise(desc), l2_normalise(support)
    dist = 1.0 - q @ sup.T  # (Q, S)
    protos = l2_normalise(class_means(sup, labels, len(classes)))
    pdist = 1.0 - q @ protos.T  # (Q, C)
    out = []
    for row, prow in zip(dist, pdist):
        near = {}
        for j, c in enumerate(classes):
            idx = np.flatnonzero(labels == j)
            k = int(idx[np.argmin(row[idx])])
            near[c] = (names[k], float(row[k]))
        out.append((near, {c: float(prow[j]) for j, c in enumerate(classes)}))
    return out


def explain_text(result: Result, classes: list[str]) -> str:
    """A short text: score vs threshold, then per defect type (most likely first) its
    probability, the cosine distance to its prototype and to its closest support image."""
    if not result.ok:
        return f"{result.path}: skipped ({result.error})"
    state = "normal" if result.is_normal else "defective"
    lines = [
        f"{result.path}: score {result.score:.3f} vs threshold {result.threshold:.3f} "
        f"-> {state}; defect type {result.defect_type} (p={result.probability:.2f})"
        + (" LOW CONFIDENCE" if result.low_confidence else "")
        + (" [adapted to the batch: transductive]" if result.adapted else "")
    ]
    for c in sorted(classes, key=lambda c: -result.probabilities[c]):
        name, d = result.nearest_support[c]
        lines.append(
            f"  {c:<20} p={result.probabilities[c]:.2f}  "
            f"prototype distance {result.prototype_distance[c]:.3f}  "
            f"nearest support {name} ({d:.3f})"
        )
    return "\n".join(lines)


def overlay_image(
    result: Result,
    image: np.ndarray | None,
    map_range: tuple[float, float],
    resize: int,
    crop: int,
    framing: str = "crop",
) -> np.ndarray:
    """The heat-map overlay ``(H, W, 3)`` uint8 of a classified image, over all of it.

    Args:
        result: a classified image (with its ``anomaly_map``).
        image: its RGB ``(H, W, 3)`` pixels; None reads ``result.path``.
        map_range: anomaly values shown coldest and hottest.
        resize, crop, framing: the feature preprocessing (maps the patch grid onto the image).

    Raises:
        DataError: the result has no anomaly map (an unreadable image).
    """
    if result.anomaly_map is None:
        raise DataError(f"no anomaly map for {result.path} ({result.error})")
    img = read_image(result.path) if image is None else image
    caption = (
        f"good  score {result.score:.2f}"
        if result.is_normal
        else f"{result.prediction} {result.probability:.2f}  score {result.score:.2f}"
    )
    lo, hi = map_range
    return overlay_heatmap(
        img,
        result.anomaly_map,
        lo,
        max(hi, lo + 1e-6),
        resize,
        crop,
        caption=caption,
        framing=framing,
    )
