"""The normal-vs-defect threshold on the anomaly score, from leave-out scores.

The normal images are split into ``folds`` folds; each fold is scored against the fitted
coreset bank with the members taken from that fold's own images removed, and the threshold
is the ``quantile`` (``method="higher"``: an observed score) of those scores. Removing a
fold's members keeps the coreset density of the other images (a fresh coreset per fold would
cost ``folds`` more coreset runs for nearly the same numbers); since the bank is then ~10 %
smaller than the full one, leave-out scores are slightly above what new normal images score,
so the threshold leans towards calling borderline images normal.
"""

from __future__ import annotations

import numpy as np
import torch

from fsad.memory import MemoryBank, residuals


def member_images(bank_indices: torch.Tensor, f: torch.Tensor, per_image: int = 1) -> torch.Tensor:
    """Source image index ``(M,)`` of each bank member.

    Args:
        bank_indices: ``(M,)`` index of each member among the flattened patches the bank
            was drawn from: ``per_image`` images per normal image, in the order of ``f``
            (:meth:`fsad.engine.ResidualEngine.bank_features`; a relit bank's copy of an
            image counts as that image, so leaving the image out leaves its copy out too).
        f: ``(N, D, h, w)`` the normal patch features.
    """
    return bank_indices // (f.shape[2] * f.shape[3] * per_image)


def leave_out_scores(
    f: torch.Tensor, bank: MemoryBank, members: torch.Tensor, folds: int, seed: int
) -> np.ndarray:
    """Anomaly score of every normal image against the bank without its fold's members.

    Args:
        f: ``(N, D, h, w)`` normal patch features, ``N >= 2``.
        bank: the coreset bank built from ``f``.
        members: ``(M,)`` source image index of each bank member (:func:`member_images`).
        folds: number of folds (at most N are used).
        seed: seeds the fold assignment.

    Returns:
        ``(N,)`` scores (max patch distance), in the order of ``f``.
    """
    n = len(f)
    perm = np.random.default_rng(seed).permutation(n)
    scores = np.zeros(n)
    for fold in np.array_split(perm, min(folds, n)):
        keep = ~torch.isin(members, torch.from_numpy(fold))
        if not bool(keep.any()):  # every member came from this fold (tiny inputs)
            keep = torch.ones_like(keep)
        _, amap = residuals(f[torch.from_numpy(fold)], MemoryBank(bank.features[keep]))
        scores[fold] = amap.amax((1, 2)).numpy()
    return scores


def anomaly_threshold(scores: np.ndarray, quantile: float) -> float:
    """The ``quantile`` of the leave-out ``scores`` ``(N,)``: an observed score."""
    return float(np.quantile(scores, quantile, method="higher"))


def score_summary(scores: np.ndarray) -> dict[str, float]:
    """``{"min", "median", "max"}`` of leave-out ``scores`` ``(N,)`` (stored in the model)."""
    return {
        "min": float(scores.min()),
        "median": float(np.median(scores)),
        "max": float(scores.max()),
    }
