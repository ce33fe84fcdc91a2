"""The fitted inspector as data (:class:`FittedModel`) and its model folder.

A model folder (:mod:`fsad.artifact`: JSON manifest + safetensors, no pickle) holds the
normal coreset bank of each engine (``banks.safetensors``), the support rows of each recipe
group and their labels (``support.safetensors``) and as JSON the config, the recipe
(:func:`fsad.recipe.recipe_to_json`), class and support names, threshold, temperature,
heat-map range, weights path and fit facts (with the leave-one-out trust estimate). Loading
checks that every backbone's weights on this machine are the ones the model was fitted with.
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
from fsad.engine import EngineConfig
from fsad.errors import ConfigError
from fsad.features import resolve_weights
from fsad.inspector.config import InspectorConfig
from fsad.memory import MemoryBank
from fsad.recipe import Recipe, recipe_from_json, recipe_to_json, relit_banked
from fsad.zoom import ZoomConfig


@dataclass
class FittedModel:
    """Everything a fitted inspector knows.

    Attributes:
        config: the fit configuration.
        recipe: the classifier's recipe (groups of blocks, extra engines, head).
        classes: the C defect types (natural order of the support folders).
        banks: the normal coreset memory bank ``(M_k, D_k)`` of each engine (0 = the
            engine of ``config``, k > 0 = ``recipe.engines[k - 1]``).
        support: per group of the recipe, the support rows ``(S, D_g)`` float32.
        support_labels: ``(S,)`` int64 class index of each support row (the images as
            shot, then their poses, :mod:`fsad.poses`).
        support_names: ``(S,)`` support file names (``name@pose`` for a turned copy).
        threshold: normal-vs-defect threshold on the anomaly score (engine 0).
        temperature: softmax temperature of a cosine head.
        map_range: anomaly values shown coldest and hottest in heat maps.
        info: JSON-able facts of the fit (counts, leave-out score summary, the
            leave-one-out trust estimate, weights hashes, ...).
        weights: local backbone weights file of engine 0 (None: packaged weights).
        light_reference: ``(19,)`` the normals' reference every new image's light is undone
            against (:func:`fsad.light_estimate.undo_light`) where the support's light test
            found the product's light varying; None: images as shot.
    """

    config: InspectorConfig
    recipe: Recipe
    classes: list[str]
    banks: list[MemoryBank]
    support: list[np.ndarray]
    support_labels: np.ndarray
    support_names: list[str]
    threshold: float
    temperature: float
    map_range: tuple[float, float]
    info: dict[str, Any] = field(default_factory=dict)
    weights: str | None = None
    light_reference: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.support = [np.asarray(x, dtype=np.float32) for x in self.support]
        self.support_labels = np.asarray(self.support_labels, dtype=np.int64)
        self.threshold = float(self.threshold)
        self.temperature = float(self.temperature)
        self.map_range = (float(self.map_range[0]), float(self.map_range[1]))
        if self.light_reference is not None:
            self.light_reference = np.asarray(self.light_reference, dtype=np.float64)

    @property
    def engine_configs(self) -> list[EngineConfig]:
        """The settings of each engine (see ``banks``)."""
        return engine_configs(self.config, self.recipe, self.weights)


def engine_configs(
    config: InspectorConfig, recipe: Recipe, weights: str | None
) -> list[EngineConfig]:
    """Engine 0 from the fit configuration, then the recipe's further engines; an engine has
    a relit bank when the recipe or its own settings ask for one (as
    :func:`fsad.recipe.recipe_engines`)."""
    first = EngineConfig(
        features=config.feature_config(weights),
        coreset_ratio=config.coreset_ratio,
        relit_bank=recipe.relit_bank,
    )
    return [first, *(relit_banked(e, recipe.relit_bank or e.relit_bank) for e in recipe.engines)]


def backbone_files(config: InspectorConfig, recipe: Recipe, weights: str | None) -> dict[str, Path]:
    """Every backbone weights file the model reads: its engines' and its zoom encoders'."""
    files = {}
    for i, e in enumerate(engine_configs(config, recipe, weights)):
        files[e.features.backbone] = resolve_weights(
            e.features.backbone, weights if i == 0 else None
        )
    for g in recipe.groups:
        if isinstance(g.block, ZoomConfig):
            files[g.block.backbone] = resolve_weights(g.block.backbone)
    return files


def weights_digests(config: InspectorConfig, recipe: Recipe, weights: str | None) -> dict[str, str]:
    """SHA-256 of each backbone weights file the model reads, by backbone name."""
    return {
        name: hashlib.sha256(path.read_bytes()).hexdigest()
        for name, path in backbone_files(config, recipe, weights).items()
    }


def save_model(path: str | os.PathLike, model: FittedModel) -> Path:
    """Write ``model`` as a model folder at ``path``, atomically; returns its path."""
    cfg = asdict(model.config)
    cfg["layers"] = list(model.config.layers)
    meta = {
        "kind": "inspector",
        "config": cfg,
        "method": model.config.method,
        "recipe": recipe_to_json(model.recipe),
        "classes": model.classes,
        "support_names": model.support_names,
        "threshold": model.threshold,
        "temperature": model.temperature,
        "map_range": list(model.map_range),
        "weights": model.weights,
        "info": model.info,
    }
    if model.light_reference is not None:  # absent otherwise: older models have no such key
        meta["light_reference"] = model.light_reference.tolist()
    support = {f"group{g}": torch.from_numpy(x) for g, x in enumerate(model.support)}
    tensors = {
        "banks": {f"engine{k}": b.features for k, b in enumerate(model.banks)},
        "support": {**support, "labels": torch.from_numpy(model.support_labels)},
    }
    return save_artifact(path, Artifact(meta=meta, tensors=tensors))


def _from_artifact(art: Artifact) -> FittedModel:
    """The model held by a loaded artifact.

    Raises:
        KeyError, TypeError, ValueError: missing or inconsistent fields.
        ConfigError: a config or recipe this library cannot use.
    """
    meta = art.meta
    if meta.get("kind") != "inspector":
        raise KeyError("kind")
    config = InspectorConfig(**meta["config"])
    recipe = recipe_from_json(meta["recipe"])
    weights = meta.get("weights")
    configs = engine_configs(config, recipe, weights)
    stored = art.tensors["banks"]
    banks = [
        MemoryBank(stored[f"engine{k}"], exact=cfg.exact_search) for k, cfg in enumerate(configs)
    ]
    support = [art.tensors["support"][f"group{g}"].numpy() for g in range(len(recipe.groups))]
    labels = art.tensors["support"]["labels"].long().numpy()
    classes = list(meta["classes"])
    ok = all(len(x) == len(labels) for x in support) and len(labels) == len(meta["support_names"])
    ok = ok and labels.min() >= 0 and labels.max() < len(classes)
    ok = ok and all(b.features.shape[1] == c.features.dim for b, c in zip(banks, configs))
    reference = meta.get("light_reference")
    varies = dict(meta.get("info") or {}).get("light_test", {}).get("varies", False)
    shape_ok = reference is None or np.asarray(reference, dtype=np.float64).shape == (19,)
    if (reference is not None) != varies or not shape_ok:
        raise ValueError("light_reference does not match the light test")
    if not ok:
        raise ValueError("tensor shapes do not match the metadata")
    return FittedModel(
        config=config,
        recipe=recipe,
        classes=classes,
        banks=banks,
        support=support,
        support_labels=labels,
        support_names=list(meta["support_names"]),
        threshold=float(meta["threshold"]),
        temperature=float(meta["temperature"]),
        map_range=tuple(meta["map_range"]),
        info=dict(meta.get("info", {})),
        weights=weights,
        light_reference=meta.get("light_reference"),
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
        ModelError: weights missing here or a SHA-256 that differs (names the backbone).
    """
    want = model.info.get("weights_sha256", {})
    try:
        have = weights_digests(model.config, model.recipe, model.weights)
    except ConfigError as exc:
        raise ModelError(
            f"model needs backbone weights not available here ({exc}): {path}"
        ) from exc
    for name, digest in want.items():
        if have.get(name) != digest:
            raise ModelError(
                f"backbone '{name}' weights on this machine differ from those the model was "
                f"fitted with (SHA-256 mismatch): {path}"
            )
