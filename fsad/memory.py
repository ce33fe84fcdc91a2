"""PatchCore memory bank: greedy coreset, nearest-neighbour search, residuals (Eq. 2).

The coreset is PatchCore's *approximate greedy coreset*: patch features are mapped by a
seeded random linear projection to ``proj_dim`` dimensions, the running minimum distances
start as the mean distance to ``n_starts`` random points, and k-center greedy then picks the
point farthest from the selection, ``M = ratio * N`` times.

:func:`greedy_coreset` returns *exactly* the selection of the plain loop
:func:`greedy_coreset_reference` (same projection, start, distances and tie-break) but skips
most distance updates with the triangle inequality: a new centre c can only lower the
min-distance d(x) of a point x whose current nearest centre a(x) satisfies
dist(c, a(x)) < 2 d(x) (Gonzalez's bound), so only those points are updated.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from fsad.errors import ConfigError

# relative slack on the pruning bound so that float rounding can never skip a needed update
_SLACK = 1e-4


def n_coreset(n: int, ratio: float) -> int:
    """Number of points a coreset of ``ratio`` keeps out of ``n`` (at least 1)."""
    if not 0 < ratio <= 1:
        raise ConfigError(f"coreset ratio must be in (0, 1], got {ratio}")
    return max(1, min(n, int(n * ratio)))


def project(x: torch.Tensor, proj_dim: int = 128, seed: int = 1) -> torch.Tensor:
    """Seeded random linear projection ``(N, D) -> (N, proj_dim)`` (identity if D <= proj_dim).

    Gaussian entries scaled by ``1 / sqrt(proj_dim)`` (Johnson-Lindenstrauss), float32.
    """
    x = x.float()
    if proj_dim <= 0 or x.shape[1] <= proj_dim:
        return x.contiguous()
    gen = torch.Generator().manual_seed(int(seed))
    w = torch.randn(x.shape[1], proj_dim, generator=gen) / math.sqrt(proj_dim)
    return (x @ w).contiguous()


def sq_dist(rows: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances of ``rows (P, d)`` to one point ``c (d,)``: ``(P,)``.

    Computed row by row as ``sum((x - c)^2)``, so a row's value does not depend on which
    other rows are in the batch: the pruned coreset relies on this to match the reference
    bit for bit.
    """
    diff = rows - c
    return np.einsum("ij,ij->i", diff, diff)


def start_distances(z: np.ndarray, n_starts: int = 10, seed: int = 1) -> np.ndarray:
    """Initial squared min-distances: (mean distance to ``n_starts`` random points)^2, ``(N,)``."""
    rng = np.random.default_rng(int(seed))
    starts = rng.choice(len(z), size=min(n_starts, len(z)), replace=False)
    acc = np.zeros(len(z), dtype=z.dtype)
    for s in starts:
        acc += np.sqrt(sq_dist(z, z[int(s)]))
    return (acc / len(starts)) ** 2


def greedy_coreset_reference(
    x: torch.Tensor, ratio: float = 0.1, seed: int = 1, proj_dim: int = 128, n_starts: int = 10
) -> torch.Tensor:
    """Approximate greedy coreset, the plain way: one full distance pass per selected point.

    Args:
        x: ``(N, D)`` features.
        ratio: fraction of points kept.
        seed: seeds the projection and the start points.
        proj_dim: random projection dimension (PatchCore: 128).
        n_starts: random points whose mean distance initialises the min-distances.

    Returns:
        ``(M,)`` int64 indices into ``x`` in selection order.
    """
    z = project(x, proj_dim, seed).numpy()
    dmin = start_distances(z, n_starts, seed)
    out = []
    for _ in range(n_coreset(len(z), ratio)):
        i = int(np.argmax(dmin))  # first index among ties
        out.append(i)
        np.minimum(dmin, sq_dist(z, z[i]), out=dmin)
    return torch.tensor(out, dtype=torch.long)


def greedy_coreset(
    x: torch.Tensor, ratio: float = 0.1, seed: int = 1, proj_dim: int = 128, n_starts: int = 10
) -> torch.Tensor:
    """Approximate greedy coreset pruned by the triangle inequality; same selection as the reference.

    Each point remembers its nearest selected centre a(x) and d(x) = dist(x, a(x)). A new
    centre c can only lower d(x) if dist(c, a(x)) < 2 d(x), so each step computes c's
    distance to the previous centres and the full distance only for the points that pass
    this test (a few percent of them on real patch features). Points still at their start
    distance have no centre and are always checked. Argmax, distances and tie-break (first
    index) are those of :func:`greedy_coreset_reference`, so the selection is identical.

    Args / Returns: as :func:`greedy_coreset_reference`.
    """
    z = project(x, proj_dim, seed).numpy()
    n, d = z.shape
    m = n_coreset(n, ratio)
    dmin = start_distances(z, n_starts, seed)
    centres = np.empty((m, d), dtype=z.dtype)
    # cc[j] = squared distance of the new centre to centre j; cc[m] = -inf means "no centre yet"
    cc = np.full(m + 1, -np.inf, dtype=z.dtype)
    assign = np.full(n, m, dtype=np.int32)
    limit = np.float32(4.0 * (1.0 + _SLACK))  # dist(c, a) < 2 d  <=>  dist^2 < 4 d^2
    out = np.empty(m, dtype=np.int64)
    for t in range(m):
        i = int(np.argmax(dmin))  # first index among ties, as the reference
        out[t] = i
        c = z[i]
        if t:
            cc[:t] = sq_dist(centres[:t], c)
        centres[t] = c
        idx = np.flatnonzero(cc[assign] < limit * dmin)
        dd = sq_dist(z[idx], c)
        better = dd < dmin[idx]
        sel = idx[better]
        dmin[sel] = dd[better]
        assign[sel] = t
    return torch.from_numpy(out)


class MemoryBank:
    """A coreset of normal patch features with faiss nearest-neighbour search.

    Args:
        features: ``(M, D)`` bank features m.
        exact: exact L2 search (faiss ``IndexFlatL2``); False uses HNSW (approximate).
    """

    def __init__(self, features: torch.Tensor, exact: bool = True) -> None:
        if features.ndim != 2 or len(features) == 0:
            raise ConfigError(f"memory bank needs (M, D) features, got {tuple(features.shape)}")
        self.features = features.float().contiguous().cpu()
        self.exact = bool(exact)
        self._index: Any = None

    def __len__(self) -> int:
        return len(self.features)

    @property
    def dim(self) -> int:
        return int(self.features.shape[1])

    def _faiss_index(self) -> Any:
        if self._index is None:
            import faiss

            index = faiss.IndexFlatL2(self.dim) if self.exact else faiss.IndexHNSWFlat(self.dim, 32)
            index.add(self.features.numpy())
            self._index = index
        return self._index

    def search(
        self, q: torch.Tensor, k: int = 1, chunk: int = 65536
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """k nearest bank features of each query.

        Args:
            q: ``(P, D)`` queries.

        Returns:
            ``(dist (P, k), idx (P, k))``: Euclidean distances (float32) and bank indices.
        """
        if q.ndim != 2 or q.shape[1] != self.dim:
            raise ConfigError(f"queries must be (P, {self.dim}), got {tuple(q.shape)}")
        index = self._faiss_index()
        q = q.float().contiguous().cpu().numpy()
        dists, idxs = [], []
        for start in range(0, len(q), chunk):
            d, i = index.search(q[start : start + chunk], k)
            dists.append(d)
            idxs.append(i)
        d = torch.from_numpy(np.concatenate(dists)).clamp_min_(0).sqrt_()
        return d, torch.from_numpy(np.concatenate(idxs)).long()

    def nearest(self, q: torch.Tensor) -> torch.Tensor:
        """The nearest bank feature m* of each query ``(P, D)``: ``(P, D)``."""
        _, idx = self.search(q, 1)
        return self.features[idx[:, 0]]

    def to_dict(self) -> dict[str, Any]:
        return {"features": self.features, "exact": self.exact}

    @classmethod
    def from_dict(cls, blob: dict[str, Any]) -> MemoryBank:
        return cls(blob["features"], exact=bool(blob.get("exact", True)))


def build_bank(
    features: torch.Tensor,
    ratio: float = 0.1,
    seed: int = 1,
    proj_dim: int = 128,
    n_starts: int = 10,
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
        idx = greedy_coreset(patches, ratio, seed, proj_dim, n_starts)
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


def source_residuals(f: torch.Tensor, f_source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Residuals of synthetic images against their own normal source image (pretraining).

    r = f(synthetic) - f(source), no nearest-neighbour search (official implementation).

    Args:
        f, f_source: ``(N, D, h, w)`` features of the synthetic images and of their sources.

    Returns:
        ``(r (N, D, h, w), amap (N, h, w))``.
    """
    if f.shape != f_source.shape:
        raise ConfigError(f"feature shapes differ: {tuple(f.shape)} vs {tuple(f_source.shape)}")
    r = f.float() - f_source.float()
    return r, r.norm(dim=1)
