"""Pasting a texture into a normal image under a defect mask (section 3.5).

``I_syn = I * (1 - M) + (1 - beta) * T * M + beta * I * M`` with ``beta ~ U[0, 0.5)``: inside
the mask the texture ``T`` shows through at opacity ``1 - beta``. The texture is used as is
(the paper removes DRAEM's augmentation) and in RGB order like the image (the authors' code
pasted BGR textures into RGB images; we do not).
"""

from __future__ import annotations

import numpy as np

BETA_RANGE = (0.0, 0.5)
GREY_TOLERANCE = 2
GREY_MODES = ("auto", "always", "keep")


def is_grey(image: np.ndarray, tolerance: int = GREY_TOLERANCE) -> bool:
    """True for a single-channel image or an RGB image whose channels agree within ``tolerance``."""
    if image.ndim == 2 or image.shape[2] == 1:
        return True
    img = image.astype(np.int16)
    return bool(
        np.abs(img[..., 0] - img[..., 1]).max() <= tolerance
        and np.abs(img[..., 1] - img[..., 2]).max() <= tolerance
    )


def to_grey_rgb(image: np.ndarray) -> np.ndarray:
    """Luminance (ITU-R BT.601) of an RGB image, repeated on 3 channels: ``(H, W, 3) uint8``."""
    import cv2

    grey = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    return np.repeat(grey[..., None], 3, axis=2)


def fit_texture(texture: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a texture ``(h, w, 3)`` to ``shape = (H, W)`` (as the authors: a plain resize)."""
    import cv2

    if texture.shape[:2] == tuple(shape):
        return texture
    return cv2.resize(texture, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)


def blend(
    image: np.ndarray,
    texture: np.ndarray,
    mask: np.ndarray,
    beta: float,
    grey: str = "auto",
) -> np.ndarray:
    """Blend ``texture`` into ``image`` where ``mask`` is set.

    Args:
        image: normal image ``(H, W, 3)`` RGB or ``(H, W)`` grey, uint8.
        texture: texture ``(h, w, 3)`` RGB uint8; resized to ``(H, W)`` when needed.
        mask: ``(H, W)`` bool or float in ``[0, 1]`` (the paper's ``M_a``).
        beta: image opacity inside the mask, ``[0, 1]``.
        grey: ``"auto"`` turns the texture grey when the image is grey (a grey product
            keeps grey defects: colour would give the class away), ``"always"`` always
            does, ``"keep"`` never does.

    Returns:
        ``(H, W, 3) uint8`` RGB (a grey input comes back as 3 equal channels).
    """
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"beta must lie in [0, 1], got {beta}")
    if grey not in GREY_MODES:
        raise ValueError(f"grey must be one of {', '.join(GREY_MODES)}, got {grey!r}")
    img = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
    if img.shape[:2] != mask.shape:
        raise ValueError(f"mask shape {mask.shape} does not match image shape {img.shape[:2]}")
    tex = fit_texture(texture, img.shape[:2])
    if grey == "always" or (grey == "auto" and is_grey(img)):
        tex = to_grey_rgb(tex)
    # I*(1-M) + (1-beta)*T*M + beta*I*M  ==  I + M*(1-beta)*(T - I)
    if mask.dtype == bool:  # only the masked pixels change
        out = img.copy()
        i = img[mask].astype(np.float32)
        out[mask] = _to_uint8(i + (1.0 - beta) * (tex[mask].astype(np.float32) - i))
        return out
    m = mask.astype(np.float32)[..., None]
    i = img.astype(np.float32)
    return _to_uint8(i + m * ((1.0 - beta) * (tex.astype(np.float32) - i)))


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


def draw_beta(rng: np.random.Generator, beta_range: tuple[float, float] = BETA_RANGE) -> float:
    """``beta ~ U[low, high)``."""
    return float(rng.uniform(beta_range[0], beta_range[1]))
