"""The synthetic residual pool: what the few-shot pretraining (the proxy task) consumes.

For every item of a :class:`~fsad.synth.pseudo.PseudoClassDataset`, the pretraining residual
of the authors' code (notes: "Pretraining on synthetic defects"):

    r = f(synthetic image) - f(the normal image it was made from)

patch by patch, with no nearest-neighbour search. ``f`` are the engine's patch features.
Both images go through ``engine.features_of_images`` as the same ``size x size`` arrays, so
the two feature maps are aligned patch for patch (``engine.features(samples)`` would
re-read the source file with its own aspect-preserving resize, which differs from the
paper's square resize on non-square images such as MVTec 3D-AD).

The pool is cached with a key holding everything that determines it: the dataset's key
(source files, textures, generator, seed, size, n_per_class, mask and blend settings) and the
engine's feature configuration (backbone, weights file, layers, resolution, dim).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fsad.cache import DiskCache
from fsad.engine import ENGINE_VERSION, ResidualEngine
from fsad.synth.pseudo import PseudoClassDataset
from fsad.utils import progress

POOL_VERSION = 1
BATCH = 64


def engine_feature_key(engine: ResidualEngine) -> dict[str, Any]:
    """The part of an engine that determines features (not its bank or seed)."""
    return {"features": engine.config.features.cache_key(), "engine_version": ENGINE_VERSION}


def pool_key(
    engine: ResidualEngine, dataset: PseudoClassDataset, raw: bool = False
) -> dict[str, Any]:
    """Cache key of :func:`synthetic_residual_pool`."""
    return {
        "version": POOL_VERSION,
        "synth": dataset.key(),
        "engine": engine_feature_key(engine),
        "raw": bool(raw),
    }


def compute_pool(
    engine: ResidualEngine,
    dataset: PseudoClassDataset,
    batch_size: int = BATCH,
    raw: bool = False,
) -> dict[str, Any]:
    """Render every item and compute its residual, or its raw features when ``raw`` (no caching).

    Returns:
        ``residuals (K*n, D, h, w) float16``, ``labels (K*n,) int64``, ``source_index
        (K*n,) int64`` (row of ``dataset.sources``), ``classes`` (K names).
    """
    f_src = None if raw else engine.features_of_images(dataset.source_images())  # (n, D, h, w)
    chunks: list[torch.Tensor] = []
    starts = range(0, len(dataset), batch_size)
    for start in progress(starts, desc=f"{dataset.data.name} synthetic residuals", unit="batch"):
        idx = range(start, min(start + batch_size, len(dataset)))
        images = np.stack([dataset[i].image for i in idx])
        src = torch.as_tensor([dataset.source_of(i) for i in idx], dtype=torch.long)
        f_syn = engine.features_of_images(images)  # (B, D, h, w)
        if f_src is not None:
            f_syn = f_syn - f_src[src]  # r = f(synthetic) - f(source normal)
        chunks.append(f_syn.half())
    n = dataset.n_sources
    return {
        "residuals": torch.cat(chunks),
        "labels": torch.as_tensor(dataset.labels, dtype=torch.long),
        "source_index": torch.as_tensor(np.arange(len(dataset)) % n, dtype=torch.long),
        "classes": list(dataset.classes),
    }


def synthetic_residual_pool(
    engine: ResidualEngine,
    dataset: PseudoClassDataset,
    cache: DiskCache | None = None,
    dtype: torch.dtype = torch.float32,
    batch_size: int = BATCH,
    raw: bool = False,
) -> dict[str, Any]:
    """The labelled pool of synthetic residual maps for pretraining, cached on disk.

    Args:
        engine: residual engine of the dataset's category (only its features are used).
        dataset: the pseudo-class dataset (its ``len`` = K classes x n source images).
        cache: disk cache (stored as float16); None computes without storing.
        dtype: dtype of the returned residuals.
        batch_size: images per backbone pass.
        raw: return the raw features ``f(synthetic)`` instead of residuals (the paper's
            Appendix E ablation, no residual representation).

    Returns:
        dict with ``residuals`` ``(K*n, D, h, w)`` (``dtype``), ``labels`` ``(K*n,)`` int64
        indexing ``classes`` (K names), and ``source_index`` ``(K*n,)`` int64 (row of
        ``dataset.sources`` each residual was made from).
    """
    if cache is None:
        value = compute_pool(engine, dataset, batch_size, raw)
    else:
        value = cache.load_or_compute(
            "synth_pool",
            pool_key(engine, dataset, raw),
            lambda: compute_pool(engine, dataset, batch_size, raw),
        )
    return {**value, "residuals": value["residuals"].to(dtype)}
