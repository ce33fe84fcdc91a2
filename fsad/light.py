"""Fixed changes of light: the relit copies of normal images that a relit bank holds.

A memory bank of normal patches flags whatever its normals do not show, a change of light
as much as a defect. A bank that also holds the normals under other light
(:attr:`fsad.engine.EngineConfig.relit_bank`) gives a patch that differs from them only by
its light a close nearest neighbour m*, so its residual r = f - m* (Eq. 2) stays small and
the anomaly-guided descriptors follow the defect. Photometric round 4 (book appendix) chose
it without query labels.

The three views change brightness only (the same factor on every channel, so a grey image
stays grey): darker (gamma :data:`GAMMA`), brighter (gamma ``1 / GAMMA``) and a linear ramp
along the diagonal from ``1 - RAMP`` at the top-left corner to ``1 + RAMP`` at the
bottom-right. Their strength is a usual photometric augmentation's, fixed before any run.
"""

from __future__ import annotations

import numpy as np

#: gamma of the darker view; the brighter view uses its inverse
GAMMA = 1.4
#: the ramp's relative brightness change at the corners (0.75 .. 1.25)
RAMP = 0.25
#: how many views :func:`lit_views` gives
N_VIEWS = 3
#: bump when the views change in a way :func:`light_key` does not show
LIGHT_VERSION = 1


def light_key() -> dict[str, float | int]:
    """What determines the relit copies (in the cache keys of relit features and banks, so
    a change of the lights never serves an older entry)."""
    return {"version": LIGHT_VERSION, "gamma": GAMMA, "ramp": RAMP, "views": N_VIEWS}


def lit_views(image: np.ndarray) -> list[np.ndarray]:
    """The three lit views of ``image``: darker, brighter, ramp.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.

    Returns:
        three ``(H, W, 3)`` uint8 images; each channel gets the same change.
    """
    h, w = image.shape[:2]
    x = image.astype(np.float32) / 255.0
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    diagonal = (xx / max(w - 1, 1) + yy / max(h - 1, 1)) / 2 - 0.5  # -0.5 .. 0.5
    views = [x**GAMMA, x ** (1 / GAMMA), x * (1 + 2 * RAMP * diagonal)[..., None]]
    return [np.clip(np.rint(v * 255.0), 0, 255).astype(np.uint8) for v in views]


def relit(image: np.ndarray, index: int) -> np.ndarray:
    """The relit copy a relit bank holds of its ``index``-th normal image: view
    ``index mod 3`` of :func:`lit_views`, so the three lights take turns.

    Args:
        image: ``(H, W, 3)`` uint8 RGB.

    Returns:
        ``(H, W, 3)`` uint8.
    """
    return lit_views(image)[index % N_VIEWS]
