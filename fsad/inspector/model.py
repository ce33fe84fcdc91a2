"""The fitted inspector as data (:class:`FittedModel`) and its model folder.

A model folder (:mod:`fsad.artifact`: JSON manifest + safetensors, no pickle) holds the
normal bank (``bank.safetensors``), the support descriptors and labels
(``support.safetensors``) and as JSON the config, the classifier recipe, class and support
names, threshold, temperature, heat-map range, weights path and fit facts. Loading checks
that the backbone weights on this machine are the ones the model was fitted with.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fsad.artifact import Artifact, ModelError, load_artifact, save_artifact
from fsad.errors import ConfigError
from fsad.features import resolve_weights
from fsad.inspector.classifier import Classifier
from fsad.inspector.config import InspectorConfig
from fsad.memory import MemoryBank


@dataclass
class FittedModel:
    """Everything a fitted inspector knows.

    Attributes:
        config: the fit configuration.
        classifier: descriptor recipe + head.
        classes: the C defect types (natural order of the support folders).
        bank: the normal coreset memory bank ``(M, D)``.
        support: ``(S, D')`` float64 support descriptors.
        support_labels: ``(S,)`` int64 class index of each support descriptor.
        support_names: ``(S,)`` support file names.
        threshold: normal-vs-defect threshold on the anomaly score.
        temperature: softmax temperature of a similarity head.
        map_range: anomaly values shown coldest and hottest in heat maps.
        info: JSON-able facts of the fit (counts, leave-out score summary, ...).
        weights: local backbone weights file (None: packaged weights).
    """

    config: InspectorConfig
    classifier: Classifier
    classes: list[str]
    bank: MemoryBank
    support: np.ndarray
    support_labels: np.ndarray
    support_names: list[str]
    threshold: float
    temperature: float
    map_range: tuple[float, float]
    info: dict[str, Any] = field(default_factory=dict)
    weights: str | None = None

    def __post_init__(self) -> None:
        self.support = np.asarray(self.support, dtype=np.float64)
        self.support_labels = np.asarray(self.support_labels, dtype=np.int64)
        self.threshold = float(self.threshold)
        self.temperature = float(self.temperature)
        self.map_range = (float(self.map_range[0]), float(self.map_range[1]))


def weights_digest(config: InspectorConfig, weights: str | None) -> str:
    """SHA-256 of the backbone weights file the features come from."""
    path = resolve_weights(config.backbone, weights)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_model(path: str | os.PathLike, model: FittedModel) -> Path:
    """Write ``model`` as a model folder at ``path``, atomically; returns its path."""
    cfg = asdict(model.config)
    cfg["layers"] = list(model.config.layers)
    meta = {
        "kind": "inspector",
        "config": cfg,
        "method": model.classifier.name,
        "classifier": model.classifier.to_json(),
        "classes": model.classes,
        "support_names": model.support_names,
        "threshold": model.threshold,
        "temperature": model.temperature,
        "map_range": list(model.map_range),
        "weights": model.weights,
        "info": model.info,
    }
    tensors = {
        "bank": {"features": model.bank.features},
        "support": {
            "descriptors": torch.from_numpy(model.support.astype(np.float32)),
            "labels": torch.from_numpy(model.support_labels),
        },
    }
    return save_artifact(path, Artifact(meta=meta, tensors=tensors))


def _from_artifact(art: Artifact) -> FittedModel:
    """The model held by a loaded artifact.

    Raises:
        KeyError, TypeError, ValueError: missing or inconsistent fields.
        ConfigError: a config or classifier this library cannot use.
    """
    meta = art.meta
    if meta.get("kind") != "inspector":
        raise KeyError("kind")
    config = InspectorConfig(**{"framing": "crop", **meta["config"]})  # older models: crop
    bank = art.tensors["bank"]["features"]
    support = art.tensors["support"]["descriptors"].double().numpy()
    labels = art.tensors["support"]["labels"].long().numpy()
    classes = list(meta["classes"])
    ok = len(labels) == len(support) == len(meta["support_names"]) and (
        labels.min() >= 0 and labels.max() < len(classes)
    )
    if not ok or bank.ndim != 2 or bank.shape[1] != config.dim:
        raise ValueError("tensor shapes do not match the metadata")
    return FittedModel(
        config=config,
        classifier=Classifier.from_json(meta["classifier"]),
        classes=classes,
        bank=MemoryBank(bank),
        support=support,
        support_labels=labels,
        support_names=list(meta["support_names"]),
        threshold=float(meta["threshold"]),
        temperature=float(meta["temperature"]),
        map_range=tuple(meta["map_range"]),
        info=dict(meta.get("info", {})),
        weights=meta.get("weights"),
    )


def load_model(path: str | os.PathLike) -> FittedModel:
    """Load a model folder written by :func:`save_model`.

    Raises:
        ModelError: missing, incompatible, tampered or inconsistent model, or backbone
            weights on this machine that differ from those it was fitted with.
    """
    art = load_artifact(path)
    try:
        model = _from_artifact(art)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"model folder is inconsistent ({exc}): {path}") from exc
    except ConfigError as exc:
        raise ModelError(f"model cannot be used here ({exc}): {path}") from exc
    check_weights(model, path)
    return model


def check_weights(model: FittedModel, path: str | os.PathLike) -> None:
    """Refuse a model whose backbone weights differ on this machine.

    Raises:
        ModelError: the weights are missing here or their SHA-256 differs.
    """
    want = model.info.get("weights_sha256")
    try:
        have = weights_digest(model.config, model.weights)
    except ConfigError as exc:
        raise ModelError(
            f"model needs backbone weights not available here ({exc}): {path}"
        ) from exc
    if want and have != want:
        raise ModelError(
            f"backbone '{model.config.backbone}' weights on this machine differ from those the "
            f"model was fitted with (SHA-256 mismatch): {path}"
        )
