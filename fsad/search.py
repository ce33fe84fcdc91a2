"""Exact nearest-neighbour search of a fixed memory bank on the CPU (brute force, certified).

A fast approximate pass scores every bank row m for a query q as ``||m||^2 - 2 q.m`` on
centred features (bfloat16 matrix product where the CPU has it natively, else float32),
with a rigorous bound B on its rounding error per query. Every row whose approximate score
is within 2B of the query's best approximate score is a candidate, so the true nearest
neighbour is always among them; a compiled kernel then ranks the candidates by their
direct distance ``||q - m||`` in float32 (ties: lowest bank index). The answer is exact
whatever the precision of the first pass, which only decides the speed.
"""

from __future__ import annotations

import numba
import numpy as np
import torch

from fsad.errors import ConfigError

# unit roundoff u of the approximate pass's dtype (bfloat16: 8 significant bits, u = 2^-8;
# float32 inputs are used as they are, so only their accumulation and outputs round)
_UNIT = {torch.bfloat16: 2.0**-8, torch.float32: 0.0}
_UNIT_OUT = {torch.bfloat16: 2.0**-8, torch.float32: 2.0**-24}


def error_coefficients(dtype: torch.dtype, dim: int) -> tuple[float, float]:
    """``(eps_dot, eps_out)`` of the approximate score ``||m||^2 - 2 q.m`` in ``dtype``.

    For every bank row, ``|approx - exact| <= 2 eps_dot ||q|| max||m|| + eps_out (2 max||m||^2
    + 2 ||q|| max||m||)``:

    - ``eps_dot`` bounds the relative error of ``q.m`` against ``sum |q_k m_k| <= ||q|| ||m||``:
      both inputs rounded (``(1 + u)^2 - 1 = 2u + u^2``) plus float32 accumulation of ``dim``
      terms (``dim * 2^-24``, first order, with 1 % slack);
    - ``eps_out`` is the unit roundoff of the stored values: ``||m||^2`` rounded once
      (``<= u max||m||^2``) and the output rounded once (``<= u |approx|`` with
      ``|approx| <= max||m||^2 + 2 ||q|| max||m||``), each counted in full.
    """
    u = _UNIT[dtype]
    eps_dot = 2 * u + u * u + 1.01 * dim * 2.0**-24
    return eps_dot, _UNIT_OUT[dtype]


def bf16_is_native() -> bool:
    """True where the CPU multiplies bfloat16 natively (AVX512-BF16 or AMX tiles)."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # older torch
        return False


_BLOCK = 64  # bank columns per block of the candidate scan


@numba.njit(cache=True, fastmath=True, inline="always")
def _row_sq_dist(bank: np.ndarray, j: int, q: np.ndarray) -> np.float32:
    """``||bank[j] - q||^2`` in float32 (vectorised)."""
    s = np.float32(0.0)
    for k in range(bank.shape[1]):
        t = bank[j, k] - q[k]
        s += t * t
    return s


@numba.njit(cache=True)
def _rank_candidates(
    approx: np.ndarray,
    block_min: np.ndarray,
    margin: np.ndarray,
    q: np.ndarray,
    bank: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``approx (p, M')``: the direct-distance nearest among rows within ``margin``.

    ``block_min (p, M' / _BLOCK)`` holds the minimum of each block of ``_BLOCK`` columns, so
    only blocks that can hold a candidate are scanned. Returns ``(d2 (p,), idx (p,))``:
    squared float32 distance and bank index (first minimum).
    """
    p, nb = block_min.shape
    d2 = np.empty(p, dtype=np.float32)
    idx = np.empty(p, dtype=np.int64)
    for r in range(p):
        lo = block_min[r, 0]
        for b in range(1, nb):
            lo = min(lo, block_min[r, b])
        thr = lo + margin[r]
        best, where = np.float32(np.inf), -1
        for b in range(nb):
            if block_min[r, b] > thr:
                continue
            for j in range(b * _BLOCK, (b + 1) * _BLOCK):
                if approx[r, j] <= thr:
                    s = _row_sq_dist(bank, j, q[r])
                    if s < best:
                        best, where = s, j
        d2[r], idx[r] = best, where
    return d2, idx


class ExactSearch:
    """Exact nearest-neighbour search of a fixed bank (see the module docstring).

    Args:
        bank: ``(M, D)`` bank features m.
        low_precision: bfloat16 for the approximate pass (None: where the CPU has it).
    """

    def __init__(self, bank: torch.Tensor, low_precision: bool | None = None) -> None:
        self.bank = bank.float().contiguous()
        self.centre = self.bank.mean(0)  # distances are translation invariant
        centred = self.bank - self.centre
        sq = (centred * centred).sum(1)  # (M,) ||m||^2 of the centred rows
        self.max_norm = float(sq.max().sqrt())
        use_bf16 = bf16_is_native() if low_precision is None else low_precision
        self.dtype = torch.bfloat16 if use_bf16 else torch.float32
        pad = -len(sq) % _BLOCK  # padding columns score +inf: never candidates
        self.lhs = torch.nn.functional.pad(centred.T, (0, pad)).to(self.dtype).contiguous()
        self.sq = torch.nn.functional.pad(sq, (0, pad), value=float("inf")).to(self.dtype)[None]
        self.eps_dot, self.eps_out = error_coefficients(self.dtype, self.bank.shape[1])
        self._bank_np = self.bank.numpy()

    def __call__(self, q: torch.Tensor, chunk: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
        """Nearest bank row of each query.

        Args:
            q: ``(P, D)`` queries.
            chunk: queries per approximate pass (small, so the ``(chunk, M)`` scores stay
                in cache).

        Returns:
            ``(dist (P,), idx (P,))``: direct Euclidean distance ``||q - m||`` and bank index.
        """
        q = q.float().contiguous()
        if not bool(torch.isfinite(q).all()):
            raise ConfigError("nearest-neighbour queries contain NaN or infinite values")
        dist = torch.empty(len(q), dtype=torch.float32)
        idx = torch.empty(len(q), dtype=torch.long)
        for s in range(0, len(q), chunk):
            d2, i = self._chunk(q[s : s + chunk])
            dist[s : s + chunk] = torch.from_numpy(d2).sqrt_()
            idx[s : s + chunk] = torch.from_numpy(i)
        return dist, idx

    def _chunk(self, q: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        qc = q - self.centre
        # approximate ||m||^2 - 2 q.m (+ ||q||^2 = squared distance), in the pass's dtype
        approx = torch.addmm(self.sq, qc.to(self.dtype), self.lhs, alpha=-2.0).float()
        qn, mx = qc.norm(dim=1), self.max_norm
        bound = 2 * self.eps_dot * qn * mx + self.eps_out * (2 * mx * mx + 2 * qn * mx)
        # the true neighbour scores at most 2B above the best approximate score; the extra
        # relative term covers the float32 rounding of the comparison itself
        margin = 2 * bound * (1 + 2.0**-10) + 1e-6 * (mx * mx + 2 * qn * mx)
        block_min = approx.view(len(q), -1, _BLOCK).amin(2)
        return _rank_candidates(
            approx.numpy(), block_min.numpy(), margin.numpy(), q.numpy(), self._bank_np
        )
