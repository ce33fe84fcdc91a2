"""PatchCore memory bank: greedy coreset, nearest-neighbour search, residuals (Eq. 2).

The coreset is PatchCore's *approximate greedy coreset*: patch features are mapped by a
seeded random linear projection to ``proj_dim`` dimensions, the running minimum distances
start as the mean distance to ``n_starts`` random points, and k-center greedy then picks the
point farthest from the selection, ``M = ratio * N`` times.

:func:`greedy_coreset` returns *exactly* the selection of the plain loop
:func:`greedy_coreset_reference` (same projection, same start, same tie-break) but skips most
of the distance updates: the projected points are partitioned once into small balanced blocks
(a median-split tree), each with a centre and radius; a new centre c can only lower the
minimum distances inside block b if ``dist(c, centre_b) - radius_b`` is below the block's
current largest minimum distance (triangle inequality), so only those blocks are updated, and
the argmax is taken over per-block maxima.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from fsad.errors import ConfigError

# relative slack on block radii so that float rounding can never prune a needed update
_RADIUS_SLACK = 1e-4


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


def sq_dist(rows: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Squared Euclidean distances of ``rows (P, d)`` to one point ``c (d,)``: ``(P,)``.

    Written as ``sum((x - c)^2)`` row by row, so a row's value does not depend on which other
    rows are in the batch (the fast coreset relies on this to match the reference bitwise).
    """
    diff = rows - c
    return (diff * diff).sum(dim=1)


def start_distances(z: torch.Tensor, n_starts: int = 10, seed: int = 1) -> torch.Tensor:
    """Initial squared min-distances: (mean distance to ``n_starts`` random points)^2, ``(N,)``."""
    rng = np.random.default_rng(int(seed))
    starts = rng.choice(len(z), size=min(n_starts, len(z)), replace=False)
    acc = torch.zeros(len(z), dtype=z.dtype)
    for s in starts:
        acc += sq_dist(z, z[int(s)]).sqrt()
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
    z = project(x, proj_dim, seed)
    dmin = start_distances(z, n_starts, seed)
    out = []
    for _ in range(n_coreset(len(z), ratio)):
        i = int(torch.argmax(dmin))  # first index among ties
        out.append(i)
        dmin = torch.minimum(dmin, sq_dist(z, z[i]))
    return torch.tensor(out, dtype=torch.long)


def _balanced_blocks(z: torch.Tensor, leaf: int, seed: int) -> list[np.ndarray]:
    """Split point indices by median cuts along far-point directions into leaves <= ``leaf``."""
    rng = np.random.default_rng(seed)
    zn = z.numpy()
    todo, leaves = [np.arange(len(z))], []
    while todo:
        idx = todo.pop()
        if len(idx) <= leaf:
            leaves.append(idx)
            continue
        pts = zn[idx]
        a = pts[rng.integers(len(idx))]
        b = pts[np.argmax(((pts - a) ** 2).sum(1))]
        c = pts[np.argmax(((pts - b) ** 2).sum(1))]
        proj = pts @ (b - c)
        order = np.argpartition(proj, len(idx) // 2)
        todo += [idx[order[: len(idx) // 2]], idx[order[len(idx) // 2 :]]]
    return leaves


def greedy_coreset(
    x: torch.Tensor,
    ratio: float = 0.1,
    seed: int = 1,
    proj_dim: int = 128,
    n_starts: int = 10,
    leaf: int = 64,
) -> torch.Tensor:
    """Approximate greedy coreset with block pruning; same selection as the reference.

    Args:
        x: ``(N, D)`` features.
        ratio, seed, proj_dim, n_starts: as :func:`greedy_coreset_reference`.
        leaf: points per block (speed only; the selection does not depend on it).

    Returns:
        ``(M,)`` int64 indices into ``x`` in selection order.
    """
    z = project(x, proj_dim, seed)
    n, d = z.shape
    m = n_coreset(n, ratio)
    dmin = start_distances(z, n_starts, seed)
    leaves = _balanced_blocks(z, leaf, seed)
    k = len(leaves)
    s = max(len(b) for b in leaves)
    # Blocked layout: zb (K, S, d), padded rows are copies of a real row with dmin = -inf.
    order = np.full((k, s), -1, dtype=np.int64)
    for b, idx in enumerate(leaves):
        order[b, : len(idx)] = idx
    pad = order < 0
    gather = torch.from_numpy(np.where(pad, order[:, :1], order))
    zb = z[gather]  # (K, S, d)
    db = dmin[gather]
    db[torch.from_numpy(pad)] = -math.inf
    orig = torch.from_numpy(np.where(pad, n, order))  # original index; pads sort last
    centre = torch.stack([z[torch.from_numpy(idx)].mean(0) for idx in leaves])
    radius = torch.stack(
        [sq_dist(z[torch.from_numpy(idx)], centre[b]).max().sqrt() for b, idx in enumerate(leaves)]
    )
    radius = radius * (1 + _RADIUS_SLACK) + _RADIUS_SLACK
    bmax = db.max(dim=1).values  # (K,) largest min-distance per block
    out = torch.empty(m, dtype=torch.long)
    for t in range(m):
        top = bmax.max()
        blocks = (bmax == top).nonzero()[:, 0]
        if len(blocks) == 1:
            b = int(blocks[0])
            j = int(torch.argmax(db[b]))  # first max in the block; ties resolved below
            cand = orig[b][db[b] == top]
            i = int(cand.min()) if len(cand) > 1 else int(orig[b, j])
        else:
            cand = orig[blocks][db[blocks] == top]
            i = int(cand.min())
        out[t] = i
        c = z[i]
        # lower bound of dist(c, x) for x in block b: dist(c, centre_b) - radius_b
        lb = (sq_dist(centre, c).sqrt() - radius).clamp_min(0.0)
        upd = (lb * lb < bmax).nonzero()[:, 0]
        if len(upd) == 0:
            continue
        new = torch.minimum(db[upd], sq_dist(zb[upd].reshape(-1, d), c).reshape(len(upd), s))
        db[upd] = new
        bmax[upd] = new.max(dim=1).values
    return out


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
