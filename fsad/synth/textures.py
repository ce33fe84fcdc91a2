"""Texture sources: DTD folders or the procedural bank.

A :class:`TextureSource` names texture *classes* and returns their images as
``(H, W, 3) uint8`` RGB, un-augmented (the paper pastes textures as they are).

- :meth:`TextureSource.from_dtd`: ``<root>/images/<class>/*`` (official DTD layout) or
  ``<root>/<class>/*``; by default only the first image (sorted) of each class, as the paper.
- :meth:`TextureSource.procedural`: ``n_classes`` textures from :mod:`fsad.synth.procedural`
  (one per family; beyond the 24 families, further seeds of the same families).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fsad.cache import files_fingerprint
from fsad.data import list_images, natural_key, read_image
from fsad.errors import DataError
from fsad.synth.procedural import FAMILIES, procedural_texture

PROCEDURAL_VERSION = 1


@dataclass
class TextureSource:
    """Texture classes and their images.

    Attributes:
        classes: class names, in order (labels index into it).
        files: for DTD sources, the image files of each class; empty for procedural ones.
        seed: procedural seed (None for DTD sources).
        size: side of procedural textures.
    """

    classes: list[str]
    files: dict[str, list[Path]] = field(default_factory=dict)
    seed: int | None = None
    size: int = 256
    _memo: dict[tuple[str, int], np.ndarray] = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------ constructors
    @classmethod
    def from_dtd(cls, root: str | os.PathLike, per_class: int | None = 1) -> TextureSource:
        """Textures from a DTD-style folder.

        Args:
            root: the DTD folder (holding ``images/``) or the folder of class folders.
            per_class: images kept per class, first in natural order; None keeps all.

        Raises:
            DataError: the folder is missing, has no class folders, or a class has no images.
        """
        root = Path(root).expanduser()
        if not root.exists():
            raise DataError(f"texture folder not found: {root}")
        if not root.is_dir():
            raise DataError(f"texture folder is not a folder: {root}")
        base = root / "images" if (root / "images").is_dir() else root
        dirs = sorted(
            (p for p in base.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))),
            key=natural_key,
        )
        if not dirs:
            raise DataError(f"no texture class folders in {base}")
        if per_class is not None and per_class < 1:
            raise DataError(f"per_class must be >= 1 or None, got {per_class}")
        files: dict[str, list[Path]] = {}
        for d in dirs:
            imgs = list_images(d)
            if not imgs:
                raise DataError(f"texture class folder has no images: {d}")
            files[d.name] = imgs[:per_class] if per_class else imgs
        return cls(classes=list(files), files=files)

    @classmethod
    def procedural(
        cls, n_classes: int | None = None, seed: int = 0, size: int = 256
    ) -> TextureSource:
        """``n_classes`` procedural textures (default: one per family, 24)."""
        n = len(FAMILIES) if n_classes is None else int(n_classes)
        if n < 1:
            raise DataError(f"n_classes must be >= 1, got {n_classes}")
        fams = list(FAMILIES)
        names = [
            fams[k % len(fams)] + ("" if k < len(fams) else f"_{k // len(fams)}") for k in range(n)
        ]
        return cls(classes=names, seed=int(seed), size=int(size))

    # ------------------------------------------------------------ access
    @property
    def is_procedural(self) -> bool:
        return not self.files

    def __len__(self) -> int:
        return len(self.classes)

    def n_images(self, name: str) -> int:
        """Number of images of class ``name``."""
        self._check(name)
        return 1 if self.is_procedural else len(self.files[name])

    def image(self, name: str, index: int = 0) -> np.ndarray:
        """Image ``index`` of class ``name``: ``(H, W, 3) uint8`` RGB (memoised, read-only)."""
        self._check(name)
        k = (name, index % self.n_images(name))
        if k not in self._memo:
            img = self._load(*k)
            img.setflags(write=False)
            self._memo[k] = img
        return self._memo[k]

    def key(self) -> dict[str, Any]:
        """Everything that determines the textures (for cache keys)."""
        if self.is_procedural:
            return {
                "kind": "procedural",
                "classes": self.classes,
                "seed": self.seed,
                "size": self.size,
                "version": PROCEDURAL_VERSION,
            }
        flat = [p for name in self.classes for p in self.files[name]]
        return {"kind": "dtd", "classes": self.classes, "files": files_fingerprint(flat)}

    def _check(self, name: str) -> None:
        if name not in self.classes:
            raise DataError(f"unknown texture class '{name}'")

    def _load(self, name: str, index: int) -> np.ndarray:
        if self.is_procedural:
            k = self.classes.index(name)
            family = list(FAMILIES)[k % len(FAMILIES)]
            return procedural_texture(family, seed=self.seed + k // len(FAMILIES), size=self.size)
        return read_image(self.files[name][index])
