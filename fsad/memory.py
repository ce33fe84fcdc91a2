"""PatchCore memory bank: nearest-neighbour search over a coreset, residuals (Eq. 2).

The coreset itself is in :mod:`fsad.coreset` (re-exported here). Exact search
(:class:`ExactSearch`) is a torch matrix product per chunk of queries, in bfloat16 where the
CPU has it, with a rigorous error bound that selects the candidates, then the direct
distance ranks them: the neighbour is exact, and on a 2-core CPU it is several times faster
than faiss ``IndexFlatL2``. Approximate search (HNSW) uses faiss.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fsad.coreset import (  # noqa: F401  (re-exported: the bank's public API)
    CORESET_VERSION,
    greedy_coreset,
    greedy_coreset_reference,
    n_coreset,
)
from fsad.errors import ConfigError
from fsad.search import ExactSearch

# bump when exact search can return other neighbours (residual cache keys include it);
# 2: torch matrix product + re-rank (1 was faiss IndexFlatL2)
SEARCH_VERSION = 2


class MemoryBank:
    """A coreset of normal patch features with nearest-neighbour search.

    Args:
        features: ``(M, D)`` bank features m.
        exact: exact search (:class:`ExactSearch`); False uses faiss HNSW (approximate).
    """

    def __init__(self, features: torch.Tensor, exact: bool = True) -> None:
        if features.ndim != 2 or len(features) == 0:
            raise ConfigError(f"memory bank needs (M, D) features, got {tuple(features.shape)}")
        self.features = features.float().contiguous().cpu()
        self.exact = bool(exact)
        self._index: Any = None
        self._exact: ExactSearch | None = None

    def __len__(self) -> int:
        return len(self.features)

    @property
    def dim(self) -> int:
        return int(self.features.shape[1])

    def _faiss_index(self) -> Any:
        if self._index is None:
            import faiss

            index = faiss.IndexHNSWFlat(self.dim, 32)
            index.add(self.features.numpy())
            self._index = index
        return self._index

    def search(self, q: torch.Tensor, chunk: int = 65536) -> tuple[torch.Tensor, torch.Tensor]:
        """The nearest bank feature of each query.

        Args:
            q: ``(P, D)`` queries.

        Returns:
            ``(dist (P, 1), idx (P, 1))``: Euclidean distances (float32) and bank indices.
        """
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ConfigError(f"queries must be (P, {self.dim}), got {tuple(q.shape)}")
        q = q.float().contiguous().cpu()
        if self.exact:
            if self._exact is None:
                self._exact = ExactSearch(self.features)
            d, i = self._exact(q)
            return d[:, None], i[:, None]
        index = self._faiss_index()
        qn = q.numpy()
        dists, idxs = [], []
        for start in range(0, len(qn), chunk):
            d, i = index.search(qn[start : start + chunk], 1)
            dists.append(d)
            idxs.append(i)
        d = torch.from_numpy(np.concatenate(dists)).clamp_min_(0).sqrt_()
        return d, torch.from_numpy(np.concatenate(idxs)).long()

    def nearest(self, q: torch.Tensor) -> torch.Tensor:
        """The nearest bank feature m* of each query ``(P, D)``: ``(P, D)``."""
        _, idx = self.search(q)
        return self.features[idx[:, 0]]

    def to_dict(self) -> dict[str, Any]:
        return {"features": self.features, "exact": self.exact}


def build_bank(
    features: torch.Tensor,
    ratio: float = 0.1,
    seed: int = 1,
    exact: bool = True,
) -> tuple[MemoryBank, torch.Tensor]:
    """Coreset memory bank of normal patch features.

    Args:
        features: ``(N, D, h, w)`` patch features of normal images, or ``(P, D)`` patches.

    Returns:
        the bank and the ``(M,)`` selected patch indices (into the flattened patches).
    """
    patches = flatten_patches(features)
    if ratio >= 1:
        idx = torch.arange(len(patches))
    else:
        idx = greedy_coreset(patches, ratio, seed)
    return MemoryBank(patches[idx], exact=exact), idx


def flatten_patches(f: torch.Tensor) -> torch.Tensor:
    """``(N, D, h, w) -> (N * h * w, D)`` (image-major, then row, then column); 2-D passes."""
    if f.ndim == 2:
        return f
    if f.ndim != 4:
        raise ConfigError(f"expected (N, D, h, w) features, got {tuple(f.shape)}")
    return f.permute(0, 2, 3, 1).reshape(-1, f.shape[1])


def residuals(
    f: torch.Tensor, bank: MemoryBank, batch: int = 16
) -> tuple[torch.Tensor, torch.Tensor]:
    """Residual features r = f - m* (Eq. 2) and the anomaly map ||r|| per patch.

    Args:
        f: ``(N, D, h, w)`` patch features.
        bank: memory bank of normal features.

    Returns:
        ``(r (N, D, h, w), amap (N, h, w))`` float32.
    """
    n, d, h, w = f.shape
    r = torch.empty((n, d, h, w), dtype=torch.float32)
    for start in range(0, n, batch):
        fb = f[start : start + batch].float()
        q = flatten_patches(fb)
        m_star = bank.nearest(q)  # m*: nearest normal patch feature
        rb = (q - m_star).reshape(len(fb), h, w, d).permute(0, 3, 1, 2)
        r[start : start + batch] = rb
    return r, r.norm(dim=1)
