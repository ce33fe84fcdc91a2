"""Pseudo-defect classes of one category: normal images x textures (paper section 3.5).

:class:`PseudoClassDataset` is lazy: item ``i`` is rendered on access, deterministically
from ``(seed, i)``, so pretraining never materialises the full set. Item ``i`` pastes
texture class ``i // n_sources`` onto source normal image ``i % n_sources``.

Difference from the paper (documented): the paper pastes every texture on *every* normal
image (22-47 classes x 200+ images); by default we draw ``n_per_class = 16`` source normal
images per category (by seed, without replacement) and paste every texture on each of them.
``n_per_class=None`` restores the paper's full product.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from fsad.cache import DiskCache, files_fingerprint
from fsad.data import CategoryData, Sample, natural_key, read_image
from fsad.errors import ConfigError
from fsad.synth.blend import BETA_RANGE, blend, draw_beta, fit_texture, is_grey
from fsad.synth.foreground import cached_foreground_mask, method_for
from fsad.synth.masks import (
    DEFAULT_AREA,
    PERLIN_THRESHOLD,
    POLYGON_SIDES,
    perlin_mask,
    polygon_mask,
    spot_mask,
    stroke_mask,
)
from fsad.synth.textures import TextureSource

GENERATORS = ("perlin", "polygon", "shapes")
#: the ``"shapes"`` generator's mask of each texture class, in turn: texture ``k`` gets
#: ``SHAPES[k % 3]`` (a large Perlin blob, a thin stroke, a small spot)
SHAPES = ("blob", "stroke", "spot")
DEFAULT_N_PER_CLASS = 16
SYNTH_VERSION = 1


@dataclass(frozen=True)
class SynthSample:
    """One synthetic defect image.

    Attributes:
        image: ``(size, size, 3) uint8`` RGB synthetic image.
        mask: ``(size, size) bool`` defect mask on the foreground (the paper's ``M_a``).
        label: class index into ``PseudoClassDataset.classes``.
        class_name: ``classes[label]`` (texture, or ``"<texture>/<n>-gon"`` for polygons).
        texture: texture class name.
        source: the normal image it was made from.
        source_index: index of ``source`` in ``PseudoClassDataset.sources``.
        beta: image opacity inside the mask (``beta ~ U[0, 0.5)``).
        raw_mask: ``(size, size) bool`` generator mask before the foreground intersection.
        foreground: ``(size, size) bool`` foreground of the source image.
    """

    image: np.ndarray
    mask: np.ndarray
    label: int
    class_name: str
    texture: str
    source: Sample
    source_index: int
    beta: float
    raw_mask: np.ndarray
    foreground: np.ndarray


def resize_square(image: np.ndarray, size: int) -> np.ndarray:
    """Resize to ``(size, size)`` as the paper does (aspect ratio not kept)."""
    import cv2

    if image.shape[:2] == (size, size):
        return image
    shrink = min(image.shape[:2]) > size
    interp = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interp)


class PseudoClassDataset:
    """Texture classes pasted onto a category's normal images.

    Args:
        category_data: the category (its ``train`` normals are the sources).
        textures: texture classes (DTD or procedural).
        generator: ``"perlin"`` (section 3.5: one class per texture), ``"polygon"``
            (Appendix C: one class per texture x {3, 4, 5}-gon) or ``"shapes"`` (not in
            the paper: one class per texture, whose mask is, by turns, a Perlin blob, a
            thin stroke or a small spot (:data:`SHAPES`), so classes differ in shape and
            extent as well as in appearance).
        seed: draws the source images and every per-item random choice.
        size: side of the square synthetic images (paper: 256).
        n_per_class: source normal images per class (drawn by seed); None = all of them.
        cache: where foreground masks are cached; None keeps them in memory only.
        foreground: foreground method overriding the category's (see
            :mod:`fsad.synth.foreground`).
        area: accepted Perlin-mask area range (fraction of the image).
        threshold: Perlin threshold.
        beta_range: range of ``beta``.
        grey: ``"auto"`` (grey products get grey textures) or ``"keep"``.

    Raises:
        ConfigError: unknown generator or bad ``n_per_class``/``size``.
    """

    def __init__(
        self,
        category_data: CategoryData,
        textures: TextureSource,
        generator: str = "perlin",
        seed: int = 0,
        size: int = 256,
        n_per_class: int | None = DEFAULT_N_PER_CLASS,
        cache: DiskCache | None = None,
        foreground: str | None = None,
        area: tuple[float, float] = DEFAULT_AREA,
        threshold: float = PERLIN_THRESHOLD,
        beta_range: tuple[float, float] = BETA_RANGE,
        grey: str = "auto",
    ) -> None:
        if generator not in GENERATORS:
            raise ConfigError(f"unknown generator '{generator}' (choose from {GENERATORS})")
        if n_per_class is not None and n_per_class < 1:
            raise ConfigError(f"n_per_class must be >= 1 or None, got {n_per_class}")
        if grey not in ("auto", "keep"):
            raise ConfigError(f"grey must be 'auto' or 'keep', got {grey!r}")
        if size < 16:
            raise ConfigError(f"size must be >= 16, got {size}")
        self.data = category_data
        self.textures = textures
        self.generator = generator
        self.seed = int(seed)
        self.size = int(size)
        self.n_per_class = n_per_class
        self.cache = cache
        self.foreground_method = foreground or method_for(category_data.name, category_data.dataset)
        self.area, self.threshold = tuple(area), float(threshold)
        self.beta_range, self.grey = tuple(beta_range), grey
        self.sources = self._draw_sources()
        if generator == "perlin":
            self.classes = list(textures.classes)
            self._shapes: list[int | str | None] = [None] * len(self.classes)
        elif generator == "shapes":
            self._shapes = [SHAPES[k % len(SHAPES)] for k in range(len(textures.classes))]
            self.classes = [f"{t}/{s}" for t, s in zip(textures.classes, self._shapes, strict=True)]
        else:
            self.classes = [f"{t}/{n}-gon" for t in textures.classes for n in POLYGON_SIDES]
            self._shapes = [n for _ in textures.classes for n in POLYGON_SIDES]
        self._images: dict[int, np.ndarray] = {}
        self._fg: dict[int, np.ndarray] = {}
        self._textures: dict[tuple[str, int], np.ndarray] = {}
        self._grey: dict[int, bool] = {}

    def _draw_sources(self) -> list[Sample]:
        pool = sorted(self.data.train, key=lambda s: natural_key(s.path))
        if self.n_per_class is None or self.n_per_class >= len(pool):
            return pool
        rng = np.random.default_rng([self.seed, 0x5EED])
        idx = np.sort(rng.choice(len(pool), size=self.n_per_class, replace=False))
        return [pool[i] for i in idx]

    # ------------------------------------------------------------ sizes and labels
    def __len__(self) -> int:
        return len(self.classes) * len(self.sources)

    @property
    def n_sources(self) -> int:
        return len(self.sources)

    @property
    def labels(self) -> np.ndarray:
        """Class index of every item: ``(len(self),) int64``."""
        return np.repeat(np.arange(len(self.classes), dtype=np.int64), self.n_sources)

    def source_of(self, i: int) -> int:
        """Index into :attr:`sources` of item ``i``."""
        return self._check_index(i) % self.n_sources

    def _check_index(self, i: int) -> int:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for {n} synthetic images")
        return i % n

    # ------------------------------------------------------------ sources
    def source_image(self, j: int) -> np.ndarray:
        """Source normal image ``j`` resized to ``(size, size, 3) uint8`` RGB (memoised)."""
        if j not in self._images:
            img = resize_square(read_image(self.sources[j].path), self.size)
            img.setflags(write=False)
            self._images[j] = img
        return self._images[j]

    def source_foreground(self, j: int) -> np.ndarray:
        """Foreground ``(size, size) bool`` of source ``j`` (disk-cached when a cache is set)."""
        if j not in self._fg:
            self._fg[j] = cached_foreground_mask(
                self.sources[j].path,
                self.source_image(j),
                self.data.name,
                self.data.dataset,
                self.foreground_method,
                self.cache,
            )
        return self._fg[j]

    def source_images(self) -> np.ndarray:
        """All source images stacked: ``(n_sources, size, size, 3) uint8``."""
        return np.stack([self.source_image(j) for j in range(self.n_sources)])

    def source_is_grey(self, j: int) -> bool:
        """Whether source ``j`` is a grey image (then textures are pasted grey)."""
        if j not in self._grey:
            self._grey[j] = is_grey(self.source_image(j))
        return self._grey[j]

    def texture_image(self, texture: str, j: int) -> np.ndarray:
        """The texture pasted on source ``j``, resized to ``(size, size, 3)`` (memoised)."""
        k = (texture, j % self.textures.n_images(texture))
        if k not in self._textures:
            tex = fit_texture(self.textures.image(*k), (self.size, self.size))
            tex.setflags(write=False)
            self._textures[k] = tex
        return self._textures[k]

    # ------------------------------------------------------------ items
    def __getitem__(self, i: int) -> SynthSample:
        i = self._check_index(i)
        label, j = divmod(i, self.n_sources)
        kind = self._shapes[label]
        texture = self.classes[label].split("/")[0]
        rng = np.random.default_rng([self.seed, i])
        image, fg = self.source_image(j), self.source_foreground(j)
        shape = image.shape[:2]
        if kind is None or kind == "blob":
            raw, mask = perlin_mask(shape, rng, fg, self.area, self.threshold)
        elif kind == "stroke":
            raw, mask = stroke_mask(shape, rng, fg)
        elif kind == "spot":
            raw, mask = spot_mask(shape, rng, fg)
        else:
            raw, mask = polygon_mask(shape, rng, int(kind), fg)
        beta = draw_beta(rng, self.beta_range)
        grey = "always" if self.grey == "auto" and self.source_is_grey(j) else "keep"
        out = blend(image, self.texture_image(texture, j), mask, beta, grey=grey)
        return SynthSample(out, mask, label, self.classes[label], texture, self.sources[j], j,
                           beta, raw, fg)  # fmt: skip

    def __iter__(self) -> Iterator[SynthSample]:
        for i in range(len(self)):
            yield self[i]

    def key(self) -> dict[str, Any]:
        """Everything that determines the items (for cache keys)."""
        return {
            "version": SYNTH_VERSION,
            "category": self.data.name,
            "dataset": self.data.dataset,
            "sources": files_fingerprint([s.path for s in self.sources]),
            "textures": self.textures.key(),
            "generator": self.generator,
            "seed": self.seed,
            "size": self.size,
            "n_per_class": self.n_per_class,
            "foreground": self.foreground_method,
            "area": list(self.area),
            "threshold": self.threshold,
            "beta_range": list(self.beta_range),
            "grey": self.grey,
        }
