"""PatchCore's approximate greedy coreset (k-center greedy on randomly projected features).

Patch features are mapped by a seeded random linear projection to ``proj_dim`` dimensions,
the running minimum distances start as the mean distance to ``n_starts`` random points, and
k-center greedy then picks the point farthest from the selection, ``M = ratio * N`` times.

:func:`greedy_coreset` returns *exactly* the selection of the plain loop
:func:`greedy_coreset_reference`: both use one compiled distance function
(:func:`sq_dist`, a fixed summation order), the same start and the same tie-break (first
index). The fast version skips most distance updates with the triangle inequality: a new
centre c can only lower the min-distance d(x) of a point x whose current nearest centre
a(x) satisfies dist(c, a(x)) < 2 d(x) (Gonzalez's bound). Centre-to-centre distances for
that test come from one matrix-vector product per step, lowered by a margin far above its
float32 rounding error, so the test never skips a needed update. The per-point loop
(test, then the distances of the points that pass, then update and argmax) is three small
numba kernels.
"""

from __future__ import annotations

import math

import numba
import numpy as np
import torch

from fsad.errors import ConfigError
from fsad.utils import progress

# bump when the selection can change (cache keys of banks include it); 2: compiled fixed-order
# distances (version 1 summed with numpy, whose rounding can reorder near-tied picks)
CORESET_VERSION = 2

# relative slack on the pruning bound, and the relative margin subtracted from the
# centre-to-centre distances computed as ||a||^2 + ||c||^2 - 2 a.c in float32 (worst-case
# rounding error of a 128-term dot product is below 4e-6 * (||a||^2 + ||c||^2))
_SLACK = 1e-4
_CC_MARGIN = 1e-4


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


@numba.njit(cache=True, fastmath=True)
def _dist_rows(z: np.ndarray, rows: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``||z[rows[k]] - c||^2`` for every k, ``(len(rows),)`` float32 (vectorised).

    The one distance function of the coreset: the reference and the pruned version both
    reach it only from Python, so every distance comes from the same machine code and the
    same summation order, and the two selections agree bit for bit.
    """
    out = np.empty(len(rows), dtype=np.float32)
    for k in range(len(rows)):
        x = rows[k]
        s = np.float32(0.0)
        for j in range(z.shape[1]):
            t = z[x, j] - c[j]
            s += t * t
        out[k] = s
    return out


def sq_dist(rows: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances of ``rows (P, d)`` to one point ``c (d,)``: ``(P,)`` float32."""
    rows = np.ascontiguousarray(rows, dtype=np.float32)
    c = np.ascontiguousarray(c, dtype=np.float32)
    return _dist_rows(rows, np.arange(len(rows), dtype=np.int64), c)


@numba.njit(cache=True)
def _candidates(dmin: np.ndarray, assign: np.ndarray, cc: np.ndarray, limit: float) -> np.ndarray:
    """Points whose min-distance the new centre may lower (Gonzalez's test), ``(K,)`` int64.

    ``assign[x] = -1`` means x has no centre yet (always a candidate); otherwise x is one
    only if ``cc[assign[x]] < limit * dmin[x]``.
    """
    out = np.empty(len(dmin), dtype=np.int64)
    k = 0
    for x in range(len(dmin)):
        a = assign[x]
        if a < 0 or cc[a] < limit * dmin[x]:
            out[k] = x
            k += 1
    return out[:k]


@numba.njit(cache=True)
def _apply(rows: np.ndarray, dd: np.ndarray, t: int, dmin: np.ndarray, assign: np.ndarray) -> None:
    """Lower ``dmin`` (and reassign) where the new centre ``t`` is nearer."""
    for k in range(len(rows)):
        x = rows[k]
        if dd[k] < dmin[x]:
            dmin[x] = dd[k]
            assign[x] = t


def start_distances(z: np.ndarray, n_starts: int = 10, seed: int = 1) -> np.ndarray:
    """Initial squared min-distances: (mean distance to ``n_starts`` random points)^2, ``(N,)``."""
    rng = np.random.default_rng(int(seed))
    starts = rng.choice(len(z), size=min(n_starts, len(z)), replace=False)
    acc = np.zeros(len(z), dtype=np.float32)
    for s in starts:
        acc += np.sqrt(sq_dist(z, z[int(s)]))
    return (acc / np.float32(len(starts))) ** 2


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

    Each point remembers its nearest selected centre a(x) and d(x) = dist(x, a(x))^2. Step
    t computes the new centre's squared distance to the previous centres (one mat-vec,
    lowered by a safety margin) and the exact distance only for the points whose centre
    passes Gonzalez's test (a few percent of them once the selection has grown).

    Args / Returns: as :func:`greedy_coreset_reference`.
    """
    z = project(x, proj_dim, seed).numpy()
    n, d = z.shape
    m = n_coreset(n, ratio)
    dmin = start_distances(z, n_starts, seed)
    norms = np.einsum("ij,ij->i", z, z)  # ||z||^2, only for the pruning bound
    centres = np.empty((m, d), dtype=np.float32)
    cc = np.empty(m, dtype=np.float32)
    cn = np.empty(m, dtype=np.float32)  # ||centre||^2
    assign = np.full(n, -1, dtype=np.int32)
    limit = 4.0 * (1.0 + _SLACK)  # dist(c, a) < 2 sqrt(d)  <=>  dist^2 < 4 d
    out = np.empty(m, dtype=np.int64)
    i = int(np.argmax(dmin))
    for t in progress(range(m), desc=f"coreset {m}/{n} patches", unit="pick", leave=False):
        out[t] = i
        centres[t], cn[t] = z[i], norms[i]
        if t:  # squared distances of the new centre to the previous ones, lowered safely
            s = cn[:t] + norms[i]
            cc[:t] = s - 2.0 * (centres[:t] @ z[i]) - _CC_MARGIN * s
        rows = _candidates(dmin, assign, cc, limit) if t else np.arange(n, dtype=np.int64)
        _apply(rows, _dist_rows(z, rows, z[i]), t, dmin, assign)
        i = int(np.argmax(dmin))  # first index among ties (numpy's is vectorised)
    return torch.from_numpy(out)
