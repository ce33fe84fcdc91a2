"""The data-generation figure (the paper's Figure 4): how a synthetic defect is made.

Columns: normal image, foreground mask, Perlin mask (grey: the raw thresholded noise;
white: its part on the foreground, the paper's ``M_a``), texture, synthetic image.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from fsad.cache import DiskCache
from fsad.data import load_category
from fsad.synth.blend import is_grey, to_grey_rgb
from fsad.synth.pseudo import PseudoClassDataset
from fsad.synth.textures import TextureSource

#: (dataset, category) rows of the book's figure
FIGURE_CATEGORIES: tuple[tuple[str, str], ...] = (
    ("mvtec_ad", "bottle"),
    ("mvtec_ad", "transistor"),
    ("mvtec_ad", "screw"),
    ("mvtec_3d", "tire"),
)
COLUMNS = ("normal image", "foreground mask", "Perlin mask", "texture", "synthetic defect")


def synthesis_panels(dataset: PseudoClassDataset, index: int) -> list[np.ndarray]:
    """The five panels of item ``index``, each ``(size, size, 3) uint8`` RGB.

    The texture panel shows the texture as pasted (grey for a grey product).
    """
    s = dataset[index]
    size = dataset.size
    normal = dataset.source_image(s.source_index)
    fg = np.repeat((s.foreground * 255).astype(np.uint8)[..., None], 3, axis=2)
    mask = np.zeros((size, size, 3), np.uint8)
    mask[s.raw_mask] = 90  # generator mask off the foreground: dark grey
    mask[s.mask] = 255  # M_a: on the foreground
    tex = dataset.texture_image(s.texture, s.source_index)
    if dataset.grey == "auto" and is_grey(normal):
        tex = to_grey_rgb(tex)
    return [normal, fg, mask, tex, s.image]


def plot_synthesis(
    rows: Sequence[tuple[str, PseudoClassDataset, int]], panel_inches: float = 2.0
) -> Figure:
    """A grid of :func:`synthesis_panels`, one row per ``(row title, dataset, index)``."""
    fig = Figure(figsize=(panel_inches * len(COLUMNS), panel_inches * len(rows) + 0.4))
    axes = fig.subplots(len(rows), len(COLUMNS), squeeze=False)
    for r, (title, dataset, index) in enumerate(rows):
        panels = synthesis_panels(dataset, index)
        texture = dataset[index].class_name
        for c, panel in enumerate(panels):
            ax = axes[r, c]
            ax.imshow(panel)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                title_c = COLUMNS[c]
                if c == 2 and dataset.generator == "polygon":
                    title_c = "polygon mask"
                ax.set_title(title_c, fontsize=10)
        axes[r, 0].set_ylabel(title, fontsize=10)
        axes[r, 3].set_xlabel(texture, fontsize=8)
    fig.tight_layout()
    return fig


def figure4(
    data_root: str | os.PathLike,
    textures: str | os.PathLike | TextureSource | None = None,
    categories: Sequence[tuple[str, str]] = FIGURE_CATEGORIES,
    seed: int = 0,
    cache: DiskCache | None = None,
) -> Figure:
    """The paper's Figure 4 for ``categories`` under ``data_root``.

    Args:
        data_root: folder holding ``mvtec_ad/`` and ``mvtec_3d/`` (e.g. ``$FSAD_DATA``).
        textures: DTD folder, a :class:`TextureSource`, or None for procedural textures.
        categories: ``(dataset, category)`` rows.
        seed: picks the source images, masks, beta and the texture of each row.
        cache: foreground-mask cache.
    """
    if textures is None:
        source = TextureSource.procedural(seed=seed)
    elif isinstance(textures, TextureSource):
        source = textures
    else:
        source = TextureSource.from_dtd(textures)
    rng = np.random.default_rng([seed, 4])
    picks = rng.choice(
        len(source.classes), size=len(categories), replace=len(categories) > len(source.classes)
    )
    rows = []
    for (dataset, category), pick in zip(categories, picks, strict=True):
        data = load_category(Path(data_root) / dataset, dataset, category)
        ds = PseudoClassDataset(data, source, seed=seed, cache=cache, n_per_class=4)
        rows.append((category, ds, int(pick) * ds.n_sources))
    return plot_synthesis(rows)
