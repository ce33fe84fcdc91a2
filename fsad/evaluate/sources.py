"""Where a grid's inputs come from: the dataset and texture folders, the categories, and the
residual engine of each (category, seed)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from fsad.cache import DiskCache
from fsad.config import ALL, RunConfig
from fsad.data import CategoryData, get_reader, list_categories
from fsad.engine import EngineConfig, ResidualEngine
from fsad.errors import ConfigError, DataError
from fsad.features import FeatureConfig

#: ``(category, config, seed) -> engine``; the default builds ``fsad.engine.ResidualEngine``
EngineFactory = Callable[[CategoryData, RunConfig, int], Any]


def resolve_dataset_root(root: str | os.PathLike, dataset: str) -> Path:
    """The folder holding the categories: ``root/<dataset>`` when it exists (e.g. ``$FSAD_DATA``
    holds ``mvtec_ad/`` and ``mvtec_3d/``), else ``root`` itself.

    A single-category layout (``folder``) is always read at ``root`` itself.

    Raises:
        ConfigError: an unknown dataset layout.
        DataError: the folder does not exist.
    """
    root = Path(root).expanduser()
    if not get_reader(dataset).single and (root / dataset).is_dir():
        return root / dataset
    if not root.is_dir():
        raise DataError(f"data root not found: {root}")
    return root


def resolve_textures(config: RunConfig, dataset_root: Path) -> str | None:
    """The config's texture folder with ``$VARS`` expanded and ``{data}`` replaced by the
    folder that holds the dataset folder (``$FSAD_DATA`` holds ``mvtec_ad/`` and ``dtd/``).

    Raises:
        DataError: the texture folder does not exist.
    """
    if not config.textures:
        return None
    data = dataset_root.parent
    path = Path(os.path.expandvars(config.textures).replace("{data}", str(data))).expanduser()
    if not path.is_dir():
        raise DataError(f"texture folder not found: {path} (config textures: {config.textures})")
    return str(path)


def resolve_categories(root: Path, config: RunConfig) -> list[str]:
    """The config's categories, with ``all`` expanded to every category under ``root``."""
    if ALL in config.categories:
        return list_categories(root, config.dataset)
    return list(config.categories)


def engine_config_from_dict(settings: Mapping[str, Any]) -> EngineConfig:
    """``fsad.engine.EngineConfig`` from a config's ``engine`` mapping.

    Feature settings may be given flat (``backbone: lite1``, ``crop: 224``) or nested under
    ``features``; everything else must be an ``EngineConfig`` field.

    Raises:
        ConfigError: an unknown setting (the message lists the known ones).
    """
    feature_fields = {f.name for f in dataclasses.fields(FeatureConfig)}
    engine_fields = {f.name for f in dataclasses.fields(EngineConfig)} - {"features"}
    settings = dict(settings)
    features = dict(settings.pop("features", None) or {})
    engine = {}
    for key, value in settings.items():
        if key in feature_fields:
            features[key] = value
        elif key in engine_fields:
            engine[key] = value
        else:
            known = ", ".join(sorted(feature_fields | engine_fields))
            raise ConfigError(f"unknown engine setting '{key}' (known: {known})")
    unknown = sorted(set(features) - feature_fields)
    if unknown:
        raise ConfigError(f"unknown feature setting(s) {', '.join(unknown)}")
    if "layers" in features:
        features["layers"] = tuple(features["layers"])
    return EngineConfig(features=FeatureConfig(**features), **engine)


def default_engine_factory(category: CategoryData, config: RunConfig, seed: int) -> ResidualEngine:
    """The PatchCore residual engine of ``(category, seed)`` with the config's engine settings,
    caching features, banks and residuals in the default :class:`fsad.cache.DiskCache`."""
    return ResidualEngine(
        category, engine_config_from_dict(config.engine), seed=seed, cache=DiskCache()
    )


class LazyEngine:
    """Stands in for the residual engine of one (category, seed) and builds it on first use.

    Attribute access is forwarded to the real engine, so methods use it as the engine itself.

    Args:
        key: ``(category, seed)`` this engine belongs to.
        build: zero-argument callable returning the engine.
    """

    def __init__(self, key: tuple[str, int], build: Callable[[], Any]) -> None:
        self.key = key
        self._build = build
        self._engine: Any = None

    @property
    def built(self) -> bool:
        """Whether the real engine has been built."""
        return self._engine is not None

    def get(self) -> Any:
        """The real engine (built now if needed)."""
        if self._engine is None:
            self._engine = self._build()
        return self._engine

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("key", "_build", "_engine"):
            raise AttributeError(name)
        return getattr(self.get(), name)

    def __repr__(self) -> str:
        return f"LazyEngine({self.key}, built={self.built})"
