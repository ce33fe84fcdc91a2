"""Descriptor blocks: the one protocol every kind of image description follows.

A *block kind* turns images, seen through one residual engine, into a few L2-normalised
vectors per image. fsad ships two kinds:

- :class:`fsad.descriptors.DescriptorConfig`: residuals r = f - m* (Eq. 2) and features f
  pooled over the most anomalous patches;
- :class:`fsad.zoom.ZoomConfig`: windows around the anomaly peak, cut from the original
  image and re-encoded by an ImageNet backbone.

Both implement :class:`Block`: a cache ``namespace``, a ``table_key(engine)`` that fully
determines the rows, a ``batch`` size and one ``describe(inputs)`` that serves test samples
(files, cached engine quantities) and new in-memory images alike (:class:`Inputs`). A block
kind never knows about recipes or heads; :mod:`fsad.recipe` lists blocks in groups.

Rows of a category's whole test set are computed once per (engine, block) and cached
(:func:`block_table`), so every shot count and seed-sharing method reuses them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import torch

from fsad.cache import files_fingerprint
from fsad.data import Sample, read_image
from fsad.engine import ENGINE_VERSION, ResidualEngine
from fsad.errors import ConfigError
from fsad.memory import SEARCH_VERSION
from fsad.utils import progress


class Inputs:
    """The images a block describes, as one residual engine sees them.

    Either test samples (files: the engine's cached features, residuals and maps are read)
    or in-memory images (features computed now, residuals against the engine's bank). Each
    quantity is computed at most once per instance, so several blocks on the same engine
    share it.

    Args:
        engine: a :class:`fsad.engine.ResidualEngine` (or an object with its interface).
        samples: the samples to describe; or
        images: ``(H, W, 3) uint8`` RGB images at their original resolution.
    """

    def __init__(
        self,
        engine: Any,
        samples: Sequence[Sample] | None = None,
        images: Sequence[np.ndarray] | None = None,
    ) -> None:
        if (samples is None) == (images is None):
            raise ValueError("give either samples or images")
        self.engine = engine
        self.samples = None if samples is None else list(samples)
        self._images = None if images is None else list(images)
        self._memo: dict[str, Any] = {}

    def __len__(self) -> int:
        return len(self.samples if self.samples is not None else self._images)

    def part(self, start: int, stop: int) -> Inputs:
        """The inputs ``start:stop`` on the same engine (a batch)."""
        if self.samples is not None:
            return Inputs(self.engine, samples=self.samples[start:stop])
        return Inputs(self.engine, images=self._images[start:stop])

    def on(self, engine: Any) -> Inputs:
        """The same images seen through another engine."""
        if engine is self.engine:
            return self
        if self.samples is not None:
            return Inputs(engine, samples=self.samples)
        return Inputs(engine, images=self._images)

    @property
    def in_memory(self) -> bool:
        """True for in-memory images (no files, nothing cached on disk)."""
        return self.samples is None

    def images(self) -> list[np.ndarray]:
        """The original images, ``[(H, W, 3) uint8]`` (read from the samples' files)."""
        if self._images is None:
            self._images = [read_image(s.path) for s in self.samples]
        return self._images

    def features(self) -> torch.Tensor:
        """Patch features f ``(N, D, h, w)``."""
        if "f" not in self._memo:
            if self.samples is not None:
                self._memo["f"] = self.engine.features(self.samples)
            else:
                self._memo["f"] = self.engine.features_of_images(self._images)
        return self._memo["f"]

    def residuals(self) -> torch.Tensor:
        """Residuals r = f - m* (Eq. 2), ``(N, D, h, w)``."""
        self._residuals_and_maps()
        return self._memo["r"]

    def anomaly_maps(self) -> torch.Tensor:
        """Anomaly maps ||r|| ``(N, h, w)``."""
        if self.samples is None:
            self._residuals_and_maps()
        elif "a" not in self._memo:
            self._memo["a"] = self.engine.anomaly_maps(self.samples)
        return self._memo["a"]

    def _residuals_and_maps(self) -> None:
        if "r" in self._memo:
            return
        if self.samples is not None:
            self._memo["r"] = self.engine.residuals(self.samples)
            return
        r, self._memo["a"] = self.engine.residuals_of(self.features())
        if self.engine.config.half_residuals:  # as the engine's cache stores them
            r = r.half().float()
        self._memo["r"] = r


class Block(Protocol):
    """A kind of descriptor block (see the module docstring).

    Attributes:
        namespace: disk-cache namespace of its tables.
        batch: images described per call of :meth:`describe` when a table is built.
    """

    namespace: str
    batch: int

    def table_key(self, engine: ResidualEngine) -> dict[str, Any]:
        """Everything besides the test files that determines the rows on ``engine``."""
        ...

    def describe(self, inputs: Inputs) -> torch.Tensor:
        """Rows ``(N, D)`` float32 of ``inputs`` (each block unit-norm)."""
        ...


#: block kinds by class name, for recipes stored as JSON (:func:`block_to_json`)
BLOCK_KINDS: dict[str, type] = {}


def register_block(cls: type) -> type:
    """Class decorator: make a frozen-dataclass block kind known to :func:`block_from_json`."""
    BLOCK_KINDS[cls.__name__] = cls
    return cls


def block_to_json(block: Block) -> dict[str, Any]:
    """``{"kind": class name, **settings}`` of a registered block kind (tuples as lists)."""
    kind = type(block).__name__
    if BLOCK_KINDS.get(kind) is not type(block):
        raise ConfigError(f"block kind '{kind}' is not registered (fsad.blocks.register_block)")
    return {"kind": kind, **json_fields(block)}


def block_from_json(blob: dict[str, Any]) -> Block:
    """The block :func:`block_to_json` wrote.

    Raises:
        ConfigError: an unknown kind or settings this version does not have.
    """
    fields = dict(blob)
    kind = fields.pop("kind", None)
    if kind not in BLOCK_KINDS:
        raise ConfigError(f"unknown block kind {kind!r} (known: {', '.join(BLOCK_KINDS)})")
    return from_json_fields(BLOCK_KINDS[kind], fields)


def json_fields(obj: Any) -> dict[str, Any]:
    """A dataclass's fields as JSON-able values (tuples become lists)."""
    return {
        f.name: list(v) if isinstance(v := getattr(obj, f.name), tuple) else v
        for f in dataclasses.fields(obj)
    }


def from_json_fields(cls: type, fields: dict[str, Any]) -> Any:
    """``cls(**fields)`` with lists back to tuples.

    Raises:
        ConfigError: a field ``cls`` does not have (e.g. written by another fsad version).
    """
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ConfigError(f"{cls.__name__} has no setting(s) {', '.join(unknown)}")
    return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})


def engine_key(engine: ResidualEngine) -> dict[str, Any]:
    """What determines an engine's residuals: feature and coreset settings, seed, bank files."""
    cfg = engine.config
    return {
        "engine_version": ENGINE_VERSION,
        "search_version": SEARCH_VERSION,
        "features": cfg.features.cache_key(),
        "bank": cfg.bank_key(),
        "exact": cfg.exact_search,
        "half": cfg.half_residuals,
        "seed": int(engine.seed),
        "bank_files": files_fingerprint([s.path for s in engine.category.train]),
    }


def describe_all(block: Block, inputs: Inputs) -> torch.Tensor:
    """``block.describe`` over ``inputs`` in batches of ``block.batch``, ``(N, D)``."""
    starts = range(0, len(inputs), block.batch)
    if len(starts) > 1:
        starts = progress(starts, desc=f"{block.namespace} rows", unit="batch", leave=False)
    return torch.cat([block.describe(inputs.part(start, start + block.batch)) for start in starts])


def block_table(block: Block, engine: ResidualEngine) -> dict[str, np.ndarray]:
    """Rows of ``block`` for every test image of the engine's category (cached).

    All test images are described (labels are never looked at), so any support/query split
    of them, for any shot count, indexes into one cache entry, keyed by
    ``block.table_key(engine)`` and the test files' fingerprint.

    Returns:
        ``{path: (D,) float32}``.
    """
    samples = list(engine.category.test)
    key = {**block.table_key(engine), "samples": files_fingerprint([s.path for s in samples])}

    def compute() -> dict[str, torch.Tensor]:
        return {"x": describe_all(block, Inputs(engine, samples=samples))}

    x = engine.cache.load_or_compute(block.namespace, key, compute)["x"].numpy()
    return {str(s.path): x[i] for i, s in enumerate(samples)}


def block_rows(block: Block, engine: ResidualEngine, samples: Sequence[Sample]) -> np.ndarray:
    """Rows ``(N, D)`` of ``block`` for ``samples``: from the category's cached table, and
    described directly for samples outside the category's test set."""
    table = block_table(block, engine)
    missing = [s for s in samples if str(s.path) not in table]
    if missing:
        extra = describe_all(block, Inputs(engine, samples=missing)).numpy()
        table = {**table, **{str(s.path): extra[i] for i, s in enumerate(missing)}}
    return np.stack([table[str(s.path)] for s in samples])


def require_files(inputs: Inputs, what: str) -> None:
    """Raise a clear error when a block that needs the images' files gets in-memory images.

    Raises:
        ConfigError: ``inputs`` are in-memory images.
    """
    if inputs.in_memory:
        raise ConfigError(f"{what} need the images' files, not in-memory images")
