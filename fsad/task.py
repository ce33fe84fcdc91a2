"""A few-shot task as a method sees it: support with labels, query without labels."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fsad.data import CategoryData, Sample
from fsad.engine import ResidualEngine


@dataclass
class FewShotTask:
    """Everything a method may use to classify the query images of one n-shot task.

    Query labels are deliberately absent: the grid runner keeps them and scores the
    predictions, so no method can tune on them.

    Attributes:
        dataset: dataset layout name (``"mvtec_ad"``, ``"mvtec_3d"``, ``"folder"``).
        category: the category's samples (train normals for the bank, test images).
        shots: n, support images per class.
        seed: run seed (coreset, synthetic draws, network initialisation).
        classes: class names; labels index into it.
        support: ``C * n`` support samples; ``support_labels`` ``(S,)`` int64.
        query: query samples ``(Q,)``, labels withheld.
        engine: the PatchCore residual engine of this (category, seed), cached on disk.
        options: method options from the run configuration (JSON-able).
        textures: texture source for synthetic pretraining classes (DTD root or None for the
            procedural bank).
    """

    dataset: str
    category: CategoryData
    shots: int
    seed: int
    classes: list[str]
    support: list[Sample]
    support_labels: np.ndarray
    query: list[Sample]
    engine: ResidualEngine
    options: dict[str, Any] = field(default_factory=dict)
    textures: str | None = None

    @property
    def n_classes(self) -> int:
        return len(self.classes)


@dataclass
class Prediction:
    """A method's answer for the query set.

    Attributes:
        labels: predicted class index per query ``(Q,)`` int64.
        scores: optional class scores ``(Q, C)`` (higher = more likely).
        info: optional JSON-able facts about the run (pretraining episodes, losses, ...).
    """

    labels: np.ndarray
    scores: np.ndarray | None = None
    info: dict[str, Any] = field(default_factory=dict)
