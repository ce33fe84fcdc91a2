"""Sanity baselines: methods every real method must beat."""

from __future__ import annotations

import zlib

import numpy as np

from fsad.methods import register
from fsad.task import FewShotTask, Prediction


@register("random", "uniform random class per query (seeded): the chance-level sanity check")
def random_guess(task: FewShotTask) -> Prediction:
    """Draw one class uniformly at random for every query image.

    Uses no images and no engine, so it runs instantly; its expected accuracy is
    ``1 / C`` whatever the class balance. The draw depends only on the task's seed, shots and
    category, so the same task always gets the same guesses.

    Returns:
        Prediction with ``labels`` ``(Q,)`` int64 and uniform ``scores`` ``(Q, C)``.
    """
    q, c = len(task.query), task.n_classes
    salt = zlib.crc32(task.category.name.encode("utf-8"))
    rng = np.random.default_rng([task.seed, task.shots, salt])
    labels = rng.integers(0, c, size=q, dtype=np.int64)
    return Prediction(labels=labels, scores=np.full((q, c), 1.0 / c), info={})
