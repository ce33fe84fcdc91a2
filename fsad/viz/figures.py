"""Small shared figure helpers for the book's notebooks (no pyplot state, no side effects).

Every function returns a :class:`matplotlib.figure.Figure` built without pyplot, so callers
decide whether to display or save it; figures carry titles and axis labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure


def overlay_mask(
    image: np.ndarray,
    mask: np.ndarray,
    color: tuple[int, int, int] = (255, 40, 40),
    alpha: float = 0.45,
) -> np.ndarray:
    """Tint the pixels of ``mask`` in ``image``.

    Args:
        image: ``(H, W, 3) uint8`` RGB or ``(H, W)`` grey.
        mask: ``(H, W)`` bool (or 0/1) of the same size.
        color: RGB tint.
        alpha: tint opacity inside the mask.

    Returns:
        ``(H, W, 3) uint8`` RGB.
    """
    img = np.repeat(image[..., None], 3, axis=2) if image.ndim == 2 else image
    out = img.astype(np.float32)
    m = np.asarray(mask, dtype=bool)
    out[m] = (1 - alpha) * out[m] + alpha * np.asarray(color, np.float32)
    return out.clip(0, 255).astype(np.uint8)


def heatmap_overlay(
    image: np.ndarray,
    heat: np.ndarray,
    alpha: float = 0.5,
    vmin: float | None = None,
    vmax: float | None = None,
) -> np.ndarray:
    """Blend a heat map (any size) over an image with the ``jet`` colour map.

    Args:
        image: ``(H, W, 3) uint8`` RGB.
        heat: ``(h, w)`` float; resized bilinearly to ``(H, W)``.
        alpha: heat-map opacity.
        vmin, vmax: colour range (default: the map's own min and max); pass the same range
            for several images to make their colours comparable.

    Returns:
        ``(H, W, 3) uint8`` RGB.
    """
    import cv2
    from matplotlib import colormaps

    h = cv2.resize(np.asarray(heat, np.float32), image.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    lo = float(h.min()) if vmin is None else vmin
    hi = float(h.max()) if vmax is None else vmax
    h = np.clip((h - lo) / max(hi - lo, 1e-8), 0, 1)
    colored = colormaps["jet"](h)[..., :3] * 255
    return ((1 - alpha) * image.astype(np.float32) + alpha * colored).clip(0, 255).astype(np.uint8)


def image_grid(
    images: Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    ncols: int = 4,
    row_labels: Sequence[str] | None = None,
    suptitle: str | None = None,
    panel_inches: float = 2.2,
    cmap: str | None = None,
    colorbar: bool = False,
) -> Figure:
    """Images in a grid with per-panel titles and optional row labels.

    Args:
        images: ``(H, W, 3) uint8`` RGB, ``(H, W)`` bool/uint8/float panels.
        titles: one short title per panel.
        ncols: panels per row.
        row_labels: one label per row (shown left of the row).
        suptitle: figure title.
        panel_inches: side of one panel in inches.
        cmap: colour map for single-channel panels (default ``gray``).
        colorbar: add a colour bar to single-channel float panels.
    """
    n = len(images)
    nrows = max(1, int(np.ceil(n / ncols)))
    fig = Figure(
        figsize=(panel_inches * ncols, panel_inches * nrows + (0.5 if suptitle else 0.1)),
        layout="constrained",
    )
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if k >= n:
            ax.set_axis_off()
            continue
        img = np.asarray(images[k])
        mono = img.ndim == 2
        shown = ax.imshow(img.astype(np.float32) if img.dtype == bool else img,
                          cmap=(cmap or "gray") if mono else None,
                          vmin=0 if img.dtype == bool else None,
                          vmax=1 if img.dtype == bool else None)  # fmt: skip
        if colorbar and mono and img.dtype != bool:
            fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.03)
        if titles is not None and k < len(titles):
            ax.set_title(titles[k], fontsize=9)
    if row_labels is not None:
        for r, label in enumerate(row_labels[:nrows]):
            axes[r, 0].set_ylabel(label, fontsize=10)
    if suptitle:
        fig.suptitle(suptitle, fontsize=12)
    return fig


def to_png(fig: Figure, dpi: int = 100) -> bytes:
    """The figure as PNG bytes (tight bounding box), independent of any pyplot backend."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight", facecolor="white")
    return buf.getvalue()


def show(fig: Figure, dpi: int = 100) -> None:
    """Display a pyplot-less figure in a notebook as a PNG image (no-op outside IPython)."""
    try:
        from IPython.display import Image, display
    except ImportError:  # pragma: no cover - IPython ships with the notebook stack
        return
    display(Image(data=to_png(fig, dpi)))
